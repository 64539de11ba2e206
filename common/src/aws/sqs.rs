//! The page queue on SQS: batched sends (at most 10 messages and 256 KiB a call), each message
//! tagged with its scheme and page as attributes, and the dead-letter queue SQS redrives to after
//! the queue's `maxReceiveCount`.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use jiff::Timestamp;

use super::capacity::Meter;
use crate::engine::message::{Envelope, MAX_MESSAGE_BYTES};
use crate::engine::ports::{DeadLetter, Delivery, PageQueue, StoreError};

/// SendMessageBatch's and ReceiveMessage's limit on messages a call.
pub const MAX_BATCH: usize = 10;

/// How often a partly failed batch send is tried again before the poll fails (and resumes next
/// run from its cursor, which has not moved past the page).
const SEND_ATTEMPTS: u32 = 5;

/// A queue and its dead-letter queue; cheap to clone.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    url: String,
    dead_letter_url: Option<String>,
    visibility: Option<Duration>,
    meter: Meter,
}

/// The bytes SQS bills a message for: its body and its attributes (names, types, values).
fn message_bytes(
    body: &str,
    attributes: Option<&std::collections::HashMap<String, MessageAttributeValue>>,
) -> usize {
    body.len()
        + attributes.map_or(0, |a| {
            a.iter()
                .map(|(name, v)| {
                    name.len() + v.data_type().len() + v.string_value().map_or(0, str::len)
                })
                .sum()
        })
}

fn failure<E: std::error::Error + 'static>(operation: String, error: E) -> StoreError {
    StoreError::remote(operation, DisplayErrorContext(error))
}

fn attribute(kind: &str, value: String) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type(kind)
        .string_value(value)
        .build()
        .expect("data type and value are set")
}

impl SqsQueue {
    /// The queue at `url`, whose dead letters go to `dead_letter_url` (see [`SqsQueue::discover`]).
    pub fn new(client: Client, url: impl Into<String>, dead_letter_url: Option<String>) -> Self {
        SqsQueue {
            client,
            url: url.into(),
            dead_letter_url,
            visibility: None,
            meter: Meter::new(),
        }
    }

    /// The same queue with its visibility timeout known (the template's, from the environment),
    /// so the timing checks need not ask SQS at start.
    pub fn with_visibility(mut self, visibility: Duration) -> SqsQueue {
        self.visibility = Some(visibility);
        self
    }

    /// The same queue counting its requests into `meter`.
    pub fn with_meter(mut self, meter: Meter) -> SqsQueue {
        self.meter = meter;
        self
    }

