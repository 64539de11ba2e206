//! `ferry record SCHEME KEY`: one document's record and full history, found by its key or by
//! the number people know it by.

use std::io::Write;

use serde_json::{Value, json};

use crate::backend::{BackendArgs, with_backend};
use crate::error::CliError;
use crate::output::{print_json, table, time_text};

/// Options of `ferry record`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    backend: BackendArgs,
    /// The scheme id.
    scheme: String,
    /// The document: its key (`trade_id`, `stockout_id`) or its number (`trade_no`, `order_no`...).
    key: String,
}

/// `ferry record SCHEME KEY`: one document's record and full history.
pub fn run(args: &Args, out: &mut dyn Write, _err: &mut dyn Write) -> Result<i32, CliError> {
    with_backend(&args.backend, |engine| async move {
        let scheme = engine.scheme(&args.scheme)?;
        let scheme = scheme.as_str();
        let Some(record) = engine.find_record(scheme, &args.key).await? else {
            return Err(CliError::user(format!(
                "{scheme} has no record of '{}': it was never fetched (is it in a window polled yet? \
                 `ferry resync {scheme} --keys {}` fetches it now)",
                args.key, args.key
            )));
        };
        let history = engine.history(scheme, &record.key, 1_000).await?;
        if args.backend.json {
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
        writeln!(out, "{t}\n\nHistory")?;
        let mut h = table(&["at (Beijing)", "what", "detail", "target id"]);
        for event in &history {
            h.add_row(vec![
                time_text(event.at),
                event.what.clone(),
                event.detail.clone(),
                event.target_id.clone().unwrap_or_default(),
            ]);
        }
        writeln!(out, "{h}")?;
        Ok(0)
    })
}
