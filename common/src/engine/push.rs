//! One push batch: map each document, compare it with its sync record, claim it, write it to the
//! target exactly once, and record the outcome. Retryable failures fail only their own message.
//!
//! Exactly once, with the latest content, rests on four rules:
//! - a document is claimed (compare-and-swap on its record) before any write, so two pushers never
//!   write it at once, and a crashed pusher's claim lapses;
//! - before every write the claim records a note of it (`unsure`): the content's hash and when,
//!   and, for a target with an idempotency key, the exact body about to be sent. A write's outcome
//!   is unknown unless its answer proves it: a 5xx, a timeout, a cut connection or an unreadable
//!   answer keeps the note, and whoever finds it later settles it first — by repeating a keyed
//!   write inside its key's window (a target whose idempotency key answers a repeat with the first
//!   success), else by looking the bill up by number;
//! - a refused create is settled the same way: whether the number exists is decided by a look-up,
//!   never by an error code; a bill found is adopted and updated;
//! - a bill known to the record is updated by its id, line by line, never created again; a target
//!   that refuses the update leaves the document in conflict, with its message, for a person.
//!
//! Only real changes are written: the change check hashes the mapped body without the idempotency
//! key and without fields derived from the document's version alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::endpoints::{Bill, TargetApi};
use super::message::PageMessage;
use super::pace::Pacer;
use super::ports::{Delivery, Event, HistoryLog, RecordStore, StoreError};
use super::record::{RecordState, SyncRecord, Verdict, verdict};
use crate::Scheme;
use crate::connector::{CallError, FailureClass, Saved};
use crate::mapping::Mapper;
use crate::mapping::functions::md5_of;
use crate::scheme::config::OnChange;

/// What one push needs.
pub struct Pusher<'a, R, T> {
    /// The scheme.
    pub scheme: &'a Scheme,
    /// The target.
    pub target: &'a T,
    /// Sync records.
    pub records: &'a R,
    /// Spaces target calls to the scheme's rate limit.
    pub pacer: Option<Arc<Pacer>>,
    /// How long a claim holds before another pusher may retake the document.
    pub claim_ttl: Duration,
    /// When to stop starting documents and making calls (an invocation's deadline less its
    /// reserves); `None`: no deadline.
    pub deadline: Option<Deadline>,
    /// When documents that must be tried again come back.
    pub backoff: Backoff,
}

/// The two instants a push with a deadline keeps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// No document is started from here on: what is left is handed back.
    pub starts_end: Instant,
    /// No target call is made or waited for from here on: the rest of the time records outcomes,
    /// hands messages back and flushes metrics.
    pub calls_end: Instant,
}

/// When documents that must be tried again come back, and when the queue's own receive count
/// takes over (and may dead-letter them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub min: Duration,
    /// The longest wait (at most [`MAX_HAND_BACK_DELAY`] on a hand-back).
    pub max: Duration,
    /// Rounds of retries a message's documents get by hand-back; after that the message itself is
    /// redelivered, each delivery counting toward the queue's dead-letter limit.
    pub limit: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            min: Duration::from_secs(5),
            max: Duration::from_secs(300),
            limit: 300,
        }
    }
}

/// History events written in one request (DynamoDB's `BatchWriteItem` takes 25).
const HISTORY_CHUNK: usize = 25;

/// The longest a handed-back message can wait to be seen (SQS's `DelaySeconds` maximum).
pub const MAX_HAND_BACK_DELAY: Duration = Duration::from_secs(900);

/// What became of one document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum DocumentOutcome {
    /// Written: a new bill, or an update of the known one.
    Pushed {
        /// The document key.
        key: String,
        /// The target's id.
        target_id: String,
        /// A new bill (`false`: an update, or a lost write found again).
        created: bool,
        /// The exact body the write sent (from its write-ahead note), kept in its history event.
        sent: Option<String>,
    },
    /// That exact content is in the target already.
    Unchanged {
        /// The document key.
        key: String,
    },
    /// A newer version was handled already.
    Superseded {
        /// The document key.
        key: String,
    },
    /// Cannot be synced as it is; recorded, not retried.
    Failed {
        /// The document key (or a stand-in when it has none).
        key: String,
        /// Why, with the service's message.
        reason: String,
    },
    /// Recorded for a person: changed after sync under the `conflict` policy, or the target
    /// refused to change its bill (an audited order, lines it keeps).
    Conflict {
        /// The document key.
        key: String,
        /// Why, with the target's message.
        reason: String,
    },
    /// The target refused Ferry's credentials: nothing more is pushed to it until a person fixes
    /// the connector's settings. The document's record is untouched but for the reason; its
    /// message is redelivered.
    Blocked {
        /// The document key.
        key: String,
        /// What the target said and what to fix.
        reason: String,
    },
    /// Must be tried again: its message is redelivered.
    Retry {
        /// The document key.
        key: String,
        /// Why.
        reason: String,
        /// The soonest a retry makes sense.
        after: Option<Duration>,
    },
}

/// What to do with one delivered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageResult {
    /// The message id.
    pub id: String,
    /// The receipt to delete or reschedule it with.
    pub receipt: String,
    /// What becomes of the message.
    pub next: Next,
    /// Per document that was started.
    pub documents: Vec<DocumentOutcome>,
}

