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

/// Implemented by every error type that crosses a module boundary.
pub trait Classified {
    /// Who has to act.
    fn domain(&self) -> Domain;
    /// Whether to retry.
    fn retry_hint(&self) -> RetryHint;
}
