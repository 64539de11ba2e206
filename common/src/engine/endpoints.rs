//! The engine's view of the connectors: a source that answers one page, and a target that saves,
//! updates and finds bills. The WDT, Kingdee and Yonyou clients are adapted here, so poll and push
//! never name a vendor.

use std::future::Future;

use serde_json::Value;

use crate::connector::kingdee::{KingdeeClient, wire as kingdee_wire};
use crate::connector::wdt::{Page, WdtClient};
use crate::connector::yonyou::YonyouClient;
use crate::connector::{CallError, Saved};
use crate::scheme::config::Transport;

/// Where documents come from: one page of rendered request parameters at a time.
pub trait SourceApi: Send + Sync {
    /// One page.
    fn query(
        &self,
        params: &[(String, String)],
    ) -> impl Future<Output = Result<Page, CallError>> + Send;
}

/// A WDT query API over one transport.
#[derive(Clone, Debug)]
pub struct WdtSource {
    /// The client.
    pub client: WdtClient,
    /// Qimen or openapi2.
    pub transport: Transport,
    /// The query API.
    pub api: String,
}

impl SourceApi for WdtSource {
    async fn query(&self, params: &[(String, String)]) -> Result<Page, CallError> {
        self.client
            .query_page(self.transport, &self.api, params)
            .await
    }
}

/// Where documents go.
pub trait TargetApi: Send + Sync {
    /// The bill number a person would search for (Kingdee `billno`, Yonyou `code`).
    fn number(&self, body: &Value) -> String;

    /// Saves `body` as a new bill, or over the bill `existing` (an update).
    fn save(
        &self,
        body: &Value,
        existing: Option<&str>,
    ) -> impl Future<Output = Result<Saved, CallError>> + Send;

    /// Whether sending `body` again can never create a second bill (an idempotency key).
    fn idempotent(&self, body: &Value) -> bool;

    /// The id of the bill `body` would have created, if the target can look it up (`None` otherwise).
    fn find(&self, body: &Value) -> impl Future<Output = Result<Option<String>, CallError>> + Send;

    /// Whether `error` says the bill exists already (Kingdee's duplicate `billno`).
    fn is_duplicate(&self, error: &CallError) -> bool;
}

fn text_field(body: &Value, pointer: &str) -> String {
    match body.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

impl TargetApi for KingdeeClient {
    fn number(&self, body: &Value) -> String {
        text_field(body, "/billno")
    }

    async fn save(&self, body: &Value, existing: Option<&str>) -> Result<Saved, CallError> {
        match existing {
            None => self.save_order(body).await,
            Some(id) => {
                // V1 modifies the bill named by `id` (erp-apis.md §2).
                let mut body = body.clone();
                body["id"] = Value::String(id.to_owned());
                self.save_order(&body).await
            }
        }
    }

    fn idempotent(&self, _: &Value) -> bool {
        false
    }

    async fn find(&self, body: &Value) -> Result<Option<String>, CallError> {
        let number = self.number(body);
        if number.is_empty() {
            return Ok(None);
        }
        self.find_order(&number).await
    }

    fn is_duplicate(&self, error: &CallError) -> bool {
        error.code.as_deref() == Some(kingdee_wire::DUPLICATE_BILLNO)
    }
}

impl TargetApi for YonyouClient {
    fn number(&self, body: &Value) -> String {
        text_field(body, "/data/code")
    }

    async fn save(&self, body: &Value, existing: Option<&str>) -> Result<Saved, CallError> {
        match existing {
            None => self.save_order(body).await,
            Some(id) => {
                // An update names the order and says so in `_status`.
                let mut body = body.clone();
                if let Some(data) = body.get_mut("data").and_then(Value::as_object_mut) {
                    data.insert("id".into(), Value::String(id.to_owned()));
                    data.insert("_status".into(), Value::String("Update".into()));
                }
                self.save_order(&body).await
            }
        }
    }

    fn idempotent(&self, body: &Value) -> bool {
        body.pointer("/data/resubmitCheckKey")
            .and_then(Value::as_str)
            .is_some_and(|k| !k.is_empty())
    }

    async fn find(&self, _: &Value) -> Result<Option<String>, CallError> {
        // No look-up by number: the order code changes on re-approval. Keyed saves stand in for it.
        Ok(None)
    }

    fn is_duplicate(&self, _: &CallError) -> bool {
        false
    }
}

/// Either target, for callers that run schemes of both kinds side by side.
#[derive(Debug)]
pub enum AnyTarget {
    /// 金蝶云星辰 (one client per account, shared by its schemes).
    Kingdee(std::sync::Arc<KingdeeClient>),
    /// 用友BIP.
    Yonyou(std::sync::Arc<YonyouClient>),
}

impl TargetApi for AnyTarget {
    fn number(&self, body: &Value) -> String {
        match self {
            AnyTarget::Kingdee(c) => c.number(body),
            AnyTarget::Yonyou(c) => c.number(body),
        }
    }

    async fn save(&self, body: &Value, existing: Option<&str>) -> Result<Saved, CallError> {
        match self {
            AnyTarget::Kingdee(c) => c.as_ref().save(body, existing).await,
            AnyTarget::Yonyou(c) => c.as_ref().save(body, existing).await,
        }
    }

    fn idempotent(&self, body: &Value) -> bool {
        match self {
            AnyTarget::Kingdee(c) => c.idempotent(body),
            AnyTarget::Yonyou(c) => c.idempotent(body),
        }
    }

    async fn find(&self, body: &Value) -> Result<Option<String>, CallError> {
        match self {
            AnyTarget::Kingdee(c) => c.as_ref().find(body).await,
            AnyTarget::Yonyou(c) => c.as_ref().find(body).await,
        }
    }

    fn is_duplicate(&self, error: &CallError) -> bool {
        match self {
            AnyTarget::Kingdee(c) => c.is_duplicate(error),
            AnyTarget::Yonyou(c) => c.is_duplicate(error),
        }
    }
}

/// The source and target of `scheme` from configured `clients`; `origin` says where connector
/// settings come from, for the error when one is missing (`connectors`, `the credentials secret`).
pub fn endpoints_for(
    scheme: &crate::Scheme,
    clients: &crate::connector::Clients,
    origin: &str,
) -> Result<(WdtSource, AnyTarget), String> {
    use crate::scheme::config::TargetConnector;
    let id = scheme.id();
    let missing =
        |what: &str, name: &str| format!("scheme {id} {what}, but {origin} has no {name} settings");
    let client = clients
        .wdt
        .clone()
        .ok_or_else(|| missing("reads WDT", "wdt"))?;
    let target = match scheme.config.target.connector.value {
        TargetConnector::Kingdee => AnyTarget::Kingdee(
            clients
                .kingdee
                .clone()
                .ok_or_else(|| missing("writes to Kingdee", "kingdee"))?,
        ),
        TargetConnector::Yonyou => AnyTarget::Yonyou(
            clients
                .yonyou
                .clone()
                .ok_or_else(|| missing("writes to Yonyou", "yonyou"))?,
        ),
    };
    let source = WdtSource {
        client,
        transport: scheme.config.source.transport,
        api: scheme.config.source.api.value.clone(),
    };
    Ok((source, target))
}
