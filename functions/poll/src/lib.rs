//! The poll function's handler: which scheme and what to poll (the schedule's tick, or an
//! operator's window or keys), then the engine's poller over DynamoDB and SQS, stopping before the
//! invocation's deadline so the next run resumes from the cursor.

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use ferry_common::Domain;
use ferry_common::aws::metrics::{Metrics, Unit};
use ferry_common::aws::{Deployment, SchemeParts, logging};
use ferry_common::engine::{PollReport, Poller, Window};
use jiff::Timestamp;
use lambda_runtime::{Context, Error, LambdaEvent};
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

/// Time kept back from the deadline: the last page's send and the cursor's move must fit in it
/// (10 s, or a tenth of a shorter budget).
const RESERVE: Duration = Duration::from_secs(10);

/// How much earlier than its `interval` a scheme is polled on a tick: half the schedule's
/// one-minute period, so a 5-minute scheme is polled every fifth tick, not every sixth.
const TICK_SLACK: Duration = Duration::from_secs(30);

/// What one invocation asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PollRequest {
    /// The schedule's tick (an EventBridge event naming no scheme): every scheme whose
    /// `interval` has passed since its cursor last moved is polled.
    Tick,
    /// The schedule's tick: walk from the cursor to now.
    Scheduled {
        /// The scheme id.
        scheme: String,
    },
    /// Fetch a window again (the cursor stays).
    Window {
        /// The scheme id.
        scheme: String,
        /// The window.
        window: Window,
    },
    /// Fetch documents by key again (the cursor stays); `replay` pushes earlier failures again.
    Keys {
        /// The scheme id.
        scheme: String,
        /// Document keys or look-up values.
        keys: Vec<String>,
        /// An operator's replay.
        replay: bool,
    },
}

impl PollRequest {
    /// The scheme the request is for.
    pub fn scheme(&self) -> &str {
        match self {
            PollRequest::Tick => "*",
            PollRequest::Scheduled { scheme }
            | PollRequest::Window { scheme, .. }
            | PollRequest::Keys { scheme, .. } => scheme,
        }
    }

