//! The operator commands' backend on AWS: the configuration file's `aws:` section
//! names the table, the queues, the secret and the poll function (the stack's outputs); `ferry
//! resync` and `ferry replay` invoke the poll function's on-demand path.

use std::path::Path;

use aws_sdk_lambda::primitives::Blob;
use ferry_common::aws::{Deployment, DeploymentConfig};
use serde::Deserialize;
use serde_json::{Value, json};

use super::requeue::{Refetched, Requeue};
use crate::error::{Blame, CliError};

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
    pub fn load(path: &Path, content: &str) -> Result<AwsBackend, CliError> {
        let file: AwsFile = serde_saphyr::from_str(content)
            .map_err(|e| format!("{}: {e}", path.display()))
            .user()?;
        let section = file.aws;
        crate::context::async_runtime()?.block_on(async {
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
                deployment: Deployment::new(&sdk, section.deployment)
                    .await
                    .map_err(|e| CliError::classified(&e))?,
                lambda: aws_sdk_lambda::Client::from_conf(lambda.build()),
            })
        })
    }

    /// Invokes the poll function with an on-demand payload and reads its report.
    pub async fn requeue(&self, scheme: &str, what: Requeue) -> Result<Refetched, CliError> {
        let function = self.deployment.config.poll_function.clone().ok_or_else(|| {
            CliError::user(
                "aws.poll_function is not set: name the poll function (the stack's PollFunctionName output)",
            )
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
                CliError::external(format!(
                    "invoke {function}: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(e)
                ))
            })?;
        let body: Value = reply
            .payload()
            .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
            .unwrap_or(Value::Null);
        if let Some(kind) = reply.function_error() {
            return Err(CliError::external(format!(
                "{function} refused the request ({kind}): {}",
                body["errorMessage"].as_str().unwrap_or("no message")
            )));
        }
        Ok(Refetched {
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

    /// Which version of its files each scheme runs: what each function recorded at its start,
    /// compared with the operator's folder (`poll 1a2b… push 1a2b… (folder 3c4d…)` when they
    /// differ); schemes the functions run that the folder lacks are listed too.
    pub async fn files(&self) -> Result<Vec<(String, String)>, CliError> {
        let deployed = self.deployment.store.deployed().await.external()?;
        let local: Vec<(String, String)> = self
            .deployment
            .schemes()
            .iter()
            .map(|s| (s.id().to_owned(), s.version.clone()))
            .collect();
        let mut out = Vec::new();
        let mut ids: Vec<&str> = local.iter().map(|(id, _)| id.as_str()).collect();
        for d in &deployed {
            if !ids.contains(&d.scheme.as_str()) {
                ids.push(&d.scheme);
            }
        }
        for id in ids {
            let by_function: Vec<(&str, &str)> = deployed
                .iter()
                .filter(|d| d.scheme == id)
                .map(|d| (d.function.as_str(), d.version.as_str()))
                .collect();
            let folder = local.iter().find(|(l, _)| l == id).map(|(_, v)| v.as_str());
            let agreed = by_function
                .first()
                .map(|(_, v)| *v)
                .filter(|v| by_function.iter().all(|(_, w)| w == v));
            let text = match (agreed, folder) {
                (Some(v), Some(f)) if v == f => v.to_owned(),
                (None, Some(f)) if by_function.is_empty() => {
                    format!("not deployed ({f} here)")
                }
                (_, folder) => {
                    let mut parts: Vec<String> = by_function
                        .iter()
                        .map(|(function, v)| format!("{function} {v}"))
                        .collect();
                    parts.push(match folder {
                        Some(f) => format!("(folder {f})"),
                        None => "(not in the folder)".to_owned(),
                    });
                    parts.join(" ")
                }
            };
            out.push((id.to_owned(), text));
        }
        Ok(out)
    }

    /// Compares the scheme's source, records and target through the deployment's secret's
    /// connectors and its table.
    pub async fn reconcile(
        &self,
        scheme: &str,
        range: ferry_common::engine::Window,
    ) -> Result<ferry_common::reconcile::Reconciliation, CliError> {
        let connected = self
            .deployment
            .connected()
            .await
            .map_err(|e| CliError::classified(&e))?;
        let parts = connected.scheme(scheme).user()?;
        let sides = ferry_common::reconcile::Sides {
            scheme: &parts.scheme,
            source: &parts.source,
            target: &parts.target,
            pacer: parts.pacer.as_deref(),
            store: &self.deployment.store,
        };
        ferry_common::reconcile::compare(sides, range)
            .await
            .map_err(|e| CliError::classified(&e))
    }
}
