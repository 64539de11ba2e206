//! Latency benchmark: from an edit in WDT to the bill in the target, on the embedded default.
//!
//! Each configuration gets its own sandbox (the vendors' real per-minute limits) in live mode:
//! orders and stock-outs created and edited at `FERRY_LATENCY_RATE` changes a second (0.5 unless
//! set), half new, half edits of documents the run created whose last change is in the target,
//! each change writing a remark the bundled schemes map. Both bundled schemes, with the window
//! settings of the configuration, run in its own `ferry run CONFIG --from-now` process (the real
//! binary, the continuous mode a user runs) over its own SQLite file, or in [`fixed_rate`], the loop
//! `ferry run` would need, built from the same embedded runtime. The configurations run side by
//! side, each on threads of its own, for `FERRY_LATENCY_SECONDS` (600 unless set); then the changes
//! get time to arrive, and each is paired with the first save the target received holding it
//! (`ferry_sandbox::latencies`).
//!
//! Printed per configuration and scheme: p50, p99 and max seconds from the change to the target's
//! receipt, split at the poll that picked the change up (from `ferry run`'s own log: the first page
//! queued after the change whose window reaches its `modified` second); the poll period and the
//! sync time (the fixed-rate loop's "sync" is the poll alone: it pushes beside the polls); WDT calls
//! per minute and target calls per change as the sandbox counted them; the three slowest changes.
//!
//! `cargo bench -p ferry-tests --bench latency`; `FERRY_LATENCY_CONFIGS="10 s,5 s"` runs only the
//! configurations whose names contain one of those; `FERRY_LATENCY_LOGS=DIR` keeps each one's
//! events and paired changes. Under `cargo test` (no `--bench` argument) it runs a smoke of a few
//! seconds: polling every 3 s, under `ferry run` and the fixed-rate loop, every change must reach
//! its target within 20 s, nothing throttled.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_common::connector::Clients;
use ferry_common::embedded::{Runtime, SchemePlan, Settings, Tally};
use ferry_common::engine::{DocumentOutcome, PageEvent};
use ferry_sandbox::{Endpoint, Kind, Latency, LiveConfig, RateLimits, Sandbox, SandboxConfig};
use ferry_tests::TempDir;
use jiff::Timestamp;

const FERRY: &str = env!("CARGO_BIN_EXE_ferry-bin");

/// The bundled schemes, with the documents each one reads.
const SCHEMES: [(&str, Kind); 2] = [
    ("wdt-trades-to-kingdee", Kind::Order),
    ("wdt-stockouts-to-yonyou", Kind::Stockout),
];

/// One set of window settings, as a user would write them in both scheme files.
#[derive(Clone, Debug)]
struct Setup {
    name: &'static str,
    /// `window.interval`.
    interval: &'static str,
    /// `window.settle_delay` of the orders and the stock-outs scheme.
    settle: [&'static str; 2],
    /// `window.lookback` of each.
    lookback: [&'static str; 2],
    /// What runs the schemes.
    how: How,
}

/// What runs the schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    /// `ferry run CONFIG --from-now`, the real binary.
    FerryRun,
    /// [`fixed_rate`]: the loop `ferry run` would need, measured in-process.
    FixedRate,
}

impl Setup {
    fn seconds(text: &str) -> f64 {
        let d = ferry_common::time::parse_duration(text).expect("a duration");
        d.as_secs_f64()
    }

    fn interval_s(&self) -> f64 {
        Self::seconds(self.interval)
    }

    fn settle_s(&self, scheme: usize) -> f64 {
        Self::seconds(self.settle[scheme])
    }

