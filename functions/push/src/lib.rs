//! The push function's handler: an SQS batch from the event source mapping, grouped by scheme and
//! pushed through the engine's pusher over DynamoDB, within the invocation's deadline. Documents
//! still to do (retries, or not started before the deadline) are handed back as a new message,
//! so slow work never counts toward dead-lettering; `batchItemFailures` names only the messages
//! whose own redelivery is wanted.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use ferry_common::aws::Deployment;
use ferry_common::aws::metrics::{Metrics, Unit};
use ferry_common::connector::throttled_calls;
use ferry_common::engine::{
    Backoff, Delivery, DocumentOutcome, Envelope, MessageResult, Next, PageQueue, Pusher,
};
use jiff::Timestamp;
use lambda_runtime::{Error, LambdaEvent};
use tokio::time::Instant;
use tracing::Instrument;

/// Handles one invocation: the response the event source mapping reads.
pub async fn handle(
    deployment: &Deployment,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    let (payload, context) = event.into_parts();
    let now = Timestamp::now().as_millisecond().max(0) as u64;
    let left = Duration::from_millis(context.deadline.saturating_sub(now));
    push(deployment, payload, Instant::now() + left).await
}

fn delivery_of(message: &SqsMessage) -> Option<Delivery> {
    let id = message.message_id.clone().filter(|id| !id.is_empty())?;
    Some(Delivery {
        receipt: message.receipt_handle.clone().unwrap_or_default(),
        body: message.body.clone().unwrap_or_default(),
        receive_count: message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
        id,
    })
}

/// Pushes a batch that must be done by `end`. Each message ends in exactly one of: done or handed
/// back (left out of the failures, so the event source mapping deletes it), or failed (listed by
/// its own id, never an empty or unknown one, so only it is delivered again).
pub async fn push(
    deployment: &Deployment,
    event: SqsEvent,
    end: Instant,
) -> Result<SqsBatchResponse, Error> {
    let mut report = SqsBatchResponse::default();
    // What the store, the queues and the secret used: each scheme's metrics line carries what
    // was used since the previous line, so the lines of an invocation add up to its own use.
    let mut accounted = deployment.usage();
    // Messages by scheme, and which queue each came from (for hand-backs and backoff).
    let mut by_scheme: BTreeMap<String, Vec<(Delivery, Option<String>)>> = BTreeMap::new();
    for message in &event.records {
        let Some(delivery) = delivery_of(message) else {
            // No id: nothing to report it by, and an empty id would fail the whole batch.
            tracing::error!(
                "an SQS record without a message id; left for the event source mapping"
            );
            continue;
        };
        let connector = message
            .event_source_arn
            .as_deref()
            .and_then(|arn| queue_connector(deployment, arn));
        let scheme = Envelope::read(&delivery.body)
            .map(|e| e.scheme)
            .unwrap_or_default();
        by_scheme
            .entry(scheme)
            .or_default()
            .push((delivery, connector));
    }
    let connected = match deployment.connected().await {
        Ok(c) => c,
        Err(e) => {
            // Credentials cannot be read: every message is retried (the queue keeps them).
            ferry_common::aws::logging::error(
                "connectors unavailable; the whole batch will be retried",
                &e,
            );
            for deliveries in by_scheme.values() {
                for (d, _) in deliveries {
                    report.batch_item_failures.push(failure(&d.id));
                }
            }
            return Ok(report);
        }
    };
    let tuning = &deployment.config.tuning;
    let backoff = Backoff {
        min: tuning.retry_min,
        max: tuning.retry_max,
        limit: tuning.retry_limit,
    };
    for (scheme_id, deliveries) in by_scheme {
        let parts = match connected.scheme(&scheme_id) {
            Ok(parts) => parts,
            Err(e) if !scheme_id.is_empty() => {
                // A scheme this deployment does not run: a configuration problem, not the
                // document's. Retried until it dead-letters, where an operator finds it.
                tracing::error!(
                    scheme = %scheme_id,
                    error = %e,
                    domain = ferry_common::Domain::User.as_str(),
                    retryable = false,
                    "message for an unknown scheme"
                );
                for (d, _) in &deliveries {
                    report.batch_item_failures.push(failure(&d.id));
                }
                continue;
            }
            // Unreadable bodies: the first scheme's pusher records them as failed and drops them.
            Err(_) => &connected.schemes[0],
        };
        let span = tracing::info_span!(
            "push",
            scheme = parts.scheme.id(),
            target = parts.scheme.config.target.connector.value.name()
        );
        async {
            let pusher = Pusher {
                scheme: &parts.scheme,
                target: &parts.target,
                records: &deployment.store,
                pacer: parts.pacer.clone(),
                claim_ttl: tuning.claim_ttl,
                deadline: Some(deployment.push_timing(&parts.scheme).deadline(end)),
                backoff,
            };
            let batch: Vec<Delivery> = deliveries.iter().map(|(d, _)| d.clone()).collect();
            let started = std::time::Instant::now();
            let throttled_before = throttled_calls(target_service(&parts.scheme));
            let results = pusher.push_batch(&batch).await;
            let mut metrics = Metrics::new(parts.scheme.id());
            metrics.put(
                "PushBatchDuration",
                Unit::Milliseconds,
                started.elapsed().as_secs_f64() * 1000.0,
            );
            metrics.count(
                "ThrottledCalls",
                throttled_calls(target_service(&parts.scheme)).saturating_sub(throttled_before),
            );
            let mut tally = Tally::default();
            let mut hand_backs: BTreeMap<&str, Vec<(&Delivery, String, Duration)>> =
                BTreeMap::new();
            for (result, (delivery, connector)) in results.iter().zip(&deliveries) {
                for outcome in &result.documents {
                    log(outcome);
                }
                tally.count(result);
                match &result.next {
                    Next::Done => {}
                    Next::HandBack { body, delay, .. } => match connector.as_deref() {
                        Some(connector) => hand_backs.entry(connector).or_default().push((
                            delivery,
                            body.clone(),
                            *delay,
                        )),
                        None => redeliver(deployment, None, delivery, *delay, &mut report).await,
                    },
                    Next::Redeliver(delay) => {
                        redeliver(
                            deployment,
                            connector.as_deref(),
                            delivery,
                            *delay,
                            &mut report,
                        )
                        .await
                    }
                }
            }
            let flushing = std::time::Instant::now();
            for (connector, messages) in hand_backs {
                hand_back(deployment, connector, messages, &mut report).await;
            }
            metrics.put(
                "HandBackDuration",
                Unit::Milliseconds,
                flushing.elapsed().as_secs_f64() * 1000.0,
            );
            tally.emit(&mut metrics, &batch);
            let used = deployment.usage();
            metrics.property("Usage", used.since(&accounted).properties());
            accounted = used;
            metrics.emit();
            if tally.blocked > 0 {
                // The target refused the credentials: the next invocation reads the secret again
                // rather than waiting out the cache (a rotation may have put new ones in place).
                deployment.forget_credentials().await;
            }
        }
        .instrument(span)
        .await;
    }
    Ok(report)
}

