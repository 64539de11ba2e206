//! Reconciliation (对账): per day of the source's time, the documents the source holds, what the
//! records say of each, and whether the target holds its bill, with every difference listed. One
//! function over a scheme's source, target and store, so it reads the embedded default and a
//! deployment on AWS alike (`ferry reconcile`).

use serde::Serialize;

use crate::Scheme;
use crate::connector::CallError;
use crate::engine::{
    Pacer, PollError, RecordState, RecordStore, SourceApi, StoreError, SyncRecord, TargetApi,
    Window, scan,
};
use crate::error::{Classified, Domain, RetryHint};

/// Why a reconciliation stopped: the source, the store or the target failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Reading a day from the source failed.
    #[error("reconcile {scheme}: {error}")]
    Source {
        /// The scheme.
        scheme: String,
        /// What failed.
        error: PollError,
    },
    /// Reading the records failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Asking the target for a bill failed.
    #[error("look-up of {number} in the target: {error}")]
    Target {
        /// The bill number asked for.
        number: String,
        /// What failed.
        error: CallError,
    },
    /// A source document or a day that cannot be read (a bug, or a date past the calendar).
    #[error("{0}")]
    Unreadable(String),
}

impl Classified for ReconcileError {
    fn domain(&self) -> Domain {
        match self {
            ReconcileError::Source { error, .. } => error.domain(),
            ReconcileError::Store(e) => e.domain(),
            ReconcileError::Target { error, .. } => error.domain(),
            ReconcileError::Unreadable(_) => Domain::Internal,
        }
    }

    fn retry_hint(&self) -> RetryHint {
        match self {
            ReconcileError::Source { error, .. } => error.retry_hint(),
            ReconcileError::Store(e) => e.retry_hint(),
            ReconcileError::Target { error, .. } => error.retry_hint(),
            ReconcileError::Unreadable(_) => RetryHint::Never,
        }
    }
}
use crate::time::{self, from_beijing, to_beijing};

/// What a reconciliation reads for one scheme: where its documents come from, where they go, and
/// the records between them.
pub struct Sides<'a, S, A, T> {
    /// The scheme.
    pub scheme: &'a Scheme,
    /// Its source API.
    pub source: &'a A,
    /// Its target API.
    pub target: &'a T,
    /// Paces the target look-ups as pushes are paced (they share the account's rate limit).
    pub pacer: Option<&'a Pacer>,
    /// The sync records.
    pub store: &'a S,
}

/// One day's figures.
#[derive(Debug, Default, Serialize)]
pub struct Day {
    /// The day, Beijing time.
    pub day: String,
    /// Documents the source holds for the day.
    pub source: u64,
    /// Of those, synced per the records.
    pub synced: u64,
    /// Of those, failed per the records.
    pub failed: u64,
    /// Of those, not synced yet (no record, or in progress, retrying, in conflict).
    pub pending: u64,
    /// Of those, whose bill the target holds.
    pub in_target: u64,
}

/// One document whose source, record and target do not agree.
#[derive(Debug, Serialize)]
pub struct Difference {
    /// The day, Beijing time.
    pub day: String,
    /// The document key.
    pub key: String,
    /// Its target number.
    pub number: String,
    /// What disagrees.
    pub issue: String,
}

/// A reconciliation's result (also its `--json` form).
#[derive(Debug, Serialize)]
pub struct Reconciliation {
    /// The scheme id.
    pub scheme: String,
    /// The range's start, Beijing time.
    pub from: String,
    /// The range's end, Beijing time.
    pub to: String,
    /// Per day.
    pub days: Vec<Day>,
    /// Every document that disagrees.
    pub differences: Vec<Difference>,
}

/// Compares source, records and target over `range`, one Beijing day at a time.
pub async fn compare<S, A, T>(
    sides: Sides<'_, S, A, T>,
    range: Window,
) -> Result<Reconciliation, ReconcileError>
where
    S: RecordStore,
    A: SourceApi,
    T: TargetApi,
{
    let scheme = sides.scheme.id();
    let mut result = Reconciliation {
        scheme: scheme.to_owned(),
        from: time::format_source(time::to_beijing(range.start)),
        to: time::format_source(time::to_beijing(range.end)),
        days: Vec::new(),
        differences: Vec::new(),
    };
    let mut day_start = to_beijing(range.start);
    let last = to_beijing(range.end);
    while day_start <= last {
        let day_end = day_start
            .date()
            .to_datetime(jiff::civil::time(23, 59, 59, 0))
            .min(last);
        let window = Window::new(from_beijing(day_start), from_beijing(day_end))
            .expect("a day's bounds are ordered");
        let documents = scan(sides.scheme, sides.source, window)
            .await
            .map_err(|error| ReconcileError::Source {
                scheme: scheme.to_owned(),
                error,
            })?;
        let mut day = Day {
            day: day_start.date().to_string(),
            ..Day::default()
        };
        for raw in &documents {
            day.source += 1;
            check_document(&sides, raw, &mut day, &mut result.differences).await?;
        }
        result.days.push(day);
        day_start = day_start
            .date()
            .tomorrow()
            .map_err(|e| ReconcileError::Unreadable(e.to_string()))?
            .to_datetime(jiff::civil::Time::midnight());
    }
    Ok(result)
}

