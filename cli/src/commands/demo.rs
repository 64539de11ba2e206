//! `ferry demo`: the sandbox and both bundled schemes, synced to completion on the embedded default,
//! then the targets verified against the sources.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use ferry_common::bundled;
use ferry_common::engine::{DocumentOutcome, PageEvent};
use ferry_sandbox::{RateLimits, Sandbox, SandboxConfig, Verification};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use ferry_common::connector::Clients;
use ferry_common::embedded::{Runtime, SchemePlan, SchemeSummary, Settings};

use crate::context::async_runtime;
use crate::error::{Blame, CliError, EXIT_PROBLEMS};
use crate::output::table;

/// Options of `ferry demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Orders in the sandbox (and as many stock-outs); 3,000 by default, 500 with `--faults`.
    #[arg(long, value_parser = clap::value_parser!(u64).range(10..=1_000_000))]
    orders: Option<u64>,
    /// Run under the whole fault mix (server errors, timeouts, lost answers, expired tokens,
    /// throttling, duplicate deliveries, killed pollers and pushers, drift, late commits,
    /// re-approvals, edits after sync, refusals) and prove nothing was lost or duplicated.
    #[arg(long)]
    faults: bool,
    /// Print the summary as one JSON object on the last line.
    #[arg(long)]
    json: bool,
    /// Seed of the data set.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to keep the store (a fresh temporary file by default).
    #[arg(long)]
    store: Option<std::path::PathBuf>,
}

/// One scheme's part of the demo's result.
#[derive(Debug, Serialize)]
struct SchemeResult {
    #[serde(flatten)]
    summary: SchemeSummary,
    verification: Verification,
}

#[derive(Debug, Serialize)]
struct DemoResult {
    orders: u64,
    seconds: f64,
    ok: bool,
    schemes: Vec<SchemeResult>,
}

/// Runs the demo, or the demo under the fault mix.
pub fn run(args: &Args, out: &mut dyn Write, _err: &mut dyn Write) -> Result<i32, CliError> {
    let runtime = async_runtime()?;
    if args.faults {
        return runtime.block_on(demo_faults(args, out));
    }
    runtime.block_on(demo(args, out))
}

/// The demo under the fault mix: the sandbox misbehaves in every way at once, and the targets are
/// verified against the sources at the end.
async fn demo_faults(args: &Args, out: &mut dyn Write) -> Result<i32, CliError> {
    use ferry_sandbox::fault_mix::{Injury, Mix, bundled_plans, sandbox_config};
    let orders = args.orders.unwrap_or(500);
    let mut config = SandboxConfig {
        seed: args.seed,
        documents: orders,
        limits: RateLimits::demo(),
        ..SandboxConfig::default()
    };
    sandbox_config(&Injury::ALL, &mut config);
    let sandbox = Sandbox::start(config)
        .await
        .map_err(|e| format!("cannot start the sandbox: {e}"))
        .internal()?;
    let temp = std::env::temp_dir().join(format!("ferry-demo-faults-{}", std::process::id()));
    let store = args.store.clone().unwrap_or_else(|| temp.join("ferry.db"));
    if !args.json {
        writeln!(
            out,
            "Sandbox with {orders} orders and {orders} stock-outs, every fault on; store {}",
            store.display()
        )?;
    }
    let plans = || bundled_plans(&sandbox).unwrap_or_default();
    let quiet = args.json;
    let progress = move |step: &str| {
        if !quiet {
            eprintln!("  {step}");
        }
    };
    let report = Mix {
        sandbox: &sandbox,
        store,
        plans: &plans,
        injuries: Injury::ALL.to_vec(),
        progress: &progress,
    }
    .run()
    .await
    .internal()?;
    if args.store.is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    print_faults(&report, args.json, out)?;
    Ok(if report.is_clean() { 0 } else { EXIT_PROBLEMS })
}

/// The verification cells both demo tables start with: scheme, expected, found, missing,
/// duplicated, stale.
fn verification_cells(scheme: &str, v: &Verification) -> Vec<String> {
    vec![
        scheme.to_owned(),
        v.expected.to_string(),
        v.found.to_string(),
        v.missing.to_string(),
        v.duplicated.to_string(),
        v.stale.to_string(),
    ]
}

fn print_faults(
    report: &ferry_sandbox::fault_mix::MixReport,
    json: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if json {
        return writeln!(
            out,
            "{}",
            serde_json::to_string(&serde_json::json!({
                "ok": report.is_clean(),
                "faults_injected": report.faults(),
                "report": report,
            }))
            .expect("serialisable")
        );
    }
    let mut injected = table(&["where", "fault", "times"]);
    for i in &report.injected {
        injected.add_row(vec![
            format!("{:?}", i.endpoint),
            format!("{:?}", i.fault),
            i.count.to_string(),
        ]);
    }
    let e = &report.engine;
    for (what, n) in [
        ("poller killed mid-window", u64::from(e.pollers_killed)),
        (
            "pusher killed after a target write",
            u64::from(e.pushers_killed),
        ),
        ("message delivered twice", e.duplicate_messages),
        ("late commit", u64::from(e.late_commits)),
        ("edit after sync", u64::from(e.edits_after_sync)),
        ("stock-out re-approved", u64::from(e.reapprovals)),
    ] {
        injected.add_row(vec![
            "engine / source".to_owned(),
            what.to_owned(),
            n.to_string(),
        ]);
    }
    let mut check = table(&[
        "scheme",
        "documents",
        "found once",
        "lost",
        "duplicated",
        "stale",
        "refused (failed records)",
        "records agree",
    ]);
    for s in &report.schemes {
        let v = &s.verification;
        let mut row = verification_cells(&s.scheme, v);
        row.extend([
            format!("{} ({})", v.refused, s.failed),
            if s.problems.is_empty() {
                "yes".to_owned()
            } else {
                s.problems.join("; ")
            },
        ]);
        check.add_row(row);
    }
    writeln!(out, "\nFaults injected: {}\n{injected}", report.faults())?;
    writeln!(
        out,
        "\nVerification after {} rounds: the sandbox targets against the sources\n{check}",
        report.rounds
    )?;
    writeln!(
        out,
        "\n{} in {:.1} s",
        if report.is_clean() {
            "Under every fault: each source document is in its target exactly once with its latest content"
        } else {
            "VERIFICATION FAILED: see the table above"
        },
        report.seconds
    )
}

