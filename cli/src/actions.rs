//! The operator's actions, shared by the commands and the console (over `backend`): replay failed or chosen
//! documents, redrive dead letters, resync a window or keys; each pushed through the same claims
//! and settling as any push, so none creates a second bill. And the audit log they leave.

use ferry_common::embedded::Tally;
use ferry_common::engine::{Event, RecordState, Window};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::backend::{Backend, Refetched, Requeue};
use crate::error::CliError;

/// The document key the audit events of a scheme are kept under (no document has it).
pub const AUDIT_KEY: &str = "@audit";

/// What `ferry replay` and `ferry resync` did (also their `--json` form).
#[derive(Debug, Serialize)]
pub struct RequeueReport {
    /// The scheme id.
    pub scheme: String,
    /// Documents fetched and queued (or dead letters put back).
    pub queued: u64,
    /// Values the source had no document for.
    pub not_found: Vec<String>,
    /// Records that cannot be fetched again (no look-up value known).
    pub not_fetchable: Vec<String>,
    /// The poll's report.
    pub poll: Option<Value>,
    /// Whether this process pushed what was queued (the embedded default) or left it to the push
    /// function (AWS).
    pub pushed_here: bool,
    /// What pushing it did, when pushed here.
    pub push: Tally,
}

impl RequeueReport {
    /// A report of nothing done yet.
    pub fn new(scheme: &str) -> RequeueReport {
        RequeueReport {
            scheme: scheme.to_owned(),
            queued: 0,
            not_found: Vec::new(),
            not_fetchable: Vec::new(),
            poll: None,
            pushed_here: true,
            push: Tally::default(),
        }
    }

    /// Takes in what a re-fetch did.
    pub fn record(&mut self, done: Refetched) {
        self.queued = done.documents;
        self.not_found = done.not_found;
        self.poll = Some(done.report);
    }
}

/// What to push again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Replay {
    /// Every document whose record is failed.
    Failed,
    /// Every message of the dead-letter queue.
    DeadLetters,
    /// These documents, by key, number or look-up value.
    Keys(Vec<String>),
}

/// The actions, as calls on a backend.
pub trait Actions {
    /// Pushes again what `what` names, and waits for it where this process is the pusher.
    fn replay(
        &self,
        scheme: &str,
        what: &Replay,
    ) -> impl std::future::Future<Output = Result<RequeueReport, CliError>> + Send;
    /// Fetches a window or documents again and pushes them; the cursor stays.
    fn resync(
        &self,
        scheme: &str,
        what: Requeue,
    ) -> impl std::future::Future<Output = Result<RequeueReport, CliError>> + Send;
    /// Records that `who` did `what` to `scheme`, in the scheme's audit log.
    fn audit(
        &self,
        scheme: &str,
        who: &str,
        what: &str,
    ) -> impl std::future::Future<Output = Result<(), CliError>> + Send;
    /// The latest `limit` entries of the scheme's audit log, oldest first.
    fn audit_log(
        &self,
        scheme: &str,
        limit: usize,
    ) -> impl std::future::Future<Output = Result<Vec<Event>, CliError>> + Send;
}

impl Actions for Backend {
    /// Pushes again what `what` names, and waits for it where this process is the pusher.
    async fn replay(&self, scheme: &str, what: &Replay) -> Result<RequeueReport, CliError> {
        let mut result = RequeueReport::new(scheme);
        if *what == Replay::DeadLetters {
            result.queued = self.redrive(scheme).await?;
        } else {
            let mut values = Vec::new();
            if *what == Replay::Failed {
                for record in self
                    .list(scheme, Some(RecordState::Failed), usize::MAX)
                    .await?
                {
                    if record.lookup.is_empty() {
                        result.not_fetchable.push(record.key);
                    } else {
                        values.push(record.lookup);
                    }
                }
            }
            if let Replay::Keys(keys) = what {
                for key in keys {
                    match self.find_record(scheme, key).await? {
                        Some(record) if !record.lookup.is_empty() => values.push(record.lookup),
                        // Unknown to the store: the value itself may be a look-up value.
                        _ => values.push(key.clone()),
                    }
                }
            }
            values.sort();
            values.dedup();
            if !values.is_empty() {
                let done = self
                    .requeue(
                        scheme,
                        Requeue::Keys {
                            keys: values,
                            replay: true,
                        },
                    )
                    .await
                    .map_err(|e| e.with_context(&format!("replay {scheme}")))?;
                result.record(done);
            }
        }
        result.pushed_here = self.drain(scheme, &mut result.push).await?;
        Ok(result)
    }

    /// Fetches a window or documents again and pushes them; the cursor stays.
    async fn resync(&self, scheme: &str, what: Requeue) -> Result<RequeueReport, CliError> {
        let mut result = RequeueReport::new(scheme);
        result.record(self.requeue(scheme, what).await?);
        result.pushed_here = self.drain(scheme, &mut result.push).await?;
        Ok(result)
    }

    /// Records that `who` did `what` to `scheme`, in the scheme's audit log.
    async fn audit(&self, scheme: &str, who: &str, what: &str) -> Result<(), CliError> {
        let event = Event {
            scheme: scheme.to_owned(),
            key: AUDIT_KEY.to_owned(),
            at: Timestamp::now(),
            what: "action".into(),
            detail: format!("{who}: {what}"),
            target_id: None,
            body: None,
        };
        self.append(vec![event]).await
    }

    /// The latest `limit` entries of the scheme's audit log, oldest first.
    async fn audit_log(&self, scheme: &str, limit: usize) -> Result<Vec<Event>, CliError> {
        self.history(scheme, AUDIT_KEY, limit).await
    }
}

/// The range of `from`..`to` (Beijing time, dates or times) as a window, or what is wrong.
pub fn window(from: &str, to: &str) -> Result<Window, CliError> {
    Window::parse_range(from, to, ("from", "to")).map_err(CliError::user)
}

/// Who the audit log names for an action from this process: `$USER`, or `ferry`.
pub fn operator() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "ferry".into())
}

/// How an action ended, for its audit entry.
pub fn outcome(result: &Result<RequeueReport, CliError>) -> String {
    match result {
        Ok(report) => format!(
            "完成：入队 {}，推送 {}，失败 {}",
            report.queued,
            report.push.created + report.push.updated,
            report.push.failed
        ),
        Err(e) => format!("失败：{e}"),
    }
}
