//! The push Lambda: maps each queued document, pushes it to the target once, and records the outcome.
//! For now it loads and checks the bundled schemes; the Lambda runtime arrives with the AWS adapters.

fn main() -> std::process::ExitCode {
    ferry_common::bundled::check_at_startup("push")
}
