//! The AWS-shaped harness: moto server (started by `scripts/test`, named by `FERRY_TEST_MOTO`),
//! a fresh table, queues and credentials secret per test, and an event source mapping that feeds
//! SQS messages to the push handler as Lambda would.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use ferry_common::aws::DynamoStore;
use ferry_common::aws::{Deployment, DeploymentConfig, Tuning};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

/// moto server's address. The test command starts it; a test run without it fails here, loudly,
/// rather than skipping.
pub fn moto() -> String {
    std::env::var("FERRY_TEST_MOTO").unwrap_or_else(|_| {
        panic!(
            "FERRY_TEST_MOTO is not set: the AWS tests run against moto server, which ./scripts/test \
             installs and starts (or start `.venv/bin/moto_server -H 127.0.0.1 -p 5000` and set \
             FERRY_TEST_MOTO=http://127.0.0.1:5000)"
        )
    })
}

/// An SDK configuration pointed at moto, with fake credentials and a region.
pub async fn sdk() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await
}

/// A unique name for this test's resources (tests share one moto server).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", fastrand::u32(..))
}

/// A queue with its dead-letter queue.
#[derive(Clone, Debug)]
pub struct QueuePair {
    /// The queue's URL.
    pub url: String,
    /// Its ARN (what the event source mapping puts in each record).
    pub arn: String,
    /// The dead-letter queue's URL.
    pub dead_letter_url: String,
}

/// Creates a queue whose messages go to a dead-letter queue after `max_receives` deliveries.
pub async fn queue_pair(sdk: &SdkConfig, name: &str, max_receives: u32) -> QueuePair {
    queue_pair_with(sdk, name, max_receives, Duration::from_secs(30)).await
}

/// A queue pair whose queue hides a received message for `visibility` (whole seconds, at least 1).
pub async fn queue_pair_with(
    sdk: &SdkConfig,
    name: &str,
    max_receives: u32,
    visibility: Duration,
) -> QueuePair {
    use aws_sdk_sqs::types::QueueAttributeName;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .expect("create dead-letter queue");
    let dead_letter_url = dlq.queue_url().unwrap().to_owned();
    let arn_of = |url: String| {
        let sqs = sqs.clone();
        async move {
            sqs.get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await
                .expect("queue attributes")
                .attributes()
                .unwrap()[&QueueAttributeName::QueueArn]
                .clone()
        }
    };
    let dlq_arn = arn_of(dead_letter_url.clone()).await;
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility.as_secs_f64().ceil().max(1.0).to_string(),
        )
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives.to_string() })
                .to_string(),
        )
        .send()
        .await
        .expect("create queue");
    let url = queue.queue_url().unwrap().to_owned();
    QueuePair {
        arn: arn_of(url.clone()).await,
        url,
        dead_letter_url,
    }
}

/// The sandbox's connectors as the credentials secret holds them.
pub fn connectors_secret(sandbox: &ferry_sandbox::Sandbox) -> Value {
    let c = sandbox.credentials();
    json!({
        "wdt": {
            "sid": c.wdt_sid,
            "qimen": { "url": sandbox.qimen_url(), "app_key": c.qimen_app_key, "app_secret": c.qimen_app_secret },
        },
        "kingdee": {
            "url": sandbox.kingdee_url(),
            "client_id": c.kingdee_client_id,
            "client_secret": c.kingdee_client_secret,
            "app_key": c.kingdee_app_key,
            "app_secret": c.kingdee_app_secret,
            "domain": c.kingdee_domain,
            "outer_instance_id": c.kingdee_outer_instance_id,
        },
        "yonyou": {
            "url": sandbox.yonyou_url(),
            "tenant_id": c.yonyou_tenant_id,
            "app_key": c.yonyou_app_key,
            "app_secret": c.yonyou_app_secret,
        },
        // The sandbox customer's org and project codes, as a deployment keeps them in its secret.
        "variables": demo_variables(),
    })
}

