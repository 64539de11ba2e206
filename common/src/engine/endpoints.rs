//! The engine's view of the connectors: a source that answers one page, and a target that creates
//! bills, updates them line by line and finds them by number, as the scheme's target API's catalog
//! description says. The WDT, Kingdee and Yonyou clients are adapted here, so poll and push never
//! name a vendor.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use crate::catalog::TargetSpec;
use crate::connector::kingdee::KingdeeClient;
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

/// A bill the target holds: its id, and its lines' ids in order when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bill {
    /// The target's id of the bill.
    pub id: String,
    /// The ids of its lines, in order (`None`: not known; the target is asked when needed).
    pub lines: Option<Vec<String>>,
}

/// An update addressed line by line to a bill, ready to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Addressed {
    /// The exact body to send.
    pub wire: Value,
    /// Lines of the bill the update does not mention. A target that deletes lines left out of a
    /// modify drops them; one that keeps them keeps a line the source no longer has, which only
    /// [`TargetApi::kept`] can tell.
    pub left_out: Vec<String>,
}

/// Where documents go: a target API that creates bills, updates them line by line, and finds
/// them by number (so a write whose outcome is unknown can be settled).
pub trait TargetApi: Send + Sync {
    /// The bill number a person would search for (Kingdee `billno`, Yonyou `code`).
    fn number(&self, body: &Value) -> String;

    /// Sends `wire` as it is: a create, or an update [`TargetApi::address`] built.
    fn send(&self, wire: &Value) -> impl Future<Output = Result<Saved, CallError>> + Send;

    /// The update of `bill` to the mapped `body`: the bill named, each of its existing lines
    /// addressed by id (asking the target for them when `bill.lines` is unknown or stale by
    /// nature), new lines added, lines the source no longer has removed where the target allows.
    fn address(
        &self,
        body: &Value,
        bill: &Bill,
    ) -> impl Future<Output = Result<Addressed, CallError>> + Send;

    /// How long sending `wire` again answers with the outcome of its first success (its
    /// idempotency key's window); `None` when it carries no key.
    fn repeat_window(&self, wire: &Value) -> Option<Duration>;

    /// The bill numbered exactly `number`, if the target holds one.
    fn find(&self, number: &str) -> impl Future<Output = Result<Option<Bill>, CallError>> + Send;

    /// Whether bill `id` still holds any of `lines` (left out of an update).
    fn kept(
        &self,
        id: &str,
        lines: &[String],
    ) -> impl Future<Output = Result<bool, CallError>> + Send;
}

fn text_field(body: &Value, pointer: &str) -> String {
    match body.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The mapped lines of a body's line list, as a mutable list (created empty if absent).
fn line_list<'a>(header: &'a mut Value, name: &str) -> &'a mut Vec<Value> {
    if !header.get(name).is_some_and(Value::is_array) {
        header[name] = Value::Array(Vec::new());
    }
    header[name].as_array_mut().expect("made an array above")
}

/// A Kingdee save API (V1 `sal_order_save`, V2 `scm/sal_order`, or another of the family), as
/// its catalog description says: where to save, the number field, the line list, the look-ups.
#[derive(Clone, Debug)]
pub struct KingdeeTarget {
    /// The account's client, shared by its schemes.
    pub client: std::sync::Arc<KingdeeClient>,
    /// The API's description.
    pub spec: &'static TargetSpec,
}

/// A Yonyou save API, as its catalog description says.
#[derive(Clone, Debug)]
pub struct YonyouTarget {
    /// The tenant's client, shared by its schemes.
    pub client: std::sync::Arc<YonyouClient>,
    /// The API's description.
    pub spec: &'static TargetSpec,
}

impl TargetApi for KingdeeTarget {
    fn number(&self, body: &Value) -> String {
        text_field(body, &format!("/{}", self.spec.number))
    }

    async fn send(&self, wire: &Value) -> Result<Saved, CallError> {
        self.client.save_at(&self.spec.save, wire).await
    }

    async fn address(&self, body: &Value, bill: &Bill) -> Result<Addressed, CallError> {
        // Save answers never carry entry ids, and a person may have edited the bill in Kingdee:
        // the entries are read afresh before every modify (header `id`, every existing entry with
        // its id, a new entry without one).
        let detail = self
            .client
            .order_detail_at(&self.spec.detail, &bill.id)
            .await?;
        let mut wire = body.clone();
        wire["id"] = Value::String(bill.id.clone());
        let lines = line_list(&mut wire, &self.spec.lines);
        for (line, entry) in lines.iter_mut().zip(&detail.entries) {
            line["id"] = Value::String(entry.clone());
        }
        let left_out = detail.entries.iter().skip(lines.len()).cloned().collect();
        Ok(Addressed { wire, left_out })
    }

    fn repeat_window(&self, _: &Value) -> Option<Duration> {
        None
    }

    async fn find(&self, number: &str) -> Result<Option<Bill>, CallError> {
        if number.is_empty() {
            return Ok(None);
        }
        let spec = self.spec;
        Ok(self
            .client
            .find_order_at(&spec.detail, &spec.list, number)
            .await?
            .map(|detail| Bill {
                id: detail.id,
                lines: Some(detail.entries),
            }))
    }

