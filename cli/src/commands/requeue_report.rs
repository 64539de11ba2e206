//! What `ferry replay` and `ferry resync` report: documents queued, pushed, and left out.

use std::io::Write;

use crate::actions::RequeueReport;
use crate::error::CliError;
use crate::output::print_json;

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