/// One test's AWS resources: table, a queue pair per target, the credentials secret.
pub struct AwsWorld {
    /// The SDK configuration (moto).
    pub sdk: SdkConfig,
    /// The table's name.
    pub table: String,
    /// Queue pairs by target connector.
    pub queues: BTreeMap<String, QueuePair>,
    /// The secret's name.
    pub secret: String,
}

impl AwsWorld {
    /// Creates everything for a deployment against `sandbox`.
    pub async fn new(sandbox: &ferry_sandbox::Sandbox, max_receives: u32) -> AwsWorld {
        AwsWorld::with_visibility(sandbox, max_receives, Duration::from_secs(30)).await
    }

    /// Everything for a deployment whose queues hide a received message for `visibility`.
    pub async fn with_visibility(
        sandbox: &ferry_sandbox::Sandbox,
        max_receives: u32,
        visibility: Duration,
    ) -> AwsWorld {
        let sdk = sdk().await;
        let table = unique("ferry");
        ferry_common::aws::dynamo::create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table)
            .await
            .expect("create table");
        let mut queues = BTreeMap::new();
        for connector in ["kingdee", "yonyou"] {
            queues.insert(
                connector.to_owned(),
                queue_pair_with(
                    &sdk,
                    &format!("{table}-{connector}"),
                    max_receives,
                    visibility,
                )
                .await,
            );
        }
        let secret = format!("{table}/connectors");
        aws_sdk_secretsmanager::Client::new(&sdk)
            .create_secret()
            .name(&secret)
            .secret_string(connectors_secret(sandbox).to_string())
            .send()
            .await
            .expect("create secret");
        AwsWorld {
            sdk,
            table,
            queues,
            secret,
        }
    }

    /// The deployment's configuration, with timings short enough for tests.
    pub fn config(&self) -> DeploymentConfig {
        self.config_from(None)
    }

    /// The configuration with a first-poll start.
    pub fn config_from(&self, first_start: Option<jiff::Timestamp>) -> DeploymentConfig {
        DeploymentConfig {
            table: self.table.clone(),
            queues: self
                .queues
                .iter()
                .map(|(c, q)| (c.clone(), q.url.clone()))
                .collect(),
            secret: self.secret.clone(),
            scheme_dir: crate::workspace().join("schemes"),
            // The schemes' variables come from the secret (`connectors_secret`).
            variables: BTreeMap::new(),
            schemes: Vec::new(),
            push_concurrency: 1,
            // The sandbox's accounts allow more than the published limits.
            rate_limits: [
                ("kingdee".to_owned(), 50_000),
                ("yonyou".to_owned(), 50_000),
            ]
            .into(),
            poll_function: None,
            tuning: Tuning {
                claim_ttl: Duration::from_secs(2),
                retry_min: Duration::from_secs(0),
                retry_max: Duration::from_secs(1),
                // Checked against the test queues' 30 s visibility (6 ×) and the 2 s claims.
                push_timeout: Duration::from_secs(1),
                first_start,
                ..Tuning::default()
            },
        }
    }

    /// A fresh execution environment's deployment (a cold start).
    pub async fn deployment(&self, sandbox: &ferry_sandbox::Sandbox) -> Deployment {
        let start = sandbox.source(|s| s.first_time());
        let start = ferry_common::time::from_beijing(
            ferry_common::time::parse_source_datetime(&start).expect("a source time"),
        );
        Deployment::new(&self.sdk, self.config_from(Some(start)))
            .await
            .expect("deployment")
            .with_http(crate::quick_http())
    }

    /// What a function process of this deployment needs in its environment: where the table,
    /// queues and secret are, and moto as its AWS.
    pub fn function_env(&self) -> Vec<(String, String)> {
        [
            ("FERRY_TABLE", self.table.clone()),
            ("FERRY_QUEUE_KINGDEE", self.queues["kingdee"].url.clone()),
            ("FERRY_QUEUE_YONYOU", self.queues["yonyou"].url.clone()),
            ("FERRY_SECRET_ID", self.secret.clone()),
            (
                "FERRY_SCHEME_DIR",
                crate::workspace().join("schemes").display().to_string(),
            ),
            ("AWS_ENDPOINT_URL", moto()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .to_vec()
    }

    /// The deployment's table, through the store adapter.
    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&self.sdk), self.table.clone())
    }

    /// The SQS client.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }
}

