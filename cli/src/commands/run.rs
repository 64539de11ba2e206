//! `ferry run CONFIG`: the self-hosted mode. Polls every scheme and pushes what it finds, once
//! (`--once`: poll each scheme, drain the queues, exit) or on the schemes' intervals until stopped.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use ferry_common::embedded::SchemeSummary;
use ferry_common::engine::{DocumentOutcome, PageEvent};

use crate::context::{async_runtime, load_run, wait_for_stop};
use crate::error::CliError;
use crate::progress::Progress;

/// Options of `ferry run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run configuration (YAML): schemes, connectors, store.
    config: PathBuf,
    /// Poll every scheme once, push until the queues are empty, then exit.
    #[arg(long)]
    once: bool,
    /// Print each scheme's summary as one JSON object per line.
    #[arg(long)]
    json: bool,
    /// Start a scheme that never ran and names no start from now: nothing older is read.
    /// Without it such a scheme refuses to run, saying what to set.
    #[arg(long)]
    from_now: bool,
    /// Print nothing but errors (for cron): no progress lines, no summaries, no log lines below
    /// errors. The exit code says how it went.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// `ferry run`: polls and pushes the configured schemes until stopped (or once, with `--once`).
pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<i32, CliError> {
    let mut engine = load_run(&args.config)?;
    let runtime = async_runtime()?;
    // Progress lines only where a person watches: the process's own stderr, a terminal.
    let draw = !args.quiet && crate::logging::owns_stderr() && std::io::stderr().is_terminal();
    let ids = engine
        .schemes
        .iter()
        .map(|run| run.scheme.id().to_owned())
        .collect();
    let progress = Progress::new(ids, draw);
    let result = runtime.block_on(async {
        // A scheme's first run reads from a start someone chose, never a silent guess.
        for (id, start) in engine.settle_first_starts(args.from_now).await? {
            tracing::info!(scheme = id, start, "first run reads from --from-now");
            // A collector reads JSON lines only: there the log line above says it.
            if !args.quiet && !crate::logging::json_mode() {
                writeln!(
                    err,
                    "{id}: first run reads from {start} (Beijing time, --from-now)"
                )?;
            }
        }
        // Claims a stopped run left: their documents cannot be pushed before the claims lapse.
        // Said up front, so a run that waits for them is not mistaken for a hung one.
        let (claims, wait) = engine.stopped_claims().await?;
        if claims > 0 {
            let secs = wait.as_secs_f64().ceil() as u64;
            let why = format!(
                "{claims} claim{} of a stopped run to lapse (documents it was pushing when it \
                 stopped; they are settled, never written twice)",
                if claims == 1 { "" } else { "s" }
            );
            if !args.quiet && !draw && !crate::logging::json_mode() {
                writeln!(err, "waiting {secs} s for {why}")?;
            }
            progress.waiting(wait, &why);
        }
        let sync = |index: usize| {
            let progress = &progress;
            let engine = &engine;
            async move {
                let on_page = |event: &PageEvent| progress.page(index, event);
                let on_document = |outcome: &DocumentOutcome| progress.document(index, outcome);
                let result = engine.sync_once(index, &on_page, &on_document).await;
                match &result {
                    Ok(summary) => progress.caught_up(index, summary),
                    Err(e) => progress.failed(index, e),
                }
                result
            }
        };
        if args.once {
            // Every scheme gets its run; the exit code is the first failure's (whose move it is).
            let mut failed: Option<CliError> = None;
            for index in 0..engine.schemes.len() {
                match sync(index).await {
                    Ok(summary) if !args.quiet => {
                        progress.suspend(|| print(&summary, args.json, out))?;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        progress.suspend(|| writeln!(out, "{e}"))?;
                        failed.get_or_insert(CliError::from(e));
                    }
                }
            }
            return Ok(failed.map_or(0, |e| e.exit_code()));
        }
        let mut next: Vec<tokio::time::Instant> =
            vec![tokio::time::Instant::now(); engine.schemes.len()];
        let stop = wait_for_stop();
        tokio::pin!(stop);
        loop {
            let (index, due) = next
                .iter()
                .copied()
                .enumerate()
                .min_by_key(|(_, t)| *t)
                .expect("at least one scheme");
            tokio::select! {
                _ = &mut stop => return Ok(0),
                _ = tokio::time::sleep_until(due) => {}
            }
            // A failure is logged and shown; the scheme tries again at its next interval.
            if let Ok(summary) = sync(index).await
                && !args.quiet
            {
                progress.suspend(|| print(&summary, args.json, out))?;
            }
            let interval = Duration::try_from(engine.schemes[index].scheme.window.interval)
                .unwrap_or(Duration::from_secs(300));
            next[index] = tokio::time::Instant::now() + interval;
            progress.next_poll(index, interval);
        }
    });
    progress.finish();
    result
}

fn print(summary: &SchemeSummary, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let line = if json {
        serde_json::to_string(summary).expect("serialisable")
    } else {
        format!(
            "{}: {} source calls, {} fetched, {} pushed ({} new, {} updated), {} unchanged, {} failed, {} conflicts, {} dead letters; cursor {}",
            summary.scheme,
            summary.poll.calls,
            summary.poll.documents,
            summary.push.pushed(),
            summary.push.created,
            summary.push.updated,
            summary.push.unchanged + summary.push.superseded,
            summary.push.failed,
            summary.push.conflicts,
            summary.dead_letters,
            summary.poll.cursor.as_deref().unwrap_or("-"),
        )
    };
    writeln!(out, "{line}")?;
    Ok(())
}
