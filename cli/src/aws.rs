//! The operator commands against a deployment on AWS: the configuration file's `aws:` section
//! names the table, the queues, the secret and the poll function (the stack's outputs); `ferry
//! resync` and `ferry replay` invoke the poll function's on-demand path.

use std::path::Path;

use aws_sdk_lambda::primitives::Blob;
use ferry_common::aws::{Deployment, DeploymentConfig};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::backend::{Requeue, Requeued};

/// A configuration file for a deployment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AwsFile {
    /// The deployment.
    aws: AwsSection,
}

/// Where the deployment is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AwsSection {
    #[serde(flatten)]
    deployment: DeploymentConfig,
    /// The region (otherwise the environment's or profile's).
    #[serde(default)]
    region: Option<String>,
    /// An AWS API emulator's address instead of AWS (moto server for trials and tests).
    #[serde(default)]
    endpoint: Option<String>,
    /// Where to invoke the poll function instead of AWS Lambda (`cargo lambda watch`, a test).
    #[serde(default)]
    lambda_endpoint: Option<String>,
}

/// A deployment opened by the CLI.
pub struct AwsBackend {
    /// Store, queues, schemes.
    pub deployment: Deployment,
    lambda: aws_sdk_lambda::Client,
}

impl AwsBackend {
    /// Opens the deployment a configuration file names.
    pub fn load(path: &Path, content: &str) -> Result<AwsBackend, String> {
        let file: AwsFile =
            serde_saphyr::from_str(content).map_err(|e| format!("{}: {e}", path.display()))?;
        let section = file.aws;
        crate::async_runtime()?.block_on(async {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
            if let Some(region) = &section.region {
                loader = loader.region(aws_config::Region::new(region.clone()));
            }
            if let Some(endpoint) = &section.endpoint {
                loader = loader.endpoint_url(endpoint);
            }
            let sdk = loader.load().await;
            let mut lambda = aws_sdk_lambda::config::Builder::from(&sdk);
            if let Some(endpoint) = &section.lambda_endpoint {
                lambda = lambda.endpoint_url(endpoint);
            }
            Ok(AwsBackend {
                deployment: Deployment::new(&sdk, section.deployment).await?,
                lambda: aws_sdk_lambda::Client::from_conf(lambda.build()),
            })
        })
    }

    /// Invokes the poll function with an on-demand payload and reads its report.
    pub async fn requeue(&self, scheme: &str, what: Requeue) -> Result<Requeued, String> {
        let function = self.deployment.config.poll_function.clone().ok_or_else(|| {
            "aws.poll_function is not set: name the poll function (the stack's PollFunctionName output)"
                .to_owned()
        })?;
        let payload = match what {
            Requeue::Window(window) => json!({
                "scheme": scheme,
                "window": { "from": window.start_text(), "to": window.end_text() },
            }),
            Requeue::Keys { keys, replay } => {
                json!({ "scheme": scheme, "keys": keys, "replay": replay })
            }
        };
        let reply = self
            .lambda
            .invoke()
            .function_name(&function)
            .payload(Blob::new(payload.to_string()))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "invoke {function}: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(e)
                )
            })?;
        let body: Value = reply
            .payload()
            .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
            .unwrap_or(Value::Null);
        if let Some(kind) = reply.function_error() {
            return Err(format!(
                "{function} refused the request ({kind}): {}",
                body["errorMessage"].as_str().unwrap_or("no message")
            ));
        }
        Ok(Requeued {
            documents: body["report"]["documents"].as_u64().unwrap_or(0),
            not_found: body["not_found"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            report: body["report"].clone(),
        })
    }
}
