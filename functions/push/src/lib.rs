//! The push function's handler: an SQS batch from the event source mapping, grouped by scheme and
//! pushed through the engine's pusher over DynamoDB; it answers `batchItemFailures` naming exactly
//! the messages to deliver again, and delays each of those with a visibility change (backoff).

use std::collections::BTreeMap;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use ferry_common::aws::Deployment;
use ferry_common::aws::metrics::{Metrics, Unit};
use ferry_common::engine::{
    Delivery, DocumentOutcome, Envelope, MessageResult, PageQueue, Pusher, blocked_by,
    redelivery_delay,
};
use lambda_runtime::{Error, LambdaEvent};
use std::time::Instant;
use tracing::Instrument;

/// Handles one invocation: the response the event source mapping reads.
pub async fn handle(
    deployment: &Deployment,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Error> {
    push(deployment, event.payload).await
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

/// Pushes a batch. Each message ends in exactly one of: done (left out of the failures, so the
/// event source mapping deletes it) or failed (listed by its own id, never an empty or unknown
/// one, so only it is delivered again).
pub async fn push(deployment: &Deployment, event: SqsEvent) -> Result<SqsBatchResponse, Error> {
    let mut report = SqsBatchResponse::default();
    // Messages by scheme, and which queue each came from (for the backoff's visibility change).
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
            tracing::error!(error = %e, "connectors unavailable; the whole batch will be retried");
            for deliveries in by_scheme.values() {
                for (d, _) in deliveries {
                    report.batch_item_failures.push(failure(&d.id));
                }
            }
            return Ok(report);
        }
    };
    for (scheme_id, deliveries) in by_scheme {
        let parts = match connected.scheme(&scheme_id) {
            Ok(parts) => parts,
            Err(e) if !scheme_id.is_empty() => {
                // A scheme this deployment does not run: a configuration problem, not the
                // document's. Retried until it dead-letters, where an operator finds it.
                tracing::error!(scheme = %scheme_id, error = %e, "message for an unknown scheme");
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
                claim_ttl: deployment.config.tuning.claim_ttl,
            };
            let batch: Vec<Delivery> = deliveries.iter().map(|(d, _)| d.clone()).collect();
            let started = Instant::now();
            let results = pusher.push_batch(&batch).await;
            let mut metrics = Metrics::new(parts.scheme.id());
            metrics.put(
                "PushBatchDuration",
                Unit::Milliseconds,
                started.elapsed().as_secs_f64() * 1000.0,
            );
            // Once the target refused Ferry's credentials, every message of the batch waits as long
            // as the backoff allows: a quick retry cannot pass.
            let blocked = blocked_by(&results).is_some();
            for (result, (delivery, connector)) in results.iter().zip(&deliveries) {
                settle(
                    deployment,
                    result,
                    delivery,
                    connector.as_deref(),
                    blocked,
                    &mut report,
                )
                .await;
                count(&mut metrics, result);
            }
            metrics.emit();
        }
        .instrument(span)
        .await;
    }
    Ok(report)
}

fn failure(id: &str) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id.to_owned();
    failure
}

/// Reports a message for redelivery if it must be retried, delayed by the backoff.
async fn settle(
    deployment: &Deployment,
    result: &MessageResult,
    delivery: &Delivery,
    connector: Option<&str>,
    blocked: bool,
    report: &mut SqsBatchResponse,
) {
    for outcome in &result.documents {
        log(outcome);
    }
    let Some(hint) = result.retry else {
        return;
    };
    report.batch_item_failures.push(failure(&delivery.id));
    let tuning = &deployment.config.tuning;
    let hint = if blocked { tuning.retry_max } else { hint };
    let delay = redelivery_delay(
        tuning.retry_min,
        tuning.retry_max,
        delivery.receive_count,
        hint,
    );
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

fn count(metrics: &mut Metrics, result: &MessageResult) {
    let (mut pushed, mut skipped, mut failed, mut retried, mut blocked) = (0, 0, 0, 0, 0);
    for outcome in &result.documents {
        match outcome {
            DocumentOutcome::Pushed { .. } => pushed += 1,
            DocumentOutcome::Unchanged { .. } | DocumentOutcome::Superseded { .. } => skipped += 1,
            DocumentOutcome::Failed { .. } | DocumentOutcome::Conflict { .. } => failed += 1,
            DocumentOutcome::Retry { .. } => retried += 1,
            DocumentOutcome::Blocked { .. } => blocked += 1,
        }
    }
    metrics.count("DocumentsPushed", pushed);
    metrics.count("DocumentsSkipped", skipped);
    metrics.count("DocumentsFailed", failed);
    metrics.count("DocumentsRetried", retried);
    // A refused credential is not a document's failure: counted apart, so an alarm can say so.
    metrics.count("CredentialRefusals", blocked);
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
    use std::time::Duration;

    use super::*;

    /// A refused credential is counted apart from document failures: the alarm on
    /// `CredentialRefusals` says "fix the secret", and `DocumentsFailed` stays 0.
    #[test]
    fn refused_credentials_are_their_own_metric() {
        let result = MessageResult {
            id: "m".into(),
            receipt: "r".into(),
            retry: Some(Duration::ZERO),
            documents: vec![
                DocumentOutcome::Blocked {
                    key: "1".into(),
                    reason: "kingdee kingdee_auth_token: credentials refused".into(),
                },
                DocumentOutcome::Pushed {
                    key: "2".into(),
                    target_id: "9".into(),
                    created: true,
                },
            ],
        };
        let mut metrics = Metrics::new("wdt-trades-to-kingdee");
        count(&mut metrics, &result);
        let document = metrics.document(0).unwrap();
        assert_eq!(document["CredentialRefusals"], 1.0);
        assert_eq!(document["DocumentsFailed"], 0.0);
        assert_eq!(document["DocumentsPushed"], 1.0);
    }
}
