//! The sync engine's benchmark: sandbox to sandbox on the embedded default.
//!
//! 1. Throughput: N orders (100,000 by default; `FERRY_BENCH_ORDERS`) through poll → SQLite queue →
//!    push → Kingdee stand-in, no artificial latency and no pacing. Documents per second, and CPU
//!    microseconds per document in the push path (push runs on its own single-threaded runtime, whose
//!    thread's CPU clock is read per batch; the sandbox runs on other threads). Baselines, side by
//!    side: the bare Kingdee client saving the same mapped bodies at the same concurrency, no engine;
//!    and the bare client parsing and mapping each order before saving it (the least any
//!    integration does), so the engine's own share shows.
//! 2. Rate: the Kingdee stand-in limited to a rate; achieved rate as a fraction of the limit, and the
//!    calls it refused as throttled.
//! 3. Source calls per 1,000 documents in the bulk run, per scheme (pages of 100).
//!
//! `cargo bench -p ferry-tests --bench pipeline`. Under `cargo test` (no `--bench` argument) it runs
//! a small smoke round (1,000 orders) that checks every document was pushed and none was throttled.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_common::Scheme;
use ferry_common::connector::Clients;
use ferry_common::connector::HttpSettings;
use ferry_common::connector::kingdee::KingdeeClient;
use ferry_common::embedded::{Runtime, SchemePlan, Settings, Tally};
use ferry_sandbox::{RateLimits, Sandbox, SandboxConfig};
use futures_util::StreamExt;

// The same allocator as the `ferry` binary, whose push path this measures.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    #[allow(unsafe_code)]
    unsafe {
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts)
    };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn scheme(stem: &str) -> Scheme {
    let path = ferry_tests::workspace().join(format!("schemes/{stem}.yaml"));
    let text = std::fs::read_to_string(path).unwrap();
    ferry_tests::load(&format!("schemes/{stem}.yaml"), &text).unwrap()
}

fn unlimited() -> RateLimits {
    RateLimits {
        wdt: u32::MAX,
        kingdee: u32::MAX,
        kingdee_token: 100,
        yonyou: u32::MAX,
        yonyou_token: 100,
    }
}

/// Starts a sandbox on its own runtime (its own threads), so push's thread measures only Ferry.
fn sandbox_thread(
    config: SandboxConfig,
) -> (
    Arc<Sandbox>,
    std::thread::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let sandbox = Arc::new(Sandbox::start(config).await.unwrap());
            ready_tx.send(sandbox.clone()).unwrap();
            let _ = stop_rx.await;
        });
    });
    (ready_rx.recv().unwrap(), handle, stop_tx)
}

struct Throughput {
    docs: u64,
    seconds: f64,
    cpu_us_per_doc: f64,
    calls: HashMap<String, (u64, u64)>,
}

