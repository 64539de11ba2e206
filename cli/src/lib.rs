//! The `ferry` command line: checks scheme files, previews the bodies a scheme would send, runs the
//! sandbox, the demo (`ferry demo`) and the self-hosted engine (`ferry run`).
//! Commands write to the given streams and return an exit status, so tests run them in-process.

#[cfg(feature = "aws")]
mod aws;
mod backend;
pub mod config;
mod demo;
pub mod faults;
mod ops;
mod preview;
mod reconcile;
pub mod run;
pub mod runtime;
mod sandbox;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use ferry_common::{Scheme, SchemeError, bundled};

/// Ferry keeps Chinese SaaS ERPs in sync: WDT → Kingdee and Yonyou.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the sandbox, sync both bundled schemes to completion, and verify the targets against
    /// the sources (expected, found, missing, duplicated, stale).
    Demo(demo::Args),
    /// Run schemes on the embedded store: `--once` to catch up and exit, otherwise on their intervals.
    Run(run::Args),
    /// Validate scheme files or scheme folders (a deployment's schemes, their value-map files and
    /// `catalog/`); print every problem as FILE:LINE:COL: MESSAGE. Exits 1 on any error, so a
    /// deployment's build stops on it.
    Check {
        /// Scheme files (YAML) or folders of them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the exact body the target API would receive for each source document.
    Preview {
        /// A scheme file, or the id of a bundled scheme (wdt-trades-to-kingdee, wdt-stockouts-to-yonyou).
        scheme: String,
        /// One source document (JSON), a source API response, or JSON Lines (one document per line).
        file: PathBuf,
        /// Print each body on one line even for a single document.
        #[arg(long)]
        compact: bool,
        /// A deployment variable the scheme reads, `NAME=VALUE` (repeatable); the process
        /// environment is read for the others.
        #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
        vars: Vec<(String, String)>,
    },
    /// Run the sandbox (local WDT, Kingdee and Yonyou stand-ins) until stopped; print its URLs and
    /// test credentials.
    Sandbox(sandbox::Args),
    /// Per scheme: the cursor and its lag, records by state, queued and dead messages, the latest
    /// failures with their reasons.
    Status(ops::StatusArgs),
    /// One document's record and full history: when it was fetched, each push with its outcome
    /// and the target's answer, its target id.
    Record(ops::RecordArgs),
    /// Push again: the failed documents, the dead letters, or documents by key (never twice).
    Replay(ops::ReplayArgs),
    /// Fetch a window or documents by key again and push them; the cursor stays where it is.
    Resync(ops::ResyncArgs),
    /// Per day: documents in the source, synced, failed and found in the target, with every
    /// difference listed (对账).
    Reconcile(reconcile::ReconcileArgs),
}

/// Runs `ferry` with `args` (program name first); returns the exit status.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            if e.use_stderr() {
                let _ = write!(err, "{}", e.render());
                return 2;
            }
            let _ = write!(out, "{}", e.render());
            return 0;
        }
    };
    let result = match cli.command {
        Command::Check { files } => check(&files, out, err),
        Command::Preview {
            scheme,
            file,
            compact,
            vars,
        } => {
            let lookup = |key: &str| {
                vars.iter()
                    .find(|(name, _)| name == key)
                    .map(|(_, value)| value.clone())
                    .or_else(|| std::env::var(key).ok())
            };
            // A body built without a variable's value would not be the body sent.
            match load_scheme(&scheme, &lookup)
                .map_err(|e| e.to_string())
                .and_then(|s| s.require_variables().map(|()| s))
            {
                Ok(scheme) => preview::run(&scheme, &file, compact, out, err),
                Err(e) => writeln!(err, "{e}").map(|()| 1),
            }
        }
        Command::Demo(args) => {
            return demo::run(&args, out).unwrap_or_else(|e| {
                let _ = writeln!(err, "ferry demo: {e}");
                1
            });
        }
        Command::Run(args) => {
            return run::run(&args, out, err).unwrap_or_else(|e| {
                let _ = writeln!(err, "ferry run: {e}");
                1
            });
        }
        Command::Sandbox(args) => {
            return sandbox::run(&args, out).unwrap_or_else(|e| {
                let _ = writeln!(err, "ferry sandbox: {e}");
                1
            });
        }
        Command::Status(args) => return report("status", ops::status(&args, out), err),
        Command::Record(args) => return report("record", ops::record(&args, out), err),
        Command::Replay(args) => return report("replay", ops::replay(&args, out), err),
        Command::Resync(args) => return report("resync", ops::resync(&args, out), err),
        Command::Reconcile(args) => {
            return report("reconcile", reconcile::reconcile(&args, out), err);
        }
    };
    result.unwrap_or_else(|e| {
        let _ = writeln!(err, "ferry: {e}");
        1
    })
}

