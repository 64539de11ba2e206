//! The `ferry` command as a user runs it: `check` and `preview`, their output and exit status.

use ferry_cli::error::EXIT_USER;
use ferry_tests::{TempDir, ferry, sample, workspace};

#[test]
fn check_passes_both_bundled_schemes() {
    let out = ferry(&[
        "check",
        "schemes/wdt-trades-to-kingdee.yaml",
        "schemes/wdt-stockouts-to-yonyou.yaml",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The deployment's variables are not set here: a warning each, not an error.
    let warnings: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(warnings.len(), 5, "{}", out.stderr);
    assert!(
        warnings.iter().all(|w| w.contains(": warning: variable '")
            && w.ends_with("has no value here; a run stops at start until the deployment sets it")),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains(
        "wdt-trades-to-kingdee.yaml: ok (wdt-trades-to-kingdee: wdt wdt.trade.query → kingdee jdy/sal/sal_order_save; files version "
    ));
    assert!(out.stdout.contains(
        "ok (wdt-stockouts-to-yonyou: wdt wdt.stockout.order.query.trade → yonyou /yonbip/sd/voucherorder/singleSave; files version "
    ));
}

#[test]
fn check_fails_on_a_broken_copy_and_on_a_duplicate_id() {
    let dir = TempDir::new("check");
    let good = workspace()
        .join("schemes/wdt-trades-to-kingdee.yaml")
        .display()
        .to_string();
    let text = std::fs::read_to_string(&good).unwrap();
    let broken = dir.write("broken.yaml", &text.replace("billdate:", "bill_date:"));
    let copy = dir.write("copy.yaml", &text);
    let out = ferry(&["check", &broken, &good, &copy]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!(
            "{broken}:74:16: warning: target field bill_date is not a known field of jdy/sal/sal_order_save"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(&format!(
        "{broken}:74:5: target field billdate is required by jdy/sal/sal_order_save but not mapped"
    )));
    assert!(out.stderr.contains(&format!(
        "{copy}:4:5: id 'wdt-trades-to-kingdee' is already used by"
    )));
    assert!(
        out.stderr.ends_with("2 of 3 scheme files have errors\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn preview_prints_the_exact_body_of_one_document() {
    let out = ferry(&[
        "preview",
        "wdt-stockouts-to-yonyou",
        "samples/wdt-stockout.json",
        "--var=FERRY_YONYOU_SALES_ORG=ORG-SALES-01",
        "--var=FERRY_YONYOU_SETTLEMENT_ORG=ORG-SALES-01",
        "--var=FERRY_YONYOU_STOCK_ORG=ORG-STOCK-01",
        "--var=FERRY_YONYOU_TRANSACTION_TYPE=SO-ECOM",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let body: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        out.stdout
            .starts_with("{\n  \"data\": {\n    \"_status\": \"Insert\""),
        "pretty, envelope first"
    );
    assert_eq!(body["data"]["payMoney"], "489.90");
    assert_eq!(body["data"]["orderDetails"].as_array().unwrap().len(), 4);
}

#[test]
fn preview_of_json_lines_reports_bad_documents_by_line_and_key_and_maps_the_rest() {
    let dir = TempDir::new("preview");
    let first = sample("wdt-trade.json");
    let mut unmapped = first.clone();
    unmapped["trade_id"] = "777".into();
    unmapped["shop_no"] = "taobao-xyz".into();
    let mut second = first.clone();
    second["trade_no"] = "JY20261115000999".into();
    let lines = [
        first.to_string(),
        "{\"trade_id\": \"5\", \"trade_no\": ".to_owned(),
        unmapped.to_string(),
        String::new(),
        second.to_string(),
    ];
    let file = dir.write("export.jsonl", &lines.join("\n"));

    let out = ferry(&[
        "preview",
        "schemes/wdt-trades-to-kingdee.yaml",
        &file,
        "--var",
        "FERRY_KINGDEE_PROJECT=XM-ECOM",
    ]);
    assert_eq!(out.code, 1);
    let bodies: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(bodies.len(), 2, "one compact body per good line");
    assert_eq!(bodies[0]["billno"], "JY20261115000318");
    assert_eq!(bodies[1]["billno"], "JY20261115000999");
    assert_eq!(
        out.stderr,
        format!(
            "{file}:2: not a JSON document: EOF while parsing a value at line 1 column 30\n\
             {file}:3: document trade_id=777: field customerid_id: 'taobao-xyz' has no entry in value map \
             'shop_customer' (its policy for unmapped values is fail)\n\
             preview: 4 documents, 2 mapped, 2 failed\n"
        )
    );
}

#[test]
fn preview_accepts_a_whole_api_response() {
    let dir = TempDir::new("response");
    let order = sample("wdt-trade.json");
    let response = serde_json::json!({"response": {"errorcode": 0, "message": "", "total_count": 2, "trades": [order, order]}});
    let file = dir.write("response.json", &response.to_string());
    let out = ferry(&["preview", "wdt-trades-to-kingdee", &file]);
    assert_eq!(
        out.code, EXIT_USER,
        "a variable without a value stops the preview: the input is wrong"
    );
    assert!(
        out.stderr
            .contains("variable 'project' (FERRY_KINGDEE_PROJECT) has no value"),
        "{}",
        out.stderr
    );
    let out = ferry(&[
        "preview",
        "wdt-trades-to-kingdee",
        &file,
        "--var=FERRY_KINGDEE_PROJECT=XM-ECOM",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 2);
    assert_eq!(out.stderr, "preview: 2 documents, 2 mapped, 0 failed\n");
}

#[test]
fn preview_refuses_an_unknown_scheme_with_the_bundled_ids() {
    let out = ferry(&["preview", "no-such-scheme", "samples/wdt-trade.json"]);
    assert_eq!(out.code, EXIT_USER);
    assert_eq!(
        out.stderr,
        "ferry preview: no-such-scheme:0:0: no such file, and no bundled scheme has this id \
         (bundled: wdt-trades-to-kingdee, wdt-stockouts-to-yonyou)\n"
    );
}

#[test]
fn usage_errors_exit_with_status_2() {
    let out = ferry(&["preview"]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("Usage: ferry preview"),
        "{}",
        out.stderr
    );
}

#[test]
fn help_lists_the_exit_codes_by_whose_move_it_is() {
    let out = ferry(&["--help"]);
    assert_eq!(out.code, 0);
    for line in [
        "2  the input is wrong",
        "3  a service refused or could not be reached",
        "4  Ferry or this machine failed",
    ] {
        assert!(out.stdout.contains(line), "{line}: {}", out.stdout);
    }
}

/// A deployment that cannot be reached is a service's failure, not the operator's input: exit 3
/// (try again later), with the cause named.
#[test]
fn an_unreachable_deployment_exits_as_an_external_failure() {
    let dir = TempDir::new("unreachable");
    // A port nothing listens on: the SDK's connections are refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.write(
        "aws.yaml",
        &format!(
            "aws:\n  table: ferry\n  queues:\n    kingdee: http://127.0.0.1:{closed}/1/ferry-kingdee\n    yonyou: http://127.0.0.1:{closed}/1/ferry-yonyou\n  secret: ferry\n  region: us-east-1\n  endpoint: http://127.0.0.1:{closed}\n  scheme_dir: {}\n",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../schemes")
                .display()
        ),
    );
    let out = ferry(&["status", "-c", &config]);
    assert_eq!(out.code, ferry_cli::error::EXIT_EXTERNAL, "{}", out.stderr);
    assert!(out.stderr.starts_with("ferry status: "), "{}", out.stderr);
}
