//! `ferry replay SCHEME (--failed | --dead-letters | KEY...)`: push again, through the same
//! claims and settling as any push, so a replay never creates a second bill.

use std::io::Write;

use ferry_common::engine::RecordState;

use super::requeue_report::{self, RequeueReport};
use crate::backend::{BackendArgs, Requeue, with_backend};
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
    with_backend(&args.backend, |engine| async move {
        let scheme = engine.scheme(&args.scheme)?;
        let scheme = scheme.as_str();
        let mut result = RequeueReport::new(scheme);
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
                match engine.find_record(scheme, key).await? {
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
                    .map_err(|e| e.with_context(&format!("replay {scheme}")))?;
                result.record(done);
            }
        }
        result.pushed_here = engine.drain(scheme, &mut result.push).await?;
        requeue_report::print(&result, args.backend.json, out)?;
        Ok(0)
    })
}