/// The sandbox customer's deployment variables, as a deployment's `Variables` would give them.
pub fn demo_variables() -> BTreeMap<String, String> {
    ferry_sandbox::DEMO_VARIABLES
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// An invocation context with `budget` left before its deadline.
pub fn context(budget: Duration) -> Context {
    let mut context = Context::default();
    context.request_id = unique("req");
    context.deadline = (jiff::Timestamp::now().as_millisecond() as u64) + budget.as_millis() as u64;
    context
}

/// What the emulated event source mapping saw.
#[derive(Debug, Default)]
pub struct MappingTally {
    /// Handler invocations.
    pub invocations: u64,
    /// Messages handed to push.
    pub messages: u64,
    /// Messages push reported as failed (left for redelivery).
    pub reported_failed: u64,
    /// Messages deleted after push.
    pub deleted: u64,
    /// Messages delivered again on purpose (at-least-once delivery).
    pub duplicated: u64,
}

/// A received SQS message as the event source mapping hands it to Lambda (the documented record
/// shape: messageId, receiptHandle, body, attributes, messageAttributes, md5OfBody, eventSource,
/// eventSourceARN, awsRegion).
pub fn sqs_record(message: &aws_sdk_sqs::types::Message, queue_arn: &str) -> Value {
    let attributes: serde_json::Map<String, Value> = message
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
                .collect()
        })
        .unwrap_or_default();
    let message_attributes: serde_json::Map<String, Value> = message
        .message_attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        json!({
                            "stringValue": v.string_value(),
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": v.data_type(),
                        }),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    })
}

