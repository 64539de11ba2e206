//! The `ferry` command line: checks scheme files, previews the bodies a scheme would send, runs the
//! sandbox, the demo (`ferry demo`), the self-hosted engine (`ferry run`) and the operator's
//! commands over the embedded store or a deployment on AWS.
//!
//! Commands write to the given streams and return an exit status, so tests run them in-process.
//! The modules form a tree: `lib` → `commands` → `backend` → `context` → `config`, with `output`,
//! `progress`, `logging` and `error` below them all (a test keeps it so).

mod actions;
mod backend;
mod commands;
pub mod config;
mod context;
pub mod error;
mod logging;
mod output;
mod progress;
mod web;

use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand};

use crate::commands::{
    check, console, demo, preview, reconcile, record, replay, resync, run, sandbox, status,
};
use crate::error::{CliError, EXIT_CODES_HELP, EXIT_USER};

/// Ferry keeps Chinese SaaS ERPs in sync: WDT → Kingdee and Yonyou.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, after_help = EXIT_CODES_HELP)]
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
    Check(check::Args),
    /// Print the exact body the target API would receive for each source document.
    Preview(preview::Args),
    /// Run the sandbox (local WDT, Kingdee and Yonyou stand-ins) until stopped; print its URLs and
    /// test credentials.
    Sandbox(sandbox::Args),
    /// Per scheme: the cursor and its lag, records by state, queued and dead messages, the latest
    /// failures with their reasons.
    Status(status::Args),
    /// One document's record and full history: when it was fetched, each push with its outcome
    /// and the target's answer, its target id.
    Record(record::Args),
    /// Push again: the failed documents, the dead letters, or documents by key (never twice).
    Replay(replay::Args),
    /// Fetch a window or documents by key again and push them; the cursor stays where it is.
    Resync(resync::Args),
    /// Per day: documents in the source, synced, failed and found in the target, with every
    /// difference listed (对账).
    Reconcile(reconcile::Args),
    /// A web console: each scheme's status, failures by reason, every document's history, and
    /// replays, re-syncs and reconciliations from the browser (loopback unless given a token).
    Console(console::Args),
}

impl Command {
    /// The command's name, for its error line (`ferry status: ...`).
    fn name(&self) -> &'static str {
        match self {
            Command::Demo(_) => "demo",
            Command::Run(_) => "run",
            Command::Check(_) => "check",
            Command::Preview(_) => "preview",
            Command::Sandbox(_) => "sandbox",
            Command::Status(_) => "status",
            Command::Record(_) => "record",
            Command::Replay(_) => "replay",
            Command::Resync(_) => "resync",
            Command::Reconcile(_) => "reconcile",
            Command::Console(_) => "console",
        }
    }

    fn run(&self, out: &mut dyn Write, err: &mut dyn Write) -> Result<i32, CliError> {
        match self {
            Command::Demo(args) => demo::run(args, out, err),
            Command::Run(args) => run::run(args, out, err),
            Command::Check(args) => check::run(args, out, err),
            Command::Preview(args) => preview::run(args, out, err),
            Command::Sandbox(args) => sandbox::run(args, out, err),
            Command::Status(args) => status::run(args, out, err),
            Command::Record(args) => record::run(args, out, err),
            Command::Replay(args) => replay::run(args, out, err),
            Command::Resync(args) => resync::run(args, out, err),
            Command::Reconcile(args) => reconcile::run(args, out, err),
            Command::Console(args) => console::run(args, out, err),
        }
    }
}

/// The `ferry` process: its logs installed (JSON lines unless stderr is a terminal; errors only
/// with `--quiet`), then [`run`] over the real arguments and streams.
pub fn main() -> i32 {
    let args: Vec<OsString> = std::env::args_os().collect();
    logging::init(args.iter().any(|a| a == "--quiet" || a == "-q"));
    // Not locked for the whole run: log lines and progress lines are written from other threads.
    run(args, &mut std::io::stdout(), &mut std::io::stderr())
}

