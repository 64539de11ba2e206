//! The `ferry` process's log lines: JSON, one object per line, when stderr is not a terminal (a
//! service manager, cron, a container collects them); on a terminal only warnings and errors, in
//! words, beside the progress lines. `FERRY_LOG` sets the level; `--quiet` keeps errors only.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::Level;

/// Set once the `ferry` binary's `main` took the process's streams.
static OWNS_STDERR: AtomicBool = AtomicBool::new(false);

/// Whether the commands write to the process's own stderr (the binary), not to a buffer of a
/// test that runs them in-process: only then are progress lines drawn.
pub fn owns_stderr() -> bool {
    OWNS_STDERR.load(Ordering::Relaxed)
}

/// Installs the subscriber for this process (once; the in-process `run` tests install none).
pub fn init(quiet: bool) {
    OWNS_STDERR.store(true, Ordering::Relaxed);
    let level = std::env::var("FERRY_LOG")
        .ok()
        .and_then(|l| l.parse::<Level>().ok())
        .unwrap_or(if quiet { Level::ERROR } else { Level::INFO });
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if std::io::stderr().is_terminal() {
        // The progress lines say what happens; a log line is for what needs a look.
        builder.with_max_level(level.min(Level::WARN)).try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_max_level(level)
            .try_init()
    };
}
