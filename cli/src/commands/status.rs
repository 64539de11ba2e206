//! `ferry status`: per scheme, the cursor and its lag, records by state, the queue, the dead
//! letters and the latest failures with their reasons.

use std::collections::BTreeMap;
use std::io::Write;

use ferry_common::engine::RecordState;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;

use crate::backend::{BackendArgs, with_backend};
use crate::error::CliError;
use crate::output::{lag, print_json, table, time_text};

/// Options of `ferry status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    backend: BackendArgs,
}

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
pub fn run(args: &Args, out: &mut dyn Write, _err: &mut dyn Write) -> Result<i32, CliError> {
    with_backend(&args.backend, |backend| async move {
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
        if args.backend.json {
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
        writeln!(out, "{t}")?;
        for s in &all {
            if let Some(holder) = &s.lease_holder {
                writeln!(out, "{}: being polled by {holder}", s.scheme)?;
            }
            if s.recent_failures.is_empty() {
                continue;
            }
            writeln!(out, "\n{}: latest failures", s.scheme)?;
            let mut f = table(&["key", "number", "at", "reason"]);
            for failure in &s.recent_failures {
                f.add_row(vec![
                    failure.key.clone(),
                    failure.number.clone(),
                    failure.at.clone(),
                    failure.reason.clone(),
                ]);
            }
            writeln!(out, "{f}")?;
        }
        Ok(0)
    })
}
