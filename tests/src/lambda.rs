//! Lambda, faithfully enough to be wrong about: the real function binaries, each execution
//! environment a process of its own behind a Runtime API emulator that kills it at its deadline
//! (as Lambda does), an SQS event source mapping over moto (batch size, batching window, maximum
//! concurrency, the queue's visibility and redrive), and schedule ticks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::MessageSystemAttributeName;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::io::BufRead;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What a function is: its binary, its timeout and its environment variables.
#[derive(Clone, Debug)]
pub struct FunctionSpec {
    /// The name (`ferry-poll`, `ferry-push`).
    pub name: String,
    /// The bootstrap binary.
    pub binary: PathBuf,
    /// The configured timeout: the process is killed when an invocation reaches it.
    pub timeout: Duration,
    /// Its environment (besides the Runtime API's own variables).
    pub env: Vec<(String, String)>,
    /// The share of invocations killed at a random instant before their deadline: what Lambda's
    /// kill at the deadline is to code that ran late, without waiting for it.
    pub kill_rate: f64,
}

/// What happened to a function's invocations.
#[derive(Debug, Default)]
pub struct FunctionStats {
    /// Invocations started.
    pub invocations: AtomicU64,
    /// Execution environments started (cold starts).
    pub cold_starts: AtomicU64,
    /// Invocations killed at their deadline.
    pub timeouts: AtomicU64,
    /// Invocations killed early on purpose (`kill_rate`).
    pub killed: AtomicU64,
    /// Invocations that answered with an error (or failed to initialise).
    pub errors: AtomicU64,
}

/// An invocation's end.
#[derive(Debug)]
pub enum Invoked {
    /// The function's answer.
    Answer(Value),
    /// The function reported an error.
    Error(String),
    /// Killed: at the deadline, on purpose, or it died.
    Killed,
}

/// One invocation handed to an execution environment.
struct Pending {
    id: String,
    payload: Value,
    timeout: Duration,
    done: oneshot::Sender<Result<Value, String>>,
}

/// The Runtime API of one execution environment.
struct RuntimeApi {
    next: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Result<Value, String>>>>,
    picked: Mutex<Option<oneshot::Sender<()>>>,
    init_error: Mutex<Option<oneshot::Sender<String>>>,
}

/// An execution environment: a process and its Runtime API.
struct Environment {
    /// The last lines the process wrote.
    recent: Arc<Mutex<std::collections::VecDeque<String>>>,
    child: std::process::Child,
    sender: mpsc::Sender<Pending>,
    api: Arc<RuntimeApi>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Environment {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.server.abort();
    }
}

impl Environment {
    /// Resolves when the process has exited.
    async fn exited(&mut self) -> Option<std::process::ExitStatus> {
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(_) => return None,
            }
        }
    }
}

/// A function: its spec, its idle execution environments, its stdout (logs and metrics).
pub struct Function {
    /// What it is.
    pub spec: FunctionSpec,
    idle: Mutex<Vec<Environment>>,
    /// Every line its processes wrote to stdout.
    pub output: Arc<Mutex<Vec<String>>>,
    /// For each invocation killed at its deadline: the last lines its process wrote.
    pub kills: Mutex<Vec<Vec<String>>>,
    /// What happened to its invocations.
    pub stats: FunctionStats,
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> (StatusCode, HeaderMap, String) {
    let pending = api.next.lock().await.recv().await;
    let Some(pending) = pending else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
    };
    if let Some(picked) = api.picked.lock().unwrap().take() {
        let _ = picked.send(());
    }
    // Lambda's clock starts when the runtime takes the event; a cold start's init is Lambda's own
    // (up to 10 s) and not part of it.
    let deadline_ms =
        jiff::Timestamp::now().as_millisecond() as u64 + pending.timeout.as_millis() as u64;
    let mut headers = HeaderMap::new();
    let header = |v: &str| HeaderValue::from_str(v).unwrap();
    headers.insert("lambda-runtime-aws-request-id", header(&pending.id));
    headers.insert(
        "lambda-runtime-deadline-ms",
        header(&deadline_ms.to_string()),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        header("arn:aws:lambda:us-east-1:123456789012:function:ferry"),
    );
    headers.insert("lambda-runtime-trace-id", header("Root=1-0-0;Sampled=0"));
    headers.insert("content-type", header("application/json"));
    api.waiting
        .lock()
        .unwrap()
        .insert(pending.id.clone(), pending.done);
    (StatusCode::OK, headers, pending.payload.to_string())
}

async fn respond(
    State(api): State<Arc<RuntimeApi>>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    if let Some(done) = api.waiting.lock().unwrap().remove(&id) {
        let _ = done.send(serde_json::from_str(&body).map_err(|e| format!("{e}: {body}")));
    }
    StatusCode::ACCEPTED
}

