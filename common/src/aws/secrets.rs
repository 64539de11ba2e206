//! Connector credentials from AWS Secrets Manager: one JSON secret shaped like a run
//! configuration's `connectors:` section, read at run time, cached for a few minutes, and never
//! printed (parse errors name a line and column, never a value).

use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use super::capacity::Meter;
use crate::connector::ConnectorsConfig;

/// One secret, re-read when its cached copy is older than `ttl`.
#[derive(Debug)]
pub struct SecretCache {
    client: Client,
    id: String,
    ttl: Duration,
    cached: tokio::sync::Mutex<Option<(Instant, String, std::sync::Arc<ConnectorsConfig>)>>,
    meter: Meter,
}

impl SecretCache {
    /// A cache of secret `id` (a name or ARN).
    pub fn new(client: Client, id: String, ttl: Duration) -> SecretCache {
        SecretCache {
            client,
            id,
            ttl,
            cached: tokio::sync::Mutex::new(None),
            meter: Meter::new(),
        }
    }

    /// The same cache counting its reads into `meter`.
    pub fn with_meter(mut self, meter: Meter) -> SecretCache {
        self.meter = meter;
        self
    }

    /// Forgets the cached copy: the next read asks Secrets Manager (after a target refused the
    /// credentials, a rotation may have put new ones in place).
    pub async fn forget(&self) {
        self.cached.lock().await.take();
    }

    /// The secret's version id and connectors, from the cache while it is fresh. Secrets Manager
    /// failing is an AWS error (the next read may pass); a secret of the wrong shape is the
    /// deployment's settings.
    pub async fn get(
        &self,
    ) -> Result<(String, std::sync::Arc<ConnectorsConfig>), super::DeploymentError> {
        use super::DeploymentError;
        let mut cached = self.cached.lock().await;
        if let Some((read_at, version, config)) = cached.as_ref()
            && read_at.elapsed() < self.ttl
        {
            return Ok((version.clone(), config.clone()));
        }
        self.meter.secret_read();
        let reply = self
            .client
            .get_secret_value()
            .secret_id(&self.id)
            .send()
            .await
            .map_err(|e| {
                DeploymentError::Aws(format!(
                    "read secret {}: {}",
                    self.id,
                    DisplayErrorContext(e)
                ))
            })?;
        let text = reply.secret_string().ok_or_else(|| {
            DeploymentError::Config(format!(
                "secret {} holds no text (a JSON object is expected)",
                self.id
            ))
        })?;
        let config = parse(&self.id, text).map_err(DeploymentError::Config)?;
        let version = reply.version_id().unwrap_or("-").to_owned();
        let config = std::sync::Arc::new(config);
        *cached = Some((Instant::now(), version.clone(), config.clone()));
        Ok((version, config))
    }
}

/// The connectors of a secret's text. serde_json's messages may quote the offending value, so
/// only the position and kind of the problem are reported.
pub fn parse(id: &str, text: &str) -> Result<ConnectorsConfig, String> {
    serde_json::from_str(text).map_err(|e| {
        let kind = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "is not valid JSON"
            }
            _ => "does not have the shape of a connectors section (wdt, kingdee, yonyou)",
        };
        format!(
            "secret {id} {kind} (line {}, column {})",
            e.line(),
            e.column()
        )
    })
}
