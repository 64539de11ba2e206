//! `ferry resync SCHEME --from T --to T | --keys K...`: the on-demand re-sync of a window or of
//! documents by key; the cursor stays where it is.

use std::io::Write;

use ferry_common::engine::Window;

use super::requeue_report;
use crate::actions::{Actions, operator, outcome};
use crate::backend::{BackendArgs, Requeue, with_backend};
use crate::error::{Blame, CliError};

/// Options of `ferry resync`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["from", "keys"])))]
pub struct Args {
    #[command(flatten)]
    backend: BackendArgs,
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

/// `ferry resync SCHEME --from T --to T | --keys K...`: the on-demand re-sync; the cursor stays.
/// On AWS it invokes the poll function's on-demand path; the push function does the rest.
pub fn run(args: &Args, out: &mut dyn Write, _err: &mut dyn Write) -> Result<i32, CliError> {
    // The window is checked before anything is opened: a bad request changes nothing.
    let what = match (&args.from, &args.to) {
        (Some(from), Some(to)) => {
            Requeue::Window(Window::parse_range(from, to, ("--from", "--to")).user()?)
        }
        _ => Requeue::Keys {
            keys: args.keys.clone(),
            replay: false,
        },
    };
    with_backend(&args.backend, |engine| async move {
        let scheme = engine.scheme(&args.scheme)?;
        let asked = format!("{what:?}");
        let result = engine.resync(&scheme, what).await;
        let done = format!("ferry resync {asked} → {}", outcome(&result));
        engine.audit(&scheme, &operator(), &done).await?;
        let result = result?;
        requeue_report::print(&result, args.backend.json, out)?;
        Ok(0)
    })
}
