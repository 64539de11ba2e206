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

#[cfg(test)]
mod test_support;

pub use endpoints::{Addressed, AnyTarget, Bill, Page, SourceApi, TargetApi};
pub use message::{Envelope, MAX_MESSAGE_BYTES, PageHeader, PageMessage};
pub use pace::{Pacer, RATE_SHARE, TargetPacers};
pub use poll::{PageEvent, PollError, PollReport, Poller, Stop, lookup, scan};
pub use ports::{
    Cursor, CursorStore, DEFAULT_MAX_RECEIVES, DeadLetter, Delivery, Event, HistoryLog, PageQueue,
    RecordQueries, RecordStore, StoreError,
};
pub use push::{
    Backoff, Deadline, DocumentOutcome, MAX_HAND_BACK_DELAY, MessageResult, Next, Note, Pusher,
    blocked_by, change_hash, content_hash, redelivery_delay,
};
pub use record::{RecordState, SyncRecord, Verdict};
pub use timing::{PushTiming, TimingSettings};
pub use window::{Window, plan};

#[cfg(test)]
mod tests {
    /// The engine is written against the ports alone: a connector is added beside it
    /// (`connector/`, the registry), never inside it. Test modules may name whom they mimic.
    #[test]
    fn the_engine_names_no_vendor() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
        let mut vendors: Vec<String> = crate::connector::registry::TARGETS
            .iter()
            .map(|entry| entry.name.to_owned())
            .collect();
        vendors.extend(["wdt", "qimen", "金蝶", "用友", "旺店通"].map(String::from));
        let mut named = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            if file.ends_with("_tests.rs") || file == "test_support.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (number, line) in code.lines().enumerate() {
                let lower = line.to_lowercase();
                if let Some(vendor) = vendors.iter().find(|v| lower.contains(v.as_str())) {
                    named.push(format!("engine/{file}:{}: names {vendor}", number + 1));
                }
            }
        }
        assert!(named.is_empty(), "{}", named.join("\n"));
    }
}