    fn lookback_s(&self, scheme: usize) -> f64 {
        Self::seconds(self.lookback[scheme])
    }
}

/// The configurations measured, side by side. On a 1-minute schedule: the shipped windows (what
/// setting only the interval gives), then the settle delay moved into the lookback (the same
/// late-commit margin, see docs/engine.md), under `ferry run` and under the fixed-rate loop. Polling
/// several times a minute: every 10 s (the lookback one the WDT call limit allows at this rate),
/// under both, and every 5 s under `ferry run`.
fn setups() -> Vec<Setup> {
    let minute = |name, how| Setup {
        name,
        interval: "1m",
        settle: ["10s", "10s"],
        lookback: ["11m", "32m"],
        how,
    };
    let seconds = |name, interval, how| Setup {
        name,
        interval,
        settle: ["0s", "0s"],
        lookback: ["5m", "5m"],
        how,
    };
    vec![
        Setup {
            name: "1 min, shipped settle",
            interval: "1m",
            settle: ["1m", "2m"],
            lookback: ["10m", "30m"],
            how: How::FerryRun,
        },
        minute("1 min", How::FerryRun),
        minute("1 min, fixed-rate loop", How::FixedRate),
        seconds("10 s", "10s", How::FerryRun),
        seconds("10 s, fixed-rate loop", "10s", How::FixedRate),
        seconds("5 s", "5s", How::FerryRun),
    ]
}

/// A scheme file's text with its window settings replaced.
fn with_window(text: &str, lookback: &str, settle: &str, interval: &str) -> String {
    let mut out = String::new();
    let mut replaced = 0;
    for line in text.lines() {
        let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
        let trimmed = line.trim_start();
        if trimmed.starts_with("lookback:") {
            out.push_str(&format!("{indent}lookback: {lookback}\n"));
            replaced += 1;
        } else if trimmed.starts_with("settle_delay:") {
            out.push_str(&format!(
                "{indent}settle_delay: {settle}\n{indent}interval: {interval}\n"
            ));
            replaced += 1;
        } else if trimmed.starts_with("interval:") {
            panic!("the bundled scheme sets an interval of its own: {line}");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert_eq!(replaced, 2, "lookback and settle_delay found once each");
    out
}

/// The `ferry run` process; killed when dropped.
struct Ferry(Child);

impl Drop for Ferry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Ferry as one configuration runs it.
enum Runner {
    /// The `ferry run` process and its log file.
    Ferry(Ferry, std::path::PathBuf),
    /// The fixed-rate loop on its own thread: what it logged, the stop signal, the thread.
    FixedRate(
        Arc<Mutex<Vec<LogEvent>>>,
        tokio::sync::watch::Sender<bool>,
        std::thread::JoinHandle<()>,
    ),
}

impl Runner {
    /// What it logged so far.
    fn events(&self) -> Vec<LogEvent> {
        match self {
            Runner::Ferry(_, log) => read_log(log),
            Runner::FixedRate(events, ..) => events.lock().expect("not poisoned").clone(),
        }
    }

    /// Panics, with the log, if Ferry stopped on its own.
    fn check_running(&mut self) {
        let stopped = match self {
            Runner::Ferry(ferry, _) => ferry.0.try_wait().ok().flatten().is_some(),
            Runner::FixedRate(.., thread) => thread.is_finished(),
        };
        assert!(!stopped, "Ferry stopped by itself: {:?}", self.events());
    }

    /// Stops Ferry; returns what it logged.
    async fn stop(self) -> Vec<LogEvent> {
        let events = self.events();
        // Waiting for a process or a thread blocks: off the runtime that serves the sandbox, or
        // a call Ferry still has in flight to it would wait for the very thread that waits.
        let stopped = tokio::task::spawn_blocking(move || match self {
            Runner::Ferry(ferry, _) => drop(ferry),
            Runner::FixedRate(_, stop, thread) => {
                let _ = stop.send(true);
                thread.join().expect("the fixed-rate loop ended");
            }
        });
        stopped.await.expect("Ferry stopped");
        events
    }
}

/// The engine change this benchmark measures against `ferry run`'s loop, built from the same
/// embedded runtime (`Runtime::poll`, `Runtime::push_batch`) on its own thread: each scheme polled
/// every `interval` counted from the start of its last poll, its queue pushed continuously beside
/// the polls, the schemes side by side. `ferry run` instead syncs one scheme at a time (poll, then
/// push until the queue is empty) and polls a scheme `interval` after its last sync ended.
fn fixed_rate(
    dir: &Path,
    schemes: Vec<(String, String)>,
    connectors: ferry_common::connector::ConnectorsConfig,
    interval: Duration,
) -> Runner {
    let events = Arc::new(Mutex::new(Vec::new()));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let store = dir.join("ferry.db");
    let log = events.clone();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let plans = schemes
                .iter()
                .map(|(file, text)| SchemePlan {
                    scheme: ferry_tests::load(file, text).expect("the scheme loads"),
                    start: None,
                })
                .collect();
            let clients = Clients::new(&connectors).expect("connectors");
            // The schemes' declared rate limits and the default tuning, as `ferry run` has them.
            let mut engine = Runtime::new(
                &store,
                plans,
                &clients,
                &HashMap::new(),
                Settings::default(),
            )
            .expect("the runtime opens");
            engine.settle_first_starts(true).await.expect("--from-now");
            let engine = &engine;
            let record = |scheme: &str, message: &str, window_end: Option<i64>, detail: String| {
                log.lock().expect("not poisoned").push(LogEvent {
                    at: Timestamp::now(),
                    scheme: scheme.to_owned(),
                    message: message.to_owned(),
                    window_end,
                    detail,
                });
            };
            let runs = (0..engine.schemes.len()).map(|index| {
                let (record, mut stop_polls, mut stop_pushes) =
                    (&record, stopped.clone(), stopped.clone());
                async move {
                    let scheme = engine.schemes[index].scheme.id();
                    let polls = async {
                        let mut next = tokio::time::Instant::now();
                        while !*stop_polls.borrow() {
                            let on_page = |page: &PageEvent| {
                                record(
                                    scheme,
                                    "page queued",
                                    Some(page.window.end.as_second()),
                                    String::new(),
                                );
                            };
                            match engine.poll(index, &on_page).await {
                                Ok(_) => record(scheme, "caught up", None, String::new()),
                                Err(error) => {
                                    eprintln!("{scheme}: {error}");
                                    record(scheme, "sync failed", None, error.to_string());
                                }
                            }
                            // Start to start; a poll longer than the interval is followed at once.
                            next = (next + interval).max(tokio::time::Instant::now());
                            tokio::select! {
                                _ = stop_polls.changed() => {}
                                _ = tokio::time::sleep_until(next) => {}
                            }
                        }
                    };
                    let pushes = async {
                        let mut tally = Tally::default();
                        while !*stop_pushes.borrow() {
                            // The same document events `ferry run` logs, for the slowest changes.
                            let on_document = |outcome: &DocumentOutcome| {
                                let (message, detail) = match outcome {
                                    DocumentOutcome::Pushed { key, .. } => ("pushed", key.clone()),
                                    DocumentOutcome::Retry { key, reason, .. } => {
                                        ("retry", format!("{key} {reason}"))
                                    }
                                    DocumentOutcome::Failed { key, reason }
                                    | DocumentOutcome::Conflict { key, reason }
                                    | DocumentOutcome::Blocked { key, reason } => {
                                        ("not pushed", format!("{key} {reason}"))
                                    }
                                    _ => return,
                                };
                                record(scheme, message, None, detail);
                            };
                            match engine.push_batch(index, &mut tally, &on_document).await {
                                Ok(true) => continue,
                                Ok(false) => {}
                                Err(error) => eprintln!("{scheme}: {error}"),
                            }
                            tokio::select! {
                                _ = stop_pushes.changed() => {}
                                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                            }
                        }
                    };
                    tokio::join!(polls, pushes);
                }
            });
            futures_util::future::join_all(runs).await;
        });
    });
    Runner::FixedRate(events, stop, thread)
}

