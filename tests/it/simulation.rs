//! Ferry on AWS under Lambda's rules and the vendors' real limits, time scaled: the poll and push
//! functions' own `main.rs` run as processes under a Runtime API emulator that kills them at their
//! deadline; an event source mapping feeds them from moto's SQS (batch size, batching window,
//! maximum concurrency, visibility, `maxReceiveCount`); EventBridge's ticks invoke poll; the
//! sandbox enforces the vendors' real per-minute limits over a minute shortened `k` times, and every
//! timing of the deployment (timeouts, visibility, claim TTL, backoff, leases) is shortened `k`
//! times with it. Each scenario ends with every document in its target exactly once with its
//! latest content, no dead letter, and the functions' metrics saying what happened.
//!
//! What is not scaled: the schemes' settle delays (1–2 minutes, in the bundled scheme files), so
//! source edits are stamped at the settle horizon (as if made just long enough ago); WDT's and
//! Yonyou's own throttling waits (1 s); SQS's whole-second visibility and delays.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ferry_sandbox::{Endpoint, Fault, Kind, RateLimits, Sandbox};
use ferry_tests::aws::{AwsWorld, depth};
use ferry_tests::lambda::{
    Function, FunctionSpec, MappingSpec, MappingStats, run_mapping, run_schedule,
};
use ferry_tests::{scheme, spawn_sandbox};
use tokio::sync::watch;

const TRADES: &str = "wdt-trades-to-kingdee";
const STOCKOUTS: &str = "wdt-stockouts-to-yonyou";

/// A deployment's timing, shortened `k` times.
#[derive(Clone, Copy, Debug)]
struct Scale {
    k: f64,
}

impl Scale {
    /// A real duration, shortened.
    fn of(&self, real: Duration) -> Duration {
        real.div_f64(self.k)
    }

    /// A real duration in seconds, shortened, as the functions' environment writes it.
    fn env(&self, real_secs: f64) -> String {
        format!(
            "{}ms",
            (real_secs * 1000.0 / self.k).round().max(1.0) as u64
        )
    }

    /// A per-minute limit, over the shortened minute.
    fn per_minute(&self, limit: u32) -> u32 {
        (f64::from(limit) * self.k) as u32
    }
}

/// The template's settings (docs/aws.md), in real seconds.
const PUSH_TIMEOUT: f64 = 60.0;
const POLL_TIMEOUT: f64 = 300.0;
const SCHEDULE: f64 = 300.0;
const PUSH_CONCURRENCY: usize = 2;
const MAX_RECEIVES: u32 = 8;

