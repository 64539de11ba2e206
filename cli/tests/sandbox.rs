//! `ferry sandbox --json` as a user runs it: the real binary, its first line, a client talking to it.

mod support;

use ferry_common::connector::HttpSettings;
use ferry_common::connector::Secret;
use ferry_common::connector::kingdee::{KingdeeClient, KingdeeConfig};
use ferry_common::connector::wdt::{QimenConfig, WdtClient, WdtConfig};
use ferry_common::scheme::config::Transport;

#[test]
fn ferry_sandbox_json_prints_one_object_then_serves_until_stopped() {
    let (mut sandbox, info) = support::spawn_sandbox(&["--orders", "200", "--seed", "9"]);
    assert_eq!(info["data"]["orders"], 200);
    let text = |path: &str| {
        info.pointer(path)
            .and_then(|v| v.as_str())
            .unwrap()
            .to_owned()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let wdt = WdtClient::new(
            WdtConfig {
                sid: text("/wdt/sid"),
                qimen: Some(QimenConfig {
                    url: text("/wdt/qimen_url"),
                    app_key: text("/wdt/qimen_app_key"),
                    app_secret: Secret::new(text("/wdt/qimen_app_secret")),
                    target_app_key: "21363512".into(),
                }),
                openapi2: None,
            },
            HttpSettings::default(),
        )
        .unwrap();
        let first_time = text("/data/first_time");
        let page = wdt
            .query_page(
                Transport::Qimen,
                "wdt.trade.query",
                &[
                    ("start_time".into(), first_time.clone()),
                    ("end_time".into(), first_time.clone()),
                ],
            )
            .await
            .expect("the standalone sandbox answers a signed query");
        assert!(page.total_count.is_some());
        let kingdee = KingdeeClient::new(
            KingdeeConfig {
                url: text("/kingdee/url"),
                client_id: text("/kingdee/client_id"),
                client_secret: Secret::new(text("/kingdee/client_secret")),
                app_key: text("/kingdee/app_key"),
                app_secret: Secret::new(text("/kingdee/app_secret")),
                domain: text("/kingdee/domain"),
                outer_instance_id: Some(text("/kingdee/outer_instance_id")),
            },
            HttpSettings::default(),
        )
        .unwrap();
        assert_eq!(kingdee.find_order("nothing-yet").await.unwrap(), None);
    });
    assert!(sandbox.is_running(), "it keeps serving");
}