async fn error(
    State(api): State<Arc<RuntimeApi>>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    if let Some(done) = api.waiting.lock().unwrap().remove(&id) {
        let _ = done.send(Err(body));
    }
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<Arc<RuntimeApi>>, body: String) -> StatusCode {
    if let Some(tell) = api.init_error.lock().unwrap().take() {
        let _ = tell.send(body);
    }
    StatusCode::ACCEPTED
}

impl Function {
    /// A function with no environments yet.
    pub fn new(spec: FunctionSpec) -> Arc<Function> {
        Arc::new(Function {
            spec,
            idle: Mutex::new(Vec::new()),
            output: Arc::new(Mutex::new(Vec::new())),
            kills: Mutex::new(Vec::new()),
            stats: FunctionStats::default(),
        })
    }

    /// Starts an execution environment: the Runtime API, then the process (a cold start).
    async fn start(&self) -> Environment {
        let (sender, receiver) = mpsc::channel(1);
        let api = Arc::new(RuntimeApi {
            next: tokio::sync::Mutex::new(receiver),
            waiting: Mutex::new(HashMap::new()),
            picked: Mutex::new(None),
            init_error: Mutex::new(None),
        });
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let mut command = std::process::Command::new(&self.spec.binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.spec.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", self.spec.name),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "simulation")
            .envs(self.spec.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start the function's process");
        self.stats.cold_starts.fetch_add(1, Ordering::Relaxed);
        let output = self.output.clone();
        let recent = Arc::new(Mutex::new(std::collections::VecDeque::new()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for stream in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let output = output.clone();
            let recent = recent.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    {
                        let mut recent = recent.lock().unwrap();
                        if recent.len() == 5 {
                            recent.pop_front();
                        }
                        recent.push_back(line.clone());
                    }
                    output.lock().unwrap().push(line);
                }
            });
        }
        Environment {
            recent,
            child,
            sender,
            api,
            server,
        }
    }

    /// Invokes the function with `payload`, in an idle environment or a new one, and waits for its
    /// answer until its timeout, when the environment's process is killed.
    pub async fn invoke(&self, payload: Value) -> Invoked {
        self.stats.invocations.fetch_add(1, Ordering::Relaxed);
        let idle = self.idle.lock().unwrap().pop();
        let mut environment = match idle {
            Some(environment) => environment,
            None => self.start().await,
        };
        let (picked_tx, picked_rx) = oneshot::channel();
        let (init_tx, init_rx) = oneshot::channel();
        *environment.api.picked.lock().unwrap() = Some(picked_tx);
        *environment.api.init_error.lock().unwrap() = Some(init_tx);
        let (done_tx, done_rx) = oneshot::channel();
        let timeout = self.spec.timeout;
        let pending = Pending {
            id: format!("{:032x}", fastrand::u128(..)),
            payload,
            timeout,
            done: done_tx,
        };
        if environment.sender.send(pending).await.is_err() {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            return Invoked::Killed;
        }
        // The init phase: the runtime asks for the event, or reports that it cannot start.
        tokio::select! {
            _ = picked_rx => {}
            reason = init_rx => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                return Invoked::Error(format!("init: {}", reason.unwrap_or_default()));
            }
            status = environment.exited() => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                // What it said before exiting (Lambda shows it as the init error), once the
                // reader threads have caught up.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let said: Vec<String> = environment.recent.lock().unwrap().iter().cloned().collect();
                return Invoked::Error(format!(
                    "the process exited during init ({status:?}): {}",
                    said.join("\n")
                ));
            }
            _ = tokio::time::sleep(Duration::from_secs(10)) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                return Invoked::Error("init did not finish in 10 s".into());
            }
        }
        let started = Instant::now();
        let kill_at = if fastrand::f64() < self.spec.kill_rate {
            Some(started + timeout.mul_f64(fastrand::f64()))
        } else {
            None
        };
        let end = kill_at.unwrap_or(started + timeout);
        tokio::select! {
            answer = done_rx => match answer {
                Ok(Ok(value)) => {
                    self.idle.lock().unwrap().push(environment);
                    Invoked::Answer(value)
                }
                Ok(Err(reason)) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    self.idle.lock().unwrap().push(environment);
                    Invoked::Error(reason)
                }
                Err(_) => Invoked::Killed,
            },
            _ = tokio::time::sleep_until(end) => {
                // Lambda stops the environment: the process dies mid-work, whatever it was doing.
                let _ = environment.child.kill();
                let counter = if kill_at.is_some() { &self.stats.killed } else { &self.stats.timeouts };
                counter.fetch_add(1, Ordering::Relaxed);
                if kill_at.is_none() {
                    let recent = environment.recent.lock().unwrap().iter().cloned().collect();
                    self.kills.lock().unwrap().push(recent);
                }
                Invoked::Killed
            }
        }
    }

    /// Every Embedded Metric Format document the function wrote, summed by metric name.
    pub fn metrics(&self) -> HashMap<String, f64> {
        let mut sums = HashMap::new();
        for line in self.output.lock().unwrap().iter() {
            let Ok(document) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let Some(definitions) = document["_aws"]["CloudWatchMetrics"].as_array() else {
                continue;
            };
            for definition in definitions {
                for metric in definition["Metrics"].as_array().into_iter().flatten() {
                    let name = metric["Name"].as_str().unwrap_or_default();
                    if let Some(value) = document[name].as_f64() {
                        *sums.entry(name.to_owned()).or_insert(0.0) += value;
                    }
                }
            }
        }
        sums
    }

    /// Every value the function reported for metric `name`, in order.
    pub fn metric_values(&self, name: &str) -> Vec<f64> {
        self.output
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter_map(|document| document[name].as_f64())
            .collect()
    }

    /// Lines the function wrote that contain `text`.
    pub fn lines_with(&self, text: &str) -> Vec<String> {
        self.output
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .cloned()
            .collect()
    }
}