async fn demo(args: &Args, out: &mut dyn Write) -> Result<i32, CliError> {
    let started = Instant::now();
    let orders = args.orders.unwrap_or(3_000);
    let sandbox = Sandbox::start(SandboxConfig {
        seed: args.seed,
        documents: orders,
        limits: RateLimits::demo(),
        ..SandboxConfig::default()
    })
    .await
    .map_err(|e| format!("cannot start the sandbox: {e}"))
    .internal()?;
    let temp = std::env::temp_dir().join(format!("ferry-demo-{}", std::process::id()));
    let store = args.store.clone().unwrap_or_else(|| temp.join("ferry.db"));
    let start = sandbox.source(|s| s.first_time());
    // The sandbox's customer's org and project codes: demo values live with the demo.
    let plans = bundled::load_all(&ferry_sandbox::demo_variable)?
        .into_iter()
        .map(|scheme| SchemePlan {
            scheme,
            start: Some(start.clone()),
        })
        .collect();
    let clients = Clients::new(&sandbox.connectors()).internal()?;
    let limits = sandbox.rate_limits();
    let engine = Runtime::new(&store, plans, &clients, &limits, Settings::default())?;
    if !args.json {
        writeln!(
            out,
            "Sandbox with {} orders and {} stock-outs; store {}",
            orders,
            orders,
            store.display()
        )?;
    }
    let bars = MultiProgress::with_draw_target(if args.json {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    });
    let style =
        ProgressStyle::with_template("{prefix:24} [{bar:30}] {pos:>6}/{len:6} {msg} {elapsed}")
            .internal()?
            .progress_chars("=> ");
    let runs = engine.schemes.iter().enumerate().map(|(index, run)| {
        let bar = Arc::new(bars.add(ProgressBar::new(0)));
        bar.set_style(style.clone());
        bar.set_prefix(run.scheme.id().to_owned());
        let engine = &engine;
        async move {
            let page_bar = bar.clone();
            let on_page = move |event: &PageEvent| page_bar.inc_length(event.documents as u64);
            let doc_bar = bar.clone();
            let on_document = move |outcome: &DocumentOutcome| {
                if !matches!(outcome, DocumentOutcome::Retry { .. }) {
                    doc_bar.inc(1);
                }
            };
            let summary = engine.sync_once(index, &on_page, &on_document).await;
            bar.finish_with_message("done");
            summary
        }
    });
    let summaries = futures_util::future::join_all(runs).await;
    let mut results = Vec::new();
    for (summary, run) in summaries.into_iter().zip(&engine.schemes) {
        let summary = summary?;
        let verification = sandbox.verify(&run.scheme);
        results.push(SchemeResult {
            summary,
            verification,
        });
    }
    let result = DemoResult {
        orders,
        seconds: started.elapsed().as_secs_f64(),
        ok: results.iter().all(|r| r.verification.is_clean()),
        schemes: results,
    };
    if args.store.is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    print(&result, args.json, out)?;
    Ok(if result.ok { 0 } else { EXIT_PROBLEMS })
}

fn print(result: &DemoResult, json: bool, out: &mut dyn Write) -> std::io::Result<()> {
    if json {
        return writeln!(
            out,
            "{}",
            serde_json::to_string(result).expect("serialisable")
        );
    }
    let mut sync = table(&[
        "scheme",
        "source calls",
        "fetched",
        "pushed",
        "unchanged",
        "failed",
        "retried",
        "dead letters",
    ]);
    let mut check = table(&[
        "scheme",
        "expected",
        "found",
        "missing",
        "duplicated",
        "stale",
        "refused",
        "unmappable",
    ]);
    for r in &result.schemes {
        let (s, v) = (&r.summary, &r.verification);
        sync.add_row(vec![
            s.scheme.clone(),
            s.poll.calls.to_string(),
            s.poll.documents.to_string(),
            format!(
                "{} ({} new, {} updated)",
                s.push.pushed(),
                s.push.created,
                s.push.updated
            ),
            (s.push.unchanged + s.push.superseded).to_string(),
            s.push.failed.to_string(),
            s.push.retried.to_string(),
            s.dead_letters.to_string(),
        ]);
        let mut row = verification_cells(&s.scheme, v);
        row.extend([v.refused.to_string(), v.unmappable.to_string()]);
        check.add_row(row);
    }
    writeln!(out, "\nSync\n{sync}")?;
    for r in &result.schemes {
        for (key, reason) in &r.summary.push.failures {
            writeln!(out, "  {} failed {key}: {reason}", r.summary.scheme)?;
        }
    }
    writeln!(
        out,
        "\nVerification: the sandbox targets against the sources\n{check}"
    )?;
    writeln!(
        out,
        "\n{} in {:.1} s",
        if result.ok {
            "Every source document is in its target exactly once with its latest content"
        } else {
            "VERIFICATION FAILED: see the table above"
        },
        result.seconds
    )
}