    /// What the queue's own attributes say: its visibility timeout and its dead-letter queue's
    /// URL (`GetQueueAttributes`, then `GetQueueUrl` for the dead-letter queue).
    pub async fn attributes(
        client: &Client,
        url: &str,
    ) -> Result<(Option<Duration>, Option<String>), StoreError> {
        let reply = client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await
            .map_err(|e| failure(format!("read redrive policy of {url}"), e))?;
        let visibility = reply
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs);
        let policy = reply
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy));
        let dead_letter_url = match policy {
            None => None,
            Some(policy) => {
                let arn = serde_json::from_str::<serde_json::Value>(policy)
                    .ok()
                    .and_then(|p| p["deadLetterTargetArn"].as_str().map(str::to_owned))
                    .ok_or_else(|| {
                        StoreError::remote(
                            format!("read redrive policy of {url}"),
                            format!("no deadLetterTargetArn in {policy}"),
                        )
                    })?;
                // arn:aws:sqs:REGION:ACCOUNT:NAME
                let name = arn.rsplit(':').next().unwrap_or_default().to_owned();
                let found = client
                    .get_queue_url()
                    .queue_name(&name)
                    .send()
                    .await
                    .map_err(|e| failure(format!("find dead-letter queue {name}"), e))?;
                found.queue_url().map(str::to_owned)
            }
        };
        Ok((visibility, dead_letter_url))
    }

    /// The queue at `url` with the dead-letter queue its redrive policy names.
    pub async fn discover(client: Client, url: impl Into<String>) -> Result<SqsQueue, StoreError> {
        let url = url.into();
        let (visibility, dead_letter_url) = SqsQueue::attributes(&client, &url).await?;
        Ok(SqsQueue {
            visibility,
            ..SqsQueue::new(client, url, dead_letter_url)
        })
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The queue's visibility timeout, if read by [`SqsQueue::discover`].
    pub fn visibility(&self) -> Option<Duration> {
        self.visibility
    }

    /// The dead-letter queue's URL, if the queue has one.
    pub fn dead_letter_url(&self) -> Option<&str> {
        self.dead_letter_url.as_deref()
    }

    fn entry(id: usize, body: &str, delay: Duration) -> SendMessageBatchRequestEntry {
        let mut entry = SendMessageBatchRequestEntry::builder()
            .id(id.to_string())
            .message_body(body);
        if !delay.is_zero() {
            // SQS's ceiling on a message's delay is 15 minutes.
            entry = entry.delay_seconds(delay.as_secs().min(900) as i32);
        }
        if let Some(envelope) = Envelope::read(body) {
            entry = entry
                .message_attributes("scheme", attribute("String", envelope.scheme))
                .message_attributes("page", attribute("Number", envelope.page.to_string()));
            if envelope.replay {
                entry = entry.message_attributes("replay", attribute("String", "true".into()));
            }
        }
        entry.build().expect("id and body are set")
    }

    /// Sends one batch, trying the entries SQS failed again (throttling, a partial outage).
    async fn send_batch(&self, bodies: &[String], delay: Duration) -> Result<(), StoreError> {
        self.send_delayed(bodies, &vec![delay; bodies.len()]).await
    }

    /// Sends each body after its own delay, in SendMessageBatch calls of at most 10 messages and
    /// 256 KiB: how push hands back a batch's unfinished work in a request or two.
    pub async fn send_each_after(
        &self,
        messages: Vec<(String, Duration)>,
    ) -> Result<(), StoreError> {
        let (bodies, delays): (Vec<String>, Vec<Duration>) = messages.into_iter().unzip();
        let mut start = 0;
        for batch in batches(&bodies, MAX_MESSAGE_BYTES) {
            let end = start + batch.len();
            self.send_delayed(batch, &delays[start..end]).await?;
            start = end;
        }
        Ok(())
    }

    /// One SendMessageBatch call, `delays[i]` for `bodies[i]`.
    async fn send_delayed(&self, bodies: &[String], delays: &[Duration]) -> Result<(), StoreError> {
        let mut pending: Vec<usize> = (0..bodies.len()).collect();
        for attempt in 1..=SEND_ATTEMPTS {
            let entries: Vec<SendMessageBatchRequestEntry> = pending
                .iter()
                .map(|&i| Self::entry(i, &bodies[i], delays[i]))
                .collect();
            self.meter.sqs(
                "SendMessageBatch",
                entries
                    .iter()
                    .map(|e| message_bytes(e.message_body(), e.message_attributes()))
                    .sum(),
            );
            let reply = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| failure(format!("send to {}", self.url), e))?;
            let failed = reply.failed();
            if failed.is_empty() {
                return Ok(());
            }
            if let Some(f) = failed.iter().find(|f| f.sender_fault()) {
                // The request itself is wrong (too large, bad attribute): no retry helps.
                return Err(StoreError::remote(
                    format!("send to {}", self.url),
                    format!("{}: {}", f.code(), f.message().unwrap_or("-")),
                ));
            }
            pending = failed.iter().filter_map(|f| f.id().parse().ok()).collect();
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        Err(StoreError::remote(
            format!("send to {}", self.url),
            format!(
                "{} messages not accepted after {SEND_ATTEMPTS} attempts",
                pending.len()
            ),
        ))
    }

    async fn count(&self, url: &str) -> Result<u64, StoreError> {
        self.meter.sqs("GetQueueAttributes", 0);
        let reply = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| failure(format!("read depth of {url}"), e))?;
        Ok(reply
            .attributes()
            .map(|a| {
                a.values()
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum::<u64>()
            })
            .unwrap_or(0))
    }

    async fn receive_from(
        &self,
        url: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<aws_sdk_sqs::types::Message>, StoreError> {
        let reply = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, MAX_BATCH) as i32)
            .visibility_timeout(visibility.as_secs().min(43_200) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| failure(format!("receive from {url}"), e))?;
        self.meter.sqs(
            "ReceiveMessage",
            reply
                .messages()
                .iter()
                .map(|m| message_bytes(m.body().unwrap_or_default(), m.message_attributes()))
                .sum(),
        );
        Ok(reply.messages().to_vec())
    }
}

