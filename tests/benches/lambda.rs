//! The Lambdas' benchmark: what the functions cost, measured on the real binaries.
//!
//! 1. **Artifacts**: the release binaries and the Lambda zips (`cargo lambda build --release
//!    --arm64 --output-format zip` when cargo-lambda is in `.venv`; the host binary zipped with
//!    `zip -9` beside it), against the 10 MB goal.
//! 2. **Init**: the real `ferry-push` binary as Lambda runs it, a child process polling a Runtime
//!    API served here, from spawn to its first `next`; with the template's environment (queue
//!    settings given, nothing asked of AWS at start) beside the baseline of the same binary
//!    discovering its queues from SQS at start (what every start did before).
//! 3. **Per document**: one warm push process handles three SQS batches of 10 pages × 100 orders
//!    against moto and the sandbox: new orders, the same pages delivered again (unchanged), and the
//!    orders changed in the sandbox (updates). For each: DynamoDB read and write units per document
//!    (the adapter's size-based units, checked against the sizes of the items left in the table,
//!    beside what moto reports), SQS requests, Secrets Manager reads, target calls, the
//!    invocation's wall and CPU time, and stdout bytes (what CloudWatch Logs ingests). Peak memory
//!    after the batches, beside the same binary after init.
//! 4. **Dollars per million orders** with one update each, from those counts at the list prices
//!    below (docs/cost.md explains the model), and the cost of pacing apart.
//!
//! `cargo bench -p ferry-tests --bench lambda`. Needs moto: `FERRY_TEST_MOTO`, or it starts
//! `scripts/moto_server.py` from `.venv`. Under `cargo test` it does nothing (a benchmark measures;
//! tests assert).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_common::aws::capacity::{self, Usage};
use ferry_sandbox::{Endpoint, Kind};
use ferry_tests::aws::{AwsWorld, sqs_record, take_all};
use ferry_tests::workspace;
use serde_json::{Value, json};

/// Runs of the per-document batches (`FERRY_BENCH_RUNS` for a quick look).
fn run_count() -> usize {
    std::env::var("FERRY_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}
/// Init samples of each kind per run (they alternate).
const INIT_SAMPLES: usize = 5;
const ORDERS: usize = 1_000;
const PAGE: usize = 100;
const SCHEME: &str = "wdt-trades-to-kingdee";

/// List prices, US East (N. Virginia), arm64 Lambda, DynamoDB on demand (Standard table class),
/// SQS standard queues, as published on the AWS pricing pages (read 2026-12-02 through public
/// copies of those pages; check them before relying on a figure: docs/cost.md). No free tier.
mod price {
    /// Lambda duration, arm64, first 7.5 billion GB-seconds a month.
    pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
    /// Lambda requests.
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// SQS standard requests (a request per started 64 KB of payload).
    pub const SQS_REQUEST: f64 = 0.40 / 1e6;
    /// DynamoDB on-demand write request unit.
    pub const DYNAMO_WRITE_UNIT: f64 = 0.625 / 1e6;
    /// DynamoDB on-demand read request unit.
    pub const DYNAMO_READ_UNIT: f64 = 0.125 / 1e6;
    /// DynamoDB storage, Standard table class, per GB-month (first 25 GB free not counted).
    pub const DYNAMO_GB_MONTH: f64 = 0.25;
    /// DynamoDB continuous backups (point-in-time recovery, on in the template), per GB-month.
    pub const DYNAMO_PITR_GB_MONTH: f64 = 0.20;
    /// Secrets Manager, per secret and month.
    pub const SECRET_MONTH: f64 = 0.40;
    /// Secrets Manager API calls.
    pub const SECRET_CALL: f64 = 0.05 / 10_000.0;
    /// CloudWatch Logs ingestion (standard class), per GB.
    pub const LOGS_INGEST_GB: f64 = 0.50;
    /// CloudWatch Logs storage, per GB-month.
    pub const LOGS_STORE_GB_MONTH: f64 = 0.03;
    /// A CloudWatch custom metric (an EMF metric per dimension set), per month.
    pub const METRIC_MONTH: f64 = 0.30;
    /// A standard-resolution CloudWatch alarm, per month.
    pub const ALARM_MONTH: f64 = 0.10;
    /// A CloudWatch dashboard, per month (the first three of an account free: not counted).
    pub const DASHBOARD_MONTH: f64 = 3.00;
}

/// A full vCPU on Lambda comes with 1,769 MB; below it a function gets that share of one.
const FULL_VCPU_MB: f64 = 1769.0;
/// The size CloudWatch Logs adds to each event it ingests.
const LOG_EVENT_OVERHEAD: usize = 26;
/// DynamoDB's storage overhead per item (and per index entry).
const ITEM_OVERHEAD: usize = 100;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn size_mb(path: &std::path::Path) -> Option<f64> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.len() as f64 / 1_048_576.0)
}

/// A `/proc/PID/status` field in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time a process's threads spent on a CPU so far, in milliseconds (the scheduler's own
/// nanosecond count, `/proc/PID/task/*/schedstat`: finer than the clock ticks of `stat`).
fn cpu_ms(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e6
}

/// The Runtime API's state: events to hand out, and what each invocation did.
#[derive(Default)]
struct Rapid {
    events: std::collections::VecDeque<String>,
    first_next: Option<Instant>,
    invocations: Vec<Invocation>,
}

