//! No credential or token reaches a log line, an error or `Debug` output.

use ferry_common::connector::Secret;
use ferry_common::connector::kingdee::KingdeeClient;
use ferry_common::connector::wdt::WdtClient;
use ferry_common::connector::yonyou::YonyouClient;
use ferry_common::scheme::config::Transport;
use ferry_sandbox::{Endpoint, Fault};
use ferry_tests::{capture_logs, quick_http, spawn_sandbox};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_or_token_in_logs_errors_or_debug_output() {
    let logs = capture_logs();
    let sandbox = spawn_sandbox(30, |_| {}).await;
    let wdt = WdtClient::new(sandbox.wdt_config(), quick_http()).unwrap();
    let kingdee = KingdeeClient::new(sandbox.kingdee_config(), quick_http()).unwrap();
    let yonyou = YonyouClient::new(sandbox.yonyou_config(), quick_http()).unwrap();
    let mut seen = Vec::new();
    for endpoint in [
        Endpoint::WdtQuery,
        Endpoint::KingdeeSave,
        Endpoint::YonyouSave,
    ] {
        sandbox.faults().script(
            endpoint,
            [
                Fault::ServerError,
                Fault::TokenExpiry,
                Fault::NotJson,
                Fault::Malformed,
            ],
        );
    }
    let first = sandbox.source(|s| s.first_time());
    let params = vec![
        ("start_time".to_owned(), first.clone()),
        ("end_time".to_owned(), first),
        ("page_no".to_owned(), "0".to_owned()),
    ];
    for _ in 0..3 {
        seen.push(format!(
            "{:?}",
            wdt.query_page(Transport::Qimen, "wdt.trade.query", &params)
                .await
        ));
        seen.push(format!(
            "{:?}",
            kingdee
                .save_order(
                    &json!({"billdate": "2026-11-20", "billno": "S-1", "customerid_id": "C",
                "material_entity": [{"materialid_id": "M", "qty": "1"}]})
                )
                .await
        ));
        seen.push(format!(
            "{:?}",
            yonyou
                .save_order(&json!({"data": {"resubmitCheckKey": "k"}}))
                .await
        ));
    }
    seen.push(format!(
        "{wdt:?} {kingdee:?} {yonyou:?} {:?}",
        sandbox.wdt_config()
    ));
    seen.push(format!("{:?}", Secret::new("visible?")));
    let logged = logs.text();
    assert!(
        logged.contains("retrying"),
        "the retries were logged at all"
    );
    let mut texts: Vec<(&str, &str)> = seen.iter().map(|t| ("call", t.as_str())).collect();
    texts.push(("logs", &logged));
    ferry_tests::assert_no_secrets(&sandbox, &["visible?"], &texts);
}