/// What becomes of a delivered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Every document is settled: delete it.
    Done,
    /// Some documents are still to do (retries, or not started before the deadline): replace the
    /// message by `body`, which holds only those, visible after `delay`. Its receive count starts
    /// again: slow is not dead, and work already done is not repeated.
    HandBack {
        /// The continuation message.
        body: String,
        /// When it should be seen.
        delay: Duration,
        /// Documents in it that were not started at all (the deadline came first).
        unstarted: usize,
        /// Documents in it to be tried again.
        retried: usize,
    },
    /// Deliver the message itself again after `delay`: its retries are spent, so the queue's
    /// receive count decides, and dead-letters it after the queue's maximum.
    Redeliver(Duration),
}

impl Next {
    /// Whether the message's documents (some of them) come back.
    pub fn comes_back(&self) -> bool {
        !matches!(self, Next::Done)
    }
}

/// Same-key documents of one process take turns instead of meeting each other's claims: two
/// messages of one batch, or two batches in flight, holding one document.
static TURNS: LazyLock<Turns> = LazyLock::new(Turns::default);

#[derive(Default)]
struct Turns(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// One document's turn; the next waiter goes when it is dropped.
struct Turn {
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Turns {
    async fn take(&'static self, key: String) -> Turn {
        let lock = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key.clone()).or_default().clone()
        };
        Turn {
            guard: Some(lock.lock_owned().await),
            key,
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.guard.take();
        let mut map = TURNS.0.lock().unwrap_or_else(|p| p.into_inner());
        // Only the map holds it now: nobody waits, so the entry goes (the map stays small).
        if map
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            map.remove(&self.key);
        }
    }
}

/// A message's documents still to do after a batch.
#[derive(Default)]
struct Left {
    documents: Vec<Box<RawValue>>,
    unstarted: usize,
    retried: usize,
    hint: Duration,
    blocked: bool,
}

/// The mapped document and what identifies it.
struct Prepared {
    key: String,
    version: String,
    lookup: String,
    body: Value,
    /// The hash of what the target would hold (see [`change_hash`]).
    hash: String,
}

/// The write-ahead note kept in a record's `unsure` while a write's outcome is unknown.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Note {
    /// The change hash of the content written.
    pub hash: String,
    /// When it was sent, unix milliseconds.
    pub at: i64,
    /// The exact body sent, kept only for a target with an idempotency key: such a write is
    /// settled by repeating it, byte for byte. Elsewhere (`null`, left out of the text) the bill is
    /// looked up by the record's number, which needs no body: the record stays small, which on
    /// DynamoDB is write units saved on every claim.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub wire: Value,
}

impl Note {
    fn new(hash: &str, wire: Option<&Value>) -> Note {
        Note {
            hash: hash.to_owned(),
            at: Timestamp::now().as_millisecond(),
            wire: wire.cloned().unwrap_or_default(),
        }
    }

    /// Reads a note; a note written before notes had this shape is the bare body sent, of an
    /// unknown content and time (settled by look-up, never by repeating).
    pub fn parse(text: &str) -> Note {
        match serde_json::from_str::<Note>(text) {
            Ok(note) => note,
            Err(_) => Note {
                hash: String::new(),
                at: 0,
                wire: serde_json::from_str(text).unwrap_or_default(),
            },
        }
    }

    fn text(&self) -> String {
        serde_json::to_string(self).expect("a note serialises")
    }

    /// How long ago it was sent.
    fn age(&self) -> Duration {
        Duration::from_millis(
            u64::try_from(Timestamp::now().as_millisecond() - self.at).unwrap_or(0),
        )
    }
}

/// What settling a note found.
enum Settled {
    /// The noted write is in the target (its key's repeat answered with its success, or the bill
    /// it created was found).
    Applied(Saved),
    /// The bill exists; whether the noted update reached it is not known.
    Exists(Bill),
    /// Nothing the note sent is in the target.
    Absent,
}

/// Why a write did not end in a synced bill.
enum Stop {
    /// A call failed; its class decides.
    Call(CallError),
    /// The target holds the bill and will not take this content: a person decides.
    Conflict(String),
}

impl From<CallError> for Stop {
    fn from(e: CallError) -> Self {
        Stop::Call(e)
    }
}

/// A write's outcome: the bill, whether it is new and the body sent (JSON text, for the history;
/// unknown when a lost write was settled by a look-up), or why not.
type Written = Result<(Saved, bool, Option<String>), Stop>;

/// The hash the change check compares: the mapped body without the idempotency key (a key of each
/// write's own) and without fields derived from the document's version alone.
pub fn change_hash(mapper: &Mapper, idempotency_key: Option<&str>, body: &Value) -> String {
    let version_only = mapper.version_only_fields();
    let needs_view = mapper.header(body).is_some_and(|map| {
        idempotency_key.is_some_and(|k| map.contains_key(k))
            || version_only.iter().any(|f| map.contains_key(f))
    });
    if !needs_view {
        return content_hash(&serde_json::to_string(body).expect("a JSON value serialises"));
    }
    let mut view = body.clone();
    if let Some(map) = mapper.header_mut(&mut view) {
        if let Some(key) = idempotency_key {
            map.remove(key);
        }
        for field in version_only {
            map.remove(field);
        }
    }
    content_hash(&serde_json::to_string(&view).expect("a JSON value serialises"))
}

/// A document that cannot be mapped, and what is known of it.
struct Unmappable {
    key: Option<String>,
    version: String,
    lookup: String,
    reason: String,
}