/// Counts one source document into `day` and lists what disagrees about it.
async fn check_document<S, A, T>(
    sides: &Sides<'_, S, A, T>,
    raw: &serde_json::Value,
    day: &mut Day,
    differences: &mut Vec<Difference>,
) -> Result<(), ReconcileError>
where
    S: RecordStore,
    T: TargetApi,
{
    let mapper = &sides.scheme.mapper;
    let parsed = mapper.parse(&raw.to_string());
    let Some(key) = parsed.as_ref().ok().and_then(|d| mapper.document_key(d)) else {
        differences.push(Difference {
            day: day.day.clone(),
            key: "-".into(),
            number: String::new(),
            issue: format!("a source document has no {}", mapper.key_field()),
        });
        return Ok(());
    };
    let doc = parsed.map_err(|e| {
        ReconcileError::Unreadable(format!("a source document of {}: {e}", day.day))
    })?;
    let version = mapper.document_version(&doc).unwrap_or_default();
    let record = sides.store.record(sides.scheme.id(), &key).await?;
    let body = mapper.map(&doc).ok();
    let number = body
        .as_ref()
        .map(|b| sides.target.number(b))
        .or_else(|| record.as_ref().map(|r| r.number.clone()))
        .unwrap_or_default();
    // The target is asked by number (Kingdee's detail, Yonyou's list by code); a document that
    // cannot be mapped has no number to ask by, so its record's bill stands in.
    let found = if number.is_empty() {
        record
            .as_ref()
            .filter(|r| r.state == RecordState::Synced)
            .and_then(|r| r.target_id.clone())
    } else {
        if let Some(pacer) = sides.pacer {
            pacer.wait().await;
        }
        sides
            .target
            .find(&number)
            .await
            .map_err(|error| ReconcileError::Target {
                number: number.clone(),
                error,
            })?
            .map(|bill| bill.id)
    };
    if found.is_some() {
        day.in_target += 1;
    }
    let mut issue = |text: String| {
        differences.push(Difference {
            day: day.day.clone(),
            key: key.clone(),
            number: number.clone(),
            issue: text,
        })
    };
    match &record {
        None => {
            day.pending += 1;
            issue("never fetched by Ferry (no record)".into());
        }
        Some(r) if r.state == RecordState::Synced => {
            day.synced += 1;
            for text in synced_issues(r, found.as_deref(), &version) {
                issue(text);
            }
        }
        Some(r) if r.state == RecordState::Failed => {
            day.failed += 1;
            issue(format!(
                "failed: {}",
                r.last_error.as_deref().unwrap_or("-")
            ));
        }
        Some(r) => {
            day.pending += 1;
            issue(format!("not synced yet ({})", r.state.as_str()));
        }
    }
    if found.is_some()
        && record
            .as_ref()
            .is_none_or(|r| r.state != RecordState::Synced)
    {
        issue("the target holds a bill the records do not know as synced".into());
    }
    Ok(())
}

/// What disagrees about a document its record calls synced: the target's bill and the source's
/// version.
fn synced_issues(record: &SyncRecord, found: Option<&str>, version: &str) -> Vec<String> {
    let mut issues = Vec::new();
    let recorded = record.target_id.as_deref();
    match found {
        None => issues.push(format!(
            "record says synced as {}, but the target has no such bill",
            recorded.unwrap_or("-")
        )),
        Some(bill) if Some(bill) != recorded => issues.push(format!(
            "record names bill {}, the target's bill is {bill}",
            recorded.unwrap_or("-")
        )),
        Some(_) => {}
    }
    if record.version.as_str() < version {
        issues.push(format!(
            "changed in the source after sync ({} → {version})",
            record.version
        ));
    }
    issues
}
