//! The Lambdas' benchmark: the release binaries' sizes, and the real `ferry-push` binary run as
//! Lambda runs it — a child process polling a Runtime API served here — for its init time (spawn
//! to its first `next` request, AWS clients and the queue's redrive policy read from moto included)
//! and its peak memory (`VmHWM`) over one SQS batch of 10 pages of 100 orders pushed to the
//! sandbox. Baseline, side by side: the same binary's peak after init with no invocation.
//!
//! `cargo bench -p ferry-tests --bench lambda` (builds the release binaries first; with
//! cargo-lambda and zig in `.venv`, also `cargo lambda build --release --arm64` for the deployable
//! sizes). Needs moto: `FERRY_TEST_MOTO`, or it starts `scripts/moto_server.py` from `.venv`.
//! Under `cargo test` it does nothing (a benchmark measures; tests assert).

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_tests::aws::{AwsWorld, sqs_record};
use ferry_tests::workspace;
use serde_json::{Value, json};

const RUNS: usize = 5;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn size_mb(path: &std::path::Path) -> Option<f64> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.len() as f64 / 1_048_576.0)
}

fn peak_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The Runtime API's state: the event to hand out (once), and what came back.
#[derive(Default)]
struct Rapid {
    event: Option<String>,
    first_next: Option<Instant>,
    response: Option<String>,
    nexts: u32,
}