/// Reads `NAME=VALUE`.
fn parse_var(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(name, _)| !name.trim().is_empty())
        .map(|(name, value)| (name.trim().to_owned(), value.to_owned()))
        .ok_or_else(|| format!("'{text}' is not NAME=VALUE"))
}

/// A table for people, in the style every `ferry` command prints.
pub(crate) fn table(header: &[&str]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

/// A command's exit status, its error printed as `ferry COMMAND: ERROR`.
fn report(command: &str, result: Result<i32, String>, err: &mut dyn Write) -> i32 {
    result.unwrap_or_else(|e| {
        let _ = writeln!(err, "ferry {command}: {e}");
        1
    })
}

/// The multi-threaded tokio runtime the long-running commands (`demo`, `run`, `sandbox`) run on.
fn async_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// A scheme file path, or the id of a bundled scheme, with `vars` for its variables.
pub(crate) fn load_scheme(
    name: &str,
    vars: ferry_common::mapping::EnvLookup<'_>,
) -> Result<Scheme, SchemeError> {
    let path = Path::new(name);
    if path.exists() || name.ends_with(".yaml") || name.ends_with(".yml") {
        return ferry_common::scheme::load_in_folder(path, vars);
    }
    for (file, text) in bundled::SCHEMES {
        let scheme = Scheme::load_str(file, text, vars)?;
        if scheme.id() == name {
            return Ok(scheme);
        }
    }
    let known: Vec<&str> = bundled::SCHEMES
        .iter()
        .map(|(file, _)| {
            file.trim_start_matches("schemes/")
                .trim_end_matches(".yaml")
        })
        .collect();
    Err(SchemeError {
        file: name.to_owned(),
        diagnostics: vec![ferry_common::Diagnostic::error(
            0,
            0,
            format!(
                "no such file, and no bundled scheme has this id (bundled: {})",
                known.join(", ")
            ),
        )],
    })
}

/// Checks scheme files and scheme folders (every scheme in one, its entries files and its
/// `catalog/`), as a deployment would load them: each problem as `FILE:LINE:COL: MESSAGE`,
/// warnings included (a variable without a value here is a warning: the deployment sets it).
fn check(paths: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<i32> {
    let mut failed = 0;
    let mut total = 0;
    let mut ids: HashMap<String, String> = HashMap::new();
    for path in paths {
        let loaded: Vec<Result<Scheme, SchemeError>> = if path.is_dir() {
            match ferry_common::scheme::load_folder(path, &ferry_common::scheme::process_env) {
                Ok(schemes) => schemes.into_iter().map(Ok).collect(),
                Err(e) => e.files.into_iter().map(Err).collect(),
            }
        } else {
            // A scheme file sees the catalog files of its folder, as the folder's deployment would.
            vec![ferry_common::scheme::load_in_folder(
                path,
                &ferry_common::scheme::process_env,
            )]
        };
        for result in loaded {
            total += 1;
            match result {
                Ok(scheme) => {
                    for warning in &scheme.warnings {
                        writeln!(err, "{}", warning.display(&scheme.file))?;
                    }
                    let id = &scheme.config.id;
                    if let Some(other) = ids.insert(scheme.id().to_owned(), scheme.file.clone()) {
                        failed += 1;
                        writeln!(
                            err,
                            "{}:{}:{}: id '{}' is already used by {other}",
                            scheme.file,
                            id.referenced.line(),
                            id.referenced.column(),
                            scheme.id()
                        )?;
                        continue;
                    }
                    writeln!(
                        out,
                        "{}: ok ({}: {} {} → {} {}; files version {})",
                        scheme.file,
                        scheme.id(),
                        scheme.source_api.connector,
                        scheme.source_api.api,
                        scheme.target_api.connector,
                        scheme.target_api.api,
                        scheme.version,
                    )?;
                }
                Err(e) => {
                    failed += 1;
                    writeln!(err, "{e}")?;
                }
            }
        }
    }
    if failed > 0 {
        writeln!(err, "{failed} of {total} scheme files have errors")?;
        return Ok(1);
    }
    Ok(0)
}