fn receive_count(message: &aws_sdk_sqs::types::Message) -> u32 {
    message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// Packs bodies into SendMessageBatch calls: at most 10 messages and `limit` bytes each.
pub fn batches(bodies: &[String], limit: usize) -> Vec<&[String]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, body) in bodies.iter().enumerate() {
        if i > start && (i - start == MAX_BATCH || bytes + body.len() > limit) {
            out.push(&bodies[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += body.len();
    }
    if start < bodies.len() {
        out.push(&bodies[start..]);
    }
    out
}

impl PageQueue for SqsQueue {
    async fn send(&self, bodies: Vec<String>) -> Result<(), StoreError> {
        for batch in batches(&bodies, MAX_MESSAGE_BYTES) {
            self.send_batch(batch, Duration::ZERO).await?;
        }
        Ok(())
    }

    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Delivery>, StoreError> {
        Ok(self
            .receive_from(&self.url, max, visibility)
            .await?
            .into_iter()
            .map(|m| Delivery {
                receive_count: receive_count(&m),
                id: m.message_id().unwrap_or_default().to_owned(),
                receipt: m.receipt_handle().unwrap_or_default().to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
            })
            .collect())
    }

    async fn delete(&self, receipt: &str) -> Result<(), StoreError> {
        self.meter.sqs("DeleteMessage", 0);
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| failure(format!("delete from {}", self.url), e))?;
        Ok(())
    }

    async fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), StoreError> {
        self.meter.sqs("ChangeMessageVisibility", 0);
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            // SQS's ceiling is 12 hours.
            .visibility_timeout(delay.as_secs().min(43_200) as i32)
            .send()
            .await
            .map_err(|e| failure(format!("reschedule a message of {}", self.url), e))?;
        Ok(())
    }

    /// Sends the continuation, then deletes the delivered message (the push function's role
    /// needs `sqs:SendMessage` on its queues for this).
    async fn hand_back(
        &self,
        receipt: &str,
        body: String,
        delay: Duration,
    ) -> Result<(), StoreError> {
        self.send_batch(std::slice::from_ref(&body), delay).await?;
        self.delete(receipt).await
    }

    async fn depth(&self) -> Result<u64, StoreError> {
        self.count(&self.url).await
    }

    /// A peek at up to 100 dead letters (received with no visibility timeout, so they stay).
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let Some(url) = &self.dead_letter_url else {
            return Ok(Vec::new());
        };
        let mut out: Vec<DeadLetter> = Vec::new();
        for _ in 0..10 {
            let messages = self.receive_from(url, MAX_BATCH, Duration::ZERO).await?;
            let before = out.len();
            for m in messages {
                let id = m.message_id().unwrap_or_default().to_owned();
                if out.iter().any(|d| d.id == id) {
                    continue;
                }
                let sent = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                    .and_then(|v| v.parse::<i64>().ok())
                    .and_then(|ms| Timestamp::from_millisecond(ms).ok())
                    .unwrap_or(Timestamp::UNIX_EPOCH);
                out.push(DeadLetter {
                    receive_count: receive_count(&m),
                    body: m.body().unwrap_or_default().to_owned(),
                    dead_at: sent,
                    id,
                });
            }
            if out.len() == before {
                break;
            }
        }
        Ok(out)
    }

    async fn dead_letter_count(&self) -> Result<u64, StoreError> {
        match &self.dead_letter_url {
            Some(url) => self.count(url).await,
            None => Ok(0),
        }
    }

    /// Sends each dead letter to the queue again, then deletes it from the dead-letter queue (a
    /// crash between the two leaves a copy in both: the records make the second push a no-op).
    async fn redrive(&self) -> Result<u64, StoreError> {
        let Some(url) = self.dead_letter_url.clone() else {
            return Ok(0);
        };
        let mut moved = 0u64;
        loop {
            let messages = self
                .receive_from(&url, MAX_BATCH, Duration::from_secs(60))
                .await?;
            if messages.is_empty() {
                return Ok(moved);
            }
            let bodies: Vec<String> = messages
                .iter()
                .map(|m| m.body().unwrap_or_default().to_owned())
                .collect();
            self.send(bodies).await?;
            for m in &messages {
                self.meter.sqs("DeleteMessage", 0);
                self.client
                    .delete_message()
                    .queue_url(&url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .map_err(|e| failure(format!("delete from {url}"), e))?;
                moved += 1;
            }
        }
    }
}
