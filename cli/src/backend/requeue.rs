//! What a re-fetch is asked for and what it did, on either backend.

use ferry_common::engine::Window;
use serde_json::Value;

/// What to fetch again.
#[derive(Clone, Debug)]
pub enum Requeue {
    /// A window (the cursor stays).
    Window(Window),
    /// Documents by key or look-up value; `replay` pushes earlier failures again.
    Keys {
        /// Keys or look-up values.
        keys: Vec<String>,
        /// An operator's replay.
        replay: bool,
    },
}

/// What a re-fetch did: the poll report (as JSON), documents queued, values the source lacked.
pub struct Refetched {
    /// The poll's report.
    pub report: Value,
    /// Documents queued.
    pub documents: u64,
    /// Values the source had no document for.
    pub not_found: Vec<String>,
}
