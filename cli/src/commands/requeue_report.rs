//! What `ferry replay` and `ferry resync` report: documents queued, pushed, and left out.

use std::io::Write;

use ferry_common::embedded::Tally;
use serde::Serialize;
use serde_json::Value;

use crate::backend::Refetched;
use crate::error::CliError;
use crate::output::print_json;

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

/// Prints the report: a line per scheme and one per document left out, or JSON.
pub fn print(result: &RequeueReport, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    if json {
        return print_json(out, result);
    }
    let p = &result.push;
    if !result.pushed_here {
        writeln!(
            out,
            "{}: {} queued; the push function delivers them (follow with `ferry status`)",
            result.scheme, result.queued
        )?;
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
        )?;
    }
    for value in &result.not_found {
        writeln!(out, "  not in the source: {value}")?;
    }
    for key in &result.not_fetchable {
        writeln!(
            out,
            "  {key}: no look-up value recorded; re-sync its window instead"
        )?;
    }
    for (key, reason) in &p.failures {
        writeln!(out, "  failed {key}: {reason}")?;
    }
    Ok(())
}