/// An SQS event source mapping's settings.
#[derive(Clone, Debug)]
pub struct MappingSpec {
    /// The queue's URL.
    pub url: String,
    /// Its ARN (each record's `eventSourceARN`).
    pub arn: String,
    /// Messages per batch (at most 10 here).
    pub batch_size: usize,
    /// How long to gather a batch.
    pub batching_window: Duration,
    /// Invocations at once.
    pub maximum_concurrency: usize,
}

/// What a mapping did.
#[derive(Debug, Default)]
pub struct MappingStats {
    /// Batches handed to the function.
    pub batches: AtomicU64,
    /// Messages handed to the function.
    pub messages: AtomicU64,
    /// Messages deleted after an answer.
    pub deleted: AtomicU64,
    /// Messages the function reported as failed.
    pub reported: AtomicU64,
    /// Batches left to their visibility timeout (the invocation was killed or failed).
    pub abandoned: AtomicU64,
}

/// Runs the event source mapping until `stop` is set: receive, invoke, delete what succeeded.
pub async fn run_mapping(
    sqs: aws_sdk_sqs::Client,
    spec: MappingSpec,
    function: Arc<Function>,
    stats: Arc<MappingStats>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut running = JoinSet::new();
    while !*stop.borrow() {
        while running.len() >= spec.maximum_concurrency {
            running.join_next().await;
        }
        let gather_end = Instant::now() + spec.batching_window;
        let mut messages = Vec::new();
        loop {
            let want = (spec.batch_size - messages.len()).clamp(1, 10) as i32;
            let received = sqs
                .receive_message()
                .queue_url(&spec.url)
                .max_number_of_messages(want)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await;
            if let Ok(reply) = received {
                messages.extend(reply.messages().iter().cloned());
            }
            if messages.len() >= spec.batch_size || Instant::now() >= gather_end {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if messages.is_empty() {
            // The mapping's pollers back off on an empty queue (and moto is spared).
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let (sqs, spec, function, stats) =
            (sqs.clone(), spec.clone(), function.clone(), stats.clone());
        running.spawn(async move {
            let records: Vec<Value> = messages
                .iter()
                .map(|m| crate::aws::sqs_record(m, &spec.arn))
                .collect();
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats
                .messages
                .fetch_add(messages.len() as u64, Ordering::Relaxed);
            let answer = function.invoke(json!({ "Records": records })).await;
            let Invoked::Answer(answer) = answer else {
                stats.abandoned.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let failed: Vec<&str> = answer["batchItemFailures"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["itemIdentifier"].as_str())
                .collect();
            stats
                .reported
                .fetch_add(failed.len() as u64, Ordering::Relaxed);
            for m in &messages {
                if failed.contains(&m.message_id().unwrap_or_default()) {
                    continue;
                }
                let deleted = sqs
                    .delete_message()
                    .queue_url(&spec.url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await;
                if deleted.is_ok() {
                    stats.deleted.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    running.shutdown().await;
}

/// Invokes the poll function for each scheme every `interval` until `stop` is set (EventBridge
/// schedules: a tick does not wait for the last one's invocation).
pub async fn run_schedule(
    function: Arc<Function>,
    schemes: Vec<String>,
    interval: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut running = JoinSet::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !*stop.borrow() {
        tick.tick().await;
        for scheme in &schemes {
            let function = function.clone();
            let payload = json!({ "scheme": scheme });
            running.spawn(async move { function.invoke(payload).await });
        }
        while running.try_join_next().is_some() {}
    }
    running.shutdown().await;
}
