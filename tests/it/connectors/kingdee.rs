//! Kingdee: gateway signing, the cached app-token, saves, duplicates, look-ups and faults.

use ferry_common::connector::kingdee::KingdeeClient;
use ferry_common::connector::{FailureClass, Secret};
use ferry_sandbox::{Endpoint, Fault, Sandbox};
use ferry_tests::{quick_http, spawn_sandbox};
use serde_json::{Value, json};

fn client(sandbox: &Sandbox) -> KingdeeClient {
    KingdeeClient::new(sandbox.kingdee_config(), quick_http()).expect("client builds")
}

fn order(billno: &str) -> Value {
    json!({
        "billdate": "2026-11-20",
        "billno": billno,
        "customerid_id": "CUST-TMALL",
        "material_entity": [
            {"materialid_id": "G1001-250ml", "stockid_id": "CK001", "qty": "2", "unit_id": "Box", "taxprice": "69.9000", "is_free": false}
        ]
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn saves_are_recorded_and_found_by_exact_bill_number() {
    let sandbox = spawn_sandbox(10, |_| {}).await;
    let client = client(&sandbox);
    let first = client.save_order(&order("JY20261120000001")).await.unwrap();
    let second = client
        .save_order(&order("JY202611200000010"))
        .await
        .unwrap();
    assert_ne!(first.target_id, second.target_id);
    let bills = sandbox.kingdee_bills();
    assert_eq!(bills.len(), 2);
    assert_eq!(bills[0].id, first.target_id);
    assert_eq!(bills[0].body["material_entity"][0]["qty"], "2");
    // `search` is fuzzy: both bills match the shorter number; only one is exactly it.
    assert_eq!(
        client.find_order("JY20261120000001").await.unwrap(),
        Some(first.target_id.clone())
    );
    assert_eq!(client.find_order("JY2026112000000").await.unwrap(), None);
    assert_eq!(
        sandbox.requests(Endpoint::KingdeeToken),
        1,
        "one token serves every call"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_known_bill_number_without_id_is_refused_and_with_id_updates() {
    let sandbox = spawn_sandbox(10, |_| {}).await;
    let client = client(&sandbox);
    let saved = client.save_order(&order("JY-DUP-1")).await.unwrap();
    let error = client.save_order(&order("JY-DUP-1")).await.unwrap_err();
    assert_eq!(error.class, FailureClass::Permanent);
    assert_eq!(error.code.as_deref(), Some("BILLNO_DUPLICATE"));
    assert!(error.message.contains("单据编号重复: JY-DUP-1"), "{error}");
    let mut update = order("JY-DUP-1");
    update["id"] = json!(saved.target_id);
    update["material_entity"][0]["qty"] = json!("3");
    let updated = client.save_order(&update).await.unwrap();
    assert_eq!(updated.target_id, saved.target_id);
    let bills = sandbox.kingdee_bills();
    assert_eq!(bills.len(), 1);
    assert_eq!(bills[0].writes, 2);
    assert_eq!(bills[0].body["material_entity"][0]["qty"], "3");
    // A business rule's refusal keeps the service's message.
    let mut bad = order("JY-BAD-1");
    bad["material_entity"][0]["qty"] = json!("0");
    let error = client.save_order(&bad).await.unwrap_err();
    assert_eq!(error.class, FailureClass::Permanent);
    assert!(
        error.message.contains("第1行: 数量[qty]必须大于0"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_refreshed_once_and_the_call_retried() {
    let sandbox = spawn_sandbox(10, |_| {}).await;
    let client = client(&sandbox);
    client.save_order(&order("T-1")).await.unwrap();
    sandbox.expire_tokens();
    client.save_order(&order("T-2")).await.unwrap();
    assert_eq!(sandbox.requests(Endpoint::KingdeeToken), 2);
    // The token-expiry fault mid-run: same story.
    sandbox
        .faults()
        .script(Endpoint::KingdeeSave, [Fault::TokenExpiry]);
    client.save_order(&order("T-3")).await.unwrap();
    assert_eq!(sandbox.requests(Endpoint::KingdeeToken), 3);
    assert_eq!(sandbox.kingdee_bills().len(), 3, "each bill saved once");
    // Tokens also expire by lifetime.
    let short = spawn_sandbox(10, |c| {
        c.kingdee_token_lifetime = std::time::Duration::from_millis(300)
    })
    .await;
    let client = KingdeeClient::new(short.kingdee_config(), quick_http()).unwrap();
    client.save_order(&order("L-1")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    client.save_order(&order("L-2")).await.unwrap();
    assert_eq!(short.requests(Endpoint::KingdeeToken), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_are_refused_for_good() {
    let sandbox = spawn_sandbox(10, |_| {}).await;
    let mut config = sandbox.kingdee_config();
    config.client_secret = Secret::new("wrong-client-secret");
    let error = KingdeeClient::new(config, quick_http())
        .unwrap()
        .save_order(&order("W-1"))
        .await
        .unwrap_err();
    assert_eq!(error.class, FailureClass::Permanent);
    assert_eq!(error.code.as_deref(), Some("1030002001"));
    assert!(error.message.contains("签名验证失败"), "{error}");
    let mut config = sandbox.kingdee_config();
    config.app_secret = Secret::new("wrong-app-secret");
    let error = KingdeeClient::new(config, quick_http())
        .unwrap()
        .save_order(&order("W-2"))
        .await
        .unwrap_err();
    assert_eq!(error.class, FailureClass::Permanent);
    assert!(error.message.contains("app_signature"), "{error}");
    assert!(sandbox.kingdee_bills().is_empty());
}

/// A save is not idempotent: only failures that applied nothing are retried inside the client;
/// a lost answer comes back as ambiguous, and the look-up tells whether the bill exists.
#[tokio::test(flavor = "multi_thread")]
async fn save_faults_map_to_their_typed_outcomes() {
    let sandbox = spawn_sandbox(10, |_| {}).await;
    let client = client(&sandbox);
    client.save_order(&order("F-0")).await.unwrap();
    for (n, fault) in [
        Fault::ServerError,
        Fault::Throttle,
        Fault::Slow,
        Fault::NotJson,
    ]
    .into_iter()
    .enumerate()
    {
        let billno = format!("F-R{n}");
        sandbox.faults().script(Endpoint::KingdeeSave, [fault]);
        let result = client.save_order(&order(&billno)).await;
        match fault {
            // An HTML page with status 200 might follow a commit: ambiguous.
            Fault::NotJson => {
                let error = result.unwrap_err();
                assert_eq!(error.class, FailureClass::Ambiguous, "{fault:?}");
            }
            _ => {
                result.unwrap_or_else(|e| panic!("{fault:?}: {e}"));
            }
        }
    }
    for (n, fault) in [Fault::Timeout, Fault::CommitThenLost, Fault::Malformed]
        .into_iter()
        .enumerate()
    {
        let billno = format!("F-A{n}");
        sandbox.faults().script(Endpoint::KingdeeSave, [fault]);
        let before = sandbox.requests(Endpoint::KingdeeSave);
        let error = client.save_order(&order(&billno)).await.unwrap_err();
        assert_eq!(error.class, FailureClass::Ambiguous, "{fault:?}: {error}");
        assert_eq!(
            sandbox.requests(Endpoint::KingdeeSave) - before,
            1,
            "{fault:?} is not repeated"
        );
        let found = client.find_order(&billno).await.unwrap();
        assert_eq!(found.is_some(), fault == Fault::CommitThenLost, "{fault:?}");
    }
    let lost = sandbox
        .receptions()
        .into_iter()
        .filter(|r| r.answer_lost)
        .count();
    assert_eq!(lost, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_per_minute_limit_answers_429_and_the_client_waits_it_out() {
    let sandbox = spawn_sandbox(10, |c| {
        c.limits.kingdee = 2;
        c.rate_window = std::time::Duration::from_secs(1);
    })
    .await;
    let client = client(&sandbox);
    for n in 0..3 {
        client.save_order(&order(&format!("RL-{n}"))).await.unwrap();
    }
    assert_eq!(sandbox.kingdee_bills().len(), 3);
    assert!(
        sandbox.requests(Endpoint::KingdeeSave) >= 4,
        "the third save was throttled first"
    );
}
