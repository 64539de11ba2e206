//! Error domains and retry hints: every Ferry error says whose fault it is and whether to try again.

/// Who has to act on an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// The scheme, its value maps or the source document is wrong: a person must fix it.
    User,
    /// A remote service misbehaved or refused the request.
    External,
    /// A bug or an environment problem inside Ferry.
    Internal,
}

/// Whether repeating the same work can succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryHint {
    /// Retrying the same input gives the same failure.
    Never,
    /// The failure may pass: retry later with backoff.
    Later,
}

impl Domain {
    /// The domain's name in logs and JSON: `user`, `external`, `internal`.
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::User => "user",
            Domain::External => "external",
            Domain::Internal => "internal",
        }
    }
}

/// Implemented by every error type that crosses a module boundary; read where an error ends up:
/// the CLI's exit code, the Lambdas' `domain` and `retryable` log fields (`aws::logging`).
pub trait Classified {
    /// Who has to act.
    fn domain(&self) -> Domain;
    /// Whether to retry.
    fn retry_hint(&self) -> RetryHint;
}

/// Whether an error says to try again later.
pub fn retryable(error: &impl Classified) -> bool {
    error.retry_hint() == RetryHint::Later
}
