//! The sync engine: poll (source pages → queue) and push (queue → target), over small ports for the
//! cursor store, the sync-record store, the page queue and the connectors. Nothing here knows AWS or
//! SQLite; the embedded default and the Lambdas bring the adapters.

pub mod endpoints;
pub mod message;
pub mod pace;
pub mod poll;
pub mod ports;
pub mod push;
pub mod record;
pub mod timing;
pub mod window;

#[cfg(all(test, feature = "embedded"))]
mod test_support;

pub use endpoints::{
    Addressed, AnyTarget, Bill, KingdeeTarget, SourceApi, TargetApi, WdtSource, YonyouTarget,
    endpoints_for,
};
pub use message::{Envelope, MAX_MESSAGE_BYTES, PageHeader, PageMessage};
pub use pace::{Pacer, RATE_SHARE, TargetPacers};
pub use poll::{PageEvent, PollError, PollReport, Poller, Stop, scan};
pub use ports::{
    Cursor, CursorStore, DeadLetter, Delivery, Event, HistoryLog, PageQueue, RecordQueries,
    RecordStore, StoreError,
};
pub use push::{
    Backoff, Deadline, DocumentOutcome, MAX_HAND_BACK_DELAY, MessageResult, Next, Note, Pusher,
    blocked_by, change_hash, content_hash, redelivery_delay,
};
pub use record::{RecordState, SyncRecord, Verdict};
pub use timing::{PushTiming, TimingSettings};
pub use window::{Window, plan};
