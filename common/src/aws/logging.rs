//! JSON logs for the Lambdas: one object per line with the current span's fields (scheme, window,
//! page, document key, target) and the span list, which CloudWatch Logs Insights can filter on.
//! The level comes from `RUST_LOG`-style `FERRY_LOG` (`info` unless set); secrets never reach a
//! log line because connectors hold them as `Secret`, whose `Debug` is redacted.

use std::fmt::Display;

use tracing_subscriber::fmt::format::FmtSpan;

use crate::Domain;
use crate::error::{Classified, retryable};

/// Installs the JSON subscriber (once; later calls do nothing).
pub fn init() {
    let level = std::env::var("FERRY_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(level)
        .with_current_span(true)
        .with_span_list(true)
        .with_span_events(FmtSpan::NONE)
        .with_target(false)
        // Lambda adds its own timestamp to every line; ours stays for logs read elsewhere.
        .flatten_event(true)
        .try_init();
}

/// Logs `error` at error level with its `domain` (`user`, `external`, `internal`) and whether it
/// is `retryable`: Logs Insights can then count settings mistakes apart from outages, and an
/// alarm can page only for what a person must fix.
pub fn error(what: &str, error: &(impl Classified + Display)) {
    error_of(what, error, error.domain(), retryable(error));
}

/// Logs an error whose domain the caller knows (a plain message), as [`error`] does.
pub fn error_of(what: &str, error: &dyn Display, domain: Domain, retryable: bool) {
    tracing::error!(
        error = %error,
        domain = domain.as_str(),
        retryable,
        "{what}"
    );
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::aws::DeploymentError;

    /// Collects what the JSON layer writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(f: impl FnOnce()) -> serde_json::Value {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        serde_json::from_str(text.trim()).unwrap()
    }

    #[test]
    fn an_error_line_says_whose_move_it_is_and_whether_to_retry() {
        let settings = logged(|| {
            error(
                "the function cannot start",
                &DeploymentError::Config("FERRY_TABLE is not set".into()),
            )
        });
        assert_eq!(settings["domain"], "user");
        assert_eq!(settings["retryable"], false);
        assert_eq!(settings["error"], "FERRY_TABLE is not set");
        assert_eq!(settings["message"], "the function cannot start");
        let outage = logged(|| {
            error(
                "connectors unavailable",
                &DeploymentError::Aws("read secret ferry: timed out".into()),
            )
        });
        assert_eq!(outage["domain"], "external");
        assert_eq!(outage["retryable"], true);
    }
}