#[derive(Clone, Debug)]
struct Invocation {
    handed: Instant,
    answered: Option<Instant>,
    response: Option<String>,
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
                    state
                        .lock()
                        .unwrap()
                        .first_next
                        .get_or_insert_with(Instant::now);
                    // Hold the request as Lambda holds a frozen sandbox, until there is an event.
                    let (id, event) = loop {
                        {
                            let mut s = state.lock().unwrap();
                            if let Some(event) = s.events.pop_front() {
                                s.invocations.push(Invocation {
                                    handed: Instant::now(),
                                    answered: None,
                                    response: None,
                                });
                                break (format!("bench-{}", s.invocations.len()), event);
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    };
                    let mut headers = HeaderMap::new();
                    headers.insert(
                        "Lambda-Runtime-Aws-Request-Id",
                        HeaderValue::from_str(&id).unwrap(),
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
                    let mut s = state.lock().unwrap();
                    if let Some(last) = s.invocations.last_mut() {
                        last.answered = Some(Instant::now());
                        last.response = Some(body);
                    }
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
        )
        .route(
            "/2018-06-01/runtime/init/error",
            axum::routing::post(|body: String| async move {
                eprintln!("the push function could not start: {body}");
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

/// A push execution environment: the process, its Runtime API, its stdout.
struct Push {
    child: std::process::Child,
    state: Arc<Mutex<Rapid>>,
    lines: Arc<Mutex<Vec<String>>>,
    init_ms: f64,
    /// CPU time the start took (every thread's).
    init_cpu_ms: f64,
}

/// What one invocation did.
struct Invoked {
    wall_ms: f64,
    cpu_ms: f64,
    response: Value,
    /// The lines it wrote to stdout (its logs and its metrics line).
    lines: Vec<String>,
}

impl Invoked {
    /// What the metrics lines' `Usage` properties add up to.
    fn usage(&self, name: &str) -> f64 {
        self.metrics_lines()
            .filter_map(|m| m["Usage"][name].as_f64())
            .sum()
    }

    /// A metric summed over the metrics lines.
    fn metric(&self, name: &str) -> f64 {
        self.metrics_lines().filter_map(|m| m[name].as_f64()).sum()
    }

    fn metrics_lines(&self) -> impl Iterator<Item = Value> + '_ {
        self.lines
            .iter()
            .filter(|l| l.contains("\"_aws\""))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    }

    /// Bytes CloudWatch Logs would ingest: each line and its event overhead.
    fn log_bytes(&self) -> usize {
        self.lines
            .iter()
            .map(|l| l.len() + 1 + LOG_EVENT_OVERHEAD)
            .sum()
    }
}

impl Push {
    /// Spawns the binary and waits for its first `next` (its init is over).
    async fn start(binary: &std::path::Path, env: &[(String, String)]) -> Push {
        let state = Arc::new(Mutex::new(Rapid::default()));
        let rapid = serve_rapid(state.clone()).await;
        let started = Instant::now();
        let mut child = Command::new(binary)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", &rapid)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the push binary starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let first = loop {
            if let Some(first) = state.lock().unwrap().first_next {
                break first;
            }
            assert!(Instant::now() < deadline, "the push binary did not start");
            assert!(
                child.try_wait().unwrap().is_none(),
                "the push binary exited"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let init_cpu_ms = cpu_ms(child.id());
        Push {
            child,
            state,
            lines,
            init_ms: (first - started).as_secs_f64() * 1000.0,
            init_cpu_ms,
        }
    }

    /// Hands `event` to the function and waits for its answer (and its metrics line).
    async fn invoke(&mut self, event: String) -> Invoked {
        let pid = self.child.id();
        let before_lines = self.lines.lock().unwrap().len();
        let before_cpu = cpu_ms(pid);
        let index = {
            let mut s = self.state.lock().unwrap();
            s.events.push_back(event);
            s.invocations.len()
        };
        let deadline = Instant::now() + Duration::from_secs(300);
        let done = loop {
            let done = self
                .state
                .lock()
                .unwrap()
                .invocations
                .get(index)
                .filter(|i| i.answered.is_some())
                .cloned();
            if let Some(done) = done {
                break done;
            }
            assert!(Instant::now() < deadline, "the push binary did not answer");
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "the push binary exited"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let cpu = cpu_ms(pid) - before_cpu;
        // The metrics line is written before the answer; give the reader thread a moment.
        let lines = loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let lines = self.lines.lock().unwrap()[before_lines..].to_vec();
            if lines.iter().any(|l| l.contains("\"_aws\"")) || Instant::now() > deadline {
                break lines;
            }
        };
        Invoked {
            wall_ms: (done.answered.unwrap() - done.handed).as_secs_f64() * 1000.0,
            cpu_ms: cpu,
            response: serde_json::from_str(done.response.as_deref().unwrap()).unwrap(),
            lines,
        }
    }

    fn peak_mb(&self) -> f64 {
        status_kb(self.child.id(), "VmHWM:") as f64 / 1024.0
    }
}

impl Drop for Push {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The push function's environment as template.yaml and Lambda set it; `queues_given`: with
/// the template's queue settings (visibility, dead-letter queues), else discovered at start.
fn environment(world: &AwsWorld, memory_mb: u32, queues_given: bool) -> Vec<(String, String)> {
    let mut env = world.function_env();
    env.extend(
        [
            ("AWS_LAMBDA_FUNCTION_NAME", "ferry-push"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/ferry-push"),
            ("FERRY_PUSH_TIMEOUT", "60s"),
            ("FERRY_CLAIM_TTL", "5m"),
            ("FERRY_RATE_LIMITS", "kingdee=1000000,yonyou=1000000"),
            // The template's default level: what CloudWatch Logs would ingest.
            ("FERRY_LOG", "info"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    env.push((
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
        memory_mb.to_string(),
    ));
    if queues_given {
        env.push(("FERRY_QUEUE_VISIBILITY".into(), "360".into()));
        for (connector, pair) in &world.queues {
            env.push((
                format!("FERRY_DEAD_LETTER_{}", connector.to_uppercase()),
                pair.dead_letter_url.clone(),
            ));
        }
    }
    env
}

/// Sends `pages` to the Kingdee queue and receives them as the event source mapping would; the
/// SQS request units of the receive (what the mapping's poller pays) come back with the event.
async fn batch_of(world: &AwsWorld, pages: Vec<String>) -> (String, u64) {
    let pair = &world.queues["kingdee"];
    let sqs = world.sqs();
    let count = pages.len();
    let queue = ferry_common::aws::SqsQueue::new(sqs.clone(), &pair.url, None);
    ferry_common::engine::PageQueue::send(&queue, pages)
        .await
        .unwrap();
    let mut messages = Vec::new();
    let mut units = 0;
    while messages.len() < count {
        let got = sqs
            .receive_message()
            .queue_url(&pair.url)
            .max_number_of_messages((count - messages.len()).min(10) as i32)
            .visibility_timeout(300)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        let bytes: usize = got
            .messages()
            .iter()
            .map(|m| m.body().unwrap_or_default().len())
            .sum();
        units += capacity::sqs_units(bytes);
        messages.extend(got.messages().iter().cloned());
    }
    let records: Vec<Value> = messages.iter().map(|m| sqs_record(m, &pair.arn)).collect();
    (json!({ "Records": records }).to_string(), units)
}

fn pages_of(documents: &[Value]) -> Vec<String> {
    documents
        .chunks(PAGE)
        .enumerate()
        .map(|(page, docs)| {
            json!({ "scheme": SCHEME, "page": page, "part": 0, "documents": docs }).to_string()
        })
        .collect()
}

/// Kingdee calls the sandbox served so far: (saves, look-ups, tokens).
fn kingdee_calls(sandbox: &ferry_sandbox::Sandbox) -> [u64; 3] {
    [
        sandbox.requests(Endpoint::KingdeeSave),
        sandbox.requests(Endpoint::KingdeeLookup),
        sandbox.requests(Endpoint::KingdeeToken),
    ]
}

/// One scenario's figures per document, from one run.
#[derive(Clone, Debug, Default)]
struct PerDocument {
    read: f64,
    write: f64,
    index_write: f64,
    reported_read: f64,
    reported_write: f64,
    dynamo_calls: f64,
    sqs_units: f64,
    secret_reads: f64,
    target_calls: f64,
    wall_ms: f64,
    cpu_ms: f64,
    log_bytes: f64,
    log_lines: f64,
    /// SQS units of the mapping's receive and delete.
    mapping_sqs_units: f64,
}

fn per_document(invoked: &Invoked, calls: [u64; 3], mapping_units: u64) -> PerDocument {
    let n = ORDERS as f64;
    PerDocument {
        read: invoked.usage("DynamoReadUnits") / n,
        write: invoked.usage("DynamoWriteUnits") / n,
        index_write: invoked.usage("DynamoIndexWriteUnits") / n,
        reported_read: invoked.usage("DynamoReportedReadUnits") / n,
        reported_write: invoked.usage("DynamoReportedWriteUnits") / n,
        dynamo_calls: invoked.usage("DynamoCalls") / n,
        sqs_units: invoked.usage("SqsRequestUnits") / n,
        secret_reads: invoked.usage("SecretReads") / n,
        target_calls: calls.iter().sum::<u64>() as f64 / n,
        wall_ms: invoked.wall_ms / n,
        cpu_ms: invoked.cpu_ms / n,
        log_bytes: invoked.log_bytes() as f64 / n,
        log_lines: invoked.lines.len() as f64 / n,
        // The mapping's receive, and one DeleteMessageBatch for the batch's ten messages.
        mapping_sqs_units: (mapping_units + 1) as f64 / n,
    }
}

/// The median of each field over runs.
fn medians(runs: &[PerDocument]) -> PerDocument {
    let m = |f: fn(&PerDocument) -> f64| median(runs.iter().map(f).collect());
    PerDocument {
        read: m(|p| p.read),
        write: m(|p| p.write),
        index_write: m(|p| p.index_write),
        reported_read: m(|p| p.reported_read),
        reported_write: m(|p| p.reported_write),
        dynamo_calls: m(|p| p.dynamo_calls),
        sqs_units: m(|p| p.sqs_units),
        secret_reads: m(|p| p.secret_reads),
        target_calls: m(|p| p.target_calls),
        wall_ms: m(|p| p.wall_ms),
        cpu_ms: m(|p| p.cpu_ms),
        log_bytes: m(|p| p.log_bytes),
        log_lines: m(|p| p.log_lines),
        mapping_sqs_units: m(|p| p.mapping_sqs_units),
    }
}

/// The items left in the table: records, and every history item by its keys.
#[derive(Clone, Debug, Default)]
struct Stored {
    record_bytes: f64,
    by_state_bytes: f64,
    by_number_bytes: f64,
    lookup_indexed: f64,
    history: std::collections::HashMap<String, usize>,
}

impl Stored {
    /// The history items written since `earlier`: how many a document, and their mean size.
    fn added_since(&self, earlier: &Stored) -> (f64, f64) {
        let sizes: Vec<usize> = self
            .history
            .iter()
            .filter(|(k, _)| !earlier.history.contains_key(*k))
            .map(|(_, s)| *s)
            .collect();
        (
            sizes.len() as f64 / ORDERS as f64,
            sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64,
        )
    }
}

/// Reads every item of the table and sizes the records and history items.
async fn stored(world: &AwsWorld) -> Stored {
    let client = aws_sdk_dynamodb::Client::new(&world.sdk);
    let mut records = Vec::new();
    let mut history = std::collections::HashMap::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(&world.table)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        for item in page.items() {
            let text = |name: &str| {
                item.get(name)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            let sk = text("sk");
            if sk == "record" {
                records.push(item.clone());
            } else if sk.starts_with("event#") {
                history.insert(format!("{} {sk}", text("pk")), capacity::item_size(item));
            }
        }
        match page.last_evaluated_key() {
            Some(key) => start = Some(key.clone()),
            None => break,
        }
    }
    let avg = |sizes: Vec<usize>| sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64;
    let key_only =
        |item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>| {
            ["pk", "sk", "number_pk"]
                .iter()
                .filter_map(|n| Some(n.len() + capacity::value_size(item.get(*n)?)))
                .sum::<usize>()
        };
    Stored {
        record_bytes: avg(records.iter().map(capacity::item_size).collect()),
        by_state_bytes: avg(records
            .iter()
            .filter(|r| r.contains_key("state_pk"))
            .map(capacity::item_size)
            .collect()),
        by_number_bytes: avg(records.iter().map(key_only).collect()),
        lookup_indexed: records
            .iter()
            .filter(|r| r.contains_key("lookup_pk"))
            .count() as f64
            / records.len().max(1) as f64,
        history,
    }
}

/// The previous layout of the same records and events, sized by the same rules: the baseline
/// the per-document units are compared with. Before this layout a document's every event was an
/// item of its own (scheme, key and a body as plain text in each), a claim was in the by-state
/// index, the look-up value was indexed even when it was the number, and a record held its scheme,
/// key and look-up value as attributes. The engine is today's in both (the note of a Kingdee write
/// holds no body).
#[derive(Clone, Debug, Default)]
struct Previous {
    /// Per batch (new, unchanged, update): read and write units a document.
    units: [(f64, f64); 3],
    /// Bytes stored an order: history items (with the item overhead) per batch, and the record
    /// with its index entries.
    history_bytes: [f64; 3],
    record_bytes: f64,
}

async fn previous_layout(world: &AwsWorld, keys: &[String]) -> Previous {
    use aws_sdk_dynamodb::types::AttributeValue;
    use ferry_common::engine::{HistoryLog, RecordStore};
    type Item = std::collections::HashMap<String, AttributeValue>;
    let store = world.store();
    let text = |v: &str| AttributeValue::S(v.to_owned());
    let number = |v: i64| AttributeValue::N(v.to_string());
    let w = |item: &Item| capacity::write_units(capacity::item_size(item));
    let mut sums = Previous::default();
    for key in keys {
        let record = store.record(SCHEME, key).await.unwrap().expect("a record");
        let pk = format!("doc#{SCHEME}#{key}");
        // The record as the previous layout wrote it, synced and claimed.
        let mut synced: Item = [
            ("pk", text(&pk)),
            ("sk", text("record")),
            ("scheme", text(SCHEME)),
            ("key", text(key)),
            ("state", text("synced")),
            ("hash", text(&record.hash)),
            ("version", text(&record.version)),
            ("number", text(&record.number)),
            ("lookup", text(&record.lookup)),
            ("attempts", number(i64::from(record.attempts))),
            ("created_at", number(record.created_at.as_millisecond())),
            ("updated_at", number(record.updated_at.as_millisecond())),
            ("revision", number(record.revision as i64)),
            (
                "target_id",
                text(record.target_id.as_deref().unwrap_or_default()),
            ),
            ("state_pk", text(&format!("{SCHEME}#synced"))),
            (
                "state_sk",
                text(&format!("{:015}#{key}", record.updated_at.as_millisecond())),
            ),
            ("number_pk", text(&format!("{SCHEME}#{}", record.number))),
            ("lookup_pk", text(&format!("{SCHEME}#{}", record.lookup))),
            (
                "expires_at",
                number(record.updated_at.as_second() + 400 * 86_400),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if !record.lines.is_empty() {
            synced.insert("lines".into(), text(&record.lines.join(",")));
        }
        let mut claimed = synced.clone();
        claimed.insert("state".into(), text("in_progress"));
        claimed.insert("state_pk".into(), text(&format!("{SCHEME}#in_progress")));
        claimed.insert(
            "claim_until".into(),
            number(record.updated_at.as_millisecond()),
        );
        claimed.insert(
            "unsure".into(),
            text(&format!(
                r#"{{"hash":"{}","at":{}}}"#,
                record.hash,
                record.updated_at.as_millisecond()
            )),
        );
        claimed.remove("expires_at");
        let keys_only = |name: &str| -> Item {
            ["pk", "sk", name]
                .iter()
                .map(|n| ((*n).to_owned(), synced[*n].clone()))
                .collect()
        };
        let (c, s) = (w(&claimed), w(&synced));
        let (by_number, by_lookup) = (w(&keys_only("number_pk")), w(&keys_only("lookup_pk")));
        // Each event an item of its own.
        let events = store.history(SCHEME, key, 100).await.unwrap();
        let mut batch_writes = [0.0; 3];
        let mut batch_bytes = [0.0; 3];
        for (i, e) in events.iter().enumerate() {
            let mut item: Item = [
                ("pk", text(&pk)),
                (
                    "sk",
                    text(&format!(
                        "event#{:015}#{:05}#{:08x}",
                        e.at.as_millisecond(),
                        i,
                        0
                    )),
                ),
                ("scheme", text(SCHEME)),
                ("key", text(key)),
                ("at", number(e.at.as_millisecond())),
                ("what", text(&e.what)),
                ("detail", text(&e.detail)),
                ("expires_at", number(e.at.as_second() + 90 * 86_400)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            if let Some(id) = &e.target_id {
                item.insert("target_id".into(), text(id));
            }
            if let Some(body) = &e.body {
                item.insert("body".into(), text(body));
            }
            // Two events a delivery: fetched, then what became of it.
            let batch = (i / 2).min(2);
            batch_writes[batch] += w(&item);
            batch_bytes[batch] += (capacity::item_size(&item) + ITEM_OVERHEAD) as f64;
        }
        let reads = 1.0;
        let new = c + c + by_number + by_lookup // claim, into by-state, by-number, by-lookup
            + s.max(c) + c + s; // synced, moved in by-state (out of in_progress, into synced)
        let update = s.max(c) + s + c // claim, moved in by-state
            + c + c // the note, its by-state entry rewritten
            + s.max(c) + c + s; // synced, moved in by-state
        let totals = [new, 0.0, update];
        for b in 0..3 {
            sums.units[b].0 += reads;
            sums.units[b].1 += totals[b] + batch_writes[b];
            sums.history_bytes[b] += batch_bytes[b];
        }
        sums.record_bytes += (2 * capacity::item_size(&synced)
            + capacity::item_size(&keys_only("number_pk"))
            + capacity::item_size(&keys_only("lookup_pk"))
            + 4 * ITEM_OVERHEAD) as f64;
    }
    let n = keys.len() as f64;
    for b in 0..3 {
        sums.units[b].0 /= n;
        sums.units[b].1 /= n;
        sums.history_bytes[b] /= n;
    }
    sums.record_bytes /= n;
    sums
}

/// The template's push memory size and the schemes' limits and windows.
struct Settings {
    memory_mb: u32,
    push_concurrency: u32,
    /// Per target connector: calls a minute, and deliveries of each change (the windows that
    /// read it: lookback plus interval over the interval).
    targets: BTreeMap<String, (u32, f64)>,
    history_retention_days: f64,
    record_retention_days: f64,
    alarms: usize,
}

fn settings(root: &std::path::Path) -> Settings {
    let template: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(root.join("template.yaml")).unwrap())
            .expect("template.yaml reads as YAML");
    let memory_mb = template["Globals"]["Function"]["MemorySize"]
        .as_u64()
        .expect("MemorySize in the template's Globals") as u32;
    let push_concurrency = template["Parameters"]["PushConcurrency"]["Default"]
        .as_u64()
        .unwrap_or(2) as u32;
    let alarms = template["Resources"]
        .as_object()
        .map(|r| {
            r.values()
                .filter(|v| v["Type"] == "AWS::CloudWatch::Alarm")
                .count()
        })
        .unwrap_or(0);
    let mut targets = BTreeMap::new();
    for entry in std::fs::read_dir(root.join("schemes")).unwrap() {
        let path = entry.unwrap().path();
        let scheme: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let minutes = |v: &Value, default: f64| {
            v.as_str()
                .and_then(|t| ferry_common::time::parse_duration(t).ok())
                .map_or(default, |d| d.as_secs_f64() / 60.0)
        };
        let window = &scheme["source"]["window"];
        let interval = minutes(&window["interval"], 5.0);
        let lookback = minutes(&window["lookback"], 0.0);
        targets.insert(
            scheme["target"]["connector"].as_str().unwrap().to_owned(),
            (
                scheme["target"]["rate_limit"].as_u64().unwrap_or(0) as u32,
                ((lookback + interval) / interval).ceil(),
            ),
        );
    }
    Settings {
        memory_mb,
        push_concurrency,
        targets,
        // The adapter's retention (DynamoStore::new).
        history_retention_days: 90.0,
        record_retention_days: 400.0,
        alarms,
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let root = workspace();
    let settings = settings(&root);
    // 1. Artifacts.
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
                "--output-format",
                "zip",
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
        "\n== Artifacts (release profile: no debug info, symbols stripped; goal: each zip ≤ 10 MB)"
    );
    println!(
        "{:<11} {:>22} {:>22} {:>24} {:>16}",
        "function", "x86-64 binary", "x86-64 zip (-9)", "arm64 bootstrap", "arm64 zip"
    );
    for name in ["ferry-poll", "ferry-push"] {
        let host = root.join("target/release").join(name);
        let host_zip = std::env::temp_dir().join(format!("{name}-bench.zip"));
        std::fs::remove_file(&host_zip).ok();
        let zipped = Command::new("zip")
            .args(["-9", "-j", "-q"])
            .arg(&host_zip)
            .arg(&host)
            .status()
            .is_ok_and(|s| s.success());
        let lambda = root.join("target/lambda").join(name);
        let arm_zip = size_mb(&lambda.join("bootstrap.zip"));
        // The zip's own listing: the bootstrap's size once unpacked.
        let arm = Command::new("unzip")
            .arg("-l")
            .arg(lambda.join("bootstrap.zip"))
            .output()
            .ok()
            .and_then(|o| {
                let text = String::from_utf8(o.stdout).ok()?;
                let line = text.lines().find(|l| l.trim_end().ends_with("bootstrap"))?;
                line.split_whitespace().next()?.parse::<f64>().ok()
            })
            .map(|bytes| bytes / 1_048_576.0);
        let mb = |v: Option<f64>| {
            v.map(|m| format!("{m:.1} MB ({:.2}×)", m / 10.0))
                .unwrap_or_else(|| {
                    if lambda_built {
                        "missing".into()
                    } else {
                        "not built (no cargo-lambda)".into()
                    }
                })
        };
        println!(
            "{name:<11} {:>22} {:>22} {:>24} {:>16}",
            format!("{:.1} MB", size_mb(&host).unwrap()),
            if zipped {
                mb(size_mb(&host_zip))
            } else {
                "no zip command".into()
            },
            arm.map(|m| format!("{m:.1} MB"))
                .unwrap_or_else(|| mb(None)),
            mb(arm_zip),
        );
    }
    println!("(× = the size over the 10 MB goal)");

    // 2-3. The push binary under the Lambda runtime protocol, against moto and the sandbox.
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
    runtime.block_on(measure(&root, &settings));
    drop(moto_child);
}

/// The sizes of what the table holds after each batch of a run.
#[derive(Clone, Debug, Default)]
struct Sizes {
    record_new: f64,
    record_updated: f64,
    by_state: f64,
    by_number: f64,
    lookup_indexed: f64,
    /// Per batch (new, unchanged, update): history items a document, and their mean size.
    history: [(f64, f64); 3],
}

/// Everything measured per run.
#[derive(Default)]
struct Runs {
    init_given: Vec<f64>,
    init_discovered: Vec<f64>,
    init_given_cpu: Vec<f64>,
    init_discovered_cpu: Vec<f64>,
    idle_peak: Vec<f64>,
    busy_peak: Vec<f64>,
    new: Vec<PerDocument>,
    unchanged: Vec<PerDocument>,
    updated: Vec<PerDocument>,
    sizes: Vec<Sizes>,
    previous: Vec<Previous>,
    poll_sqs_units: Vec<f64>,
    poll_write: Vec<f64>,
    poll_read: Vec<f64>,
    poll_wall_ms: Vec<f64>,
    /// WDT calls per 1,000 documents polled.
    poll_calls: Vec<f64>,
    emf_metrics: usize,
}

async fn measure(root: &std::path::Path, settings: &Settings) {
    let binary = root.join("target/release/ferry-push");
    let mut runs = Runs::default();
    for run in 0..run_count() {
        // A fresh sandbox and deployment per run: every run pushes 1,000 new orders.
        let sandbox = ferry_tests::spawn_sandbox(ORDERS as u64, |_| {}).await;
        // The template's visibility (6 × the 60-s timeout): the function checks it.
        let world = AwsWorld::with_visibility(&sandbox, 5, Duration::from_secs(360)).await;
        let deployment = world.deployment(&sandbox).await;

        // Init, alternating the two ways of starting.
        for _ in 0..INIT_SAMPLES {
            for given in [true, false] {
                let env = environment(&world, settings.memory_mb, given);
                let push = Push::start(&binary, &env).await;
                if given {
                    runs.init_given.push(push.init_ms);
                    runs.init_given_cpu.push(push.init_cpu_ms);
                    runs.idle_peak.push(push.peak_mb());
                } else {
                    runs.init_discovered.push(push.init_ms);
                    runs.init_discovered_cpu.push(push.init_cpu_ms);
                }
            }
        }

        // The poll, in process: its SQS sends and cursor writes per document.
        let before = deployment.usage();
        let polled = Instant::now();
        let answer = ferry_tests::aws::invoke_poll(
            &deployment,
            json!({ "scheme": SCHEME }),
            Duration::from_secs(300),
        )
        .await
        .unwrap();
        runs.poll_wall_ms
            .push(polled.elapsed().as_secs_f64() * 1000.0 / ORDERS as f64);
        let calls = answer["report"]["calls"]
            .as_f64()
            .or_else(|| answer["calls"].as_f64())
            .unwrap_or(0.0);
        runs.poll_calls.push(calls * 1000.0 / ORDERS as f64);
        let poll: Usage = deployment.usage().since(&before);
        runs.poll_sqs_units
            .push(poll.sqs_units as f64 / ORDERS as f64);
        runs.poll_write.push(poll.write_units() / ORDERS as f64);
        runs.poll_read.push(poll.read_units() / ORDERS as f64);

        // The poll's pages follow its windows (some half full): their 1,000 orders are queued
        // again as ten full pages of 100, one SQS batch as the event source mapping hands it.
        let pair = &world.queues["kingdee"];
        let sqs = world.sqs();
        let mut orders: Vec<Value> = Vec::new();
        for m in take_all(&sqs, &pair.url, 300).await {
            let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
            orders.extend(body["documents"].as_array().unwrap().iter().cloned());
        }
        assert_eq!(orders.len(), ORDERS);
        let pages = pages_of(&orders);

        let env = environment(&world, settings.memory_mb, true);
        let mut push = Push::start(&binary, &env).await;
        let empty = stored(&world).await;

        // (1) New orders.
        let (event, mapping_units) = batch_of(&world, pages.clone()).await;
        let calls = kingdee_calls(&sandbox);
        let new = push.invoke(event).await;
        assert_eq!(
            new.response["batchItemFailures"],
            json!([]),
            "run {run}: {}",
            new.response
        );
        assert_eq!(new.metric("DocumentsPushed"), ORDERS as f64, "run {run}");
        assert_eq!(
            sandbox.kingdee_bills().len(),
            ORDERS,
            "run {run}: every order saved once"
        );
        let after = kingdee_calls(&sandbox);
        runs.new.push(per_document(
            &new,
            [0, 1, 2].map(|i| after[i] - calls[i]),
            mapping_units,
        ));
        runs.emf_metrics = new.metrics_lines().next().map_or(0, |m| {
            m["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .map_or(0, Vec::len)
        });
        let after_new = stored(&world).await;

        // (2) The same pages delivered again: every order unchanged.
        let (event, mapping_units) = batch_of(&world, pages.clone()).await;
        let calls = kingdee_calls(&sandbox);
        let again = push.invoke(event).await;
        assert_eq!(again.response["batchItemFailures"], json!([]), "run {run}");
        assert_eq!(again.metric("DocumentsSkipped"), ORDERS as f64, "run {run}");
        let after = kingdee_calls(&sandbox);
        runs.unchanged.push(per_document(
            &again,
            [0, 1, 2].map(|i| after[i] - calls[i]),
            mapping_units,
        ));
        let after_unchanged = stored(&world).await;

        // (3) Every order changed in the sandbox (its remark, which the bill carries): updates.
        let now = jiff::Timestamp::now().as_second();
        let changed: Vec<Value> = sandbox.source(|s| {
            orders
                .iter()
                .map(|order| {
                    let key = order["trade_id"].to_string().trim_matches('"').to_owned();
                    let index = s.index_of_key(Kind::Order, &key).expect("a sandbox order");
                    s.remark(Kind::Order, index, &format!("改 {run}"), now);
                    s.document(Kind::Order, index)
                })
                .collect()
        });
        let (event, mapping_units) = batch_of(&world, pages_of(&changed)).await;
        let calls = kingdee_calls(&sandbox);
        let updated = push.invoke(event).await;
        assert_eq!(
            updated.response["batchItemFailures"],
            json!([]),
            "run {run}"
        );
        assert_eq!(
            updated.metric("DocumentsPushed"),
            ORDERS as f64,
            "run {run}"
        );
        assert!(
            sandbox.kingdee_bills().iter().all(|b| b.writes == 2),
            "run {run}: every bill written twice"
        );
        let after = kingdee_calls(&sandbox);
        runs.updated.push(per_document(
            &updated,
            [0, 1, 2].map(|i| after[i] - calls[i]),
            mapping_units,
        ));
        let after_updated = stored(&world).await;
        runs.sizes.push(Sizes {
            record_new: after_new.record_bytes,
            record_updated: after_updated.record_bytes,
            by_state: after_new.by_state_bytes,
            by_number: after_new.by_number_bytes,
            lookup_indexed: after_new.lookup_indexed,
            history: [
                after_new.added_since(&empty),
                after_unchanged.added_since(&after_new),
                after_updated.added_since(&after_unchanged),
            ],
        });
        let sample: Vec<String> = orders
            .iter()
            .take(100)
            .map(|o| o["trade_id"].to_string().trim_matches('"').to_owned())
            .collect();
        runs.previous.push(previous_layout(&world, &sample).await);
        runs.busy_peak.push(push.peak_mb());
        eprintln!("run {}/{} done", run + 1, run_count());
    }
    report(&runs, settings);
}

fn report(runs: &Runs, settings: &Settings) {
    let init_given = median(runs.init_given.clone());
    let init_discovered = median(runs.init_discovered.clone());
    println!(
        "\n== ferry-push init under the Lambda runtime protocol (release, x86-64; {} starts each, alternating, medians)",
        runs.init_given.len()
    );
    let cpu_given = median(runs.init_given_cpu.clone());
    let cpu_discovered = median(runs.init_discovered_cpu.clone());
    println!(
        "spawn → first `next`, the template's environment (no AWS call at start): {init_given:.1} ms, {cpu_given:.1} ms CPU \
         (goal ≤ 20 ms)"
    );
    println!(
        "baseline, the queues discovered from SQS at start (as every start was):  {init_discovered:.1} ms, {cpu_discovered:.1} ms CPU \
         ({:.2}× the template's wall time)",
        init_discovered / init_given
    );
    let idle = median(runs.idle_peak.clone());
    let busy = median(runs.busy_peak.clone());
    println!(
        "peak memory: after init {idle:.1} MB (baseline); after the three batches of 1,000 {busy:.1} MB ({:.2}×; target ≤ 64 MB)",
        busy / idle
    );

    let new = medians(&runs.new);
    let unchanged = medians(&runs.unchanged);
    let updated = medians(&runs.updated);
    println!(
        "\n== Per document, ferry-push, one SQS batch of 10 pages × 100 orders ({} runs, medians)",
        run_count()
    );
    println!(
        "{:<48} {:>11} {:>11} {:>11}",
        "", "new", "update", "unchanged"
    );
    let row = |label: &str, f: fn(&PerDocument) -> f64, digits: usize| {
        println!(
            "{label:<48} {:>11.d$} {:>11.d$} {:>11.d$}",
            f(&new),
            f(&updated),
            f(&unchanged),
            d = digits
        );
    };
    row("DynamoDB read units (size-based)", |p| p.read, 2);
    row("DynamoDB write units (size-based)", |p| p.write, 2);
    row("  of which index writes", |p| p.index_write, 2);
    row("DynamoDB read units moto reported", |p| p.reported_read, 2);
    row(
        "DynamoDB write units moto reported",
        |p| p.reported_write,
        2,
    );
    row("DynamoDB requests", |p| p.dynamo_calls, 2);
    row(
        "target calls (Kingdee saves, look-ups, tokens)",
        |p| p.target_calls,
        3,
    );
    row(
        "SQS request units, push's own (hand-backs)",
        |p| p.sqs_units,
        3,
    );
    row(
        "SQS request units, mapping (receive, delete)",
        |p| p.mapping_sqs_units,
        3,
    );
    row("Secrets Manager reads", |p| p.secret_reads, 4);
    row("wall time, ms (unpaced; moto; 8 at once)", |p| p.wall_ms, 3);
    row("CPU time, ms", |p| p.cpu_ms, 3);
    row(
        "wall time of the invocation (1,000), s",
        |p| p.wall_ms * ORDERS as f64 / 1000.0,
        2,
    );
    row(
        "CPU time of the invocation (1,000), s",
        |p| p.cpu_ms * ORDERS as f64 / 1000.0,
        2,
    );
    row(
        "stdout bytes (as CloudWatch Logs counts them)",
        |p| p.log_bytes,
        0,
    );
    row("stdout lines", |p| p.log_lines, 3);

    // The expectation from the items the table holds after each batch.
    let m = |f: fn(&Sizes) -> f64| median(runs.sizes.iter().map(f).collect());
    let record_new = m(|s| s.record_new);
    let record_updated = m(|s| s.record_updated);
    let by_state = m(|s| s.by_state);
    let by_number = m(|s| s.by_number);
    let lookup = m(|s| s.lookup_indexed);
    let history: [(f64, f64); 3] = [0, 1, 2].map(|i| {
        (
            median(runs.sizes.iter().map(|s| s.history[i].0).collect()),
            median(runs.sizes.iter().map(|s| s.history[i].1).collect()),
        )
    });
    let w = |bytes: f64| capacity::write_units(bytes as usize);
    // New: the read of no record (the minimum), the claim, the synced record; by-number (and
    // by-lookup when the look-up value is not the number) on the claim, by-state on sync; the
    // history items.
    let expect_new = (
        1.0,
        w(record_new) * 2.0
            + w(by_number) * (1.0 + lookup)
            + w(by_state)
            + history[0].0 * w(history[0].1),
    );
    // Unchanged: the read of the record, the history items.
    let expect_unchanged = (
        capacity::read_units(record_new as usize, true),
        history[1].0 * w(history[1].1),
    );
    // Update: the read, the claim, the note, the synced record; by-state out on the claim and
    // in on sync; the history items.
    let expect_update = (
        capacity::read_units(record_new as usize, true),
        w(record_updated) * 3.0 + w(by_state) * 2.0 + history[2].0 * w(history[2].1),
    );
    println!(
        "\nthe table after the batches: a record {record_new:.0} B ({record_updated:.0} B after its update), its by-number entry \
         {by_number:.0} B, by-lookup for {:.0}% of them; history items a document and their size: new {:.2} × {:.0} B, \
         unchanged {:.2} × {:.0} B, update {:.2} × {:.0} B",
        lookup * 100.0,
        history[0].0,
        history[0].1,
        history[1].0,
        history[1].1,
        history[2].0,
        history[2].1
    );
    println!(
        "read + write units those sizes call for: new {:.2} + {:.2}, update {:.2} + {:.2}, unchanged {:.2} + {:.2}; \
         the adapter counted {:.2} + {:.2}, {:.2} + {:.2}, {:.2} + {:.2}",
        expect_new.0,
        expect_new.1,
        expect_update.0,
        expect_update.1,
        expect_unchanged.0,
        expect_unchanged.1,
        new.read,
        new.write,
        updated.read,
        updated.write,
        unchanged.read,
        unchanged.write
    );
    println!(
        "(moto 5.2.5 reports a constant per request: PutItem 1, GetItem 0.5, a whole BatchWriteItem 1, UpdateItem 0.5, \
         whatever the sizes and indexes; the size-based units are the measure)"
    );
    // This layout beside the previous one: the same events and records, the same rules.
    let previous = |f: fn(&Previous) -> f64| median(runs.previous.iter().map(f).collect());
    let before = [
        (previous(|p| p.units[0].0), previous(|p| p.units[0].1)),
        (previous(|p| p.units[2].0), previous(|p| p.units[2].1)),
        (previous(|p| p.units[1].0), previous(|p| p.units[1].1)),
    ];
    println!(
        "\n== DynamoDB per document, this layout beside the previous one (the same records and events sized by the same rules; \
         medians of 100 documents a run)"
    );
    println!(
        "{:<28} {:>22} {:>22} {:>22}",
        "", "new", "update", "unchanged"
    );
    let now = [
        (new.read, new.write),
        (updated.read, updated.write),
        (unchanged.read, unchanged.write),
    ];
    let cell = |i: usize, f: fn((f64, f64)) -> f64| {
        format!(
            "{:.2} vs {:.2} ({:.2}×)",
            f(now[i]),
            f(before[i]),
            f(now[i]) / f(before[i])
        )
    };
    println!(
        "{:<28} {:>22} {:>22} {:>22}",
        "read units",
        cell(0, |u| u.0),
        cell(1, |u| u.0),
        cell(2, |u| u.0)
    );
    println!(
        "{:<28} {:>22} {:>22} {:>22}",
        "write units",
        cell(0, |u| u.1),
        cell(1, |u| u.1),
        cell(2, |u| u.1)
    );
    let item = |(count, bytes): (f64, f64)| count * (bytes + ITEM_OVERHEAD as f64);
    let bytes_now = [item(history[0]), item(history[2]), item(history[1])];
    let bytes_before = [
        previous(|p| p.history_bytes[0]),
        previous(|p| p.history_bytes[2]),
        previous(|p| p.history_bytes[1]),
    ];
    println!(
        "{:<28} {:>22} {:>22} {:>22}",
        "history bytes stored",
        format!(
            "{:.0} vs {:.0} ({:.2}×)",
            bytes_now[0],
            bytes_before[0],
            bytes_now[0] / bytes_before[0]
        ),
        format!(
            "{:.0} vs {:.0} ({:.2}×)",
            bytes_now[1],
            bytes_before[1],
            bytes_now[1] / bytes_before[1]
        ),
        format!(
            "{:.0} vs {:.0} ({:.2}×)",
            bytes_now[2],
            bytes_before[2],
            bytes_now[2] / bytes_before[2]
        ),
    );
    // A record, its by-state entry (every attribute), its by-number entry and by-lookup when the
    // look-up value is not the number, each with DynamoDB's 100-byte overhead.
    let record_storage = record_updated
        + by_state
        + by_number
        + lookup * by_number
        + (3.0 + lookup) * ITEM_OVERHEAD as f64;
    let record_before = previous(|p| p.record_bytes);
    println!(
        "{:<28} {:>22}",
        "a record stored, bytes",
        format!(
            "{record_storage:.0} vs {record_before:.0} ({:.2}×)",
            record_storage / record_before
        )
    );
    cost(
        runs,
        settings,
        [&new, &updated, &unchanged],
        history,
        record_storage,
    );
}

fn cost(
    runs: &Runs,
    settings: &Settings,
    [new, updated, unchanged]: [&PerDocument; 3],
    history: [(f64, f64); 3],
    record_storage: f64,
) {
    let gb = f64::from(settings.memory_mb) / 1024.0;
    let deliveries = settings.targets.get("kingdee").map_or(3.0, |t| t.1);
    // Each change (the order's creation, its update) is read by `deliveries` poll windows: one
    // push, the others unchanged re-deliveries.
    let redeliveries = 2.0 * (deliveries - 1.0);
    let deliveries_per_order = 2.0 + redeliveries;
    let per_order = |f: fn(&PerDocument) -> f64| f(new) + f(updated) + redeliveries * f(unchanged);
    // Lambda's billed time per document: the time measured here, or the CPU time at the share of
    // a vCPU the memory size buys, whichever is longer (this machine's cores are whole ones).
    let cpu_share = f64::from(settings.memory_mb) / FULL_VCPU_MB;
    let billed = |p: &PerDocument| p.wall_ms.max(p.cpu_ms / cpu_share);
    let billed_ms = billed(new) + billed(updated) + redeliveries * billed(unchanged);
    // A busy Kingdee mapping hands 2 messages of up to 100 orders to an invocation.
    let docs_per_invocation = 200.0;
    let poll_units = median(runs.poll_sqs_units.clone());
    let poll_write = median(runs.poll_write.clone());
    let poll_read = median(runs.poll_read.clone());
    // History: an order's items, kept 30 days (a month of orders holds a month of history).
    let item = |(count, bytes): (f64, f64)| count * (bytes + ITEM_OVERHEAD as f64);
    let history_gb_month = (item(history[0]) + item(history[2]) + redeliveries * item(history[1]))
        / 1e9
        * (30.0 / 30.4);
    let record_gb_month = record_storage / 1e9 * (settings.record_retention_days / 30.4);

    let mut lines: Vec<(&str, String, f64)> = Vec::new();
    lines.push((
        "Lambda push duration, unpaced",
        format!("{billed_ms:.2} ms × {gb:.3} GB"),
        billed_ms / 1000.0 * gb * price::LAMBDA_GB_SECOND,
    ));
    lines.push((
        "Lambda push requests",
        format!("{:.3}", deliveries_per_order / docs_per_invocation),
        deliveries_per_order / docs_per_invocation * price::LAMBDA_REQUEST,
    ));
    let dynamo_write = per_order(|p| p.write) + poll_write * deliveries_per_order;
    let dynamo_read = per_order(|p| p.read) + poll_read * deliveries_per_order;
    lines.push((
        "DynamoDB write units",
        format!("{dynamo_write:.2}"),
        dynamo_write * price::DYNAMO_WRITE_UNIT,
    ));
    lines.push((
        "DynamoDB read units",
        format!("{dynamo_read:.2}"),
        dynamo_read * price::DYNAMO_READ_UNIT,
    ));
    lines.push((
        "DynamoDB storage + PITR: history, 30 days",
        format!("{:.2} KB-month", history_gb_month * 1e6),
        history_gb_month * (price::DYNAMO_GB_MONTH + price::DYNAMO_PITR_GB_MONTH),
    ));
    let sqs_units = poll_units * deliveries_per_order
        + per_order(|p| p.mapping_sqs_units)
        + per_order(|p| p.sqs_units);
    lines.push((
        "SQS requests (64 KB units)",
        format!("{sqs_units:.3}"),
        sqs_units * price::SQS_REQUEST,
    ));
    let secret = per_order(|p| p.secret_reads);
    lines.push((
        "Secrets Manager reads",
        format!("{secret:.5}"),
        secret * price::SECRET_CALL,
    ));
    let log_bytes = per_order(|p| p.log_bytes);
    lines.push((
        "CloudWatch Logs: ingested, kept 30 days",
        format!("{log_bytes:.0} B"),
        log_bytes / 1e9 * (price::LOGS_INGEST_GB + price::LOGS_STORE_GB_MONTH),
    ));
    let total: f64 = lines.iter().map(|(_, _, d)| d).sum();
    println!(
        "\n== Dollars per million orders, each created and updated once ({} MB arm64 push; us-east-1 list prices, 2026-12-02)",
        settings.memory_mb
    );
    println!(
        "each change is read by {deliveries:.0} poll windows ((lookback + interval) / interval): an order is 2 pushes and \
         {redeliveries:.0} unchanged re-deliveries"
    );
    println!("{:<44} {:>28} {:>14}", "", "per order", "$ / 1M orders");
    for (what, count, dollars) in &lines {
        println!("{what:<44} {count:>28} {:>14.3}", dollars * 1e6);
    }
    println!(
        "{:<44} {:>28} {:>14.3}",
        "total (goal ≤ $1)",
        "",
        total * 1e6
    );
    if let Some((what, _, dollars)) = lines.iter().max_by(|a, b| a.2.total_cmp(&b.2)) {
        println!(
            "the largest share: {what} ({:.0}% of the total)",
            dollars / total * 100.0
        );
    }
    let record_dollars = record_gb_month * (price::DYNAMO_GB_MONTH + price::DYNAMO_PITR_GB_MONTH);
    println!(
        "beyond the goal's terms, the record and its index entries kept {:.0} days (their TTL): {:.1} KB-month, \
         ${:.3} per million orders (storage + PITR)",
        settings.record_retention_days,
        record_gb_month * 1e6,
        record_dollars * 1e6
    );

    // Pacing, apart: a push instance waits its turn at the target's limit, billed as wall time.
    println!(
        "\n== Pacing, apart: wall time billed while a push instance waits its turn at the target's limit"
    );
    for (connector, (limit, _)) in &settings.targets {
        let per_instance = f64::from(*limit) * ferry_common::engine::RATE_SHARE
            / f64::from(settings.push_concurrency);
        let period = 60.0 / per_instance;
        // Kingdee: the calls measured here (a save to create; a look-up and a save to update).
        // Yonyou (not run here): a save each, its line ids kept from the last answer.
        let (calls, note) = if connector == "kingdee" {
            (new.target_calls + updated.target_calls, "measured")
        } else {
            (2.0, "from the engine's design")
        };
        let seconds = calls * period;
        println!(
            "{connector}: {limit} calls/min shared by {} instances → one every {period:.3} s each; {calls:.2} calls an order ({note}) \
             → {seconds:.2} s × {gb:.3} GB = ${:.2} per million orders",
            settings.push_concurrency,
            seconds * gb * price::LAMBDA_GB_SECOND * 1e6,
        );
    }
    let poll_ms = median(runs.poll_wall_ms.clone());
    let poll_calls = median(runs.poll_calls.clone());
    println!(
        "poll: {poll_ms:.3} ms a document here (the sandbox answers at once), {poll_calls:.0} WDT calls per 1,000 of these \
         sparse 1,000 (the pipeline benchmark: ~13 at 100,000); at WDT's ~60 calls a minute, ~13 calls per 1,000 make \
         each delivery ~13 ms of poll time: {:.0} ms an order → ${:.2} per million orders",
        13.0 * deliveries_per_order,
        0.013 * deliveries_per_order * gb * price::LAMBDA_GB_SECOND * 1e6
    );

    // Fixed monthly costs, whatever the volume.
    let schemes = settings.targets.len();
    let metrics = runs.emf_metrics * (schemes + 1);
    println!("\n== Fixed, a month, whatever the volume");
    println!(
        "CloudWatch custom metrics: push's {} names × ({schemes} schemes + summed) = {metrics} → ${:.2} (poll's add about as many)",
        runs.emf_metrics,
        metrics as f64 * price::METRIC_MONTH
    );
    println!(
        "{} alarms → ${:.2}; the dashboard → ${:.2}; the connectors secret → ${:.2}",
        settings.alarms,
        settings.alarms as f64 * price::ALARM_MONTH,
        price::DASHBOARD_MONTH,
        price::SECRET_MONTH
    );
    println!(
        "poll ticks (43,200 invocations) → ${:.2}; secret reads, one per instance every 5 minutes (~26,000) → ${:.2}; \
         the event source mappings' empty long polls (~5 pollers × 3 a minute × 2 queues) → ${:.2}",
        43_200.0 * price::LAMBDA_REQUEST,
        26_000.0 * price::SECRET_CALL,
        2.0 * 5.0 * 3.0 * 43_200.0 * price::SQS_REQUEST
    );
    println!(
        "(history is kept {:.0} days by its TTL: its storage is then {:.1}× the 30-day line)",
        settings.history_retention_days,
        settings.history_retention_days / 30.0
    );
}