/// Where a delivered message came from, for the documents' history.
struct Origin {
    delivery: u32,
    fetched_at: Option<Timestamp>,
    replay: bool,
    label: String,
}

impl Origin {
    fn of(message: &PageMessage, delivery: &Delivery) -> Origin {
        let place = match &message.window {
            Some(w) => format!("window {} → {}, page {}", w.0, w.1, message.page),
            None => "look-up by key".to_owned(),
        };
        Origin {
            delivery: delivery.receive_count,
            fetched_at: message.fetched_at,
            replay: message.replay,
            label: if message.replay {
                format!("{place} (operator replay)")
            } else {
                place
            },
        }
    }
}

/// What one outcome looks like in a document's history: what happened, the detail, the target id.
fn describe(outcome: &DocumentOutcome) -> (&'static str, String, Option<String>) {
    match outcome {
        DocumentOutcome::Pushed {
            target_id, created, ..
        } => (
            if *created { "created" } else { "updated" },
            format!("target accepted it as bill {target_id}"),
            Some(target_id.clone()),
        ),
        DocumentOutcome::Unchanged { .. } => (
            "unchanged",
            "the target holds this content already".into(),
            None,
        ),
        DocumentOutcome::Superseded { .. } => (
            "superseded",
            "a newer version was handled already".into(),
            None,
        ),
        DocumentOutcome::Failed { reason, .. } => ("failed", reason.clone(), None),
        DocumentOutcome::Conflict { reason, .. } => ("conflict", reason.clone(), None),
        DocumentOutcome::Blocked { reason, .. } => ("blocked", reason.clone(), None),
        DocumentOutcome::Retry { reason, after, .. } => (
            "retry",
            match after {
                Some(after) => format!("{reason} (again in {after:?} or later)"),
                None => reason.clone(),
            },
            None,
        ),
    }
}

impl DocumentOutcome {
    /// The document key the outcome is about.
    pub fn key(&self) -> &str {
        match self {
            DocumentOutcome::Pushed { key, .. }
            | DocumentOutcome::Unchanged { key }
            | DocumentOutcome::Superseded { key }
            | DocumentOutcome::Failed { key, .. }
            | DocumentOutcome::Conflict { key, .. }
            | DocumentOutcome::Blocked { key, .. }
            | DocumentOutcome::Retry { key, .. } => key,
        }
    }
}

/// A document's outcome, or the store failure that stopped it (retried with its message).
type Step = Result<DocumentOutcome, StoreError>;

/// How long a message waits before its next delivery after a retryable failure: exponential
/// backoff with jitter from `min` to `max` by the delivery count, and never sooner than the
/// failure's own hint (a throttling answer's wait).
pub fn redelivery_delay(
    min: Duration,
    max: Duration,
    receive_count: u32,
    hint: Duration,
) -> Duration {
    use retry_policies::policies::ExponentialBackoff;
    use retry_policies::{Jitter, RetryDecision, RetryPolicy};
    let policy = ExponentialBackoff::builder()
        .retry_bounds(min, max.max(min))
        .jitter(Jitter::Bounded)
        .build_with_max_retries(u32::MAX);
    let now = std::time::SystemTime::now();
    let policy_delay = match policy.should_retry(now, receive_count.saturating_sub(1)) {
        RetryDecision::Retry { execute_after } => {
            execute_after.duration_since(now).unwrap_or_default()
        }
        RetryDecision::DoNotRetry => max,
    };
    policy_delay.max(hint)
}

/// The hash of a mapped body (the content the target would hold).
pub fn content_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