    /// Reads an invocation payload. Accepted: an EventBridge event naming no scheme (the
    /// schedule's tick), `{"scheme": S}`, an EventBridge event whose `detail` is `{"scheme": S}`, `{"scheme": S, "window": {"from": T,
    /// "to": T}}` and `{"scheme": S, "keys": [K, ...], "replay": bool}`; anything else is refused
    /// with what was expected.
    pub fn parse(payload: &Value) -> Result<PollRequest, String> {
        let Some(object) = payload.as_object() else {
            return Err(format!(
                "the poll payload must be a JSON object, not {}",
                kind(payload)
            ));
        };
        if object.contains_key("detail-type") {
            let event: EventBridgeEvent<Value> = serde_json::from_value(payload.clone())
                .map_err(|e| format!("an EventBridge event the poll function cannot read: {e}"))?;
            return match event.detail.get("scheme") {
                Some(Value::String(scheme)) if !scheme.is_empty() => Ok(PollRequest::Scheduled {
                    scheme: scheme.to_owned(),
                }),
                None => Ok(PollRequest::Tick),
                Some(other) => Err(format!(
                    "the {} event from {} has a detail.scheme that is not a scheme id: {other}",
                    event.detail_type, event.source
                )),
            };
        }
        const FIELDS: [&str; 4] = ["scheme", "window", "keys", "replay"];
        if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(format!(
                "unknown field '{unknown}' in the poll payload; expected {}",
                FIELDS.join(", ")
            ));
        }
        let scheme = match object.get("scheme") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(other) => {
                return Err(format!(
                    "scheme must be a scheme id (text), not {}",
                    kind(other)
                ));
            }
            None => return Err("the poll payload names no scheme (\"scheme\": \"ID\")".into()),
        };
        let replay = match object.get("replay") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(format!("replay must be true or false, not {}", kind(other)));
            }
        };
        match (object.get("window"), object.get("keys")) {
            (Some(_), Some(_)) => Err("give a window or keys, not both".into()),
            (Some(window), None) => {
                let bound = |name: &str| match window.get(name) {
                    Some(Value::String(text)) => Ok(text.clone()),
                    Some(other) => Err(format!(
                        "window.{name} must be a Beijing time or date (text), not {}",
                        kind(other)
                    )),
                    None => Err(format!(
                        "window.{name} is missing (a window is {{\"from\": T, \"to\": T}})"
                    )),
                };
                if !window.is_object() {
                    return Err(format!(
                        "window must be {{\"from\": T, \"to\": T}}, not {}",
                        kind(window)
                    ));
                }
                let window = Window::parse_range(
                    &bound("from")?,
                    &bound("to")?,
                    ("window.from", "window.to"),
                )?;
                Ok(PollRequest::Window { scheme, window })
            }
            (None, Some(keys)) => {
                let list = keys
                    .as_array()
                    .ok_or_else(|| format!("keys must be a list of texts, not {}", kind(keys)))?;
                let mut out = Vec::with_capacity(list.len());
                for (i, key) in list.iter().enumerate() {
                    match key.as_str().map(str::trim) {
                        Some(k) if !k.is_empty() => out.push(k.to_owned()),
                        _ => return Err(format!("keys[{i}] must be a non-empty text, not {key}")),
                    }
                }
                if out.is_empty() {
                    return Err("keys is empty: name at least one document".into());
                }
                Ok(PollRequest::Keys {
                    scheme,
                    keys: out,
                    replay,
                })
            }
            (None, None) => Ok(PollRequest::Scheduled { scheme }),
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// What one invocation did (the function's result, and `ferry resync`'s answer on AWS).
#[derive(Debug, Serialize)]
pub struct PollResponse {
    /// The scheme id.
    pub scheme: String,
    /// `scheduled`, `window` or `keys`.
    pub request: &'static str,
    /// The poll's figures, with why it stopped and where the cursor is.
    pub report: PollReport,
    /// Keys the source did not know (look-ups by key).
    pub not_found: Vec<String>,
}

/// The time left before `deadline_ms` (epoch milliseconds, from the invocation's context).
pub fn time_left(deadline_ms: u64) -> Duration {
    let now = Timestamp::now().as_millisecond().max(0) as u64;
    Duration::from_millis(deadline_ms.saturating_sub(now))
}

/// Handles one invocation.
pub async fn handle(deployment: &Deployment, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    let request = PollRequest::parse(&payload).map_err(|e| {
        // The caller's request is wrong: sending it again cannot pass.
        logging::error_of("refused poll payload", &e, Domain::User, false);
        Error::from(e)
    })?;
    if request == PollRequest::Tick {
        return Ok(serde_json::to_value(tick(deployment, &context).await?)?);
    }
    let response = poll(deployment, &request, &context).await?;
    Ok(serde_json::to_value(response)?)
}

/// What a tick did: the schemes it polled, and when each other one is next due.
#[derive(Debug, Serialize)]
pub struct TickResponse {
    /// `tick`.
    pub request: &'static str,
    /// The schemes that were due, each poll's answer.
    pub polled: Vec<PollResponse>,
    /// The schemes not yet due, with the seconds until they are.
    pub waiting: Vec<(String, i64)>,
}

/// The schedule's tick: polls, side by side, every scheme whose `interval` has passed since its
/// cursor last moved (one schedule for every scheme, each at its own interval). A scheme that
/// fails does not stop the others; the invocation then fails naming each, so it is alarmed on.
pub async fn tick(deployment: &Deployment, context: &Context) -> Result<TickResponse, Error> {
    let now = Timestamp::now();
    let mut due = Vec::new();
    let mut waiting = Vec::new();
    for scheme in deployment.schemes() {
        let cursor = ferry_common::engine::CursorStore::cursor(&deployment.store, scheme.id())
            .await
            .map_err(|e| Error::from(e.to_string()))?;
        let interval = scheme.window.interval;
        let next = cursor.updated_at.map(|moved| {
            moved + interval - jiff::SignedDuration::try_from(TICK_SLACK).unwrap_or_default()
        });
        match next {
            Some(next) if next > now => {
                waiting.push((scheme.id().to_owned(), (next - now).get_seconds()));
            }
            _ => due.push(PollRequest::Scheduled {
                scheme: scheme.id().to_owned(),
            }),
        }
    }
    let results =
        futures_util::future::join_all(due.iter().map(|r| poll(deployment, r, context))).await;
    let mut polled = Vec::new();
    let mut failed = Vec::new();
    for (request, result) in due.iter().zip(results) {
        match result {
            Ok(response) => polled.push(response),
            Err(e) => failed.push(format!("{}: {e}", request.scheme())),
        }
    }
    if !failed.is_empty() {
        return Err(Error::from(format!(
            "the tick's polls failed for {} of {} due schemes:\n{}",
            failed.len(),
            due.len(),
            failed.join("\n")
        )));
    }
    Ok(TickResponse {
        request: "tick",
        polled,
        waiting,
    })
}

/// Runs a request against the deployment.
pub async fn poll(
    deployment: &Deployment,
    request: &PollRequest,
    context: &Context,
) -> Result<PollResponse, Error> {
    let connected = deployment.connected().await.inspect_err(|e| {
        logging::error("connectors unavailable", e);
    })?;
    let parts: &SchemeParts = connected.scheme(request.scheme())?;
    let span =
        tracing::info_span!("poll", scheme = request.scheme(), request_id = %context.request_id);
    let budget = time_left(context.deadline);
    async move {
        let on_page = |page: &ferry_common::engine::PageEvent| {
            tracing::info!(
                window = %format!("{} → {}", page.window.start_text(), page.window.end_text()),
                page = page.page,
                documents = page.documents,
                "page queued"
            );
        };
        let poller = Poller {
            scheme: &parts.scheme,
            source: &parts.source,
            cursors: &deployment.store,
            records: &deployment.store,
            queue: &parts.queue,
            holder: format!("poll-{}", context.request_id),
            deadline: tokio::time::Instant::now() + budget,
            lease: deployment.config.tuning.poll_lease,
            reserve: RESERVE.min(budget / 10),
            first_start: deployment.config.tuning.first_start,
            on_page: &on_page,
            replay: matches!(request, PollRequest::Keys { replay: true, .. }),
            message_documents: deployment.message_documents(&parts.scheme),
        };
        let (kind, result) = match request {
            PollRequest::Tick => {
                return Err(Error::from("a tick polls each due scheme: see `tick`"));
            }
            PollRequest::Scheduled { .. } => (
                "scheduled",
                poller.run(Timestamp::now()).await.map(|r| (r, Vec::new())),
            ),
            PollRequest::Window { window, .. } => (
                "window",
                poller.resync_window(*window).await.map(|r| (r, Vec::new())),
            ),
            PollRequest::Keys { keys, .. } => ("keys", poller.resync_keys(keys).await),
        };
        let (report, not_found) = result.map_err(|e| {
            logging::error("poll failed", &e);
            Error::from(format!("poll {}: {e}", request.scheme()))
        })?;
        let mut metrics = Metrics::new(request.scheme());
        metrics.count("DocumentsFetched", report.documents);
        metrics.count("PagesQueued", report.messages);
        metrics.count("SourceCalls", report.calls);
        metrics.count("DocumentsOversize", report.oversize);
        // A window left open because its documents never added up to its count: alarmed on.
        metrics.count("WindowsUnverified", report.unverified);
        // The report carries the cursor the run left (Beijing time): no second read of the table.
        if kind == "scheduled"
            && let Some(position) = report.cursor.as_deref().and_then(|text| {
                ferry_common::time::parse_source_datetime(text)
                    .ok()
                    .map(ferry_common::time::from_beijing)
            })
        {
            metrics.put(
                "CursorLag",
                Unit::Seconds,
                (Timestamp::now() - position).get_seconds() as f64,
            );
        }
        metrics.emit();
        tracing::info!(
            documents = report.documents,
            messages = report.messages,
            calls = report.calls,
            stop = ?report.stop,
            cursor = report.cursor.as_deref().unwrap_or("-"),
            "poll done"
        );
        Ok(PollResponse {
            scheme: request.scheme().to_owned(),
            request: kind,
            report,
            not_found,
        })
    }
    .instrument(span)
    .await
}
