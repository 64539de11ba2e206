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
        client
            .find_order("JY20261120000001")
            .await
            .unwrap()
            .map(|d| d.id),
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
async fn a_known_bill_number_without_id_is_refused_and_with_entry_ids_modified() {
    let sandbox = spawn_sandbox(10, |_| {}).await;
    let client = client(&sandbox);
    let saved = client.save_order(&order("JY-DUP-1")).await.unwrap();
    let error = client.save_order(&order("JY-DUP-1")).await.unwrap_err();
    assert_eq!(error.class, FailureClass::Permanent);
    assert!(error.message.contains("组合值与其他表单重复"), "{error}");
    // The detail by number gives the bill and its entry ids; a modify names both.
    let detail = client.find_order("JY-DUP-1").await.unwrap().unwrap();
    assert_eq!(detail.id, saved.target_id);
    assert_eq!(detail.number, "JY-DUP-1");
    assert_eq!(detail.entries.len(), 1);
    let mut update = order("JY-DUP-1");
    update["id"] = json!(saved.target_id);
    update["material_entity"][0]["id"] = json!(detail.entries[0]);
    update["material_entity"][0]["qty"] = json!("3");
    let updated = client.save_order(&update).await.unwrap();
    assert_eq!(updated.target_id, saved.target_id);
    let bills = sandbox.kingdee_bills();
    assert_eq!(bills.len(), 1);
    assert_eq!(bills[0].writes, 2);
    let entries = bills[0].body["material_entity"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "the entry changed in place");
    assert_eq!(entries[0]["qty"], "3");
    assert_eq!(client.order_detail(&saved.target_id).await.unwrap(), detail);
    // A business rule's refusal keeps the service's message.
    let mut bad = order("JY-BAD-1");
    bad["material_entity"][0]["qty"] = json!("0");
    let error = client.save_order(&bad).await.unwrap_err();
    assert_eq!(error.class, FailureClass::Permanent);
    assert!(
        error.message.contains("第1行: 数量[qty]必须大于0"),
        "{error}"
    );
    // Two-level success: `success: true` over `data.success: false` is a refusal with its reason.
    let refusing = spawn_sandbox(10, |c| c.refuse_rate = 1.0).await;
    let error = KingdeeClient::new(refusing.kingdee_config(), quick_http())
        .unwrap()
        .save_order(&order("JY-FROZEN"))
        .await
        .unwrap_err();
    assert_eq!(error.class, FailureClass::Permanent);
    assert!(error.message.contains("已冻结"), "{error}");
}

/// The detail of a bill that does not exist: how Kingdee says so is not documented, so both a
/// non-zero errcode and an empty `data` mean "none", and the list by `bill_no` decides the first.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_bill_is_none_however_the_detail_says_so() {
    for empty in [false, true] {
        let sandbox = spawn_sandbox(10, |c| c.kingdee_not_found_empty = empty).await;
        let client = client(&sandbox);
        assert_eq!(client.find_order("JY-NONE").await.unwrap(), None);
        client.save_order(&order("JY-SOME")).await.unwrap();
        assert!(client.find_order("JY-SOME").await.unwrap().is_some());
        let error = client.order_detail("42").await.unwrap_err();
        assert_eq!(error.class, FailureClass::Permanent, "{error}");
    }
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
async fn wrong_credentials_are_a_credentials_failure_naming_what_to_fix() {
    let sandbox = spawn_sandbox(10, |_| {}).await;
    let mut config = sandbox.kingdee_config();
    config.client_secret = Secret::new("wrong-client-secret");
    let error = KingdeeClient::new(config, quick_http())
        .unwrap()
        .save_order(&order("W-1"))
        .await
        .unwrap_err();
    assert_eq!(error.class, FailureClass::Credentials, "{error}");
    assert!(error.message.contains("kingdee.client_secret"), "{error}");
    let mut config = sandbox.kingdee_config();
    config.app_secret = Secret::new("wrong-app-secret");
    config.outer_instance_id = None;
    let error = KingdeeClient::new(config, quick_http())
        .unwrap()
        .save_order(&order("W-2"))
        .await
        .unwrap_err();
    assert_eq!(error.class, FailureClass::Credentials, "{error}");
    assert_eq!(error.code.as_deref(), Some("1030002006"), "{error}");
    assert!(error.message.contains("outer_instance_id"), "{error}");
    assert!(sandbox.kingdee_bills().is_empty());
}

