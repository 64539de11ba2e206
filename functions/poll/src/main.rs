//! The poll Lambda: reads a scheme's cursor, walks the source API's windows and pages, and queues the documents.
//! For now it loads and checks the bundled schemes; the Lambda runtime arrives with the AWS adapters.

fn main() -> std::process::ExitCode {
    ferry_common::bundled::check_at_startup("poll")
}
