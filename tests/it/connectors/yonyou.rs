//! Yonyou: discovery, the token, singleSave with resubmitCheckKey, and faults.

use ferry_common::connector::yonyou::YonyouClient;
use ferry_common::connector::{FailureClass, Secret, yonyou::YonyouConfig};
use ferry_sandbox::{Endpoint, Fault, Kind, Sandbox};
use ferry_tests::{quick_http, scheme, spawn_sandbox};
use serde_json::{Value, json};

fn client(sandbox: &Sandbox) -> YonyouClient {
    YonyouClient::new(sandbox.yonyou_config(), quick_http()).expect("client builds")
}

/// The body the stock-out scheme makes of the sandbox's stock-out `index`, with an idempotency
/// key as the engine sets one.
fn body(sandbox: &Sandbox, index: u32) -> Value {
    let scheme = scheme("wdt-stockouts-to-yonyou");
    let stockout = sandbox.source(|s| s.document(Kind::Stockout, index));
    let doc = scheme.mapper.parse(&stockout.to_string()).unwrap();
    let mut body = scheme.mapper.map(&doc).unwrap();
    body["data"]["resubmitCheckKey"] = json!(format!("test-key-{index}"));
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn mapped_stockouts_are_saved_with_one_discovery_and_one_token() {
    let sandbox = spawn_sandbox(20, |_| {}).await;
    let client = client(&sandbox);
    let mut ids = Vec::new();
    for index in 0..5 {
        let saved = client.save_order(&body(&sandbox, index)).await.unwrap();
        assert!(!saved.repeat);
        ids.push(saved.target_id);
    }
    let orders = sandbox.yonyou_orders();
    assert_eq!(orders.iter().map(|o| o.id.clone()).collect::<Vec<_>>(), ids);
    let sent = body(&sandbox, 2);
    assert_eq!(orders[2].number, sent["data"]["code"]);
    assert_eq!(orders[2].body["payMoney"], sent["data"]["payMoney"]);
    let lines = orders[2].body["orderDetails"].as_array().unwrap();
    assert_eq!(
        lines.len(),
        sent["data"]["orderDetails"].as_array().unwrap().len()
    );
    assert!(
        lines
            .iter()
            .all(|l| l["id"].as_str().is_some_and(|id| !id.is_empty()))
    );
    assert_eq!(sandbox.requests(Endpoint::YonyouDiscovery), 1);
    assert_eq!(sandbox.requests(Endpoint::YonyouToken), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_resubmit_check_key_returns_the_first_save() {
    let sandbox = spawn_sandbox(20, |_| {}).await;
    let client = client(&sandbox);
    let first = client.save_order(&body(&sandbox, 3)).await.unwrap();
    let again = client.save_order(&body(&sandbox, 3)).await.unwrap();
    assert_eq!(again.target_id, first.target_id);
    assert_eq!(sandbox.yonyou_orders().len(), 1);
    // After the key's hour: the duplicate code, a success with the first id.
    let expired = spawn_sandbox(20, |c| c.resubmit_window = std::time::Duration::ZERO).await;
    let client = YonyouClient::new(expired.yonyou_config(), quick_http()).unwrap();
    let first = client.save_order(&body(&expired, 3)).await.unwrap();
    let again = client.save_order(&body(&expired, 3)).await.unwrap();
    assert!(again.repeat, "100004 is a repeat");
    assert_eq!(again.target_id, first.target_id);
    assert_eq!(expired.yonyou_orders().len(), 1);
}

/// With a resubmitCheckKey the save is idempotent: a lost answer is repeated with the same key and
/// the tenant still holds one order.
#[tokio::test(flavor = "multi_thread")]
async fn every_fault_class_on_a_keyed_save_ends_in_exactly_one_order() {
    let sandbox = spawn_sandbox(40, |c| c.slow = std::time::Duration::from_millis(50)).await;
    let client = client(&sandbox);
    let faults = [
        Fault::ServerError,
        Fault::Timeout,
        Fault::Slow,
        Fault::Throttle,
        Fault::TokenExpiry,
        Fault::Malformed,
        Fault::NotJson,
        Fault::CommitThenLost,
        Fault::CommitThen5xx,
    ];
    for (index, fault) in faults.into_iter().enumerate() {
        sandbox.faults().script(Endpoint::YonyouSave, [fault]);
        client
            .save_order(&body(&sandbox, index as u32))
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
    }
    let orders = sandbox.yonyou_orders();
    assert_eq!(
        orders.len(),
        faults.len(),
        "one order per document, whatever the fault"
    );
    assert_eq!(sandbox.faults().count(Fault::CommitThenLost), 1);
    // Token expiry and 非法token each cost one new token.
    assert_eq!(sandbox.requests(Endpoint::YonyouToken), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_key_a_lost_answer_is_ambiguous() {
    let sandbox = spawn_sandbox(20, |_| {}).await;
    let client = client(&sandbox);
    let mut unkeyed = body(&sandbox, 1);
    unkeyed["data"]
        .as_object_mut()
        .unwrap()
        .remove("resubmitCheckKey");
    sandbox
        .faults()
        .script(Endpoint::YonyouSave, [Fault::CommitThenLost]);
    let error = client.save_order(&unkeyed).await.unwrap_err();
    assert_eq!(error.class, FailureClass::Ambiguous);
    assert_eq!(sandbox.yonyou_orders().len(), 1, "the save was applied");
    assert_eq!(
        sandbox.requests(Endpoint::YonyouSave),
        1,
        "and not repeated"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn business_errors_are_permanent_and_credential_errors_are_credentials() {
    let sandbox = spawn_sandbox(20, |_| {}).await;
    let client = client(&sandbox);
    let mut wrong_total = body(&sandbox, 2);
    wrong_total["data"]["payMoney"] = json!("1.00");
    let error = client.save_order(&wrong_total).await.unwrap_err();
    assert_eq!(error.class, FailureClass::Permanent);
    assert_eq!(error.code.as_deref(), Some("999"));
    assert!(error.message.contains("payMoney(1.00)"), "{error}");
    let mut missing = body(&sandbox, 2);
    missing["data"].as_object_mut().unwrap().remove("agentId");
    let error = client.save_order(&missing).await.unwrap_err();
    assert!(error.message.contains("agentId不能为空"), "{error}");

    let wrong = |change: fn(&mut YonyouConfig)| {
        let mut config = sandbox.yonyou_config();
        change(&mut config);
        YonyouClient::new(config, quick_http()).unwrap()
    };
    let error = wrong(|c| c.app_secret = Secret::new("wrong"))
        .save_order(&body(&sandbox, 2))
        .await
        .unwrap_err();
    // Refused credentials are not a document's fault: the class says so.
    assert_eq!(error.class, FailureClass::Credentials);
    assert_eq!(error.code.as_deref(), Some("10019"));
    assert!(error.message.contains("签名验证失败"), "{error}");
    let error = wrong(|c| c.app_key = "nobody".into())
        .save_order(&body(&sandbox, 2))
        .await
        .unwrap_err();
    assert_eq!(error.code.as_deref(), Some("10018"));
    assert_eq!(error.class, FailureClass::Credentials);
    let error = wrong(|c| c.tenant_id = "nobody".into())
        .save_order(&body(&sandbox, 2))
        .await
        .unwrap_err();
    assert!(
        error.message.contains("no data centre for tenant 'nobody'"),
        "{error}"
    );
    assert!(sandbox.yonyou_orders().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_answer_their_code_and_the_client_backs_off() {
    let sandbox = spawn_sandbox(20, |c| {
        c.limits.yonyou = 2;
        c.rate_window = std::time::Duration::from_millis(150);
    })
    .await;
    let client = client(&sandbox);
    for index in 0..4 {
        client.save_order(&body(&sandbox, index)).await.unwrap();
    }
    assert_eq!(sandbox.yonyou_orders().len(), 4);
    // A limit that lasts longer than the client may wait is handed back to the engine at once.
    let limited = spawn_sandbox(20, |c| c.limits.yonyou = 1).await;
    let mut impatient = quick_http();
    impatient.retry.max_wait = std::time::Duration::from_millis(200);
    let client = YonyouClient::new(limited.yonyou_config(), impatient).unwrap();
    client.save_order(&body(&limited, 0)).await.unwrap();
    let error = client.save_order(&body(&limited, 1)).await.unwrap_err();
    assert_eq!(error.class, FailureClass::Retryable);
    assert_eq!(error.code.as_deref(), Some("310046"));
    assert_eq!(
        limited.requests(Endpoint::YonyouSave),
        2,
        "no retry inside the client"
    );
}

/// An Update names the order and every line it had: kept lines by id, new ones inserted, the rest
/// deleted; the answer's line ids address the next Update. Detail and list find the order.
#[tokio::test(flavor = "multi_thread")]
async fn updates_address_lines_by_id_and_the_order_can_be_read_back() {
    use ferry_common::connector::yonyou::YonyouTarget;
    use ferry_common::engine::{Bill, TargetApi};
    use ferry_sandbox::unknowns::LeftOutLines;
    let spec = ferry_common::catalog::find("yonyou", "/yonbip/sd/voucherorder/singleSave")
        .and_then(|api| api.target.as_ref())
        .unwrap();
    for left_out in [LeftOutLines::Kept, LeftOutLines::Deleted] {
        let sandbox = spawn_sandbox(20, |c| c.unknowns.yonyou_left_out = left_out).await;
        let target = YonyouTarget {
            client: std::sync::Arc::new(client(&sandbox)),
            spec,
        };
        let client = &target.client;
        let mut created = body(&sandbox, 4);
        let lines = created["data"]["orderDetails"].as_array().unwrap().len();
        let saved = client.save_order(&created).await.unwrap();
        let ids = saved.lines.clone().unwrap();
        assert_eq!(ids.len(), lines);
        let code = created["data"]["code"].as_str().unwrap().to_owned();
        assert_eq!(
            client.find_order(&code).await.unwrap(),
            Some(saved.target_id.clone())
        );
        assert_eq!(client.find_order("CK-NONE").await.unwrap(), None);
        assert_eq!(client.order_lines(&saved.target_id).await.unwrap(), ids);
        // One line fewer, a changed quantity: the Update deletes the last line explicitly.
        let details = created["data"]["orderDetails"].as_array_mut().unwrap();
        details.pop();
        let total: rust_decimal::Decimal = details
            .iter()
            .map(|l| {
                l["oriSum"]
                    .as_str()
                    .unwrap()
                    .parse::<rust_decimal::Decimal>()
                    .unwrap()
            })
            .sum();
        created["data"]["payMoney"] = json!(total.to_string());
        created["data"]["resubmitCheckKey"] = json!("test-key-update");
        let bill = Bill {
            id: saved.target_id.clone(),
            lines: Some(ids.clone()),
        };
        let addressed = target.address(&created, &bill).await.unwrap();
        let data = &addressed.wire["data"];
        assert_eq!(data["_status"], "Update");
        assert_eq!(data["orderPrices!orderId"], json!(saved.target_id));
        let sent = data["orderDetails"].as_array().unwrap();
        assert_eq!(sent.len(), lines);
        assert_eq!(sent[lines - 1]["_status"], "Delete");
        assert_eq!(sent[0]["orderDetailPrices!orderDetailId"], json!(ids[0]));
        let updated = target.send(&addressed.wire).await.unwrap();
        assert_eq!(updated.target_id, saved.target_id);
        assert_eq!(updated.lines.as_deref(), Some(&ids[..lines - 1]));
        let orders = sandbox.yonyou_orders();
        assert_eq!(orders.len(), 1);
        assert_eq!(
            orders[0].body["orderDetails"].as_array().unwrap().len(),
            lines - 1,
            "{left_out:?}: the deleted line is gone either way"
        );
        // A naive Update (header id only, lines as Insert) appends every line again.
        let mut naive = body(&sandbox, 4);
        naive["data"]["_status"] = json!("Update");
        naive["data"]["id"] = json!(saved.target_id);
        naive["data"]["resubmitCheckKey"] = json!("test-key-naive");
        let error = client.save_order(&naive).await.unwrap_err();
        assert!(error.message.contains("orderPrices!orderId"), "{error}");
        // An audited order refuses an Update, for good.
        assert!(sandbox.audit_yonyou_order(&code));
        let mut again = target
            .address(
                &created,
                &Bill {
                    id: saved.target_id.clone(),
                    lines: None,
                },
            )
            .await
            .unwrap();
        again.wire["data"]["resubmitCheckKey"] = json!("test-key-audited");
        let error = target.send(&again.wire).await.unwrap_err();
        assert_eq!(error.class, FailureClass::Permanent);
        assert!(error.message.contains("已审核"), "{error}");
    }
}