/// One line of `ferry run`'s JSON log that the analysis reads (or the same, recorded in-process).
#[derive(Clone, Debug)]
struct LogEvent {
    at: Timestamp,
    scheme: String,
    /// `page queued` or `caught up`.
    message: String,
    /// A page's window end, unix seconds.
    window_end: Option<i64>,
    /// The document key and reason of a document's event (`pushed`, `retry`, `not pushed`).
    detail: String,
}

fn read_log(path: &Path) -> Vec<LogEvent> {
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| {
            let event: serde_json::Value = serde_json::from_str(&line).ok()?;
            let at: Timestamp = event["timestamp"].as_str()?.parse().ok()?;
            let window_end = event["window"]
                .as_str()
                .and_then(|w| w.split(" → ").nth(1))
                .and_then(|end| ferry_common::time::parse_source_datetime(end).ok())
                .map(|end| ferry_common::time::from_beijing(end).as_second());
            let field = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
            Some(LogEvent {
                at,
                scheme: event["scheme"].as_str()?.to_owned(),
                message: event["message"].as_str()?.to_owned(),
                window_end,
                detail: format!("{} {}", field("key"), field("reason")),
            })
        })
        .collect()
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(|a, b| a.total_cmp(b));
    values
}

fn secs(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64()
}

/// What one scheme of one configuration measured.
struct SchemeResult {
    scheme: &'static str,
    changes: usize,
    /// Of the received changes, edits of a synced document (the others created one).
    edits: usize,
    by_later: usize,
    /// The three slowest changes: seconds, and key, remark and when made (UTC).
    slowest: Vec<(f64, String)>,
    /// Change → receipt, seconds, sorted.
    latency: Vec<f64>,
    /// Change → the page queued that picked it up, sorted.
    to_pickup: Vec<f64>,
    /// Page queued → receipt, sorted.
    pickup_to_receipt: Vec<f64>,
    /// Between the starts of consecutive syncs, sorted.
    period: Vec<f64>,
    /// One sync, first page to caught up, sorted.
    sync: Vec<f64>,
    /// WDT calls during the live phase (one page queued per call).
    calls: u64,
}