/// The service name the target's calls are counted under.
fn target_service(scheme: &ferry_common::Scheme) -> &'static str {
    scheme.config.target.connector.value.name()
}

fn failure(id: &str) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id.to_owned();
    failure
}

/// Sends the continuations of a batch's messages to their queue in as few requests as it takes;
/// the mapping deletes the originals, which are left out of the failures. A crash between the two
/// leaves both: the records make the repeat harmless. If the send fails, each message is
/// redelivered instead (its receive count grows, but nothing is lost).
async fn hand_back(
    deployment: &Deployment,
    connector: &str,
    messages: Vec<(&Delivery, String, Duration)>,
    report: &mut SqsBatchResponse,
) {
    let Some(queue) = deployment.queue(connector) else {
        for (delivery, _, delay) in messages {
            redeliver(deployment, None, delivery, delay, report).await;
        }
        return;
    };
    let continuations = messages
        .iter()
        .map(|(_, body, delay)| (body.clone(), *delay))
        .collect();
    if let Err(e) = queue.send_each_after(continuations).await {
        tracing::warn!(error = %e, "hand-back failed; redelivering the messages");
        for (delivery, _, delay) in messages {
            redeliver(deployment, Some(connector), delivery, delay, report).await;
        }
    }
}

/// Reports a message for redelivery after `delay` (a visibility change).
async fn redeliver(
    deployment: &Deployment,
    connector: Option<&str>,
    delivery: &Delivery,
    delay: Duration,
    report: &mut SqsBatchResponse,
) {
    report.batch_item_failures.push(failure(&delivery.id));
    if let Some(queue) = connector.and_then(|c| deployment.queue(c))
        && let Err(e) = queue.retry_after(&delivery.receipt, delay).await
    {
        // Without the delay it comes back after the queue's visibility timeout: later, not lost.
        tracing::warn!(message = %delivery.id, error = %e, "backoff not set");
    }
}

fn log(outcome: &DocumentOutcome) {
    let key = outcome.key();
    match outcome {
        DocumentOutcome::Pushed {
            target_id, created, ..
        } => tracing::info!(document = key, target_id = %target_id, created, "pushed"),
        DocumentOutcome::Unchanged { .. } => tracing::debug!(document = key, "unchanged"),
        DocumentOutcome::Superseded { .. } => tracing::debug!(document = key, "superseded"),
        DocumentOutcome::Failed { reason, .. } => {
            tracing::warn!(document = key, reason = %reason, "failed")
        }
        DocumentOutcome::Conflict { reason, .. } => {
            tracing::warn!(document = key, reason = %reason, "conflict")
        }
        DocumentOutcome::Blocked { reason, .. } => {
            // Loud: no document can pass until a person fixes the connector's settings.
            tracing::error!(document = key, reason = %reason, "target refused Ferry's credentials")
        }
        DocumentOutcome::Retry { reason, .. } => {
            tracing::info!(document = key, reason = %reason, "retry")
        }
    }
}