    async fn kept(&self, id: &str, lines: &[String]) -> Result<bool, CallError> {
        let detail = self.client.order_detail_at(&self.spec.detail, id).await?;
        Ok(lines.iter().any(|line| detail.entries.contains(line)))
    }
}

impl TargetApi for YonyouTarget {
    fn number(&self, body: &Value) -> String {
        text_field(body, &format!("/data/{}", self.spec.number))
    }

    async fn send(&self, wire: &Value) -> Result<Saved, CallError> {
        self.client.save_at(&self.spec.save, wire).await
    }

    async fn address(&self, body: &Value, bill: &Bill) -> Result<Addressed, CallError> {
        // An Update names the order (`id`, `code`, `orderPrices!orderId`) and every line it had:
        // kept lines `Update` with their ids, new ones `Insert`, the rest `Delete`, so the result
        // is the same whether Yonyou keeps or drops lines an Update leaves out.
        let existing = match &bill.lines {
            Some(lines) => lines.clone(),
            None => {
                self.client
                    .order_lines_at(&self.spec.detail, &bill.id)
                    .await?
            }
        };
        let mut wire = body.clone();
        let header = &mut wire["data"];
        header["_status"] = Value::String("Update".into());
        header["id"] = Value::String(bill.id.clone());
        header["orderPrices!orderId"] = Value::String(bill.id.clone());
        let lines = line_list(header, &self.spec.lines);
        for (index, line) in lines.iter_mut().enumerate() {
            match existing.get(index) {
                Some(id) => {
                    line["_status"] = Value::String("Update".into());
                    line["id"] = Value::String(id.clone());
                    line["orderDetailPrices!orderDetailId"] = Value::String(id.clone());
                }
                None => {
                    line["_status"] = Value::String("Insert".into());
                    if let Some(map) = line.as_object_mut() {
                        map.remove("id");
                        map.remove("orderDetailPrices!orderDetailId");
                    }
                }
            }
        }
        let kept = lines.len();
        for id in existing.iter().skip(kept) {
            lines.push(serde_json::json!({
                "_status": "Delete",
                "id": id,
                "orderDetailPrices!orderDetailId": id,
            }));
        }
        Ok(Addressed {
            wire,
            left_out: Vec::new(),
        })
    }

    fn repeat_window(&self, wire: &Value) -> Option<Duration> {
        wire.pointer("/data/resubmitCheckKey")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .map(|_| self.client.resubmit_window())
    }

    async fn find(&self, number: &str) -> Result<Option<Bill>, CallError> {
        if number.is_empty() {
            return Ok(None);
        }
        Ok(self
            .client
            .find_order_at(&self.spec.list, number)
            .await?
            .map(|id| Bill { id, lines: None }))
    }

    async fn kept(&self, _: &str, _: &[String]) -> Result<bool, CallError> {
        // Every line is addressed explicitly: nothing is ever left out.
        Ok(false)
    }
}

/// Either target, for callers that run schemes of both kinds side by side.
#[derive(Debug)]
pub enum AnyTarget {
    /// 金蝶云星辰 (one client per account, shared by its schemes).
    Kingdee(KingdeeTarget),
    /// 用友BIP.
    Yonyou(YonyouTarget),
}

impl TargetApi for AnyTarget {
    fn number(&self, body: &Value) -> String {
        match self {
            AnyTarget::Kingdee(c) => c.number(body),
            AnyTarget::Yonyou(c) => c.number(body),
        }
    }

    async fn send(&self, wire: &Value) -> Result<Saved, CallError> {
        match self {
            AnyTarget::Kingdee(c) => c.send(wire).await,
            AnyTarget::Yonyou(c) => c.send(wire).await,
        }
    }

    async fn address(&self, body: &Value, bill: &Bill) -> Result<Addressed, CallError> {
        match self {
            AnyTarget::Kingdee(c) => c.address(body, bill).await,
            AnyTarget::Yonyou(c) => c.address(body, bill).await,
        }
    }

    fn repeat_window(&self, wire: &Value) -> Option<Duration> {
        match self {
            AnyTarget::Kingdee(c) => c.repeat_window(wire),
            AnyTarget::Yonyou(c) => c.repeat_window(wire),
        }
    }

    async fn find(&self, number: &str) -> Result<Option<Bill>, CallError> {
        match self {
            AnyTarget::Kingdee(c) => c.find(number).await,
            AnyTarget::Yonyou(c) => c.find(number).await,
        }
    }

    async fn kept(&self, id: &str, lines: &[String]) -> Result<bool, CallError> {
        match self {
            AnyTarget::Kingdee(c) => c.kept(id, lines).await,
            AnyTarget::Yonyou(c) => c.kept(id, lines).await,
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
    let spec = scheme.target_spec();
    let target = match scheme.config.target.connector.value {
        TargetConnector::Kingdee => AnyTarget::Kingdee(KingdeeTarget {
            client: clients
                .kingdee
                .clone()
                .ok_or_else(|| missing("writes to Kingdee", "kingdee"))?,
            spec,
        }),
        TargetConnector::Yonyou => AnyTarget::Yonyou(YonyouTarget {
            client: clients
                .yonyou
                .clone()
                .ok_or_else(|| missing("writes to Yonyou", "yonyou"))?,
            spec,
        }),
    };
    let source = WdtSource {
        client,
        transport: scheme.config.source.transport,
        api: scheme.config.source.api.value.clone(),
    };
    Ok((source, target))
}
