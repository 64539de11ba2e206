//! `ferry replay SCHEME (--failed | --dead-letters | KEY...)`: push again, through the same
//! claims and settling as any push, so a replay never creates a second bill.

use std::io::Write;

use super::requeue_report;
use crate::actions::{Actions, Replay, operator, outcome};
use crate::backend::{BackendArgs, with_backend};
use crate::error::CliError;

/// Options of `ferry replay`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["failed", "dead_letters", "keys"])))]
pub struct Args {
    #[command(flatten)]
    backend: BackendArgs,
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

/// `ferry replay SCHEME (--failed | --dead-letters | KEY...)`: push again, through the same claims
/// and settling as any push, so a replay never creates a second bill.
pub fn run(args: &Args, out: &mut dyn Write, _err: &mut dyn Write) -> Result<i32, CliError> {
    let what = if args.dead_letters {
        Replay::DeadLetters
    } else if args.failed {
        Replay::Failed
    } else {
        Replay::Keys(args.keys.clone())
    };
    with_backend(&args.backend, |engine| async move {
        let scheme = engine.scheme(&args.scheme)?;
        let result = engine.replay(&scheme, &what).await;
        // Every replay is in the scheme's audit log, wherever it was started.
        let done = format!("ferry replay {what:?} → {}", outcome(&result));
        engine.audit(&scheme, &operator(), &done).await?;
        let result = result?;
        requeue_report::print(&result, args.backend.json, out)?;
        Ok(0)
    })
}