/// What one scheme's part of a batch did, as metrics.
#[derive(Default)]
struct Tally {
    pushed: u64,
    skipped: u64,
    failed: u64,
    retried: u64,
    blocked: u64,
    handed_back: u64,
    unstarted: u64,
    redelivered: u64,
}

impl Tally {
    fn count(&mut self, result: &MessageResult) {
        for outcome in &result.documents {
            match outcome {
                DocumentOutcome::Pushed { .. } => self.pushed += 1,
                DocumentOutcome::Unchanged { .. } | DocumentOutcome::Superseded { .. } => {
                    self.skipped += 1
                }
                DocumentOutcome::Failed { .. } | DocumentOutcome::Conflict { .. } => {
                    self.failed += 1
                }
                DocumentOutcome::Retry { .. } => self.retried += 1,
                DocumentOutcome::Blocked { .. } => self.blocked += 1,
            }
        }
        match &result.next {
            Next::Done => {}
            Next::HandBack { unstarted, .. } => {
                self.handed_back += 1;
                self.unstarted += *unstarted as u64;
            }
            Next::Redeliver(_) => self.redelivered += 1,
        }
    }

    fn emit(&self, metrics: &mut Metrics, batch: &[Delivery]) {
        metrics.count("DocumentsPushed", self.pushed);
        metrics.count("DocumentsSkipped", self.skipped);
        metrics.count("DocumentsFailed", self.failed);
        metrics.count("DocumentsRetried", self.retried);
        // A refused credential is not a document's failure: counted apart, so an alarm can say so.
        metrics.count("CredentialRefusals", self.blocked);
        metrics.count("MessagesHandedBack", self.handed_back);
        metrics.count("DocumentsDeferred", self.unstarted);
        metrics.count("MessagesRedelivered", self.redelivered);
        // How long the oldest page of the batch has waited since it was fetched: unlike the
        // queue's own age, it does not restart when a page is handed back.
        let now = Timestamp::now();
        let oldest = batch
            .iter()
            .filter_map(|d| serde_json::from_str::<FetchedAt>(&d.body).ok()?.fetched_at)
            .min();
        if let Some(fetched) = oldest {
            metrics.put(
                "OldestPageAge",
                Unit::Seconds,
                (now - fetched).get_seconds().max(0) as f64,
            );
        }
    }
}

/// A page message's fetch time, read without its documents.
#[derive(serde::Deserialize)]
struct FetchedAt {
    #[serde(default)]
    fetched_at: Option<Timestamp>,
}

/// The target connector whose queue has the ARN `arn` (its name is the ARN's last part).
fn queue_connector(deployment: &Deployment, arn: &str) -> Option<String> {
    let name = arn.rsplit(':').next()?;
    deployment
        .queues()
        .iter()
        .find(|(_, q)| q.url().rsplit('/').next() == Some(name))
        .map(|(c, _)| c.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused credential is counted apart from document failures: the alarm on
    /// `CredentialRefusals` says "fix the secret", and `DocumentsFailed` stays 0.
    #[test]
    fn refused_credentials_are_their_own_metric() {
        let result = MessageResult {
            id: "m".into(),
            receipt: "r".into(),
            next: Next::HandBack {
                body: "{}".into(),
                delay: Duration::from_secs(300),
                unstarted: 3,
                retried: 1,
            },
            documents: vec![
                DocumentOutcome::Blocked {
                    key: "1".into(),
                    reason: "kingdee kingdee_auth_token: credentials refused".into(),
                },
                DocumentOutcome::Pushed {
                    key: "2".into(),
                    target_id: "9".into(),
                    created: true,
                    sent: None,
                },
            ],
        };
        let mut metrics = Metrics::new("wdt-trades-to-kingdee");
        let mut tally = Tally::default();
        tally.count(&result);
        let delivery = Delivery {
            id: "m".into(),
            receipt: "r".into(),
            body: r#"{"scheme":"s","page":0,"part":0,"fetched_at":"2026-01-01T00:00:00Z","documents":[]}"#.into(),
            receive_count: 1,
        };
        tally.emit(&mut metrics, &[delivery]);
        let document = metrics.document(0).unwrap();
        assert_eq!(document["CredentialRefusals"], 1.0);
        assert_eq!(document["DocumentsFailed"], 0.0);
        assert_eq!(document["DocumentsPushed"], 1.0);
        assert_eq!(document["MessagesHandedBack"], 1.0);
        assert_eq!(document["DocumentsDeferred"], 3.0);
        assert!(document["OldestPageAge"].as_f64().unwrap() > 86_400.0 * 300.0);
    }
}
