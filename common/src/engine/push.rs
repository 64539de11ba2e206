//! One push batch: map each document, compare it with its sync record, claim it, write it to the
//! target exactly once, and record the outcome. Retryable failures fail only their own message.
//!
//! Exactly once rests on three rules:
//! - a document is claimed (compare-and-swap on its record) before any write, so two pushers never
//!   write it at once, and a crashed pusher's claim lapses;
//! - before creating a bill, the claim records the exact body about to be sent (`unsure`); whoever
//!   finds that mark later (after a lost answer or a crash) first settles whether the bill exists:
//!   Yonyou by repeating the keyed save (`resubmitCheckKey` answers with the first save), Kingdee by
//!   looking the bill up by `billno`;
//! - a bill known to the record is updated by its id, never created again.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::endpoints::TargetApi;
use super::message::PageMessage;
use super::pace::Pacer;
use super::ports::{Delivery, Event, HistoryLog, RecordStore, StoreError};
use super::record::{RecordState, SyncRecord, Verdict, verdict};
use crate::Scheme;
use crate::connector::{CallError, FailureClass, Saved};
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
}

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
    /// Changed after sync under the `conflict` policy; recorded for a person.
    Conflict {
        /// The document key.
        key: String,
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
    /// `None`: done, delete it. `Some(delay)`: leave it to be redelivered after `delay`.
    pub retry: Option<Duration>,
    /// Per document.
    pub documents: Vec<DocumentOutcome>,
}

