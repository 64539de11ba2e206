//! JSON logs for the Lambdas: one object per line with the current span's fields (scheme, window,
//! page, document key, target) and the span list, which CloudWatch Logs Insights can filter on.
//! The level comes from `RUST_LOG`-style `FERRY_LOG` (`info` unless set); secrets never reach a
//! log line because connectors hold them as `Secret`, whose `Debug` is redacted.

use std::fmt::Display;

use tracing_subscriber::fmt::format::FmtSpan;

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
    tracing::error!(
        error = %error,
        domain = error.domain().as_str(),
        retryable = retryable(error),
        "{what}"
    );
}