fn throughput(orders: u64, dir: &std::path::Path) -> Throughput {
    let (sandbox, handle, stop) = sandbox_thread(SandboxConfig {
        documents: orders,
        limits: unlimited(),
        ..SandboxConfig::default()
    });
    let start = sandbox.source(|s| s.first_time());
    // No pacing: no rate limit at all.
    let plans = ["wdt-trades-to-kingdee", "wdt-stockouts-to-yonyou"]
        .into_iter()
        .map(|stem| {
            let mut scheme = scheme(stem);
            scheme.push.rate_limit = None;
            SchemePlan {
                scheme,
                start: Some(start.clone()),
            }
        })
        .collect();
    let clients = Clients::new(&sandbox.connectors()).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    let engine = Runtime::new(
        &dir.join("ferry.db"),
        plans,
        &clients,
        &HashMap::new(),
        Settings::default(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut calls = HashMap::new();
    let (docs, seconds, cpu) = rt.block_on(async {
        // Poll both schemes first (source calls counted), then push the orders, batch by batch.
        for index in 0..engine.schemes.len() {
            let report = engine.poll(index, &|_| {}).await.unwrap();
            calls.insert(
                engine.schemes[index].scheme.id().to_owned(),
                (report.calls, report.documents),
            );
        }
        let mut tally = Tally::default();
        let mut per_batch = Vec::new();
        let started = Instant::now();
        loop {
            let (cpu0, done0) = (thread_cpu(), tally.pushed());
            if !engine.push_batch(0, &mut tally, &|_| {}).await.unwrap() {
                break;
            }
            let n = tally.pushed() - done0;
            if n > 0 {
                per_batch.push((thread_cpu() - cpu0).as_secs_f64() * 1e6 / n as f64);
            }
        }
        (
            tally.pushed(),
            started.elapsed().as_secs_f64(),
            median(per_batch),
        )
    });
    let _ = stop.send(());
    handle.join().unwrap();
    Throughput {
        docs,
        seconds,
        cpu_us_per_doc: cpu,
        calls,
    }
}

/// The bare client saving the orders at the engine's concurrency, no engine: what the engine adds
/// on top. `map_too`: each order's source text is parsed and mapped in the loop (the least any
/// integration does per document); otherwise the bodies are mapped before the clock starts.
fn baseline(orders: u64, map_too: bool) -> (f64, f64) {
    let (sandbox, handle, stop) = sandbox_thread(SandboxConfig {
        documents: orders,
        limits: unlimited(),
        ..SandboxConfig::default()
    });
    let scheme = scheme("wdt-trades-to-kingdee");
    let texts: Vec<String> = (0..orders as u32)
        .map(|i| {
            sandbox
                .source(|s| s.document(ferry_sandbox::Kind::Order, i))
                .to_string()
        })
        .collect();
    let map = |text: &str| {
        scheme
            .mapper
            .map(&scheme.mapper.parse(text).unwrap())
            .unwrap()
    };
    let bodies: Vec<serde_json::Value> = if map_too {
        Vec::new()
    } else {
        texts.iter().map(|t| map(t)).collect()
    };
    let client = KingdeeClient::new(sandbox.kingdee_config(), HttpSettings::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (seconds, cpu) = rt.block_on(async {
        let started = Instant::now();
        let mut per_batch = Vec::new();
        for (index, chunk) in texts.chunks(1000).enumerate() {
            let cpu0 = thread_cpu();
            futures_util::stream::iter(chunk.iter().enumerate())
                .map(|(i, text)| {
                    let (client, map, bodies) = (&client, &map, &bodies);
                    async move {
                        if map_too {
                            client.save_order(&map(text)).await
                        } else {
                            client.save_order(&bodies[index * 1000 + i]).await
                        }
                    }
                })
                .buffer_unordered(scheme.push.concurrency)
                .for_each(|r| async {
                    r.unwrap();
                })
                .await;
            per_batch.push((thread_cpu() - cpu0).as_secs_f64() * 1e6 / chunk.len() as f64);
        }
        (started.elapsed().as_secs_f64(), median(per_batch))
    });
    let _ = stop.send(());
    handle.join().unwrap();
    (orders as f64 / seconds, cpu)
}

fn rate_limited(limit_per_minute: u32, orders: u64, dir: &std::path::Path) -> (f64, u64, u64) {
    let mut limits = unlimited();
    limits.kingdee = limit_per_minute / 6;
    // A 10-second window at a sixth of the per-minute limit: the same rate, measured sooner.
    let (sandbox, handle, stop) = sandbox_thread(SandboxConfig {
        documents: orders,
        limits,
        rate_window: Duration::from_secs(10),
        ..SandboxConfig::default()
    });
    let start = sandbox.source(|s| s.first_time());
    let clients = Clients::new(&sandbox.connectors()).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    let overrides = HashMap::from([("kingdee".to_owned(), limit_per_minute)]);
    let engine = Runtime::new(
        &dir.join("ferry.db"),
        vec![SchemePlan {
            scheme: scheme("wdt-trades-to-kingdee"),
            start: Some(start),
        }],
        &clients,
        &overrides,
        Settings::default(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (pushed, seconds) = rt.block_on(async {
        engine.poll(0, &|_| {}).await.unwrap();
        let mut tally = Tally::default();
        let started = Instant::now();
        while engine.push_batch(0, &mut tally, &|_| {}).await.unwrap() {}
        (tally.pushed(), started.elapsed().as_secs_f64())
    });
    let achieved = pushed as f64 / seconds * 60.0 / limit_per_minute as f64;
    let throttled = sandbox.throttled("kingdee");
    let _ = stop.send(());
    handle.join().unwrap();
    (achieved, throttled, pushed)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let orders: u64 = std::env::var("FERRY_BENCH_ORDERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if bench { 100_000 } else { 1_000 });
    let dir = std::env::temp_dir().join(format!("ferry-bench-{}", std::process::id()));
    println!(
        "pipeline benchmark: {orders} orders (and as many stock-outs polled), embedded default"
    );
    let t = throughput(orders, &dir);
    let (base_rate, base_cpu) = baseline(orders.min(20_000), false);
    let (mapped_rate, mapped_cpu) = baseline(orders.min(20_000), true);
    println!(
        "push, engine:   {:>8.0} docs/s  {:>7.1} µs CPU/doc (median per batch)  [{} docs in {:.1} s]",
        t.docs as f64 / t.seconds,
        t.cpu_us_per_doc,
        t.docs,
        t.seconds
    );
    println!(
        "push, baseline: {base_rate:>8.0} docs/s  {base_cpu:>7.1} µs CPU/doc (bare client saving mapped bodies, same concurrency)"
    );
    println!(
        "push, baseline: {mapped_rate:>8.0} docs/s  {mapped_cpu:>7.1} µs CPU/doc (bare client parsing, mapping and saving each order)"
    );
    println!(
        "engine / bare client: {:.2}x throughput, {:.2}x CPU per document (goal: within 1.3x, 60 µs)",
        t.docs as f64 / t.seconds / base_rate,
        t.cpu_us_per_doc / base_cpu
    );
    println!(
        "engine / mapping and client: {:.2}x CPU per document; the engine's own share (claim, \
         records, history, settling): {:.1} µs",
        t.cpu_us_per_doc / mapped_cpu,
        t.cpu_us_per_doc - mapped_cpu
    );
    let mut schemes: Vec<_> = t.calls.iter().collect();
    schemes.sort();
    for (scheme, (calls, docs)) in schemes {
        println!(
            "source calls: {scheme}: {calls} calls for {docs} documents = {:.1} per 1,000",
            *calls as f64 * 1000.0 / *docs as f64
        );
    }
    assert_eq!(t.docs, orders, "every order pushed");
    let limit = 3_000;
    let rate_docs = if bench { 1_500 } else { 200 };
    let (achieved, throttled, pushed) = rate_limited(limit, rate_docs, &dir.join("rate"));
    assert_eq!(
        (pushed, throttled),
        (rate_docs, 0),
        "paced to the limit, never throttled"
    );
    println!(
        "rate-limited Kingdee at {limit}/min: {pushed} pushed, achieved {:.3} of the limit, {throttled} throttled",
        achieved
    );
    let _ = std::fs::remove_dir_all(&dir);
}