impl SchemeResult {
    fn missing(&self) -> usize {
        self.changes - self.latency.len()
    }
}

/// What one configuration measured.
struct Outcome {
    setup: Setup,
    minutes: f64,
    wdt_calls: u64,
    /// WDT calls per minute in the second half of the live phase (lookbacks fuller).
    wdt_late_per_minute: f64,
    /// Target calls (saves and look-ups) from the first change until every change arrived.
    kingdee_calls: u64,
    yonyou_calls: u64,
    throttled: [u64; 3],
    schemes: Vec<SchemeResult>,
}

async fn measure(setup: Setup, seconds: f64, rate: f64, seed: u64) -> Outcome {
    let sandbox = Sandbox::start(SandboxConfig {
        seed,
        // The bench's changes are all new or edits of its own documents; the data set is history.
        documents: 10,
        limits: RateLimits::real(),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts");
    let dir = TempDir::new(&format!(
        "latency-{}",
        setup
            .name
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
    ));
    let mut entries = String::new();
    let mut schemes = Vec::new();
    for (n, (stem, _)) in SCHEMES.iter().enumerate() {
        let text =
            std::fs::read_to_string(ferry_tests::workspace().join(format!("schemes/{stem}.yaml")))
                .expect("bundled scheme");
        let file = format!("{stem}.yaml");
        let text = with_window(&text, setup.lookback[n], setup.settle[n], setup.interval);
        dir.write(&file, &text);
        entries.push_str(&format!("  - scheme: {file}\n"));
        schemes.push((file, text));
    }
    // The schemes' own rate limits (the vendors' published ones) and the default push tuning:
    // what a user's configuration has unless they change it.
    let config = dir.write(
        "ferry.yaml",
        &format!(
            "store: \"{}\"\nschemes:\n{entries}connectors: {}\n",
            dir.path().join("ferry.db").display(),
            ferry_tests::aws::connectors_secret(&sandbox),
        ),
    );
    let mut runner = match setup.how {
        How::FerryRun => {
            let log = dir.path().join("ferry.log");
            let child = Command::new(FERRY)
                .args(["run", &config, "--from-now", "--json"])
                // `debug` adds a line per document pushed (FERRY_LATENCY_LOG_LEVEL).
                .env(
                    "FERRY_LOG",
                    std::env::var("FERRY_LATENCY_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
                )
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("log file"))
                .spawn()
                .expect("ferry runs");
            Runner::Ferry(Ferry(child), log)
        }
        How::FixedRate => fixed_rate(
            dir.path(),
            schemes,
            sandbox.connectors(),
            Duration::from_secs_f64(setup.interval_s()),
        ),
    };
    // Started: both schemes synced once (connectors up, the first window read).
    let started = tokio::time::Instant::now();
    loop {
        let events = runner.events();
        let ready = SCHEMES.iter().all(|(stem, _)| {
            events
                .iter()
                .any(|e| e.scheme == *stem && e.message == "caught up")
        });
        if ready {
            break;
        }
        runner.check_running();
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{} never caught up: {events:?}",
            setup.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let live = sandbox.live(LiveConfig {
        rate,
        seed,
        ..LiveConfig::default()
    });
    let calls =
        |endpoints: &[Endpoint]| -> u64 { endpoints.iter().map(|e| sandbox.requests(*e)).sum() };
    let targets = |s: &Sandbox| {
        (
            s.requests(Endpoint::KingdeeSave) + s.requests(Endpoint::KingdeeLookup),
            s.requests(Endpoint::YonyouSave) + s.requests(Endpoint::YonyouLookup),
        )
    };
    let t0 = Timestamp::now();
    let (wdt0, targets0) = (calls(&[Endpoint::WdtQuery]), targets(&sandbox));
    tokio::time::sleep(Duration::from_secs_f64(seconds / 2.0)).await;
    let (t_half, wdt_half) = (Timestamp::now(), calls(&[Endpoint::WdtQuery]));
    tokio::time::sleep(Duration::from_secs_f64(seconds / 2.0)).await;
    let changes = live.stop().await;
    let t1 = Timestamp::now();
    let wdt1 = calls(&[Endpoint::WdtQuery]);

    // Time to arrive: a settle delay and three intervals (a period is the interval and the sync,
    // which a backlog at a slow target stretches), and two minutes of slack.
    let settle_max = setup.settle_s(0).max(setup.settle_s(1));
    let patience = Duration::from_secs_f64(settle_max + 3.0 * setup.interval_s() + 120.0);
    let draining = tokio::time::Instant::now();
    let pairs: Vec<Latency> = loop {
        let pairs = ferry_sandbox::latencies(&changes, &sandbox.receptions());
        if pairs.iter().all(|p| p.received.is_some()) || draining.elapsed() > patience {
            break pairs;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    runner.check_running();
    let events = runner.stop().await;
    // FERRY_LATENCY_LOGS=DIR keeps each configuration's log and changes for a closer look.
    if let Ok(keep) = std::env::var("FERRY_LATENCY_LOGS") {
        let name = setup
            .name
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-");
        let keep = Path::new(&keep);
        let _ = std::fs::create_dir_all(keep);
        let lines: Vec<String> = events
            .iter()
            .map(|e| {
                format!(
                    "{} {} {} {:?} {}",
                    e.at, e.scheme, e.message, e.window_end, e.detail
                )
            })
            .collect();
        let _ = std::fs::write(keep.join(format!("{name}.events")), lines.join("\n"));
        let pairs: Vec<String> = ferry_sandbox::latencies(&changes, &sandbox.receptions())
            .iter()
            .map(|p| serde_json::to_string(p).expect("serialisable"))
            .collect();
        let _ = std::fs::write(keep.join(format!("{name}.changes")), pairs.join("\n"));
    }
    let targets_end = targets(&sandbox);

    let schemes = SCHEMES
        .iter()
        .map(|(stem, kind)| {
            let ours: Vec<&LogEvent> = events.iter().filter(|e| e.scheme == *stem).collect();
            let pages: Vec<&LogEvent> = ours
                .iter()
                .copied()
                .filter(|e| e.message == "page queued")
                .collect();
            // Syncs: from the first page after a "caught up" to the next "caught up".
            let (mut starts, mut sync) = (Vec::new(), Vec::new());
            let mut open: Option<Timestamp> = None;
            for e in &ours {
                match (e.message.as_str(), open) {
                    ("page queued", None) => {
                        open = Some(e.at);
                        if e.at >= t0 && e.at <= t1 {
                            starts.push(e.at);
                        }
                    }
                    ("caught up", Some(start)) => {
                        if start >= t0 && start <= t1 {
                            sync.push(secs(start, e.at));
                        }
                        open = None;
                    }
                    // A failed sync (a source refusal, say) is retried at the next interval.
                    ("sync failed", _) => open = None,
                    _ => {}
                }
            }
            let period = starts.windows(2).map(|w| secs(w[0], w[1])).collect();
            let mut result = SchemeResult {
                scheme: stem,
                changes: 0,
                edits: 0,
                by_later: 0,
                slowest: Vec::new(),
                latency: Vec::new(),
                to_pickup: Vec::new(),
                pickup_to_receipt: Vec::new(),
                period: sorted(period),
                sync: sorted(sync),
                calls: pages.iter().filter(|e| e.at >= t0 && e.at <= t1).count() as u64,
            };
            for pair in pairs.iter().filter(|p| p.change.kind == *kind) {
                result.changes += 1;
                let (Some(received), Some(latency)) = (pair.received, pair.seconds()) else {
                    continue;
                };
                result.latency.push(latency);
                result.slowest.push((
                    latency,
                    format!(
                        "{} {} at {}",
                        pair.change.key,
                        pair.change.mark,
                        pair.change.at.strftime("%H:%M:%S")
                    ),
                ));
                result.edits += usize::from(!pair.change.created);
                if pair.by_later {
                    // Its document moved on before a poll read it: which poll took it is unclear.
                    result.by_later += 1;
                    continue;
                }
                let pickup = pages.iter().find(|e| {
                    e.at >= pair.change.at
                        && e.window_end.is_some_and(|w| w >= pair.change.modified)
                });
                if let Some(pickup) = pickup {
                    result.to_pickup.push(secs(pair.change.at, pickup.at));
                    result.pickup_to_receipt.push(secs(pickup.at, received));
                }
            }
            result.latency = sorted(result.latency);
            result.slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
            result.slowest.truncate(3);
            result.to_pickup = sorted(result.to_pickup);
            result.pickup_to_receipt = sorted(result.pickup_to_receipt);
            result
        })
        .collect();
    Outcome {
        minutes: secs(t0, t1) / 60.0,
        wdt_calls: wdt1 - wdt0,
        wdt_late_per_minute: (wdt1 - wdt_half) as f64 / (secs(t_half, t1) / 60.0),
        kingdee_calls: targets_end.0 - targets0.0,
        yonyou_calls: targets_end.1 - targets0.1,
        throttled: [
            sandbox.throttled("wdt"),
            sandbox.throttled("kingdee"),
            sandbox.throttled("yonyou"),
        ],
        schemes,
        setup,
    }
}

/// WDT calls a minute once the lookback is full of changes at `rate` (a run shorter than its
/// lookback never gets there): each poll reads `rate × (lookback + period)` documents, one call
/// for a single page, pages + 1 otherwise (page 0 is read again), every `period`.
fn steady_calls(rate_per_scheme: f64, lookback: f64, period: f64) -> f64 {
    let documents = rate_per_scheme * (lookback + period);
    let pages = (documents / 100.0).ceil().max(1.0);
    let per_poll = if pages <= 1.0 { 1.0 } else { pages + 1.0 };
    per_poll * 60.0 / period
}

fn print(outcome: &Outcome, rate: f64) {
    let setup = &outcome.setup;
    println!(
        "\n[{}] {}, interval {}, settle_delay {} / {}, lookback {} / {} (orders / stock-outs), {:.1} min of changes",
        setup.name,
        match setup.how {
            How::FerryRun => "ferry run",
            How::FixedRate => "fixed-rate loop",
        },
        setup.interval,
        setup.settle[0],
        setup.settle[1],
        setup.lookback[0],
        setup.lookback[1],
        outcome.minutes
    );
    println!(
        "  {:<24} {:>7} {:>5} {:>8} {:>6} {:>6} {:>6} | {:>13} | {:>13} | {:>13} | {:>11}",
        "seconds",
        "changes",
        "edits",
        "received",
        "p50",
        "p99",
        "max",
        "to pick-up",
        "then receipt",
        "poll period",
        "sync",
    );
    println!(
        "  {:<24} {:>7} {:>5} {:>8} {:>6} {:>6} {:>6} | {:>13} | {:>13} | {:>13} | {:>11}",
        "", "", "", "", "", "", "", "p50 / p99", "p50 / p99", "p50 / max", "p50 / max",
    );
    let mut steady = 0.0;
    for (n, s) in outcome.schemes.iter().enumerate() {
        println!(
            "  {:<24} {:>7} {:>5} {:>8} {:>6.1} {:>6.1} {:>6.1} | {:>5.1} / {:>5.1} | {:>5.1} / {:>5.1} | {:>5.1} / {:>5.1} | {:>4.1} / {:>4.1}",
            s.scheme,
            s.changes,
            s.edits,
            s.latency.len(),
            percentile(&s.latency, 0.50),
            percentile(&s.latency, 0.99),
            s.latency.last().copied().unwrap_or(f64::NAN),
            percentile(&s.to_pickup, 0.50),
            percentile(&s.to_pickup, 0.99),
            percentile(&s.pickup_to_receipt, 0.50),
            percentile(&s.pickup_to_receipt, 0.99),
            percentile(&s.period, 0.50),
            s.period.last().copied().unwrap_or(f64::NAN),
            percentile(&s.sync, 0.50),
            s.sync.last().copied().unwrap_or(f64::NAN),
        );
        let slowest: Vec<String> = s
            .slowest
            .iter()
            .map(|(seconds, what)| format!("{seconds:.1} s {what}"))
            .collect();
        println!("  {:<24} slowest: {}", "", slowest.join("; "));
        if s.by_later > 0 || s.missing() > 0 {
            println!(
                "  {:<24} {} arrived with a later edit of their document, {} never arrived",
                "",
                s.by_later,
                s.missing()
            );
        }
        // A run shorter than two periods measures none: the interval and the sync then.
        let period = match percentile(&s.period, 0.5) {
            p if p.is_finite() => p,
            _ => setup.interval_s() + percentile(&s.sync, 0.5).max(0.0),
        };
        steady += steady_calls(rate / 2.0, setup.lookback_s(n), period);
    }
    let per_scheme: Vec<String> = outcome
        .schemes
        .iter()
        .map(|s| format!("{} {:.1}", s.scheme, s.calls as f64 / outcome.minutes))
        .collect();
    println!(
        "  WDT calls/min (the vendor allows 60): {:.1} while changing ({}), {:.1} in the second half; {:.0} once the lookbacks are full (computed)",
        outcome.wdt_calls as f64 / outcome.minutes,
        per_scheme.join(", "),
        outcome.wdt_late_per_minute,
        steady
    );
    let per_change = |calls: u64, kind: Kind| {
        let changes = outcome
            .schemes
            .iter()
            .zip(SCHEMES)
            .filter(|(_, (_, k))| *k == kind)
            .map(|(s, _)| s.changes)
            .sum::<usize>();
        calls as f64 / changes.max(1) as f64
    };
    println!(
        "  target calls per change: Kingdee {:.2}, Yonyou {:.2}; throttled: WDT {}, Kingdee {}, Yonyou {}",
        per_change(outcome.kingdee_calls, Kind::Order),
        per_change(outcome.yonyou_calls, Kind::Stockout),
        outcome.throttled[0],
        outcome.throttled[1],
        outcome.throttled[2],
    );
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<f64>().ok());
    let rate = env("FERRY_LATENCY_RATE").unwrap_or(if bench { 0.5 } else { 2.0 });
    let seconds = env("FERRY_LATENCY_SECONDS").unwrap_or(if bench { 600.0 } else { 4.0 });
    let setups: Vec<Setup> = if bench {
        let only = std::env::var("FERRY_LATENCY_CONFIGS").unwrap_or_default();
        setups()
            .into_iter()
            .filter(|s| only.split(',').any(|o| s.name.contains(o.trim())))
            .collect()
    } else {
        // A poll every 3 s: both schemes stay under WDT's 60 calls a minute.
        [
            ("smoke, 3 s", How::FerryRun),
            ("smoke, 3 s, fixed-rate loop", How::FixedRate),
        ]
        .into_iter()
        .map(|(name, how)| Setup {
            name,
            interval: "3s",
            settle: ["0s", "0s"],
            lookback: ["1m", "1m"],
            how,
        })
        .collect()
    };
    println!(
        "latency benchmark: {rate} changes/s (half orders, half stock-outs; half new, half edits) for {seconds} s per configuration, {} configurations side by side, from now on, the vendors' real limits",
        setups.len()
    );
    // Each configuration on threads of its own (its sandbox, live mode and analysis): a slow
    // moment in one never delays another's answers.
    let runs: Vec<_> = setups
        .into_iter()
        .enumerate()
        .map(|(n, setup)| {
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime")
                    .block_on(measure(setup, seconds, rate, 7 + n as u64))
            })
        })
        .collect();
    let outcomes: Vec<Outcome> = runs
        .into_iter()
        .map(|run| run.join().expect("a configuration ran"))
        .collect();
    for outcome in &outcomes {
        print(outcome, rate);
    }
    if !bench {
        for smoke in &outcomes {
            let name = smoke.setup.name;
            for s in &smoke.schemes {
                assert!(s.changes > 0, "{name}, {}: nothing changed", s.scheme);
                assert_eq!(s.missing(), 0, "{name}, {}: every change arrives", s.scheme);
                let max = s.latency.last().copied().unwrap_or(f64::NAN);
                assert!(max < 20.0, "{name}, {}: slowest took {max:.1} s", s.scheme);
            }
            assert!(smoke.wdt_calls > 0, "{name}: the source was polled");
            assert_eq!(smoke.throttled, [0, 0, 0], "{name}: never throttled");
        }
    }
}