/// One scenario's world: the sandbox, moto's table and queues, the two functions and what drives
/// them.
struct Simulation {
    sandbox: Sandbox,
    world: AwsWorld,
    scale: Scale,
    poll: Arc<Function>,
    push: Arc<Function>,
    mappings: Vec<Arc<MappingStats>>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// This scenario's turn: one simulation at a time (see [`TURN`]).
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// Scenarios take turns. Each runs Lambda processes on a clock shortened 60 times, where a
/// production function has its own CPU: two scenarios side by side on two cores starve each
/// other's functions past their scaled deadlines, which measures the test machine, not Ferry.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How much shorter than real every timing and limit is: a push timeout of 1 s is as short as it
/// goes (the functions refuse shorter ones: their half-second flush would leave no document's worth).
const K: f64 = 60.0;

/// What a scenario sets.
#[derive(Clone, Copy)]
struct Setup {
    /// Orders in the sandbox (and as many stock-outs).
    documents: u64,
    /// The share of push invocations killed at a random instant.
    push_kill_rate: f64,
}

impl Setup {
    fn documents(documents: u64) -> Setup {
        Setup {
            documents,
            push_kill_rate: 0.0,
        }
    }
}

impl Simulation {
    async fn start(setup: Setup, adjust: impl FnOnce(&mut ferry_sandbox::SandboxConfig)) -> Self {
        let turn = TURN.lock().await;
        let scale = Scale { k: K };
        let sandbox = spawn_sandbox(setup.documents, |config| {
            // The vendors' real limits, over a minute shortened k times.
            config.limits = RateLimits::real();
            config.rate_window = scale.of(Duration::from_secs(60));
            config.default_page_size = 100;
            adjust(config);
        })
        .await;
        let push_timeout = scale.of(Duration::from_secs_f64(PUSH_TIMEOUT));
        let world = AwsWorld::with_visibility(&sandbox, MAX_RECEIVES, push_timeout * 6).await;
        let start = sandbox.source(|s| s.first_time());
        let mut env = world.function_env();
        env.extend(
            [
                ("FERRY_PUSH_CONCURRENCY", PUSH_CONCURRENCY.to_string()),
                (
                    "FERRY_RATE_LIMITS",
                    format!(
                        "kingdee={},yonyou={}",
                        scale.per_minute(500),
                        scale.per_minute(60)
                    ),
                ),
                ("FERRY_START", start),
                ("FERRY_PUSH_TIMEOUT", scale.env(PUSH_TIMEOUT)),
                ("FERRY_CLAIM_TTL", scale.env(300.0)),
                ("FERRY_RETRY_MIN", scale.env(5.0)),
                ("FERRY_RETRY_MAX", scale.env(300.0)),
                ("FERRY_POLL_LEASE", scale.env(60.0)),
                ("FERRY_SECRET_REFRESH", scale.env(300.0)),
                ("FERRY_LOG", "info".to_owned()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        let poll = Function::new(FunctionSpec {
            name: "ferry-poll".into(),
            binary: env!("CARGO_BIN_EXE_lambda-poll").into(),
            timeout: scale.of(Duration::from_secs_f64(POLL_TIMEOUT)),
            env: env.clone(),
            // Polls are killed by their own slow pages, when a scenario makes some.
            kill_rate: 0.0,
        });
        let push = Function::new(FunctionSpec {
            name: "ferry-push".into(),
            binary: env!("CARGO_BIN_EXE_lambda-push").into(),
            timeout: push_timeout,
            env,
            kill_rate: setup.push_kill_rate,
        });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut mappings = Vec::new();
        // The template's mappings: a batch about one invocation's work at the target's pace
        // (Yonyou one message, Kingdee two); a second's batching window.
        for (connector, batch_size) in [("kingdee", 2), ("yonyou", 1)] {
            let pair = &world.queues[connector];
            let stats = Arc::new(MappingStats::default());
            mappings.push(stats.clone());
            tasks.push(tokio::spawn(run_mapping(
                world.sqs(),
                MappingSpec {
                    url: pair.url.clone(),
                    arn: pair.arn.clone(),
                    batch_size,
                    batching_window: scale.of(Duration::from_secs(1)),
                    maximum_concurrency: PUSH_CONCURRENCY,
                },
                push.clone(),
                stats,
                stopped.clone(),
            )));
        }
        tasks.push(tokio::spawn(run_schedule(
            poll.clone(),
            vec![TRADES.into(), STOCKOUTS.into()],
            scale.of(Duration::from_secs_f64(SCHEDULE)),
            stopped,
        )));
        Simulation {
            _turn: turn,
            sandbox,
            world,
            scale,
            poll,
            push,
            mappings,
            stop,
            tasks,
        }
    }

    /// Now less the schemes' longest settle delay: where an edit must be stamped to be polled next.
    fn settled_now(&self) -> i64 {
        jiff::Timestamp::now().as_second() - 125
    }

    /// Waits until both targets hold every document exactly once with its latest content and the
    /// queues are empty, or `patience` runs out; then stops everything and checks the dead-letter
    /// queues.
    async fn finish(self, patience: Duration) -> Outcome {
        let trades = scheme(TRADES);
        let stockouts = scheme(STOCKOUTS);
        let sqs = self.world.sqs();
        let started = tokio::time::Instant::now();
        let clean = loop {
            let mut waiting = 0;
            for pair in self.world.queues.values() {
                waiting += depth(&sqs, &pair.url).await;
            }
            // Verifying maps every document: only once the queues are empty.
            if waiting == 0
                && self.sandbox.verify(&trades).is_clean()
                && self.sandbox.verify(&stockouts).is_clean()
            {
                break true;
            }
            if started.elapsed() > patience {
                let (a, b) = (
                    self.sandbox.verify(&trades),
                    self.sandbox.verify(&stockouts),
                );
                eprintln!("after {patience:?}: {waiting} messages queued\n{a:#?}\n{b:#?}");
                break false;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        self.stop.send_replace(true);
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
        let mut dead_letters = 0;
        for pair in self.world.queues.values() {
            dead_letters += depth(&sqs, &pair.dead_letter_url).await;
        }
        let outcome = Outcome {
            clean,
            took: started.elapsed(),
            dead_letters,
            trades: self.sandbox.verify(&trades),
            stockouts: self.sandbox.verify(&stockouts),
            push: self.push.metrics(),
            poll: self.poll.metrics(),
            push_timeouts: self.push.stats.timeouts.load(Ordering::Relaxed)
                + self.push.stats.killed.load(Ordering::Relaxed),
            poll_timeouts: self.poll.stats.timeouts.load(Ordering::Relaxed)
                + self.poll.stats.killed.load(Ordering::Relaxed),
            push_errors: self.push.stats.errors.load(Ordering::Relaxed),
            abandoned: self
                .mappings
                .iter()
                .map(|m| m.abandoned.load(Ordering::Relaxed))
                .sum(),
            kingdee_authorisations: self.sandbox.requests(Endpoint::KingdeeAuthorize),
            scale: self.scale,
        };
        eprintln!("{}", outcome.summary());
        for (name, function) in [("push", &self.push), ("poll", &self.poll)] {
            for lines in function.kills.lock().unwrap().iter().take(3) {
                eprintln!("{name} killed at its deadline after: {lines:#?}");
            }
        }
        if !outcome.clean {
            let mut durations = self.push.metric_values("PushBatchDuration");
            durations.sort_by(f64::total_cmp);
            eprintln!(
                "push batch durations (ms): median {:?}, max {:?} of {}",
                durations.get(durations.len() / 2),
                durations.last(),
                durations.len()
            );
            for line in self.push.lines_with("\"level\":\"ERROR\"").iter().take(10) {
                eprintln!("push: {line}");
            }
            for line in self.poll.lines_with("\"level\":\"ERROR\"").iter().take(10) {
                eprintln!("poll: {line}");
            }
        }
        outcome
    }
}

/// How a scenario ended.
struct Outcome {
    clean: bool,
    took: Duration,
    dead_letters: u64,
    trades: ferry_sandbox::Verification,
    stockouts: ferry_sandbox::Verification,
    push: std::collections::HashMap<String, f64>,
    poll: std::collections::HashMap<String, f64>,
    push_timeouts: u64,
    poll_timeouts: u64,
    push_errors: u64,
    abandoned: u64,
    kingdee_authorisations: u64,
    scale: Scale,
}

impl Outcome {
    fn metric(&self, name: &str) -> f64 {
        self.push
            .get(name)
            .or_else(|| self.poll.get(name))
            .copied()
            .unwrap_or(0.0)
    }

    fn summary(&self) -> String {
        format!(
            "simulation (time ×{}): {} in {:.1?}; trades {}/{} found, stock-outs {}/{} found; \
             {} dead letters; push: {} pushed, {} retried, {} handed back, {} deferred at the \
             deadline, {} credential refusals, {} throttled calls; {} push and {} poll \
             invocations killed, {} push errors, {} batches abandoned; poll: {} windows unverified",
            self.scale.k,
            if self.clean { "clean" } else { "NOT CLEAN" },
            self.took,
            self.trades.found,
            self.trades.expected,
            self.stockouts.found,
            self.stockouts.expected,
            self.dead_letters,
            self.metric("DocumentsPushed"),
            self.metric("DocumentsRetried"),
            self.metric("MessagesHandedBack"),
            self.metric("DocumentsDeferred"),
            self.metric("CredentialRefusals"),
            self.metric("ThrottledCalls"),
            self.push_timeouts,
            self.poll_timeouts,
            self.push_errors,
            self.abandoned,
            self.metric("WindowsUnverified"),
        )
    }

    /// Everything synced, nothing dead-lettered.
    fn assert_clean(&self) {
        assert!(self.clean, "{}", self.summary());
        for v in [&self.trades, &self.stockouts] {
            assert_eq!(
                (v.missing, v.duplicated, v.stale, v.unknown),
                (0, 0, 0, 0),
                "{v:#?}"
            );
        }
        assert_eq!(self.dead_letters, 0, "{}", self.summary());
    }
}

/// Steady flow: documents created and edited while the schedule ticks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_flow() {
    let sim = Simulation::start(Setup::documents(200), |_| {}).await;
    // Half a scaled hour of edits and late commits, a few every scaled minute.
    for round in 0..30u32 {
        let now = sim.settled_now();
        sim.sandbox.source(|s| {
            for i in 0..4 {
                let index = (round * 7 + i * 13) % 200;
                s.modify(Kind::Order, index, now);
                s.modify(Kind::Stockout, index, now);
            }
            s.commit_late(Kind::Order, 0, now);
            s.commit_late(Kind::Stockout, 0, now);
        });
        tokio::time::sleep(sim.scale.of(Duration::from_secs(60))).await;
    }
    let outcome = sim.finish(Duration::from_secs(90)).await;
    outcome.assert_clean();
    assert!(outcome.metric("DocumentsPushed") >= 400.0);
}

/// A backlog of stock-outs and orders: Yonyou's 60 saves a minute makes it many invocations'
/// work, each stopping at its deadline and handing the rest back. 1,000 of each by default
/// (`FERRY_SIM_BACKLOG=5000` for the 5,000: moto, one request at a time, saturates there
/// and turns every store call slow, so that run measures the emulator more than Ferry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog() {
    let documents = std::env::var("FERRY_SIM_BACKLOG")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000);
    let sim = Simulation::start(Setup::documents(documents), |_| {}).await;
    let outcome = sim.finish(Duration::from_secs(600)).await;
    outcome.assert_clean();
    assert_eq!(outcome.trades.found, documents);
    assert_eq!(outcome.stockouts.found, documents);
    // Yonyou's pace made it many invocations' work, each stopping at its deadline.
    assert!(
        outcome.metric("DocumentsDeferred") > 0.0,
        "{}",
        outcome.summary()
    );
}

/// Yonyou answers nothing but 5xx for two (scaled) hours: the stock-outs wait, handed back with
/// backoff, and go through once it is back; nothing is dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yonyou_outage() {
    let sim = Simulation::start(Setup::documents(300), |_| {}).await;
    for endpoint in [
        Endpoint::YonyouSave,
        Endpoint::YonyouLookup,
        Endpoint::YonyouToken,
    ] {
        sim.sandbox
            .faults()
            .set_rate(endpoint, Fault::ServerError, 1.0);
    }
    tokio::time::sleep(sim.scale.of(Duration::from_secs(2 * 3600))).await;
    sim.sandbox.faults().clear();
    let outcome = sim.finish(Duration::from_secs(90)).await;
    outcome.assert_clean();
    assert!(
        outcome.metric("DocumentsRetried") > 0.0 && outcome.metric("MessagesHandedBack") > 0.0,
        "{}",
        outcome.summary()
    );
}

/// Kingdee's tenant app secret is rotated mid-run (every 24 hours in production) and the tokens
/// fetched with the old one end: the client pulls the authorisation again, pushing carries on, and
/// no document fails or waits for a person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kingdee_rotation() {
    let sim = Simulation::start(Setup::documents(300), |_| {}).await;
    // Rotated once the first bills are in, with orders edited since that need the new secret.
    while sim.sandbox.kingdee_bills().len() < 30 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sim.sandbox.rotate_kingdee_app_secret();
    sim.sandbox.expire_tokens();
    let now = sim.settled_now();
    sim.sandbox.source(|s| {
        for index in 0..50 {
            s.modify(Kind::Order, index, now);
        }
    });
    let outcome = sim.finish(Duration::from_secs(90)).await;
    outcome.assert_clean();
    // The rotated secret was pulled from the authorisation (once per execution environment).
    assert!(outcome.kingdee_authorisations >= 1);
    assert_eq!(outcome.metric("DocumentsFailed"), 0.0);
    assert_eq!(outcome.metric("CredentialRefusals"), 0.0);
}

/// Pollers killed at their deadline in the middle of a slow source page, and pushers killed at any
/// instant of their work (what Lambda's kill at the deadline is to code that runs late): every
/// document still ends in its target exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_the_deadline() {
    let setup = Setup {
        push_kill_rate: 0.25,
        ..Setup::documents(400)
    };
    let scale = Scale { k: K };
    let sim = Simulation::start(setup, |config| {
        // A slow WDT page outlasts the poll function's whole timeout.
        config.slow = scale.of(Duration::from_secs_f64(POLL_TIMEOUT)) * 2;
    })
    .await;
    sim.sandbox
        .faults()
        .set_rate(Endpoint::WdtQuery, Fault::Slow, 0.1);
    let outcome = sim.finish(Duration::from_secs(180)).await;
    outcome.assert_clean();
    assert!(outcome.push_timeouts > 0, "{}", outcome.summary());
    assert!(outcome.poll_timeouts > 0, "{}", outcome.summary());
}