/// Runs `ferry` with `args` (program name first); returns the exit status (`ferry --help` lists
/// them: 0 done, 1 problems found, 2 wrong input, 3 a service failed, 4 Ferry failed).
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
                return EXIT_USER;
            }
            let _ = write!(out, "{}", e.render());
            return 0;
        }
    };
    cli.command.run(out, err).unwrap_or_else(|e| {
        if logging::json_mode() {
            // A collector reads JSON lines only: the error is one, with whose move it is.
            tracing::error!(
                command = cli.command.name(),
                error = %e,
                domain = e.domain.as_str(),
                retryable = e.retry == ferry_common::RetryHint::Later,
                exit = e.exit_code(),
                "command failed"
            );
        } else {
            let _ = writeln!(err, "ferry {}: {e}", cli.command.name());
        }
        e.exit_code()
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// The file of module `path` (segments from the crate root), the deepest that exists.
    fn file_of(root: &Path, path: &[&str]) -> Option<PathBuf> {
        for len in (0..=path.len()).rev() {
            let dir = path[..len]
                .iter()
                .fold(root.to_path_buf(), |d, s| d.join(s));
            let candidates = if len == 0 {
                vec![root.join("lib.rs")]
            } else {
                vec![dir.with_extension("rs"), dir.join("mod.rs")]
            };
            if let Some(file) = candidates.into_iter().find(|f| f.is_file()) {
                return Some(file);
            }
        }
        None
    }

    /// The module path of a file (`backend/aws.rs` → `["backend", "aws"]`).
    fn module_of(root: &Path, file: &Path) -> Vec<String> {
        let relative = file.strip_prefix(root).unwrap().with_extension("");
        let mut parts: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
            parts.pop();
        }
        parts
    }

    fn files(dir: &Path, into: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, into);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("main.rs") {
                into.push(path);
            }
        }
    }

    /// What each file refers to, by file: every `crate::` and `super::` path in its code (test
    /// modules left out), `use` lines or not.
    fn references(root: &Path) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
        let mut all = Vec::new();
        files(root, &mut all);
        let mut graph = BTreeMap::new();
        for file in all {
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let here = module_of(root, &file);
            let is_mod = file.ends_with("mod.rs") || file.ends_with("lib.rs");
            let mut targets = BTreeSet::new();
            // `super::` is the parent module; `self::` in a `mod.rs` is the module itself.
            let parent = here[..here.len().saturating_sub(1)].to_vec();
            let own = if is_mod { here.clone() } else { Vec::new() };
            for (prefix, base) in [
                ("crate::", Vec::new()),
                ("super::", parent),
                ("self::", own),
            ] {
                if prefix == "self::" && !is_mod {
                    continue;
                }
                for (at, _) in code.match_indices(prefix) {
                    let rest = code.get(at + prefix.len()..).unwrap_or_default();
                    let segments: Vec<&str> = rest
                        .split("::")
                        .map(|s| {
                            s.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                                .next()
                                .unwrap_or_default()
                        })
                        .take_while(|s| {
                            !s.is_empty()
                                && s.chars()
                                    .all(|c| c.is_lowercase() || c == '_' || c.is_numeric())
                        })
                        .collect();
                    let mut path: Vec<&str> = base.iter().map(String::as_str).collect();
                    path.extend(segments);
                    if let Some(target) = file_of(root, &path)
                        && target != file
                    {
                        targets.insert(target);
                    }
                }
            }
            // A child module named bare (`aws::AwsBackend` in `backend/mod.rs`) is a reference too.
            if is_mod {
                for line in code.lines() {
                    let declared = line.trim_start().trim_start_matches("pub ");
                    let Some(child) = declared
                        .strip_prefix("mod ")
                        .and_then(|rest| rest.strip_suffix(';'))
                    else {
                        continue;
                    };
                    let named = format!("{child}::");
                    let used = code.match_indices(&named).any(|(at, _)| {
                        !code
                            .get(..at)
                            .and_then(|before| before.chars().last())
                            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                    });
                    let mut path: Vec<&str> = here.iter().map(String::as_str).collect();
                    path.push(child);
                    if used && let Some(target) = file_of(root, &path) {
                        targets.insert(target);
                    }
                }
            }
            graph.insert(file, targets);
        }
        graph
    }

    /// `cli/src`'s modules refer to each other as a tree (no circle): each layer uses only the
    /// ones below it, so a command can be read, moved or tested without the rest.
    #[test]
    fn the_cli_modules_form_no_circle() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let graph = references(&root);
        assert!(graph.len() > 10, "the walk found the files: {graph:?}");
        // Depth-first search; a file met again while on the stack closes a circle.
        fn visit(
            file: &PathBuf,
            graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
            stack: &mut Vec<PathBuf>,
            done: &mut BTreeSet<PathBuf>,
        ) -> Option<Vec<PathBuf>> {
            if let Some(at) = stack.iter().position(|f| f == file) {
                let mut circle = stack[at..].to_vec();
                circle.push(file.clone());
                return Some(circle);
            }
            if !done.insert(file.clone()) {
                return None;
            }
            stack.push(file.clone());
            for next in graph.get(file).into_iter().flatten() {
                if let Some(circle) = visit(next, graph, stack, done) {
                    return Some(circle);
                }
            }
            stack.pop();
            None
        }
        let mut done = BTreeSet::new();
        for file in graph.keys() {
            let mut stack = Vec::new();
            if let Some(circle) = visit(file, &graph, &mut stack, &mut done) {
                let names: Vec<String> = circle
                    .iter()
                    .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
                    .collect();
                panic!("an import circle: {}", names.join(" → "));
            }
        }
        // The layers the crate's doc comment promises.
        let uses = |from: &str, to: &str| graph[&root.join(from)].contains(&root.join(to));
        assert!(uses("commands/status.rs", "backend/mod.rs"));
        assert!(
            uses("backend/mod.rs", "backend/embedded.rs"),
            "bare child paths count"
        );
        assert!(!uses("backend/mod.rs", "commands/mod.rs"));
    }
}
