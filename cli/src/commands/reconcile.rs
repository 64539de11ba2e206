//! `ferry reconcile SCHEME --from --to` (对账): per day, the documents the source holds, what the
//! records say of each and whether the target holds its bill, with every difference listed.

use std::io::Write;

use ferry_common::engine::Window;
use ferry_common::reconcile::{Day, Reconciliation};

use crate::backend::{BackendArgs, with_backend};
use crate::error::{Blame, CliError};
use crate::output::{print_json, table};

/// Options of `ferry reconcile`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    backend: BackendArgs,
    /// The scheme id.
    scheme: String,
    /// First day (or time), Beijing time.
    #[arg(long)]
    from: String,
    /// Last day (or time), Beijing time.
    #[arg(long)]
    to: String,
}

/// `ferry reconcile SCHEME --from --to`.
pub fn run(args: &Args, out: &mut dyn Write, _err: &mut dyn Write) -> Result<i32, CliError> {
    let range = Window::parse_range(&args.from, &args.to, ("--from", "--to")).user()?;
    with_backend(&args.backend, |backend| async move {
        let scheme = backend.scheme(&args.scheme)?;
        let result = backend.reconcile(&scheme, range).await?;
        if args.backend.json {
            print_json(out, &result)?;
        } else {
            print_tables(&result, out)?;
        }
        Ok(0)
    })
}

fn print_tables(result: &Reconciliation, out: &mut dyn Write) -> Result<(), CliError> {
    let in_target = "in target";
    let mut t = table(&["day", "source", "synced", "failed", "pending", in_target]);
    let mut total = Day {
        day: "total".into(),
        ..Day::default()
    };
    for d in &result.days {
        total.source += d.source;
        total.synced += d.synced;
        total.failed += d.failed;
        total.pending += d.pending;
        total.in_target += d.in_target;
    }
    for d in result.days.iter().chain(std::iter::once(&total)) {
        t.add_row(vec![
            d.day.clone(),
            d.source.to_string(),
            d.synced.to_string(),
            d.failed.to_string(),
            d.pending.to_string(),
            d.in_target.to_string(),
        ]);
    }
    writeln!(
        out,
        "{}: {} → {}\n{t}",
        result.scheme, result.from, result.to
    )?;
    if result.differences.is_empty() {
        writeln!(
            out,
            "No differences: every source document is synced and in the target."
        )?;
        return Ok(());
    }
    writeln!(out, "\n{} differences", result.differences.len())?;
    let mut d = table(&["day", "key", "number", "difference"]);
    for diff in &result.differences {
        d.add_row(vec![
            diff.day.clone(),
            diff.key.clone(),
            diff.number.clone(),
            diff.issue.clone(),
        ]);
    }
    writeln!(out, "{d}")?;
    Ok(())
}
