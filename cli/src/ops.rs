//! The operator's commands `status`, `record`, `replay` and `resync` — over the embedded store of a
//! `ferry run` configuration or a deployment on AWS (`backend.rs` hides which) — and the helpers
//! they share with `reconcile`. Each prints a table for people or, with `--json`, one JSON document
//! for scripts.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use ferry_common::engine::{RecordState, SyncRecord, Window};
use ferry_common::time::{format_source, to_beijing};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};

use crate::backend::{Backend, Requeue};
use crate::runtime::Tally;
use crate::table;

/// How long a command waits for the queue to drain after queueing work.
pub(crate) const PATIENCE: Duration = Duration::from_secs(600);

/// The configuration and output options every operator command takes.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// The `ferry run` configuration whose store, schemes and connectors to use.
    #[arg(long, short = 'c', default_value = "ferry.yaml")]
    pub(crate) config: PathBuf,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `ferry status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    common: Common,
}

/// `ferry record`.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    #[command(flatten)]
    common: Common,
    /// The scheme id.
    scheme: String,
    /// The document: its key (`trade_id`, `stockout_id`) or its number (`trade_no`, `order_no`...).
    key: String,
}

/// `ferry replay`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["failed", "dead_letters", "keys"])))]
pub struct ReplayArgs {
    #[command(flatten)]
    common: Common,
    /// The scheme id.
    scheme: String,
    /// Every document whose record is failed: fetched again from the source and pushed.
    #[arg(long)]
    failed: bool,
    /// Every message in the dead-letter queue: put back on the queue and pushed.
    #[arg(long)]
    dead_letters: bool,
    /// These documents (keys or numbers): fetched again and pushed.
    keys: Vec<String>,
}

/// `ferry resync`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["from", "keys"])))]
pub struct ResyncArgs {
    #[command(flatten)]
    common: Common,
    /// The scheme id.
    scheme: String,
    /// Window start, Beijing time (`2026-11-01 00:00:00`, or a date for its first second).
    #[arg(long, requires = "to", conflicts_with = "keys")]
    from: Option<String>,
    /// Window end, Beijing time (a date means its last second).
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// Documents by look-up value (`trade_no`, `src_tid`, `src_order_no`...).
    #[arg(long, num_args = 1..)]
    keys: Vec<String>,
}

pub(crate) fn io(e: std::io::Error) -> String {
    e.to_string()
}

pub(crate) fn time_text(t: Timestamp) -> String {
    format_source(to_beijing(t))
}

pub(crate) fn print_json(out: &mut dyn Write, value: &impl Serialize) -> Result<(), String> {
    writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(value).expect("serialisable")
    )
    .map_err(io)
}

/// Loads the configuration (embedded store or AWS deployment) and runs `f` on it.
pub(crate) fn with_backend<F, Fut>(common: &Common, f: F) -> Result<i32, String>
where
    F: FnOnce(Backend) -> Fut,
    Fut: std::future::Future<Output = Result<i32, String>>,
{
    let backend = Backend::load(&common.config)?;
    crate::async_runtime()?.block_on(f(backend))
}

pub(crate) fn window(from: &str, to: &str) -> Result<Window, String> {
    Window::parse_range(from, to, ("--from", "--to"))
}

// ---------------------------------------------------------------------------------------------
// status

#[derive(Debug, Serialize)]
struct Failure {
    key: String,
    number: String,
    at: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct SchemeStatus {
    scheme: String,
    /// The version of the scheme's files it runs.
    files: String,
    cursor: Option<String>,
    lag_seconds: Option<i64>,
    lease_holder: Option<String>,
    records: BTreeMap<&'static str, u64>,
    queued: u64,
    dead_letters: u64,
    recent_failures: Vec<Failure>,
}

/// `ferry status`: per scheme, the cursor and its lag, records by state, the queue, the dead
/// letters and the latest failures with their reasons.
pub fn status(args: &StatusArgs, out: &mut dyn Write) -> Result<i32, String> {
    with_backend(&args.common, |backend| async move {
        let now = Timestamp::now();
        let mut all = Vec::new();
        let files = backend.files().await?;
        let known = backend.scheme_ids();
        for (id, version) in &files {
            if !known.contains(id) {
                // Run by the deployment's functions, absent from the operator's folder.
                all.push(SchemeStatus {
                    scheme: id.clone(),
                    files: version.clone(),
                    cursor: None,
                    lag_seconds: None,
                    lease_holder: None,
                    records: RecordState::ALL.iter().map(|s| (s.as_str(), 0)).collect(),
                    queued: 0,
                    dead_letters: 0,
                    recent_failures: Vec::new(),
                });
            }
        }
        for id in known {
            let id = id.as_str();
            let version = files
                .iter()
                .find(|(f, _)| f == id)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let cursor = backend.cursor(id).await?;
            let counts = backend.counts(id).await?;
            let mut records: BTreeMap<&'static str, u64> =
                RecordState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
            for (state, n) in counts {
                records.insert(state.as_str(), n);
            }
            let failures = backend.recent(id, RecordState::Failed, 5).await?;
            let (queued, dead_letters) = backend.queue_figures(id).await?;
            let lease_holder = cursor
                .holder
                .clone()
                .filter(|_| cursor.lease_until.is_some_and(|t| t > now));
            all.push(SchemeStatus {
                scheme: id.to_owned(),
                files: version,
                cursor: cursor.position.map(time_text),
                lag_seconds: cursor.position.map(|p| (now - p).get_seconds()),
                lease_holder,
                records,
                queued,
                dead_letters,
                recent_failures: failures
                    .into_iter()
                    .map(|r| Failure {
                        at: time_text(r.updated_at),
                        reason: r.last_error.unwrap_or_default(),
                        key: r.key,
                        number: r.number,
                    })
                    .collect(),
            });
        }
        if args.common.json {
            print_json(out, &json!({ "schemes": all }))?;
            return Ok(0);
        }
        let mut t = table(&[
            "scheme",
            "files",
            "cursor (Beijing)",
            "lag",
            "synced",
            "in progress",
            "retrying",
            "failed",
            "conflict",
            "queued",
            "dead letters",
        ]);
        for s in &all {
            t.add_row(vec![
                s.scheme.clone(),
                s.files.clone(),
                s.cursor.clone().unwrap_or_else(|| "never polled".into()),
                s.lag_seconds.map(lag).unwrap_or_else(|| "-".into()),
                s.records["synced"].to_string(),
                s.records["in_progress"].to_string(),
                s.records["retrying"].to_string(),
                s.records["failed"].to_string(),
                s.records["conflict"].to_string(),
                s.queued.to_string(),
                s.dead_letters.to_string(),
            ]);
        }
        writeln!(out, "{t}").map_err(io)?;
        for s in &all {
            if let Some(holder) = &s.lease_holder {
                writeln!(out, "{}: being polled by {holder}", s.scheme).map_err(io)?;
            }
            if s.recent_failures.is_empty() {
                continue;
            }
            writeln!(out, "\n{}: latest failures", s.scheme).map_err(io)?;
            let mut f = table(&["key", "number", "at", "reason"]);
            for failure in &s.recent_failures {
                f.add_row(vec![
                    failure.key.clone(),
                    failure.number.clone(),
                    failure.at.clone(),
                    failure.reason.clone(),
                ]);
            }
            writeln!(out, "{f}").map_err(io)?;
        }
        Ok(0)
    })
}

fn lag(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7_200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h {}m", s / 3_600, s % 3_600 / 60),
        s => format!("{}d", s / 86_400),
    }
}

// ---------------------------------------------------------------------------------------------
// record

/// The record of `key` in `scheme`: by document key first, then by number or look-up value.
async fn find_record(
    engine: &Backend,
    scheme: &str,
    key: &str,
) -> Result<Option<SyncRecord>, String> {
    if let Some(record) = engine.record(scheme, key).await? {
        return Ok(Some(record));
    }
    let mut found = engine.find_by_number(scheme, key).await?;
    Ok(match found.len() {
        0 => None,
        1 => found.pop(),
        _ => {
            let keys: Vec<&str> = found.iter().map(|r| r.key.as_str()).collect();
            return Err(format!(
                "'{key}' names {} documents of {scheme} ({}); give one of their keys",
                found.len(),
                keys.join(", ")
            ));
        }
    })
}

/// `ferry record SCHEME KEY`: one document's record and full history.
pub fn record(args: &RecordArgs, out: &mut dyn Write) -> Result<i32, String> {
    with_backend(&args.common, |engine| async move {
        let scheme = engine.scheme(&args.scheme)?;
        let scheme = scheme.as_str();
        let Some(record) = find_record(&engine, scheme, &args.key).await? else {
            return Err(format!(
                "{scheme} has no record of '{}': it was never fetched (is it in a window polled yet? \
                 `ferry resync {scheme} --keys {}` fetches it now)",
                args.key, args.key
            ));
        };
        let history = engine.history(scheme, &record.key, 1_000).await?;
        if args.common.json {
            let mut shown = serde_json::to_value(&record).expect("serialisable");
            if let Some(map) = shown.as_object_mut() {
                // The write-ahead body is internal bookkeeping; say only whether one is pending.
                map.insert("unsure".into(), Value::Bool(record.unsure.is_some()));
            }
            print_json(out, &json!({ "record": shown, "history": history }))?;
            return Ok(0);
        }
        let mut t = table(&["", ""]);
        let rows = [
            ("scheme", record.scheme.clone()),
            ("key", record.key.clone()),
            ("state", record.state.as_str().to_owned()),
            ("target number", record.number.clone()),
            (
                "target id",
                record.target_id.clone().unwrap_or_else(|| "-".into()),
            ),
            ("source version", record.version.clone()),
            ("push attempts", record.attempts.to_string()),
            (
                "last error",
                record.last_error.clone().unwrap_or_else(|| "-".into()),
            ),
            (
                "unsettled write",
                if record.unsure.is_some() {
                    "yes: the next attempt checks the target first"
                } else {
                    "no"
                }
                .into(),
            ),
            ("first seen", time_text(record.created_at)),
            ("last change", time_text(record.updated_at)),
        ];
        for (name, value) in rows {
            t.add_row(vec![name.to_owned(), value]);
        }
        writeln!(out, "{t}\n\nHistory").map_err(io)?;
        let mut h = table(&["at (Beijing)", "what", "detail", "target id"]);
        for event in &history {
            h.add_row(vec![
                time_text(event.at),
                event.what.clone(),
                event.detail.clone(),
                event.target_id.clone().unwrap_or_default(),
            ]);
        }
        writeln!(out, "{h}").map_err(io)?;
        Ok(0)
    })
}

// ---------------------------------------------------------------------------------------------
// replay and resync

#[derive(Debug, Serialize)]
struct Requeued {
    scheme: String,
    /// Documents fetched and queued (or dead letters put back).
    queued: u64,
    /// Values the source had no document for.
    not_found: Vec<String>,
    /// Records that cannot be fetched again (no look-up value known).
    not_fetchable: Vec<String>,
    /// The poll's report.
    poll: Option<Value>,
    /// Whether this process pushed what was queued (the embedded default) or left it to the push
    /// function (AWS).
    pushed_here: bool,
    push: Tally,
}

impl Requeued {
    fn new(scheme: &str) -> Requeued {
        Requeued {
            scheme: scheme.to_owned(),
            queued: 0,
            not_found: Vec::new(),
            not_fetchable: Vec::new(),
            poll: None,
            pushed_here: true,
            push: Tally::default(),
        }
    }

    fn record(&mut self, done: crate::backend::Requeued) {
        self.queued = done.documents;
        self.not_found = done.not_found;
        self.poll = Some(done.report);
    }
}

fn print_requeued(result: &Requeued, json: bool, out: &mut dyn Write) -> Result<(), String> {
    if json {
        return print_json(out, result);
    }
    let p = &result.push;
    if !result.pushed_here {
        writeln!(
            out,
            "{}: {} queued; the push function delivers them (follow with `ferry status`)",
            result.scheme, result.queued
        )
        .map_err(io)?;
    } else {
        writeln!(
            out,
            "{}: {} queued; pushed {} ({} new, {} updated), {} unchanged, {} failed, {} retried",
            result.scheme,
            result.queued,
            p.pushed(),
            p.created,
            p.updated,
            p.unchanged + p.superseded,
            p.failed,
            p.retried
        )
        .map_err(io)?;
    }
    for value in &result.not_found {
        writeln!(out, "  not in the source: {value}").map_err(io)?;
    }
    for key in &result.not_fetchable {
        writeln!(
            out,
            "  {key}: no look-up value recorded; re-sync its window instead"
        )
        .map_err(io)?;
    }
    for (key, reason) in &p.failures {
        writeln!(out, "  failed {key}: {reason}").map_err(io)?;
    }
    Ok(())
}

/// `ferry replay SCHEME (--failed | --dead-letters | KEY...)`: push again, through the same claims
/// and settling as any push, so a replay never creates a second bill.
pub fn replay(args: &ReplayArgs, out: &mut dyn Write) -> Result<i32, String> {
    with_backend(&args.common, |engine| async move {
        let scheme = engine.scheme(&args.scheme)?;
        let scheme = scheme.as_str();
        let mut result = Requeued::new(scheme);
        if args.dead_letters {
            result.queued = engine.redrive(scheme).await?;
        } else {
            let mut values = Vec::new();
            if args.failed {
                for record in engine
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
            for key in &args.keys {
                match find_record(&engine, scheme, key).await? {
                    Some(record) if !record.lookup.is_empty() => values.push(record.lookup),
                    // Unknown to the store: the value itself may be a look-up value.
                    _ => values.push(key.clone()),
                }
            }
            values.sort();
            values.dedup();
            if !values.is_empty() {
                let done = engine
                    .requeue(
                        scheme,
                        Requeue::Keys {
                            keys: values,
                            replay: true,
                        },
                    )
                    .await
                    .map_err(|e| format!("replay {scheme}: {e}"))?;
                result.record(done);
            }
        }
        result.pushed_here = engine.drain(scheme, &mut result.push).await?;
        print_requeued(&result, args.common.json, out)?;
        Ok(0)
    })
}

/// `ferry resync SCHEME --from T --to T | --keys K...`: the on-demand re-sync; the cursor stays.
/// On AWS it invokes the poll function's on-demand path; the push function does the rest.
pub fn resync(args: &ResyncArgs, out: &mut dyn Write) -> Result<i32, String> {
    // The window is checked before anything is opened: a bad request changes nothing.
    let what = match (&args.from, &args.to) {
        (Some(from), Some(to)) => Requeue::Window(window(from, to)?),
        _ => Requeue::Keys {
            keys: args.keys.clone(),
            replay: false,
        },
    };
    with_backend(&args.common, |engine| async move {
        let scheme = engine.scheme(&args.scheme)?;
        let mut result = Requeued::new(&scheme);
        result.record(engine.requeue(&scheme, what).await?);
        result.pushed_here = engine.drain(&scheme, &mut result.push).await?;
        print_requeued(&result, args.common.json, out)?;
        Ok(0)
    })
}
