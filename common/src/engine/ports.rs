//! The engine's ports: small capability traits for the cursor store, the sync-record store and the
//! page queue. The embedded default (SQLite) and the AWS adapters (DynamoDB, SQS) implement them;
//! nothing behind them leaks into the domain.

use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;

use super::record::{RecordState, SyncRecord};
use crate::error::{Classified, Domain, RetryHint};

/// A store or queue that failed (disk, database, network to AWS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError {
    /// What was being done, e.g. `save record SCHEME/1001`.
    pub operation: String,
    /// Why it failed.
    pub message: String,
    /// Whose the store is: `Internal` for one on this machine (a disk, a database file),
    /// `External` for a service (DynamoDB, SQS) that may be back later.
    pub domain: Domain,
}

impl StoreError {
    /// An error of `operation` of a store on this machine.
    pub fn new(operation: impl Into<String>, message: impl std::fmt::Display) -> Self {
        StoreError {
            operation: operation.into(),
            message: message.to_string(),
            domain: Domain::Internal,
        }
    }

    /// An error of `operation` of a store that is a remote service.
    pub fn remote(operation: impl Into<String>, message: impl std::fmt::Display) -> Self {
        StoreError {
            domain: Domain::External,
            ..StoreError::new(operation, message)
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.operation, self.message)
    }
}

impl std::error::Error for StoreError {}

impl Classified for StoreError {
    fn domain(&self) -> Domain {
        self.domain
    }
    fn retry_hint(&self) -> RetryHint {
        RetryHint::Later
    }
}

/// A scheme's polling position and who is walking it (`default()`: a scheme that never ran).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The end of the last window whose pages were all queued; `None` before the first run.
    pub position: Option<Timestamp>,
    /// The poller holding the lease, if any.
    pub holder: Option<String>,
    /// When that lease lapses.
    pub lease_until: Option<Timestamp>,
    /// When the cursor last moved.
    pub updated_at: Option<Timestamp>,
}

/// Cursors with leases: one poller per scheme at a time, and a crashed holder's lease runs out.
pub trait CursorStore: Send + Sync {
    /// The scheme's cursor (an empty one if the scheme never ran).
    fn cursor(&self, scheme: &str) -> impl Future<Output = Result<Cursor, StoreError>> + Send;

    /// Takes or renews the lease until `until`; `false` if another holder's lease is still running.
    fn take_lease(
        &self,
        scheme: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Moves the cursor to `position` if `holder` still holds the lease (a lapsed lease nobody took
    /// over still counts); `false` if another poller took the scheme over.
    fn advance(
        &self,
        scheme: &str,
        holder: &str,
        position: Timestamp,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives the lease up (a no-op if `holder` no longer holds it).
    fn release(
        &self,
        scheme: &str,
        holder: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// One sync record per source document, written with compare-and-swap on its revision so two pushers
/// never both believe they own a document.
pub trait RecordStore: Send + Sync {
    /// The record of `key`, if the document was ever seen.
    fn record(
        &self,
        scheme: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<SyncRecord>, StoreError>> + Send;

    /// Stores `record` if the stored revision is still `record.revision` (`0`: no record yet) and
    /// bumps the revision; `false` if someone else wrote it first.
    fn put(&self, record: &SyncRecord) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records of a scheme, optionally in one state, oldest change first, at most `limit`.
    fn list(
        &self,
        scheme: &str,
        state: Option<RecordState>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<SyncRecord>, StoreError>> + Send;
}

/// The record look-ups operators make (`ferry status`, `ferry record`), beside the engine's own.
pub trait RecordQueries: Send + Sync {
    /// The latest-changed records of a scheme in `state`, newest first.
    fn recent(
        &self,
        scheme: &str,
        state: RecordState,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<SyncRecord>, StoreError>> + Send;

    /// The records whose target number or look-up value is `text` (what people know a document
    /// by: its order number rather than its internal key).
    fn find_by_number(
        &self,
        scheme: &str,
        text: &str,
    ) -> impl Future<Output = Result<Vec<SyncRecord>, StoreError>> + Send;

    /// Records per state of a scheme (states without records left out).
    fn counts(
        &self,
        scheme: &str,
    ) -> impl Future<Output = Result<Vec<(RecordState, u64)>, StoreError>> + Send;
}

/// One thing that happened to one document: fetched, pushed, skipped, failed. `ferry record` shows
/// a document's events in order; they are what answers "why did order X not arrive?".
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    /// The scheme id.
    pub scheme: String,
    /// The document key.
    pub key: String,
    /// When it happened.
    pub at: Timestamp,
    /// What happened: `fetched`, `created`, `updated`, `unchanged`, `superseded`, `failed`,
    /// `conflict`, `retry`.
    pub what: String,
    /// Where it came from (window and page) or what the target answered (its id, or the failure
    /// with the service's message).
    pub detail: String,
    /// The target's id, when the event names one.
    pub target_id: Option<String>,
    /// The exact body a write sent (on `created` and `updated`): what the target received, for
    /// people asking why a bill looks as it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// Each document's history, appended to as the engine works and read back by people.
pub trait HistoryLog: Send + Sync {
    /// Appends events (one batch's worth, in one write).
    fn append(&self, events: Vec<Event>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The latest `limit` events of one document, oldest first.
    fn history(
        &self,
        scheme: &str,
        key: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send;
}

/// A message received from the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The message's id (stable across deliveries).
    pub id: String,
    /// The handle that deletes or reschedules this delivery.
    pub receipt: String,
    /// The body as sent.
    pub body: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
}

/// A message the queue gave up on after its maximum receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message's id.
    pub id: String,
    /// The body as sent.
    pub body: String,
    /// Times it was received.
    pub receive_count: u32,
    /// When it was moved to the dead-letter queue.
    pub dead_at: Timestamp,
}

/// A queue's default maximum receives before a message goes to the dead-letter queue.
pub const DEFAULT_MAX_RECEIVES: u32 = 5;

/// A queue with SQS semantics: at-least-once delivery, a visibility timeout after each receive, and
/// a move to the dead-letter queue once a message was received more than the maximum count.
pub trait PageQueue: Send + Sync {
    /// The largest body the queue accepts, in bytes.
    fn max_body(&self) -> usize {
        super::message::MAX_MESSAGE_BYTES
    }

    /// Sends the bodies (each at most `max_body` bytes).
    fn send(&self, bodies: Vec<String>) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Up to `max` visible messages, hidden for `visibility` from now.
    fn receive(
        &self,
        max: usize,
        visibility: Duration,
    ) -> impl Future<Output = Result<Vec<Delivery>, StoreError>> + Send;

    /// Deletes a delivered message (done with it).
    fn delete(&self, receipt: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Makes a delivered message visible again after `delay` (a retry with backoff).
    fn retry_after(
        &self,
        receipt: &str,
        delay: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces a delivered message by `body` (the documents still to do), first visible after
    /// `delay`, its receive count started afresh: work that is slow, not broken, never counts
    /// toward dead-lettering. A crash halfway may leave both messages; the sync records make the
    /// second push of a document a no-op.
    fn hand_back(
        &self,
        receipt: &str,
        body: String,
        delay: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Messages waiting or in flight (not dead).
    fn depth(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Messages in the dead-letter queue.
    fn dead_letters(&self) -> impl Future<Output = Result<Vec<DeadLetter>, StoreError>> + Send;

    /// How many messages the dead-letter queue holds (approximate on SQS).
    fn dead_letter_count(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        async { Ok(self.dead_letters().await?.len() as u64) }
    }

    /// Moves every dead letter back to the queue for another round of deliveries; how many moved.
    fn redrive(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
