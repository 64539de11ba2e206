//! The `ferry` process's log lines: JSON, one object per line, when stderr is not a terminal (a
//! service manager, cron, a container collects them); on a terminal only warnings and errors, in
//! words, drawn above the progress lines. `FERRY_LOG` sets the level; `--quiet` keeps errors only,
//! whatever `FERRY_LOG` says.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use indicatif::MultiProgress;
use tracing::Level;

/// Set once the `ferry` binary's `main` took the process's streams.
static OWNS_STDERR: AtomicBool = AtomicBool::new(false);
/// Set when the log lines are JSON (the binary, stderr not a terminal).
static JSON: AtomicBool = AtomicBool::new(false);
/// The progress lines being drawn, if any: a log line is written above them, not through them.
static DRAWN: OnceLock<Mutex<Option<MultiProgress>>> = OnceLock::new();

/// Whether the commands write to the process's own stderr (the binary), not to a buffer of a
/// test that runs them in-process: only then are progress lines drawn.
pub fn owns_stderr() -> bool {
    OWNS_STDERR.load(Ordering::Relaxed)
}

/// Whether stderr carries JSON log lines only (so a plain line would break a collector's parse).
pub fn json_mode() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Registers (or, with `None`, forgets) the progress lines a log line must not overwrite.
pub fn drawing(lines: Option<MultiProgress>) {
    let slot = DRAWN.get_or_init(Mutex::default);
    *slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = lines;
}

/// Writes `bytes` to stderr above the progress lines, if any are drawn.
fn above_progress(bytes: &[u8]) -> std::io::Result<()> {
    let drawn = DRAWN.get().and_then(|slot| {
        slot.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    });
    match drawn {
        Some(lines) => lines.suspend(|| std::io::stderr().write_all(bytes)),
        None => std::io::stderr().write_all(bytes),
    }
}

/// stderr for terminal log lines, through [`above_progress`].
struct TerminalWriter;

impl Write for TerminalWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        above_progress(bytes).map(|()| bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Installs the subscriber for this process (once; the in-process `run` tests install none).
pub fn init(quiet: bool) {
    OWNS_STDERR.store(true, Ordering::Relaxed);
    let level = if quiet {
        Level::ERROR
    } else {
        std::env::var("FERRY_LOG")
            .ok()
            .and_then(|l| l.parse::<Level>().ok())
            .unwrap_or(Level::INFO)
    };
    let builder = tracing_subscriber::fmt().with_target(false);
    if std::io::stderr().is_terminal() {
        // The progress lines say what happens; a log line is for what needs a look.
        let _ = builder
            .with_writer(|| TerminalWriter)
            .with_max_level(level.min(Level::WARN))
            .try_init();
    } else {
        JSON.store(true, Ordering::Relaxed);
        let _ = builder
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .with_max_level(level)
            .try_init();
    }
}