impl<R, T> Pusher<'_, R, T>
where
    R: RecordStore + HistoryLog,
    T: TargetApi,
{
    /// Pushes the documents of `deliveries`, at most the scheme's concurrency at once, and appends
    /// what became of each to its history. Documents are not started once the deadline has come;
    /// each message's unfinished documents (those and the ones to retry) are handed back.
    pub async fn push_batch(&self, deliveries: &[Delivery]) -> Vec<MessageResult> {
        let mut results: Vec<MessageResult> = Vec::with_capacity(deliveries.len());
        // Per message: where it came from, and its header (documents taken out) for a hand-back.
        let mut origins: Vec<Option<(Origin, PageMessage)>> = Vec::with_capacity(deliveries.len());
        let mut work = Vec::new();
        for (index, delivery) in deliveries.iter().enumerate() {
            let mut result = MessageResult {
                id: delivery.id.clone(),
                receipt: delivery.receipt.clone(),
                next: Next::Done,
                documents: Vec::new(),
            };
            let mut origin = None;
            match serde_json::from_str::<PageMessage>(&delivery.body) {
                Ok(mut message) if message.scheme == self.scheme.id() => {
                    let documents = std::mem::take(&mut message.documents);
                    work.extend(documents.into_iter().map(|doc| (index, doc)));
                    origin = Some((Origin::of(&message, delivery), message));
                }
                Ok(message) => result.documents.push(DocumentOutcome::Failed {
                    key: format!("message:{}", delivery.id),
                    reason: format!(
                        "message for scheme '{}' delivered to the pusher of '{}'",
                        message.scheme,
                        self.scheme.id()
                    ),
                }),
                Err(e) => {
                    // Not a page message: retrying cannot fix it, so it is reported and dropped.
                    tracing::error!(message = %delivery.id, error = %e, "unreadable page message");
                    result.documents.push(DocumentOutcome::Failed {
                        key: format!("message:{}", delivery.id),
                        reason: format!("unreadable page message: {e}"),
                    });
                }
            }
            origins.push(origin);
            results.push(result);
        }
        let concurrency = self.scheme.push.concurrency.max(1);
        let origins_ref = &origins;
        // Set once the target refuses Ferry's credentials: documents not yet started are left for
        // redelivery untouched, since every one of them would be refused the same way.
        let blocked = AtomicBool::new(false);
        let blocked = &blocked;
        let deadline = self.deadline;
        // How long a document has been taking (a moving average, in microseconds): one is only
        // started if a document like it ends before the calls do, so that after the last call only
        // the flush is left (the store's latency counts, not just the target's pace).
        let typical = AtomicU64::new(0);
        let typical = &typical;
        let mut outcomes = futures_util::stream::iter(work)
            .map(|(index, doc)| async move {
                let now = Instant::now();
                let late = deadline.is_some_and(|d| {
                    now >= d.starts_end
                        || now + Duration::from_micros(typical.load(Ordering::Relaxed))
                            >= d.calls_end
                });
                if late || blocked.load(Ordering::SeqCst) {
                    return (index, doc, None);
                }
                let replay = origins_ref[index].as_ref().is_some_and(|o| o.0.replay);
                let outcome = self.push_document(&doc, replay).await;
                let took = now.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
                let _ = typical.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                    Some(if t == 0 { took } else { (t * 3 + took) / 4 })
                });
                if matches!(outcome, DocumentOutcome::Blocked { .. }) {
                    blocked.store(true, Ordering::SeqCst);
                }
                (index, doc, Some(outcome))
            })
            .buffer_unordered(concurrency);
        let mut events = Vec::new();
        // History goes out in chunks while documents are pushed: what is left to write after the
        // last document is one chunk, whatever the batch's size.
        let mut appends = futures_util::stream::FuturesUnordered::new();
        // Per message: the documents to hand back, how many were never started, the longest wait
        // asked for, and whether the target refused Ferry's credentials.
        let mut left: Vec<Left> = deliveries.iter().map(|_| Left::default()).collect();
        loop {
            let next = tokio::select! {
                Some(written) = appends.next(), if !appends.is_empty() => {
                    self.history_written(written);
                    continue;
                }
                next = outcomes.next() => next,
            };
            let Some((index, doc, outcome)) = next else {
                break;
            };
            let left = &mut left[index];
            match &outcome {
                None => {
                    left.unstarted += 1;
                    left.documents.push(doc);
                }
                Some(DocumentOutcome::Retry { after, .. }) => {
                    left.retried += 1;
                    left.hint = left.hint.max(after.unwrap_or_default());
                    left.documents.push(doc);
                }
                Some(DocumentOutcome::Blocked { .. }) => {
                    left.retried += 1;
                    left.blocked = true;
                    left.documents.push(doc);
                }
                Some(_) => {}
            }
            let Some(outcome) = outcome else {
                continue;
            };
            if let Some((origin, _)) = &origins[index] {
                self.history_of(&outcome, origin, &mut events);
                if events.len() >= HISTORY_CHUNK {
                    appends.push(self.records.append(std::mem::take(&mut events)));
                }
            }
            results[index].documents.push(outcome);
        }
        drop(outcomes);
        appends.push(self.records.append(events));
        while let Some(written) = appends.next().await {
            self.history_written(written);
        }
        let any_blocked = left.iter().any(|l| l.blocked);
        for ((result, left), (origin, delivery)) in results
            .iter_mut()
            .zip(left)
            .zip(origins.iter_mut().zip(deliveries))
        {
            if let Some((_, header)) = origin {
                result.next = self.next(header, delivery, left, any_blocked);
            }
        }
        results
    }

    fn history_written(&self, written: Result<(), StoreError>) {
        if let Err(e) = written {
            // The records hold the truth; a lost history entry is logged, not worth a redelivery.
            tracing::warn!(scheme = self.scheme.id(), error = %e, "history not written");
        }
    }

    /// What becomes of a message, given the documents it has left.
    fn next(
        &self,
        header: &mut PageMessage,
        delivery: &Delivery,
        left: Left,
        blocked: bool,
    ) -> Next {
        if left.documents.is_empty() {
            return Next::Done;
        }
        let backoff = &self.backoff;
        let retries = header.retries + u32::from(left.retried > 0);
        // Credentials refused: no quick retry can pass, so the longest wait.
        let hint = if blocked { backoff.max } else { left.hint };
        if retries > backoff.limit {
            let delay = redelivery_delay(backoff.min, backoff.max, delivery.receive_count, hint);
            return Next::Redeliver(delay);
        }
        let delay = if left.retried == 0 && !blocked {
            // Only the deadline stopped them: they go on at once.
            Duration::ZERO
        } else {
            redelivery_delay(backoff.min, backoff.max, retries, hint)
        };
        header.retries = retries;
        header.documents = left.documents;
        let body = serde_json::to_string(&*header).expect("raw JSON serialises");
        header.documents = Vec::new();
        Next::HandBack {
            body,
            delay: delay.min(MAX_HAND_BACK_DELAY),
            unstarted: left.unstarted,
            retried: left.retried,
        }
    }

    /// The history entries of one outcome: when its page was fetched (and which delivery of it
    /// this is: a batch cut short by a crash writes no history, so each delivery says it again), then
    /// what the push did.
    fn history_of(&self, outcome: &DocumentOutcome, origin: &Origin, events: &mut Vec<Event>) {
        let now = Timestamp::now();
        let key = outcome.key().to_owned();
        events.push(Event {
            scheme: self.scheme.id().to_owned(),
            key: key.clone(),
            at: origin.fetched_at.unwrap_or(now),
            what: "fetched".into(),
            detail: if origin.delivery > 1 {
                format!("{} (delivery {})", origin.label, origin.delivery)
            } else {
                origin.label.clone()
            },
            target_id: None,
            body: None,
        });
        let (what, detail, target_id) = describe(outcome);
        events.push(Event {
            scheme: self.scheme.id().to_owned(),
            key,
            at: now,
            what: what.into(),
            detail: if origin.replay {
                format!("{detail} (replay)")
            } else {
                detail
            },
            target_id,
            body: match outcome {
                DocumentOutcome::Pushed { sent, .. } => sent.clone(),
                _ => None,
            },
        });
    }

    /// Pushes one document and says what became of it. `replay`: an operator asked for it again,
    /// so an earlier failure or conflict does not stop it.
    pub async fn push_document(&self, doc: &RawValue, replay: bool) -> DocumentOutcome {
        let now = Timestamp::now();
        let prepared = match self.prepare(doc.get()) {
            Ok(p) => p,
            Err(unmappable) => return self.record_unmappable(doc.get(), unmappable, now).await,
        };
        // A document this process is pushing already (met twice in a batch, or in two batches at
        // once) waits for that push to end, not for its claim to lapse.
        let _turn = TURNS
            .take(format!("{}\u{0}{}", self.scheme.id(), prepared.key))
            .await;
        // The wait may have been long: claims are judged from now.
        let now = Timestamp::now();
        match self.sync(&prepared, now, replay).await {
            Ok(outcome) => outcome,
            Err(e) => retry_store(&prepared.key, e),
        }
    }

    fn prepare(&self, text: &str) -> Result<Prepared, Unmappable> {
        let mapper = &self.scheme.mapper;
        let doc = mapper.parse(text).map_err(|e| Unmappable {
            key: None,
            version: String::new(),
            lookup: String::new(),
            reason: format!("source document is not valid JSON: {e}"),
        })?;
        let version = mapper.document_version(&doc).unwrap_or_default();
        let lookup = mapper.document_lookup(&doc).unwrap_or_default();
        let Some(key) = mapper.document_key(&doc) else {
            return Err(Unmappable {
                key: None,
                version,
                lookup,
                reason: format!("document has no {}", mapper.key_field()),
            });
        };
        let body = match mapper.map(&doc) {
            Ok(body) => body,
            Err(e) => {
                return Err(Unmappable {
                    key: Some(key),
                    version,
                    lookup,
                    reason: e.to_string(),
                });
            }
        };
        Ok(Prepared {
            hash: change_hash(mapper, self.idempotency_key(), &body),
            key,
            version,
            lookup,
            body,
        })
    }

    /// A document that cannot be mapped is recorded as failed for that exact source text.
    async fn record_unmappable(
        &self,
        text: &str,
        Unmappable {
            key,
            version,
            lookup,
            reason,
        }: Unmappable,
        now: Timestamp,
    ) -> DocumentOutcome {
        let hash = format!("source:{}", content_hash(text));
        let key = key.unwrap_or_else(|| format!("unkeyed:{}", hash.trim_start_matches("source:")));
        tracing::warn!(
            scheme = self.scheme.id(),
            key,
            reason,
            "document cannot be mapped"
        );
        for _ in 0..3 {
            let record = match self.records.record(self.scheme.id(), &key).await {
                Ok(r) => r,
                Err(e) => return retry_store(&key, e),
            };
            match verdict(record.as_ref(), &hash, &version, now) {
                Verdict::FailedBefore => return DocumentOutcome::Failed { key, reason },
                // An old version, unmappable or not, is old news: the record is about a newer one.
                Verdict::Superseded => return DocumentOutcome::Superseded { key },
                Verdict::Claimed => {
                    return DocumentOutcome::Retry {
                        key,
                        reason: "another pusher holds the document".into(),
                        after: Some(self.claim_ttl),
                    };
                }
                Verdict::Push | Verdict::Unchanged => {}
            }
            let mut record = record.unwrap_or_else(|| SyncRecord::new(self.scheme.id(), &key, now));
            record.state = RecordState::Failed;
            record.hash = hash.clone();
            record.version = version.clone();
            record.lookup = lookup.clone();
            record.attempts += 1;
            record.last_error = Some(reason.clone());
            record.claim_until = None;
            record.updated_at = now;
            match self.records.put(&record).await {
                Ok(true) => return DocumentOutcome::Failed { key, reason },
                Ok(false) => continue,
                Err(e) => return retry_store(&key, e),
            }
        }
        DocumentOutcome::Retry {
            key,
            reason: "the record kept changing".into(),
            after: None,
        }
    }

    /// The target's idempotency-key field, if its API has one.
    fn idempotency_key(&self) -> Option<&str> {
        self.scheme.target_api.idempotency_key.as_deref()
    }

    async fn sync(&self, doc: &Prepared, now: Timestamp, replay: bool) -> Step {
        let scheme = self.scheme.id();
        let key = doc.key.clone();
        let record = self.records.record(scheme, &key).await?;
        match verdict(record.as_ref(), &doc.hash, &doc.version, now) {
            Verdict::Unchanged => return Ok(DocumentOutcome::Unchanged { key }),
            Verdict::Superseded => return Ok(DocumentOutcome::Superseded { key }),
            // An operator's replay pushes it again: same claim, same settling, so never twice.
            Verdict::FailedBefore if replay => {}
            Verdict::FailedBefore => {
                let record = record.expect("a verdict about an earlier failure has its record");
                let reason = record.last_error.unwrap_or_default();
                return Ok(if record.state == RecordState::Conflict {
                    DocumentOutcome::Conflict { key, reason }
                } else {
                    DocumentOutcome::Failed { key, reason }
                });
            }
            Verdict::Claimed => {
                let left = record
                    .and_then(|r| r.claim_until)
                    .map(|t| Duration::try_from(t.duration_since(now)).unwrap_or_default());
                return Ok(DocumentOutcome::Retry {
                    key,
                    reason: "another pusher holds the document".into(),
                    after: left,
                });
            }
            Verdict::Push => {}
        }
        let mut record = record.unwrap_or_else(|| SyncRecord::new(scheme, &key, now));
        let in_target = record.target_id.is_some()
            && matches!(record.state, RecordState::Synced | RecordState::Conflict);
        if in_target && !replay && self.scheme.push.on_change == OnChange::Conflict {
            let reason = format!(
                "conflict: the source changed after sync (version {} → {}); policy is conflict",
                record.version, doc.version
            );
            record.state = RecordState::Conflict;
            record.last_error = Some(reason.clone());
            record.hash = doc.hash.clone();
            record.version = doc.version.clone();
            record.updated_at = now;
            return Ok(if self.records.put(&record).await? {
                DocumentOutcome::Conflict { key, reason }
            } else {
                raced(key)
            });
        }
        // A create with nothing to settle first writes its note with the claim: one record write,
        // not two, for the common case of a new document.
        let create_now = (record.unsure.is_none() && record.target_id.is_none())
            .then(|| self.stamped(doc, &record, "create"));
        if let Some(body) = &create_now {
            record.unsure = Some(Note::new(&doc.hash, self.noted_body(body)).text());
        }
        // Claim.
        record.state = RecordState::InProgress;
        record.claim_until = Some(now + self.claim_ttl);
        record.attempts += 1;
        record.hash = doc.hash.clone();
        record.version = doc.version.clone();
        record.number = self.target.number(&doc.body);
        record.lookup = doc.lookup.clone();
        record.updated_at = now;
        if !self.records.put(&record).await? {
            return Ok(raced(key));
        }
        record.revision += 1;
        // An earlier write whose outcome is unknown is settled before anything else is sent (the
        // note a direct create just wrote is its own, not an earlier one).
        if create_now.is_none()
            && let Some(text) = record.unsure.clone()
        {
            let note = Note::parse(&text);
            match self.settle(&record, &note).await {
                Ok(Settled::Applied(saved)) => {
                    record.target_id = Some(saved.target_id.clone());
                    record.lines = saved.lines.clone().unwrap_or_default();
                    if note.hash == doc.hash {
                        // The lost write was this very content: nothing more to send (a keyed
                        // note says what was sent).
                        let sent = (!note.wire.is_null()).then(|| note.wire.to_string());
                        return self.finish(record, Ok((saved, false, sent))).await;
                    }
                    record.unsure = None;
                }
                Ok(Settled::Exists(bill)) => {
                    record.unsure = None;
                    record.target_id = Some(bill.id);
                    record.lines = bill.lines.unwrap_or_default();
                }
                Ok(Settled::Absent) => record.unsure = None,
                Err(e) => return self.finish(record, Err(e.into())).await,
            }
        }
        let outcome = match record.target_id.clone() {
            None => self.create(&mut record, doc, create_now).await,
            Some(id) => self.update(&mut record, doc, id).await,
        };
        self.finish(record, outcome?).await
    }

    /// The body of this write: the mapping with the target's idempotency key set to a key of the
    /// write's own (the document, its content, the claim's revision and what the write does), so a
    /// retry of this write repeats it and no other write is ever answered with its result.
    fn stamped(&self, doc: &Prepared, record: &SyncRecord, what: &str) -> Value {
        let mut body = doc.body.clone();
        if let Some(field) = self.idempotency_key() {
            let seed = format!(
                "{}:{}:{}:{}:{what}",
                self.scheme.id(),
                doc.key,
                doc.hash,
                record.revision
            );
            if let Some(map) = self.scheme.mapper.header_mut(&mut body) {
                map.insert(field.to_owned(), Value::String(md5_of(&seed)));
            }
        }
        body
    }

    /// What a note keeps of the body `wire`: all of it when the target has an idempotency key (a
    /// keyed write is settled by repeating it), nothing otherwise (settled by number).
    fn noted_body<'a>(&self, wire: &'a Value) -> Option<&'a Value> {
        self.idempotency_key().map(|_| wire)
    }

    /// Writes the note of `wire` into the claimed record and renews the claim.
    async fn note(
        &self,
        record: &mut SyncRecord,
        hash: &str,
        wire: &Value,
    ) -> Result<bool, StoreError> {
        record.unsure = Some(Note::new(hash, self.noted_body(wire)).text());
        // The claim runs from now: settling and addressing may have spent much of it.
        record.claim_until = Some(Timestamp::now() + self.claim_ttl);
        if !self.records.put(record).await? {
            return Ok(false);
        }
        record.revision += 1;
        Ok(true)
    }

    /// Creates the bill. A refusal is settled by a look-up: a bill found under the number (an
    /// earlier write of ours whose answer was lost) is adopted and updated; none found means the
    /// refusal stands.
    /// `noted`: the body whose note the claim already wrote.
    async fn create(
        &self,
        record: &mut SyncRecord,
        doc: &Prepared,
        noted: Option<Value>,
    ) -> Result<Written, StoreError> {
        let body = match noted {
            Some(body) => body,
            None => {
                let body = self.stamped(doc, record, "create");
                if !self.note(record, &doc.hash, &body).await? {
                    return Err(lost_claim());
                }
                body
            }
        };
        let refusal = match self.call(self.target.send(&body)).await {
            Ok(saved) => {
                let created = !saved.repeat;
                return Ok(Ok((saved, created, Some(body.to_string()))));
            }
            Err(e) if e.class == FailureClass::Permanent => e,
            Err(e) => return Ok(Err(e.into())),
        };
        match self.call(self.target.find(&record.number)).await {
            Ok(None) => {
                record.unsure = None;
                Ok(Err(refusal.into()))
            }
            Ok(Some(bill)) => {
                tracing::info!(
                    scheme = self.scheme.id(),
                    key = doc.key,
                    number = record.number,
                    "the create was refused but the bill exists; updating it"
                );
                record.unsure = None;
                record.target_id = Some(bill.id.clone());
                record.lines = bill.lines.unwrap_or_default();
                self.update(record, doc, bill.id).await
            }
            Err(e) => Ok(Err(unknown(e).into())),
        }
    }

    /// Updates bill `id` to the document, line by line. A refusal leaves the document in conflict
    /// with the target's message; so does a target that keeps lines the update left out.
    async fn update(
        &self,
        record: &mut SyncRecord,
        doc: &Prepared,
        id: String,
    ) -> Result<Written, StoreError> {
        let body = self.stamped(doc, record, "update");
        let bill = Bill {
            id: id.clone(),
            lines: (!record.lines.is_empty()).then(|| record.lines.clone()),
        };
        let addressed = match self.call(self.target.address(&body, &bill)).await {
            Ok(addressed) => addressed,
            Err(e) if e.class == FailureClass::Permanent => {
                return Ok(Err(Stop::Conflict(format!(
                    "the target's bill {id} cannot be read for the update: {e}"
                ))));
            }
            Err(e) => return Ok(Err(e.into())),
        };
        if !self.note(record, &doc.hash, &addressed.wire).await? {
            return Err(lost_claim());
        }
        // Whatever happens now, the lines the record knows may be stale.
        record.lines.clear();
        let saved = match self.call(self.target.send(&addressed.wire)).await {
            Ok(saved) => saved,
            Err(e) if e.class == FailureClass::Permanent => {
                record.unsure = None;
                return Ok(Err(Stop::Conflict(format!(
                    "the target refused to update its bill {id}: {e}"
                ))));
            }
            Err(e) => return Ok(Err(e.into())),
        };
        if !addressed.left_out.is_empty() {
            match self.call(self.target.kept(&id, &addressed.left_out)).await {
                Ok(false) => {}
                Ok(true) => {
                    record.unsure = None;
                    return Ok(Err(Stop::Conflict(format!(
                        "the target kept {} line(s) of bill {id} that the source no longer has \
                         (ids {}): it keeps lines a modify leaves out and offers no way to delete \
                         one; delete them in the target",
                        addressed.left_out.len(),
                        addressed.left_out.join(", ")
                    ))));
                }
                // Not known whether the lines went: the note stays, the next attempt looks again.
                Err(e) => return Ok(Err(unknown(e).into())),
            }
        }
        Ok(Ok((saved, false, Some(addressed.wire.to_string()))))
    }

    /// Settles a noted write: repeats it while its idempotency key still answers with the first
    /// success, else looks the bill up by number (a noted update's bill is known already). A look-up
    /// that fails, even for good, leaves the outcome unknown.
    async fn settle(&self, record: &SyncRecord, note: &Note) -> Result<Settled, CallError> {
        // A margin: near the end of its window a key might be forgotten between our look and its.
        let fresh = self
            .target
            .repeat_window(&note.wire)
            .is_some_and(|window| note.at > 0 && note.age() < window.mul_f64(0.9));
        if fresh {
            return match self.call(self.target.send(&note.wire)).await {
                Ok(saved) => Ok(Settled::Applied(saved)),
                // Only successes are remembered: a refusal now means the first did not land.
                Err(e) if e.class == FailureClass::Permanent => Ok(Settled::Absent),
                Err(e) => Err(e),
            };
        }
        if let Some(id) = &record.target_id {
            return Ok(Settled::Exists(Bill {
                id: id.clone(),
                lines: None,
            }));
        }
        // A note written before notes kept the body reads as no body: the record's number still
        // names the bill that write would have made.
        let mut number = self.target.number(&note.wire);
        if number.is_empty() {
            number.clone_from(&record.number);
        }
        match self.call(self.target.find(&number)).await {
            Ok(Some(bill)) => Ok(Settled::Applied(Saved {
                target_id: bill.id,
                repeat: true,
                lines: bill.lines,
            })),
            Ok(None) => Ok(Settled::Absent),
            Err(e) => Err(unknown(e)),
        }
    }

    /// One target call: in its turn at the pacer, and cut off at the invocation's deadline. A call
    /// whose turn comes too late is not made (nothing was sent); one still running at the deadline
    /// is abandoned, its outcome unknown (the note, if it was a write, settles it next time).
    async fn call<Answer>(
        &self,
        call: impl std::future::Future<Output = Result<Answer, CallError>>,
    ) -> Result<Answer, CallError> {
        let Some(deadline) = self.deadline else {
            self.pace().await;
            return call.await;
        };
        if let Some(pacer) = &self.pacer
            && !pacer.wait_until(deadline.calls_end).await
        {
            return Err(CallError::new(
                FailureClass::Retryable,
                "ferry",
                "pace",
                None,
                "the invocation's deadline comes before this call's turn at the target's rate limit",
            ));
        }
        match tokio::time::timeout_at(deadline.calls_end, call).await {
            Ok(result) => result,
            Err(_) => Err(CallError::new(
                FailureClass::Ambiguous,
                "ferry",
                "call",
                None,
                "cut off by the invocation's deadline; its outcome is unknown",
            )),
        }
    }

    async fn pace(&self) {
        if let Some(pacer) = &self.pacer {
            pacer.wait().await;
        }
    }

    /// Records the outcome of the write; the record is still claimed by us.
    async fn finish(&self, mut record: SyncRecord, outcome: Written) -> Step {
        let key = record.key.clone();
        record.claim_until = None;
        record.updated_at = Timestamp::now();
        let done = match outcome {
            Ok((saved, created, sent)) => {
                record.state = RecordState::Synced;
                record.target_id = Some(saved.target_id.clone());
                record.lines = saved.lines.unwrap_or_default();
                // The body sent goes to the history, not the record.
                record.unsure = None;
                record.last_error = None;
                DocumentOutcome::Pushed {
                    key: key.clone(),
                    target_id: saved.target_id,
                    created,
                    sent,
                }
            }
            Err(Stop::Conflict(reason)) => {
                record.state = RecordState::Conflict;
                record.last_error = Some(reason.clone());
                DocumentOutcome::Conflict {
                    key: key.clone(),
                    reason,
                }
            }
            Err(Stop::Call(e)) => {
                let reason = e.to_string();
                record.last_error = Some(reason.clone());
                match e.class {
                    // Reached only with the outcome known: a refused create that no look-up finds.
                    FailureClass::Permanent => {
                        record.state = RecordState::Failed;
                        record.unsure = None;
                        DocumentOutcome::Failed {
                            key: key.clone(),
                            reason,
                        }
                    }
                    // Not the document's fault: it waits, note and all, for the settings to be fixed.
                    FailureClass::Credentials => {
                        record.state = RecordState::Retrying;
                        DocumentOutcome::Blocked {
                            key: key.clone(),
                            reason,
                        }
                    }
                    FailureClass::Retryable | FailureClass::Ambiguous => {
                        // The note keeps any write that may have landed: the next attempt settles it.
                        record.state = RecordState::Retrying;
                        DocumentOutcome::Retry {
                            key: key.clone(),
                            reason,
                            after: e.retry_after,
                        }
                    }
                }
            }
        };
        match self.records.put(&record).await {
            Ok(true) => Ok(done),
            Ok(false) => {
                // Our claim lapsed and someone took the document over; they settle it from the note.
                tracing::warn!(
                    scheme = self.scheme.id(),
                    key,
                    "claim lost before the outcome was recorded"
                );
                Ok(raced(key))
            }
            Err(e) => Err(e),
        }
    }
}