/// The mapped document and what identifies it.
struct Prepared {
    key: String,
    version: String,
    lookup: String,
    body: Value,
    text: String,
    hash: String,
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
        DocumentOutcome::Conflict { .. } => (
            "conflict",
            "changed after sync; the scheme's policy is conflict".into(),
            None,
        ),
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
            | DocumentOutcome::Conflict { key }
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
    /// what became of each to its history.
    pub async fn push_batch(&self, deliveries: &[Delivery]) -> Vec<MessageResult> {
        let mut results: Vec<MessageResult> = Vec::with_capacity(deliveries.len());
        let mut origins: Vec<Option<Origin>> = Vec::with_capacity(deliveries.len());
        let mut work = Vec::new();
        for (index, delivery) in deliveries.iter().enumerate() {
            let mut result = MessageResult {
                id: delivery.id.clone(),
                receipt: delivery.receipt.clone(),
                retry: None,
                documents: Vec::new(),
            };
            let mut origin = None;
            match serde_json::from_str::<PageMessage>(&delivery.body) {
                Ok(message) if message.scheme == self.scheme.id() => {
                    origin = Some(Origin::of(&message, delivery));
                    work.extend(message.documents.into_iter().map(|doc| (index, doc)));
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
        let origins = &origins;
        let mut outcomes = futures_util::stream::iter(work)
            .map(|(index, doc)| async move {
                let replay = origins[index].as_ref().is_some_and(|o| o.replay);
                (index, self.push_document(&doc, replay).await)
            })
            .buffer_unordered(concurrency);
        let mut events = Vec::new();
        while let Some((index, outcome)) = outcomes.next().await {
            let result = &mut results[index];
            if let DocumentOutcome::Retry { after, .. } = &outcome {
                let delay = after.unwrap_or_default();
                result.retry = Some(result.retry.map_or(delay, |d| d.max(delay)));
            }
            if let Some(origin) = &origins[index] {
                self.history_of(&outcome, origin, &mut events);
            }
            result.documents.push(outcome);
        }
        drop(outcomes);
        if let Err(e) = self.records.append(events).await {
            // The records hold the truth; a lost history entry is logged, not worth a redelivery.
            tracing::warn!(scheme = self.scheme.id(), error = %e, "history not written");
        }
        results
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
        let text = serde_json::to_string(&body).expect("a JSON value serialises");
        Ok(Prepared {
            hash: content_hash(&text),
            key,
            version,
            lookup,
            body,
            text,
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
        let key = key.unwrap_or_else(|| format!("unkeyed:{}", &hash[7..]));
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
                Verdict::FailedBefore | Verdict::Superseded => {
                    return DocumentOutcome::Failed { key, reason };
                }
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
                return Ok(if record.state == RecordState::Conflict {
                    DocumentOutcome::Conflict { key }
                } else {
                    DocumentOutcome::Failed {
                        key,
                        reason: record.last_error.unwrap_or_default(),
                    }
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
            record.state = RecordState::Conflict;
            record.last_error = Some(format!(
                "conflict: the source changed after sync (version {} → {}); policy is conflict",
                record.version, doc.version
            ));
            record.hash = doc.hash.clone();
            record.version = doc.version.clone();
            record.updated_at = now;
            return Ok(if self.records.put(&record).await? {
                DocumentOutcome::Conflict { key }
            } else {
                raced(key)
            });
        }
        // Claim, writing down the create we are about to attempt unless an earlier one is unsettled.
        let pending = record.unsure.is_some();
        record.state = RecordState::InProgress;
        record.claim_until = Some(now + self.claim_ttl);
        record.attempts += 1;
        record.hash = doc.hash.clone();
        record.version = doc.version.clone();
        record.number = self.target.number(&doc.body);
        record.lookup = doc.lookup.clone();
        record.updated_at = now;
        if !pending && record.target_id.is_none() {
            record.unsure = Some(doc.text.clone());
        }
        if !self.records.put(&record).await? {
            return Ok(raced(key));
        }
        record.revision += 1;
        let mut existing = record.target_id.clone();
        if pending {
            match self.settle(&record).await {
                Ok(Some(id)) => {
                    let same = record.unsure.as_deref() == Some(doc.text.as_str());
                    record.unsure = None;
                    record.target_id = Some(id.clone());
                    if same {
                        // The lost write was this very content: nothing more to send.
                        return self
                            .finish(
                                record,
                                Ok((
                                    Saved {
                                        target_id: id,
                                        repeat: true,
                                    },
                                    false,
                                )),
                            )
                            .await;
                    }
                    existing = Some(id);
                }
                Ok(None) => {
                    record.unsure = None;
                    if existing.is_none() {
                        // Nothing landed: this attempt's create becomes the unsettled one.
                        record.unsure = Some(doc.text.clone());
                        if !self.records.put(&record).await? {
                            return Ok(raced(key));
                        }
                        record.revision += 1;
                    }
                }
                Err(e) => return self.finish(record, Err(e)).await,
            }
        }
        let outcome = self.write(&doc.body, existing.as_deref()).await;
        self.finish(record, outcome).await
    }

    /// Settles an unsure create: the bill's id if it landed, `None` if it did not.
    async fn settle(&self, record: &SyncRecord) -> Result<Option<String>, CallError> {
        let sent: Value = record
            .unsure
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        self.pace().await;
        if self.target.idempotent(&sent) {
            // Repeating the keyed save answers with the first save's id, or makes it now.
            match self.target.save(&sent, None).await {
                Ok(saved) => Ok(Some(saved.target_id)),
                Err(e) if e.class == FailureClass::Permanent => Ok(None),
                Err(e) => Err(e),
            }
        } else {
            self.target.find(&sent).await
        }
    }

    async fn pace(&self) {
        if let Some(pacer) = &self.pacer {
            pacer.wait().await;
        }
    }

    /// Saves the body (an update when `existing`), and when the target says the bill number exists
    /// already, finds that bill and updates it. `Ok((saved, created))`.
    async fn write(
        &self,
        body: &Value,
        existing: Option<&str>,
    ) -> Result<(Saved, bool), CallError> {
        self.pace().await;
        match self.target.save(body, existing).await {
            Ok(saved) => Ok((saved.clone(), existing.is_none() && !saved.repeat)),
            Err(e) if existing.is_none() && self.target.is_duplicate(&e) => {
                self.pace().await;
                let Some(id) = self.target.find(body).await? else {
                    return Err(e);
                };
                self.pace().await;
                self.target.save(body, Some(&id)).await.map(|s| (s, false))
            }
            Err(e) => Err(e),
        }
    }

    /// Records the outcome of the write; the record is still claimed by us.
    async fn finish(
        &self,
        mut record: SyncRecord,
        outcome: Result<(Saved, bool), CallError>,
    ) -> Step {
        let key = record.key.clone();
        record.claim_until = None;
        record.updated_at = Timestamp::now();
        let done = match outcome {
            Ok((saved, created)) => {
                record.state = RecordState::Synced;
                record.target_id = Some(saved.target_id.clone());
                record.unsure = None;
                record.last_error = None;
                DocumentOutcome::Pushed {
                    key: key.clone(),
                    target_id: saved.target_id,
                    created,
                }
            }
            Err(e) => {
                let reason = e.to_string();
                record.last_error = Some(reason.clone());
                match e.class {
                    FailureClass::Permanent => {
                        record.state = RecordState::Failed;
                        record.unsure = None;
                        DocumentOutcome::Failed {
                            key: key.clone(),
                            reason,
                        }
                    }
                    FailureClass::Retryable | FailureClass::Ambiguous => {
                        // `unsure` keeps any create that may have landed (a gateway error can hide
                        // an applied save too): the next attempt settles it first. An update by id
                        // is safe to repeat as it is.
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
                // Our claim lapsed and someone took the document over; they settle it from the mark.
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
