//! `ferry run CONFIG`: the self-hosted mode. Polls every scheme and pushes what it finds, once
//! (`--once`: poll each scheme, drain the queues, exit) or on the schemes' intervals until stopped.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_common::connector::kingdee::KingdeeConfig;
use ferry_common::connector::wdt::WdtConfig;
use ferry_common::connector::yonyou::YonyouConfig;
use ferry_sandbox::Sandbox;

use crate::config::{ConnectorsConfig, RunConfig};
use crate::runtime::{Clients, Runtime, SchemePlan, SchemeSummary, Settings};

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
}

/// The sandbox's connectors, as a configuration file would give them.
pub fn sandbox_connectors(sandbox: &Sandbox) -> ConnectorsConfig {
    let wdt: WdtConfig = sandbox.wdt_config();
    let kingdee: KingdeeConfig = sandbox.kingdee_config();
    let yonyou: YonyouConfig = sandbox.yonyou_config();
    ConnectorsConfig {
        wdt: Some(wdt),
        kingdee: Some(kingdee),
        yonyou: Some(yonyou),
        // The sandbox's accounts hold the demo customer's org and project codes.
        variables: ferry_sandbox::DEMO_VARIABLES
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

/// The sandbox's per-minute limits of the targets.
pub fn sandbox_limits(sandbox: &Sandbox) -> HashMap<String, u32> {
    let limits = &sandbox.config().limits;
    HashMap::from([
        ("kingdee".to_owned(), limits.kingdee),
        ("yonyou".to_owned(), limits.yonyou),
    ])
}

/// Loads a run configuration and prepares its runtime.
pub fn load(path: &Path) -> Result<Runtime, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let config: RunConfig =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_owned()
        } else {
            base.join(p)
        }
    };
    // The process environment first, then the file's variables, then the connectors'.
    let vars = |key: &str| {
        std::env::var(key)
            .ok()
            .or_else(|| config.variables.get(key).cloned())
            .or_else(|| config.connectors.variables.get(key).cloned())
    };
    let mut plans = Vec::new();
    for entry in &config.schemes {
        let name = entry.name();
        let relative = base.join(name);
        let schemes = if relative.is_dir() {
            ferry_common::scheme::load_folder(&relative, &vars).map_err(|e| e.to_string())?
        } else if relative.exists() {
            vec![
                crate::load_scheme(&relative.display().to_string(), &vars)
                    .map_err(|e| e.to_string())?,
            ]
        } else {
            vec![crate::load_scheme(name, &vars).map_err(|e| e.to_string())?]
        };
        for scheme in schemes {
            scheme.require_variables()?;
            plans.push(SchemePlan {
                scheme,
                start: entry.start().map(str::to_owned),
            });
        }
    }
    let settings = Settings::from_config(&config.push)?;
    let clients = Clients::new(&config.connectors)?;
    Runtime::new(
        &resolve(&config.store),
        plans,
        &clients,
        &config.rate_limits,
        settings,
    )
}

/// `ferry run`: polls and pushes the configured schemes until stopped (or once, with `--once`).
pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<i32, String> {
    let mut engine = load(&args.config)?;
    let runtime = crate::async_runtime()?;
    runtime.block_on(async {
        // A scheme's first run reads from a start someone chose, never a silent guess.
        for (id, start) in engine.settle_first_starts(args.from_now).await? {
            writeln!(
                err,
                "{id}: first run reads from {start} (Beijing time, --from-now)"
            )
            .map_err(|e| e.to_string())?;
        }
        // Claims a stopped run left: their documents cannot be pushed before the claims lapse.
        // Said up front, so a run that waits for them is not mistaken for a hung one.
        let (claims, wait) = engine.stopped_claims().await?;
        if claims > 0 {
            let secs = wait.as_secs_f64().ceil() as u64;
            writeln!(
                err,
                "waiting {secs} s for {claims} claim{} of a stopped run to lapse (documents it was \
                 pushing when it stopped; they are settled, never written twice)",
                if claims == 1 { "" } else { "s" }
            )
            .map_err(|e| e.to_string())?;
            tracing::warn!(
                claims,
                wait_s = secs,
                "waiting for claims of a stopped run to lapse"
            );
        }
        if args.once {
            let mut failed = false;
            for index in 0..engine.schemes.len() {
                match engine.sync_once(index, &|_| {}, &|_| {}).await {
                    Ok(summary) => print(&summary, args.json, out)?,
                    Err(e) => {
                        failed = true;
                        writeln!(out, "{e}").map_err(|e| e.to_string())?;
                    }
                }
            }
            return Ok(if failed { 1 } else { 0 });
        }
        let mut next: Vec<tokio::time::Instant> =
            vec![tokio::time::Instant::now(); engine.schemes.len()];
        let stop = crate::sandbox::wait_for_stop();
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
            match engine.sync_once(index, &|_| {}, &|_| {}).await {
                Ok(summary) => print(&summary, args.json, out)?,
                Err(e) => tracing::error!(error = %e, "sync failed; retrying at the next interval"),
            }
            let interval = Duration::try_from(engine.schemes[index].scheme.window.interval)
                .unwrap_or(Duration::from_secs(300));
            next[index] = tokio::time::Instant::now() + interval;
        }
    })
}

fn print(summary: &SchemeSummary, json: bool, out: &mut dyn Write) -> Result<(), String> {
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
    writeln!(out, "{line}").map_err(|e| e.to_string())
}