/// The tenant's app secret rotates every 24 hours: with `outer_instance_id` the client pulls the
/// authorisation again and carries on; without, it stops with a credentials failure.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_app_secret_is_pulled_again_from_the_authorisation() {
    let sandbox = spawn_sandbox(10, |_| {}).await;
    let client = client(&sandbox);
    client.save_order(&order("R-1")).await.unwrap();
    sandbox.rotate_kingdee_app_secret();
    sandbox.expire_tokens();
    client.save_order(&order("R-2")).await.unwrap();
    assert_eq!(sandbox.requests(Endpoint::KingdeeAuthorize), 1);
    assert_eq!(sandbox.kingdee_bills().len(), 2);
    // Its next token needs no new authorisation.
    sandbox.expire_tokens();
    client.save_order(&order("R-3")).await.unwrap();
    assert_eq!(sandbox.requests(Endpoint::KingdeeAuthorize), 1);
    let mut config = sandbox.kingdee_config();
    config.outer_instance_id = None;
    let stale = KingdeeClient::new(config, quick_http()).unwrap();
    let error = stale.save_order(&order("R-4")).await.unwrap_err();
    assert_eq!(error.class, FailureClass::Credentials, "{error}");
    assert!(!error.message.contains("(code 200)"), "{error}");
}

/// However Kingdee refuses an expired app-token on a business call (contract §5), the client
/// renews it once and the call goes through.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_renewed_whichever_way_it_is_refused() {
    use ferry_sandbox::unknowns::ExpiredToken;
    for answer in [
        ExpiredToken::Code1030002006,
        ExpiredToken::Http401,
        ExpiredToken::OtherCode,
    ] {
        let sandbox = spawn_sandbox(10, |c| c.unknowns.kingdee_expired_token = answer).await;
        let client = client(&sandbox);
        client.save_order(&order("E-1")).await.unwrap();
        sandbox.expire_tokens();
        client
            .save_order(&order("E-2"))
            .await
            .unwrap_or_else(|e| panic!("{answer:?}: {e}"));
        assert!(client.find_order("E-2").await.unwrap().is_some());
        assert_eq!(sandbox.requests(Endpoint::KingdeeToken), 2, "{answer:?}");
        assert_eq!(sandbox.kingdee_bills().len(), 2, "{answer:?}");
    }
}

/// A save is not idempotent: only failures that applied nothing are retried inside the client;
/// a lost answer comes back as ambiguous, and the look-up tells whether the bill exists.
#[tokio::test(flavor = "multi_thread")]
async fn save_faults_map_to_their_typed_outcomes() {
    let sandbox = spawn_sandbox(10, |_| {}).await;
    let client = client(&sandbox);
    client.save_order(&order("F-0")).await.unwrap();
    for (n, fault) in [Fault::Throttle, Fault::Slow].into_iter().enumerate() {
        let billno = format!("F-R{n}");
        sandbox.faults().script(Endpoint::KingdeeSave, [fault]);
        client
            .save_order(&order(&billno))
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
    }
    // A 5xx, a timeout, a cut connection or an unreadable answer proves nothing about a write:
    // each comes back ambiguous, is not repeated, and the look-up tells whether the bill exists.
    for (n, fault) in [
        Fault::ServerError,
        Fault::Timeout,
        Fault::CommitThenLost,
        Fault::CommitThen5xx,
        Fault::CommitThen5xx,
        Fault::CommitThen5xx,
        Fault::Malformed,
        Fault::NotJson,
    ]
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
        let applied = matches!(fault, Fault::CommitThenLost | Fault::CommitThen5xx);
        assert_eq!(found.is_some(), applied, "{fault:?}");
    }
    let lost = sandbox
        .receptions()
        .into_iter()
        .filter(|r| r.answer_lost)
        .count();
    assert_eq!(lost, 4);
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
