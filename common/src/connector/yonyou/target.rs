//! The Yonyou target: a save API of the open-API family (`/yonbip/sd/voucherorder/singleSave`,
//! another of the family) as its catalog description says, and the registry's entry for it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::YonyouClient;
use crate::catalog::TargetSpec;
use crate::connector::body::{line_list, text_field};
use crate::connector::registry::{TargetEntry, TargetSettingsMissing};
use crate::connector::{CallError, Clients, Saved};
use crate::engine::{Addressed, AnyTarget, Bill, TargetApi};

/// The registry's entry: `target.connector: yonyou`.
pub const TARGET: TargetEntry = TargetEntry {
    name: "yonyou",
    title: "Yonyou",
    families: &[("yonyou-openapi", "line-status")],
    build,
};

fn build(clients: &Clients, spec: &'static TargetSpec) -> Result<AnyTarget, TargetSettingsMissing> {
    let client = clients.yonyou.clone().ok_or(TargetSettingsMissing)?;
    Ok(AnyTarget::new(YonyouTarget { client, spec }))
}

/// A Yonyou save API, as its catalog description says.
#[derive(Clone, Debug)]
pub struct YonyouTarget {
    /// The tenant's client, shared by its schemes.
    pub client: Arc<YonyouClient>,
    /// The API's description.
    pub spec: &'static TargetSpec,
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
