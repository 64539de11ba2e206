//! `ferry run CONFIG --once` as a user runs it: the real binary against a standalone `ferry sandbox`,
//! configured through a YAML file whose secrets come from environment variables.

mod support;

use std::process::Command;

fn ferry_run(config: &std::path::Path, info: &serde_json::Value) -> Vec<serde_json::Value> {
    let secret = |path: &str| {
        info.pointer(path)
            .and_then(|v| v.as_str())
            .unwrap()
            .to_owned()
    };
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["run", config.to_str().unwrap(), "--once", "--json"])
        .env("TEST_QIMEN_SECRET", secret("/wdt/qimen_app_secret"))
        .env(
            "TEST_KINGDEE_CLIENT_SECRET",
            secret("/kingdee/client_secret"),
        )
        .env("TEST_KINGDEE_APP_SECRET", secret("/kingdee/app_secret"))
        .env("TEST_YONYOU_SECRET", secret("/yonyou/app_secret"))
        .output()
        .expect("ferry runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON summary per line"))
        .collect()
}

#[test]
fn ferry_run_once_syncs_a_standalone_sandbox_and_a_second_run_writes_nothing() {
    let (_sandbox, info) = support::spawn_sandbox(&["--orders", "150", "--seed", "4"]);
    let text = |path: &str| {
        info.pointer(path)
            .and_then(|v| v.as_str())
            .unwrap()
            .to_owned()
    };

    let dir = std::env::temp_dir().join(format!("ferry-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let schemes = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemes");
    let config = format!(
        r#"# Written by the test: the sandbox's URLs, exactly as real endpoints would be given.
store: state/ferry.db
schemes:
  - scheme: {trades}
    start: "{start}"
  - scheme: wdt-stockouts-to-yonyou
    start: "{start}"
# The sandbox customer's org and project codes.
variables:
  FERRY_KINGDEE_PROJECT: XM-ECOM
  FERRY_YONYOU_SALES_ORG: ORG-SALES-01
  FERRY_YONYOU_SETTLEMENT_ORG: ORG-SALES-01
  FERRY_YONYOU_STOCK_ORG: ORG-STOCK-01
  FERRY_YONYOU_TRANSACTION_TYPE: SO-ECOM
connectors:
  wdt:
    sid: "{sid}"
    qimen:
      url: "{qimen_url}"
      app_key: "{qimen_app_key}"
      app_secret: {{ env: TEST_QIMEN_SECRET }}
  kingdee:
    url: "{kingdee_url}"
    client_id: "{client_id}"
    client_secret: {{ env: TEST_KINGDEE_CLIENT_SECRET }}
    app_key: "{kingdee_app_key}"
    app_secret: {{ env: TEST_KINGDEE_APP_SECRET }}
    domain: "{domain}"
  yonyou:
    url: "{yonyou_url}"
    tenant_id: "{tenant}"
    app_key: "{yonyou_app_key}"
    app_secret: {{ env: TEST_YONYOU_SECRET }}
rate_limits:
  kingdee: 20000
  yonyou: 20000
"#,
        trades = schemes.join("wdt-trades-to-kingdee.yaml").display(),
        start = text("/data/first_time"),
        sid = text("/wdt/sid"),
        qimen_url = text("/wdt/qimen_url"),
        qimen_app_key = text("/wdt/qimen_app_key"),
        kingdee_url = text("/kingdee/url"),
        client_id = text("/kingdee/client_id"),
        kingdee_app_key = text("/kingdee/app_key"),
        domain = text("/kingdee/domain"),
        yonyou_url = text("/yonyou/url"),
        tenant = text("/yonyou/tenant_id"),
        yonyou_app_key = text("/yonyou/app_key"),
    );
    let path = dir.join("ferry.yaml");
    std::fs::write(&path, &config).unwrap();
    for secret in [
        "/wdt/qimen_app_secret",
        "/kingdee/app_secret",
        "/yonyou/app_secret",
    ] {
        assert!(!config.contains(&text(secret)), "the file holds no secret");
    }

    let first = ferry_run(&path, &info);
    assert_eq!(first.len(), 2);
    for summary in &first {
        assert_eq!(summary["push"]["created"], 150, "{summary}");
        assert_eq!(summary["push"]["failed"], 0, "{summary}");
        assert_eq!(summary["dead_letters"], 0, "{summary}");
        assert_eq!(summary["poll"]["stop"], "done", "{summary}");
    }
    assert!(
        dir.join("state/ferry.db").exists(),
        "the store sits where the file says"
    );
    // The cursor is on disk: the next run re-reads only its lookback and writes nothing.
    let second = ferry_run(&path, &info);
    for summary in &second {
        assert_eq!(summary["push"]["created"], 0, "{summary}");
        assert_eq!(summary["push"]["updated"], 0, "{summary}");
        assert!(
            summary["poll"]["documents"].as_u64().unwrap() < 150,
            "{summary}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
