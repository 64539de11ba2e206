//! The Kingdee target: a save API of the gateway family (V1 `sal_order_save`, V2 `scm/sal_order`,
//! another of the family) as its catalog description says, and the registry's entry for it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::KingdeeClient;
use crate::catalog::TargetSpec;
use crate::connector::body::{line_list, text_field};
use crate::connector::registry::{TargetEntry, TargetSettingsMissing};
use crate::connector::{CallError, Clients, Saved};
use crate::engine::{Addressed, AnyTarget, Bill, TargetApi};

/// The registry's entry: `target.connector: kingdee`.
pub const TARGET: TargetEntry = TargetEntry {
    name: "kingdee",
    title: "Kingdee",
    families: &[("kingdee-gateway", "entry-ids")],
    build,
};

fn build(clients: &Clients, spec: &'static TargetSpec) -> Result<AnyTarget, TargetSettingsMissing> {
    let client = clients.kingdee.clone().ok_or(TargetSettingsMissing)?;
    Ok(AnyTarget::new(KingdeeTarget { client, spec }))
}

/// A Kingdee save API (V1 `sal_order_save`, V2 `scm/sal_order`, or another of the family), as
/// its catalog description says: where to save, the number field, the line list, the look-ups.
#[derive(Clone, Debug)]
pub struct KingdeeTarget {
    /// The account's client, shared by its schemes.
    pub client: Arc<KingdeeClient>,
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
