//! What a long run shows while it works: on a terminal, one progress line per scheme (its window
//! and page, documents pushed, what it waits for and why); everywhere, the same steps as log
//! events (`logging.rs` makes them JSON lines when stderr is not a terminal).

use std::sync::Mutex;
use std::time::Duration;

use ferry_common::embedded::SchemeSummary;
use ferry_common::engine::{DocumentOutcome, PageEvent};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counts shown on a scheme's line.
#[derive(Default)]
struct Counts {
    pushed: u64,
    failed: u64,
}

/// Per-scheme progress lines (drawn only on a terminal) and log events.
pub struct Progress {
    bars: Vec<ProgressBar>,
    schemes: Vec<String>,
    counts: Vec<Mutex<Counts>>,
    // Kept so the lines stay drawn together, and to print above them.
    multi: MultiProgress,
}

impl Progress {
    /// Progress for `schemes`; lines are drawn when `draw` (stderr is a terminal and the run is
    /// not `--quiet`).
    pub fn new(schemes: Vec<String>, draw: bool) -> Progress {
        let multi = MultiProgress::with_draw_target(if draw {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let style = ProgressStyle::with_template("{prefix:26} {spinner} {msg}")
            .expect("a valid template")
            .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ");
        let bars = schemes
            .iter()
            .map(|id| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(id.clone());
                bar.set_message("starting");
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
            .collect();
        if draw {
            crate::logging::drawing(Some(multi.clone()));
        }
        Progress {
            bars,
            counts: schemes.iter().map(|_| Mutex::default()).collect(),
            schemes,
            multi,
        }
    }

    fn counts(&self, index: usize) -> std::sync::MutexGuard<'_, Counts> {
        self.counts[index]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn show(&self, index: usize, what: String) {
        let counts = self.counts(index);
        let (pushed, failed) = (counts.pushed, counts.failed);
        drop(counts);
        self.bars[index].set_message(format!("{what} · {pushed} pushed, {failed} failed"));
    }

    /// A page was fetched and queued.
    pub fn page(&self, index: usize, event: &PageEvent) {
        let window = format!(
            "{} → {}",
            event.window.start_text(),
            event.window.end_text()
        );
        tracing::info!(
            scheme = self.schemes[index],
            window,
            page = event.page,
            documents = event.documents,
            "page queued"
        );
        self.show(
            index,
            format!(
                "window {window}, page {}: {} documents",
                event.page, event.documents
            ),
        );
    }

    /// A document was pushed, skipped or failed.
    pub fn document(&self, index: usize, outcome: &DocumentOutcome) {
        let scheme = &self.schemes[index];
        let what = {
            let mut counts = self.counts(index);
            match outcome {
                DocumentOutcome::Pushed { key, target_id, .. } => {
                    counts.pushed += 1;
                    tracing::debug!(scheme, key, target_id, "pushed");
                    format!("pushed {key}")
                }
                DocumentOutcome::Failed { key, reason }
                | DocumentOutcome::Conflict { key, reason }
                | DocumentOutcome::Blocked { key, reason } => {
                    counts.failed += 1;
                    tracing::warn!(scheme, key, reason, "not pushed");
                    format!("{key} not pushed")
                }
                DocumentOutcome::Retry { key, reason, .. } => {
                    tracing::info!(scheme, key, reason, "retry");
                    format!("{key} again later")
                }
                DocumentOutcome::Unchanged { key } | DocumentOutcome::Superseded { key } => {
                    format!("{key} unchanged")
                }
            }
        };
        self.show(index, format!("pushing: {what}"));
    }

    /// Every scheme waits, for `why`.
    pub fn waiting(&self, wait: Duration, why: &str) {
        tracing::info!(wait_s = wait.as_secs(), why, "waiting");
        for index in 0..self.bars.len() {
            self.show(index, format!("waiting {} s: {why}", wait.as_secs()));
        }
    }

    /// A scheme caught up.
    pub fn caught_up(&self, index: usize, summary: &SchemeSummary) {
        let cursor = summary.poll.cursor.as_deref().unwrap_or("-");
        tracing::info!(
            scheme = summary.scheme,
            cursor,
            fetched = summary.poll.documents,
            pushed = summary.push.pushed(),
            failed = summary.push.failed,
            dead_letters = summary.dead_letters,
            "caught up"
        );
        self.show(index, format!("caught up to {cursor}"));
    }

    /// A scheme's next poll is `wait` away.
    pub fn next_poll(&self, index: usize, wait: Duration) {
        self.show(index, format!("next poll in {} s", wait.as_secs()));
    }

    /// A scheme's sync failed; it tries again at its next interval.
    pub fn failed(&self, index: usize, error: &dyn std::fmt::Display) {
        tracing::error!(scheme = self.schemes[index], error = %error, "sync failed");
        self.show(index, format!("failed: {error}"));
    }

    /// Runs `f` (which prints) with the progress lines out of its way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }

    /// Leaves each line as it stands.
    pub fn finish(&self) {
        for bar in &self.bars {
            bar.finish();
        }
        crate::logging::drawing(None);
    }
}