/// Timings that cannot work together stop the function at start, each problem named (Lambda
/// reports it as an init error): a claim shorter than the push timeout, visibility under 6 ×.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_that_cannot_work_together_stop_the_function_at_start() {
    let sandbox = spawn_sandbox(10, |_| {}).await;
    let world = AwsWorld::with_visibility(&sandbox, MAX_RECEIVES, Duration::from_secs(30)).await;
    let mut env = world.function_env();
    env.extend(
        [("FERRY_PUSH_TIMEOUT", "60s"), ("FERRY_CLAIM_TTL", "60s")]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let push = Function::new(FunctionSpec {
        name: "ferry-push".into(),
        binary: env!("CARGO_BIN_EXE_lambda-push").into(),
        timeout: Duration::from_secs(60),
        env,
        kill_rate: 0.0,
    });
    let answer = push.invoke(serde_json::json!({ "Records": [] })).await;
    let ferry_tests::lambda::Invoked::Error(reason) = answer else {
        panic!("the function started: {answer:?}");
    };
    for problem in [
        "timing settings cannot work together",
        "the claim TTL (60s) must be longer than the push function's timeout (60s)",
        "the kingdee queue's visibility timeout (30s) is under six times",
        "the yonyou queue's visibility timeout (30s) is under six times",
    ] {
        assert!(reason.contains(problem), "'{problem}' not in {reason}");
    }
}
