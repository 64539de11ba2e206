//! Which connectors a deployment uses and their clients: the `connectors:` section of a run
//! configuration, or the JSON secret the Lambdas read from AWS Secrets Manager (same shape).

use std::sync::Arc;

use serde::Deserialize;

use super::kingdee::{KingdeeClient, KingdeeConfig};
use super::wdt::{WdtClient, WdtConfig};
use super::yonyou::{YonyouClient, YonyouConfig};
use super::{HttpSettings, RetrySettings};

/// Connector settings; only those the schemes use are needed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorsConfig {
    /// 旺店通.
    #[serde(default)]
    pub wdt: Option<WdtConfig>,
    /// 金蝶云星辰.
    #[serde(default)]
    pub kingdee: Option<KingdeeConfig>,
    /// 用友BIP.
    #[serde(default)]
    pub yonyou: Option<YonyouConfig>,
    /// Deployment variables kept with the credentials (on AWS, the secret's `variables`: values a
    /// scheme reads that should not sit in a template parameter).
    #[serde(default)]
    pub variables: std::collections::BTreeMap<String, String>,
}

/// How the clients of a runtime are built.
pub struct Clients {
    /// The WDT client.
    pub wdt: Option<WdtClient>,
    /// The Kingdee client.
    pub kingdee: Option<Arc<KingdeeClient>>,
    /// The Yonyou client.
    pub yonyou: Option<Arc<YonyouClient>>,
}

impl Clients {
    /// Clients for the configured connectors. Retries inside a client are few and short: the
    /// queue's redelivery is the engine's retry.
    pub fn new(config: &ConnectorsConfig) -> Result<Clients, String> {
        Clients::with_http(config, Clients::http())
    }

    /// The HTTP settings [`Clients::new`] uses.
    pub fn http() -> HttpSettings {
        HttpSettings {
            retry: RetrySettings {
                max_attempts: 3,
                ..RetrySettings::default()
            },
            ..HttpSettings::default()
        }
    }

    /// Clients with other HTTP settings (a short timeout, when timeouts are what is tested).
    pub fn with_http(config: &ConnectorsConfig, http: HttpSettings) -> Result<Clients, String> {
        Ok(Clients {
            wdt: config
                .wdt
                .clone()
                .map(|c| WdtClient::new(c, http.clone()))
                .transpose()
                .map_err(|e| e.to_string())?,
            kingdee: config
                .kingdee
                .clone()
                .map(|c| KingdeeClient::new(c, http.clone()).map(Arc::new))
                .transpose()
                .map_err(|e| e.to_string())?,
            yonyou: config
                .yonyou
                .clone()
                .map(|c| YonyouClient::new(c, http.clone()).map(Arc::new))
                .transpose()
                .map_err(|e| e.to_string())?,
        })
    }
}
