//! What the engine's unit tests share: the bundled schemes (one of them with another change
//! policy), over the in-memory adapters of `crate::memory`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::Scheme;
use crate::engine::{Backoff, Deadline, Delivery, Pusher};
use crate::memory::{MemoryStore, MemoryTarget};

/// The variables every bundled scheme needs: the engine's tests need them set, not any particular
/// value.
fn vars(_: &str) -> Option<String> {
    Some("TEST".into())
}

/// The bundled scheme `id`.
fn bundled(id: &str) -> Scheme {
    crate::bundled::load_all(&vars)
        .unwrap()
        .into_iter()
        .find(|s| s.id() == id)
        .unwrap()
}

/// The bundled orders-to-Kingdee scheme.
pub(crate) fn trades_scheme() -> Scheme {
    bundled("wdt-trades-to-kingdee")
}

/// The bundled stock-outs-to-Yonyou scheme (a target with an idempotency key).
pub(crate) fn stockouts_scheme() -> Scheme {
    bundled("wdt-stockouts-to-yonyou")
}

/// The bundled orders-to-Kingdee scheme with `on_change: conflict`: a change after sync is left
/// for a person instead of updating the bill.
pub(crate) fn trades_scheme_on_change_conflict() -> Scheme {
    let (file, text) = crate::bundled::SCHEMES
        .iter()
        .find(|(file, _)| file.ends_with("wdt-trades-to-kingdee.yaml"))
        .unwrap();
    let policy = "on_change: update";
    assert!(text.contains(policy), "the bundled scheme names its policy");
    let text = text.replacen(policy, "on_change: conflict", 1);
    Scheme::load_str(file, &text, &vars).unwrap()
}

/// WDT trade `id` from the sample, its bill number `JY{id}`.
pub(crate) fn trade(id: u64) -> Value {
    let text = include_str!("../../../samples/wdt-trade.json");
    let mut doc: Value = serde_json::from_str(text).unwrap();
    doc["trade_id"] = json!(id);
    doc["trade_no"] = json!(format!("JY{id}"));
    doc
}

/// A first delivery of a page message of `scheme` holding `documents`, after `retries` rounds.
pub(crate) fn delivery(scheme: &str, id: &str, documents: &[Value], retries: u32) -> Delivery {
    Delivery {
        id: id.into(),
        receipt: format!("receipt-{id}"),
        body: json!({
            "scheme": scheme,
            "page": 0,
            "part": 0,
            "retries": retries,
            "documents": documents,
        })
        .to_string(),
        receive_count: 1,
    }
}

/// A pusher over the in-memory store and target with no pacer, backoff from 100 ms to 10 s and
/// `limit` rounds of retries.
pub(crate) fn pusher<'a>(
    scheme: &'a Scheme,
    target: &'a MemoryTarget,
    records: &'a MemoryStore,
    deadline: Option<Deadline>,
    limit: u32,
) -> Pusher<'a, MemoryStore, MemoryTarget> {
    Pusher {
        scheme,
        target,
        records,
        pacer: None,
        claim_ttl: Duration::from_secs(60),
        deadline,
        backoff: Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(10),
            limit,
        },
    }
}