/// A look-up's failure: whatever its class, it proves nothing about the write it was settling.
fn unknown(mut e: CallError) -> CallError {
    if e.class == FailureClass::Permanent {
        e.class = FailureClass::Ambiguous;
        e.message = format!("could not settle an earlier write: {}", e.message);
    }
    e
}

/// A record write lost to another pusher mid-claim (its claim lapsed): the store's word for "retry".
fn lost_claim() -> StoreError {
    StoreError::new(
        "claim",
        "another pusher took the document over (the claim lapsed)",
    )
}

/// The first refusal of Ferry's credentials among `results`, if any: pushing to that target must
/// stop until a person fixes the connector's settings.
pub fn blocked_by(results: &[MessageResult]) -> Option<&str> {
    results
        .iter()
        .flat_map(|r| &r.documents)
        .find_map(|outcome| match outcome {
            DocumentOutcome::Blocked { reason, .. } => Some(reason.as_str()),
            _ => None,
        })
}

fn raced(key: String) -> DocumentOutcome {
    DocumentOutcome::Retry {
        key,
        reason: "another pusher changed the record first".into(),
        after: None,
    }
}

fn retry_store(key: &str, e: StoreError) -> DocumentOutcome {
    DocumentOutcome::Retry {
        key: key.to_owned(),
        reason: format!("store: {e}"),
        after: None,
    }
}

#[cfg(test)]
#[path = "push_tests.rs"]
mod tests;
#[cfg(test)]
#[path = "verdict_tests.rs"]
mod verdict_tests;
