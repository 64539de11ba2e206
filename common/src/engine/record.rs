//! The sync record: what Ferry knows about one source document, and the rules that decide from it
//! whether a delivered version must be pushed, skipped, or waited for.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Where a document stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordState {
    /// A pusher claimed it and is writing; the claim expires at `claim_until`.
    InProgress,
    /// The content with `hash` is in the target under `target_id`.
    Synced,
    /// The last attempt failed in a way that may pass; the message will be delivered again.
    Retrying,
    /// The document cannot be synced as it is (mapping error, business rejection); not retried.
    Failed,
    /// The source changed after sync and the scheme's policy is `conflict`: a person decides.
    Conflict,
}

impl RecordState {
    /// Every state, in the order status pages list them.
    pub const ALL: [RecordState; 5] = [
        RecordState::Synced,
        RecordState::InProgress,
        RecordState::Retrying,
        RecordState::Failed,
        RecordState::Conflict,
    ];

    /// The state's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::InProgress => "in_progress",
            RecordState::Synced => "synced",
            RecordState::Retrying => "retrying",
            RecordState::Failed => "failed",
            RecordState::Conflict => "conflict",
        }
    }

    /// The state named `text`.
    pub fn parse(text: &str) -> Option<RecordState> {
        RecordState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One source document's sync record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRecord {
    /// The scheme id.
    pub scheme: String,
    /// The document's stable key (`trade_id`, `stockout_id`).
    pub key: String,
    /// The state.
    pub state: RecordState,
    /// Hash of the mapped content this record is about (synced, in progress or failed).
    pub hash: String,
    /// The source version of that content (`modified`), compared as text (`YYYY-MM-DD HH:MM:SS`).
    pub version: String,
    /// The target's document number (the catalog's `target.number` field), for people and look-ups.
    pub number: String,
    /// A value the source can be asked for this document by (its first `lookup_keys` field that it
    /// has: `trade_no`, `src_order_no`...): how a replay fetches the document again.
    pub lookup: String,
    /// The target's id once a write landed.
    pub target_id: Option<String>,
    /// A write whose outcome is unknown (the write-ahead note): what was sent, when, and the hash
    /// of its content (see `engine::push::Note`), so the next attempt settles it before anything else.
    pub unsure: Option<String>,
    /// The ids of the target bill's lines, in order, as the target's last answer gave them (empty:
    /// unknown, asked of the target before the next update).
    pub lines: Vec<String>,
    /// Push attempts so far.
    pub attempts: u32,
    /// The last failure's reason, with the service's message.
    pub last_error: Option<String>,
    /// When an in-progress claim lapses.
    pub claim_until: Option<Timestamp>,
    /// When the record was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// Compare-and-swap revision: `0` before the first write.
    pub revision: u64,
}

impl SyncRecord {
    /// A record for a document seen for the first time.
    pub fn new(scheme: &str, key: &str, now: Timestamp) -> Self {
        SyncRecord {
            scheme: scheme.to_owned(),
            key: key.to_owned(),
            state: RecordState::Retrying,
            hash: String::new(),
            version: String::new(),
            number: String::new(),
            lookup: String::new(),
            target_id: None,
            unsure: None,
            lines: Vec::new(),
            attempts: 0,
            last_error: None,
            claim_until: None,
            created_at: now,
            updated_at: now,
            revision: 0,
        }
    }
}

/// The target line ids as stored: comma-separated (ids are numbers or plain codes).
pub fn lines_text(lines: &[String]) -> String {
    lines.join(",")
}

/// The target line ids from their stored text.
pub fn lines_of(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What to do with a delivered version of a document, given its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Push it (claim first).
    Push,
    /// That exact content is in the target already.
    Unchanged,
    /// A newer version was handled already; this delivery is old news.
    Superseded,
    /// It failed for good with this content; only a replay or a new version retries it.
    FailedBefore,
    /// Another pusher holds a live claim: try again once it lapses.
    Claimed,
}

/// Decides what a delivery of (`hash`, `version`) means for a document with `record`.
pub fn verdict(record: Option<&SyncRecord>, hash: &str, version: &str, now: Timestamp) -> Verdict {
    let Some(record) = record else {
        return Verdict::Push;
    };
    if record.state == RecordState::InProgress && record.claim_until.is_some_and(|t| t > now) {
        return Verdict::Claimed;
    }
    if record.hash == hash {
        return match record.state {
            RecordState::Synced => Verdict::Unchanged,
            RecordState::Failed | RecordState::Conflict => Verdict::FailedBefore,
            RecordState::InProgress | RecordState::Retrying => Verdict::Push,
        };
    }
    // Versions are source times in one fixed format, so text order is time order.
    if !record.version.is_empty() && version < record.version.as_str() {
        return Verdict::Superseded;
    }
    Verdict::Push
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: RecordState, hash: &str, version: &str) -> SyncRecord {
        let now = Timestamp::UNIX_EPOCH;
        SyncRecord {
            state,
            hash: hash.into(),
            version: version.into(),
            ..SyncRecord::new("s", "k", now)
        }
    }

    #[test]
    fn verdicts() {
        let now = Timestamp::from_second(1_000).unwrap();
        let v1 = "2026-01-01 10:00:00";
        let v2 = "2026-01-01 10:05:00";
        assert_eq!(verdict(None, "h", v1, now), Verdict::Push);
        let synced = record(RecordState::Synced, "h1", v1);
        assert_eq!(verdict(Some(&synced), "h1", v1, now), Verdict::Unchanged);
        assert_eq!(verdict(Some(&synced), "h2", v2, now), Verdict::Push);
        let newer = record(RecordState::Synced, "h2", v2);
        assert_eq!(verdict(Some(&newer), "h1", v1, now), Verdict::Superseded);
        let failed = record(RecordState::Failed, "h1", v1);
        assert_eq!(verdict(Some(&failed), "h1", v1, now), Verdict::FailedBefore);
        assert_eq!(verdict(Some(&failed), "h2", v2, now), Verdict::Push);
        let mut claimed = record(RecordState::InProgress, "h1", v1);
        claimed.claim_until = Some(Timestamp::from_second(2_000).unwrap());
        assert_eq!(verdict(Some(&claimed), "h1", v1, now), Verdict::Claimed);
        // A crashed pusher's claim lapses and the document can be taken again.
        let later = Timestamp::from_second(3_000).unwrap();
        assert_eq!(verdict(Some(&claimed), "h1", v1, later), Verdict::Push);
    }
}