/// Emulates the event source mapping until every queue is empty: receive up to 10 messages,
/// invoke push with them as an SQS event, delete those not reported as failed. Each reported id
/// must name a message of the batch. `duplicate_rate`: the share of handled messages left
/// undeleted (delivered again, as SQS's at-least-once delivery may), every n-th one.
pub async fn drain(
    world: &AwsWorld,
    deployment: &Deployment,
    duplicate_rate: f64,
    patience: Duration,
) -> MappingTally {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    let sqs = world.sqs();
    let mut tally = MappingTally::default();
    let deadline = tokio::time::Instant::now() + patience;
    let mut handled = 0u64;
    loop {
        let mut busy = false;
        for pair in world.queues.values() {
            let received = sqs
                .receive_message()
                .queue_url(&pair.url)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .expect("receive");
            let messages = received.messages();
            if messages.is_empty() {
                continue;
            }
            busy = true;
            let records: Vec<Value> = messages.iter().map(|m| sqs_record(m, &pair.arn)).collect();
            let event: SqsEvent =
                serde_json::from_value(json!({ "Records": records })).expect("an SQS event");
            // The function's own handler, with the event as the mapping delivers it.
            let response = ferry_push::handle(
                deployment,
                LambdaEvent::new(event, context(Duration::from_secs(60))),
            )
            .await
            .expect("push never fails an invocation");
            let failed = check_failures(&response, messages);
            tally.invocations += 1;
            tally.messages += messages.len() as u64;
            tally.reported_failed += failed.len() as u64;
            for m in messages {
                let id = m.message_id().unwrap();
                if failed.iter().any(|f| f == id) {
                    continue;
                }
                handled += 1;
                if (handled as f64 * duplicate_rate) as u64 > tally.duplicated {
                    // Not deleted: it comes back after its visibility timeout, a second delivery.
                    sqs.change_message_visibility()
                        .queue_url(&pair.url)
                        .receipt_handle(m.receipt_handle().unwrap())
                        .visibility_timeout(0)
                        .send()
                        .await
                        .expect("make visible");
                    tally.duplicated += 1;
                    continue;
                }
                sqs.delete_message()
                    .queue_url(&pair.url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .expect("delete");
                tally.deleted += 1;
            }
        }
        if busy {
            continue;
        }
        let mut waiting = 0;
        for pair in world.queues.values() {
            waiting += depth(&sqs, &pair.url).await;
        }
        if waiting == 0 {
            return tally;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{waiting} messages still queued after {patience:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ids push reported, checked as Lambda checks them: never empty, each a message of the batch.
fn check_failures(
    response: &SqsBatchResponse,
    messages: &[aws_sdk_sqs::types::Message],
) -> Vec<String> {
    let wire = serde_json::to_value(response).expect("serialisable");
    let list = wire["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures is a list");
    list.iter()
        .map(|f| {
            let id = f["itemIdentifier"]
                .as_str()
                .expect("itemIdentifier is text");
            assert!(
                !id.is_empty(),
                "an empty item identifier fails the whole batch"
            );
            assert!(
                messages.iter().any(|m| m.message_id() == Some(id)),
                "{id} is not a message of the batch"
            );
            id.to_owned()
        })
        .collect()
}

/// Takes every message off the queue at `url`, with its message attributes: receives in batches
/// of 10 (hidden for `visibility` seconds) and deletes each, until a receive comes back empty.
pub async fn take_all(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    visibility: i32,
) -> Vec<aws_sdk_sqs::types::Message> {
    let mut taken = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .visibility_timeout(visibility)
            .send()
            .await
            .expect("receive");
        if got.messages().is_empty() {
            return taken;
        }
        for m in got.messages() {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().expect("a receipt"))
                .send()
                .await
                .expect("delete");
            taken.push(m.clone());
        }
    }
}

/// Messages waiting, in flight or delayed.
pub async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName;
    let reply = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("queue attributes");
    let attributes = reply.attributes().unwrap();
    [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        QueueAttributeName::ApproximateNumberOfMessagesDelayed,
    ]
    .iter()
    .filter_map(|a| attributes.get(a)?.parse::<u64>().ok())
    .sum()
}

/// Invokes the poll handler with a JSON payload, as Lambda would.
pub async fn invoke_poll(
    deployment: &Deployment,
    payload: Value,
    budget: Duration,
) -> Result<Value, String> {
    ferry_poll::handle(deployment, LambdaEvent::new(payload, context(budget)))
        .await
        .map_err(|e| e.to_string())
}

/// Serves the Lambda Invoke API (`POST /2015-03-31/functions/NAME/invocations`) with the real poll
/// handler over `deployment`, as AWS Lambda (or `cargo lambda watch`) would: a handler error comes
/// back with `X-Amz-Function-Error` and Lambda's error document. Returns the base URL.
pub async fn spawn_poll_function(deployment: std::sync::Arc<Deployment>) -> String {
    use axum::http::{HeaderMap, HeaderValue, StatusCode};
    let app = axum::Router::new().route(
        "/2015-03-31/functions/{name}/invocations",
        axum::routing::post(move |body: String| {
            let deployment = deployment.clone();
            async move {
                let mut headers = HeaderMap::new();
                let payload: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                match invoke_poll(&deployment, payload, Duration::from_secs(120)).await {
                    Ok(answer) => (StatusCode::OK, headers, answer.to_string()),
                    Err(e) => {
                        headers.insert(
                            "X-Amz-Function-Error",
                            HeaderValue::from_static("Unhandled"),
                        );
                        let error =
                            json!({ "errorType": "&alloc::string::String", "errorMessage": e });
                        (StatusCode::OK, headers, error.to_string())
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}