async fn serve_rapid(state: Arc<Mutex<Rapid>>) -> String {
    use axum::http::{HeaderMap, HeaderValue, StatusCode};
    let next_state = state.clone();
    let app = axum::Router::new()
        .route(
            "/2018-06-01/runtime/invocation/next",
            axum::routing::get(move || {
                let state = next_state.clone();
                async move {
                    let event = {
                        let mut s = state.lock().unwrap();
                        s.nexts += 1;
                        s.first_next.get_or_insert_with(Instant::now);
                        s.event.take()
                    };
                    let Some(event) = event else {
                        // Nothing more to do: hold the request as Lambda holds a frozen sandbox.
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        return (StatusCode::OK, HeaderMap::new(), String::new());
                    };
                    let mut headers = HeaderMap::new();
                    headers.insert(
                        "Lambda-Runtime-Aws-Request-Id",
                        HeaderValue::from_static("bench-1"),
                    );
                    let deadline = (jiff::Timestamp::now().as_millisecond() + 60_000).to_string();
                    headers.insert(
                        "Lambda-Runtime-Deadline-Ms",
                        HeaderValue::from_str(&deadline).unwrap(),
                    );
                    headers.insert(
                        "Lambda-Runtime-Invoked-Function-Arn",
                        HeaderValue::from_static(
                            "arn:aws:lambda:us-east-1:123456789012:function:ferry-push",
                        ),
                    );
                    (StatusCode::OK, headers, event)
                }
            }),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            axum::routing::post(move |body: String| {
                let state = state.clone();
                async move {
                    state.lock().unwrap().response = Some(body);
                    StatusCode::ACCEPTED
                }
            }),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            axum::routing::post(|body: String| async move {
                eprintln!("the push function failed: {body}");
                std::process::exit(1);
                #[allow(unreachable_code)]
                axum::http::StatusCode::ACCEPTED
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

struct Measured {
    init_ms: f64,
    peak_mb: f64,
}

/// Spawns the push binary against a fresh Runtime API; with `event`, waits for its answer.
async fn run_push(
    binary: &std::path::Path,
    env: &[(String, String)],
    event: Option<String>,
) -> (Measured, Option<String>) {
    let state = Arc::new(Mutex::new(Rapid {
        event: event.clone(),
        ..Rapid::default()
    }));
    let rapid = serve_rapid(state.clone()).await;
    let started = Instant::now();
    let mut child = Command::new(binary)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", &rapid)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the push binary starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (first, done, nexts) = {
            let s = state.lock().unwrap();
            (s.first_next, s.response.is_some(), s.nexts)
        };
        let finished = match &event {
            None => first.is_some(),
            // Answered, and back waiting for the next event.
            Some(_) => done && nexts >= 2,
        };
        if finished {
            break;
        }
        assert!(Instant::now() < deadline, "the push binary did not finish");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the push binary exited"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let peak = peak_kb(child.id());
    child.kill().ok();
    child.wait().ok();
    let s = state.lock().unwrap();
    (
        Measured {
            init_ms: (s.first_next.unwrap() - started).as_secs_f64() * 1000.0,
            peak_mb: peak as f64 / 1024.0,
        },
        s.response.clone(),
    )
}

/// The push function's environment, as template.yaml and Lambda set it.
fn environment(world: &AwsWorld) -> Vec<(String, String)> {
    let mut env = world.function_env();
    env.extend(
        [
            ("AWS_LAMBDA_FUNCTION_NAME", "ferry-push"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/ferry-push"),
            ("FERRY_RATE_LIMITS", "kingdee=1000000,yonyou=1000000"),
            ("FERRY_LOG", "warn"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    env
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let root = workspace();
    // 1. Release binaries: host build always, arm64 Lambda build when cargo-lambda is at hand.
    let status = Command::new("cargo")
        .args(["build", "--release", "-p", "ferry-poll", "-p", "ferry-push"])
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(status.success());
    let venv = root.join(".venv/bin");
    let lambda_built = venv.join("cargo-lambda").exists()
        && Command::new("cargo")
            .args([
                "lambda",
                "build",
                "--release",
                "--arm64",
                "-p",
                "ferry-poll",
                "-p",
                "ferry-push",
            ])
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    venv.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .current_dir(&root)
            .status()
            .is_ok_and(|s| s.success());
    println!(
        "\n== Release binaries (as built: with line tables for backtraces; stripped: what a size-minded deploy ships)"
    );
    for name in ["ferry-poll", "ferry-push"] {
        let host = size_mb(&root.join("target/release").join(name)).unwrap();
        let stripped = std::env::temp_dir().join(format!("{name}-stripped"));
        let stripped = Command::new("strip")
            .arg("-o")
            .arg(&stripped)
            .arg(root.join("target/release").join(name))
            .status()
            .is_ok_and(|s| s.success())
            .then(|| size_mb(&stripped))
            .flatten();
        let arm = size_mb(&root.join("target/lambda").join(name).join("bootstrap"));
        println!(
            "{name}: host x86-64 {host:.1} MB (stripped {}); lambda arm64 bootstrap {}",
            stripped
                .map(|m| format!("{m:.1} MB"))
                .unwrap_or_else(|| "-".into()),
            arm.map(|m| format!("{m:.1} MB")).unwrap_or_else(|| {
                if lambda_built {
                    "missing".into()
                } else {
                    "not built (no cargo-lambda in .venv)".into()
                }
            })
        );
    }

    // 2. The push binary under the Lambda runtime protocol.
    /// Stops the benchmark's own moto server however the run ends (a failed assertion too).
    struct Stop(Option<std::process::Child>);
    impl Drop for Stop {
        fn drop(&mut self) {
            if let Some(child) = &mut self.0 {
                child.kill().ok();
                child.wait().ok();
            }
        }
    }
    let mut moto_child = Stop(None);
    if std::env::var("FERRY_TEST_MOTO").is_err() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        moto_child.0 = Some(
            Command::new(root.join(".venv/bin/python"))
                .args(["scripts/moto_server.py", "127.0.0.1", &port.to_string()])
                .current_dir(&root)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("moto server starts (./scripts/test installs it into .venv)"),
        );
        // SAFETY: set before any other thread of this process exists.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("FERRY_TEST_MOTO", format!("http://127.0.0.1:{port}"));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let binary = root.join("target/release/ferry-push");
        let mut idle = Vec::new();
        let mut busy = Vec::new();
        for run in 0..RUNS {
            // A fresh sandbox and deployment per run: every run pushes 1,000 new orders.
            let sandbox = ferry_tests::spawn_sandbox(1_000, |_| {}).await;
            // The template's visibility (6 × the 60-s timeout): the function checks it at start.
            let world =
                AwsWorld::with_visibility(&sandbox, 5, std::time::Duration::from_secs(360)).await;
            let deployment = world.deployment(&sandbox).await;
            ferry_tests::aws::invoke_poll(
                &deployment,
                json!({ "scheme": "wdt-trades-to-kingdee" }),
                Duration::from_secs(300),
            )
            .await
            .unwrap();
            let env = environment(&world);
            let (measured, _) = run_push(&binary, &env, None).await;
            idle.push(measured);
            // The poll's pages follow its windows (some half full): their 1,000 orders are
            // queued again as ten full pages of 100, then received as the event source mapping
            // would receive them.
            let pair = &world.queues["kingdee"];
            let sqs = world.sqs();
            let mut orders: Vec<Value> = Vec::new();
            loop {
                let got = sqs
                    .receive_message()
                    .queue_url(&pair.url)
                    .max_number_of_messages(10)
                    .visibility_timeout(300)
                    .send()
                    .await
                    .unwrap();
                if got.messages().is_empty() {
                    break;
                }
                for m in got.messages() {
                    let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
                    orders.extend(body["documents"].as_array().unwrap().iter().cloned());
                    sqs.delete_message()
                        .queue_url(&pair.url)
                        .receipt_handle(m.receipt_handle().unwrap())
                        .send()
                        .await
                        .unwrap();
                }
            }
            assert_eq!(orders.len(), 1_000);
            let pages: Vec<String> = orders
                .chunks(100)
                .enumerate()
                .map(|(page, docs)| {
                    json!({ "scheme": "wdt-trades-to-kingdee", "page": page, "part": 0, "documents": docs })
                        .to_string()
                })
                .collect();
            ferry_common::engine::PageQueue::send(
                deployment.queue("kingdee").unwrap(),
                pages,
            )
            .await
            .unwrap();
            let mut messages = Vec::new();
            while messages.len() < 10 {
                let got = sqs
                    .receive_message()
                    .queue_url(&pair.url)
                    .max_number_of_messages((10 - messages.len()) as i32)
                    .visibility_timeout(300)
                    .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                    .message_attribute_names("All")
                    .send()
                    .await
                    .unwrap();
                messages.extend(got.messages().iter().cloned());
            }
            let records: Vec<Value> = messages.iter().map(|m| sqs_record(m, &pair.arn)).collect();
            let event = json!({ "Records": records }).to_string();
            let (measured, response) = run_push(&binary, &env, Some(event)).await;
            let response: Value = serde_json::from_str(&response.unwrap()).unwrap();
            assert_eq!(response["batchItemFailures"], json!([]), "run {run}: {response}");
            assert_eq!(sandbox.kingdee_bills().len(), 1_000, "run {run}: every order saved once");
            busy.push(measured);
        }
        let idle_peak = median(idle.iter().map(|m| m.peak_mb).collect());
        let busy_peak = median(busy.iter().map(|m| m.peak_mb).collect());
        println!("\n== ferry-push under the Lambda runtime protocol (release, x86-64, {RUNS} runs, medians)");
        println!("init (spawn → first `next`, incl. reading the queue's redrive policy): {:.0} ms", median(busy.iter().map(|m| m.init_ms).collect()));
        println!("peak memory after init, no invocation (baseline): {idle_peak:.1} MB");
        println!("peak memory over 10 pages × 100 orders: {busy_peak:.1} MB ({:.2}× the baseline; target ≤ 64 MB)", busy_peak / idle_peak);
    });
    drop(moto_child);
}
