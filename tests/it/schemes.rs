//! Schemes as configuration on the embedded default: the example customer setup (a Kingdee V2
//! scheme, its CSV and YAML maps, its run configuration) syncs end to end; a first run without a
//! start refuses or starts from now; `ferry check` reports what a consultant gets wrong in a folder
//! (an API no client serves, a bad map file, a variable without a value) as `file:line`.

use ferry_cli::error::EXIT_USER;
use ferry_sandbox::Sandbox;
use ferry_tests::aws::connectors_secret;
use ferry_tests::{TempDir, ferry, ferry_async, spawn_sandbox, workspace};
use serde_json::Value;

/// examples/ferry-run.yaml as a customer would use it against `sandbox`: its scheme folder, its
/// variables and push settings as written; the store in `dir`, the first start at the sandbox's
/// first document, and the sandbox's connectors in place of the example's.
fn example_config(sandbox: &Sandbox, dir: &TempDir, start: Option<&str>) -> String {
    let text = std::fs::read_to_string(workspace().join("examples/ferry-run.yaml")).unwrap();
    let (head, _) = text
        .split_once("\nconnectors:")
        .expect("the example ends with its connectors");
    let first = sandbox.source(|s| s.first_time());
    let head = head
        .replace(
            "store: ferry-data/ferry.db",
            &format!("store: \"{}\"", dir.path().join("ferry.db").display()),
        )
        .replace(
            "  - scheme: schemes\n",
            &format!(
                "  - scheme: \"{}\"\n",
                workspace().join("examples/schemes").display()
            ),
        );
    let head = match start {
        Some(_) => head.replace(
            "start: \"2026-11-01 00:00:00\"",
            &format!("start: \"{first}\""),
        ),
        None => head
            .lines()
            .filter(|l| !l.trim_start().starts_with("start:"))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    let mut connectors = connectors_secret(sandbox);
    // The example's own variables are what the scheme reads, not the secret's demo values.
    connectors.as_object_mut().unwrap().remove("variables");
    dir.write(
        "ferry.yaml",
        &format!("{head}\nrate_limits: {{ kingdee: 50000 }}\nconnectors: {connectors}\n"),
    )
}

fn example_scheme() -> ferry_common::Scheme {
    let vars = |k: &str| (k == "FERRY_KINGDEE_SALESPERSON").then(|| "YW001".to_owned());
    ferry_common::scheme::load_folder(&workspace().join("examples/schemes"), &vars)
        .unwrap()
        .remove(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_customer_setup_syncs_to_kingdee_v2_on_the_embedded_default() {
    let sandbox = spawn_sandbox(60, |c| c.refuse_rate = 0.0).await;
    let dir = TempDir::new("example-setup");
    let config = example_config(&sandbox, &dir, Some("first"));
    let run = ferry_async(&["run", &config, "--once", "--json"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let summary: Value = serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(summary["scheme"], "wdt-trades-to-kingdee-v2");
    assert_eq!(summary["push"]["created"], 60, "{summary}");
    let scheme = example_scheme();
    let verification = sandbox.verify(&scheme);
    assert!(verification.is_clean(), "{verification:?}");
    assert_eq!(verification.found, 60);
    // What reached Kingdee went through V2: snake-case bills, the example's variable and maps.
    let bills = sandbox.kingdee_bills();
    assert!(bills.iter().all(|b| b.body["emp_number"] == "YW001"
        && b.body.get("billno").is_none()
        && b.body["customer_id"].as_str().unwrap().starts_with("CUST-")));
    assert_eq!(sandbox.requests(ferry_sandbox::Endpoint::KingdeeSave), 60);

    // Status names the version of the files the scheme runs.
    let status = ferry_async(&["status", "--config", &config, "--json"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(status["schemes"][0]["files"], scheme.version.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_run_without_a_start_refuses_and_from_now_reads_nothing_older() {
    let sandbox = spawn_sandbox(20, |_| {}).await;
    let dir = TempDir::new("first-start");
    let config = example_config(&sandbox, &dir, None);
    let refused = ferry_async(&["run", &config, "--once"]).await;
    assert_eq!(refused.code, EXIT_USER);
    assert!(
        refused.stderr.contains(
            "wdt-trades-to-kingdee-v2 never ran and names no start, so its first run would read only the last lookback"
        ) && refused.stderr.contains("--from-now"),
        "{refused:?}"
    );
    assert_eq!(sandbox.requests(ferry_sandbox::Endpoint::KingdeeSave), 0);
    let from_now = ferry_async(&["run", &config, "--once", "--from-now", "--json"]).await;
    assert_eq!(from_now.code, 0, "{from_now:?}");
    assert!(
        from_now
            .stderr
            .contains("wdt-trades-to-kingdee-v2: first run reads from "),
        "{from_now:?}"
    );
    let summary: Value = serde_json::from_str(from_now.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        summary["poll"]["documents"], 0,
        "nothing older than now: {summary}"
    );
    // The cursor exists now: later runs need no start.
    let later = ferry_async(&["run", &config, "--once"]).await;
    assert_eq!(later.code, 0, "{later:?}");
}

/// A copy of the example scheme folder in `dir`, for a test to break.
fn example_folder(dir: &TempDir) -> std::path::PathBuf {
    let folder = dir.path().join("schemes");
    std::fs::create_dir_all(folder.join("maps")).unwrap();
    for file in [
        "wdt-trades-to-kingdee-v2.yaml",
        "maps/shop-customers.csv",
        "maps/warehouses.csv",
        "maps/units.yaml",
    ] {
        std::fs::copy(
            workspace().join("examples/schemes").join(file),
            folder.join(file),
        )
        .unwrap();
    }
    folder
}

#[test]
fn check_refuses_a_target_api_no_client_serves_even_when_the_catalog_describes_it() {
    let dir = TempDir::new("check-unserved");
    let folder = example_folder(&dir);
    // A catalog file in the folder describes a further Kingdee API, but of a family no client
    // speaks (a batch save answering per bill).
    let v2 =
        std::fs::read_to_string(workspace().join("common/src/catalog/kingdee.v2.sal_order.yaml"))
            .unwrap();
    std::fs::create_dir_all(folder.join("catalog")).unwrap();
    std::fs::write(
        folder.join("catalog/batch.yaml"),
        v2.replace(
            "api: jdy/v2/scm/sal_order\n",
            "api: jdy/v2/scm/sal_order_batch\n",
        )
        .replace("protocol: kingdee-gateway", "protocol: kingdee-batch"),
    )
    .unwrap();
    let scheme = folder.join("wdt-trades-to-kingdee-v2.yaml");
    let text = std::fs::read_to_string(&scheme).unwrap();
    std::fs::write(
        &scheme,
        text.replace(
            "api: jdy/v2/scm/sal_order\n",
            "api: jdy/v2/scm/sal_order_batch\n",
        ),
    )
    .unwrap();
    let out = ferry(&["check", folder.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "{}:52:8: no client serves kingdee jdy/v2/scm/sal_order_batch (protocol kingdee-batch with entry-ids updates); the kingdee client serves protocol kingdee-gateway with entry-ids updates",
            scheme.display()
        )),
        "{}",
        out.stderr
    );
    // An API the catalog does not describe at all is refused too, naming those it knows.
    std::fs::remove_file(folder.join("catalog/batch.yaml")).unwrap();
    let out = ferry(&["check", folder.to_str().unwrap()]);
    assert!(
        out.stderr.contains("unknown kingdee API 'jdy/v2/scm/sal_order_batch'; known: jdy/v2/scm/sal_order, jdy/sal/sal_order_save"),
        "{}",
        out.stderr
    );
}

#[test]
fn check_reports_each_bad_row_of_a_csv_map_at_its_line() {
    let dir = TempDir::new("check-csv");
    let folder = example_folder(&dir);
    let csv = folder.join("maps/shop-customers.csv");
    std::fs::write(
        &csv,
        "key,value\n\
         tmall-001,CUST-TMALL\n\
         jd-001,CUST-JD\n\
         \"pdd-001\",\"CUST-PDD\"\n\
         jd-001,CUST-JD-AGAIN\n\
         douyin-001,\n\
         wxshop-001,CUST-WX,extra\n",
    )
    .unwrap();
    let out = ferry(&["check", folder.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out:?}");
    let csv = csv.display();
    let problems: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with(&csv.to_string()))
        .collect();
    assert_eq!(
        problems,
        [
            format!("{csv}:5:1: duplicate key 'jd-001' (first at line 3)"),
            format!("{csv}:6:1: key 'douyin-001' has an empty value"),
            format!("{csv}:7:1: a row is `key,value`: this one has 3 fields"),
        ]
    );
    // A wrong header is named, with what it should be.
    std::fs::write(
        folder.join("maps/warehouses.csv"),
        "仓库,客户\nWH-BJ01,CK001\n",
    )
    .unwrap();
    let out = ferry(&["check", folder.to_str().unwrap()]);
    assert!(
        out.stderr
            .contains("warehouses.csv:1:1: the header row must be `key,value`, not `仓库,客户`"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_variable_without_a_value_is_a_warning_for_check_and_stops_a_run() {
    let dir = TempDir::new("check-variable");
    let folder = example_folder(&dir);
    let out = ferry(&["check", folder.to_str().unwrap()]);
    assert_eq!(
        out.code, 0,
        "check passes: the deployment sets the variable\n{out:?}"
    );
    assert!(
        out.stderr.contains(
            "wdt-trades-to-kingdee-v2.yaml:33:5: warning: variable 'salesperson': FERRY_KINGDEE_SALESPERSON has no value here; a run stops at start until the deployment sets it"
        ),
        "{}",
        out.stderr
    );
    // A run configuration without the variable: the run refuses at start, naming it.
    let config = dir.write(
        "ferry.yaml",
        &format!(
            "store: \"{}\"\nschemes: [\"{}\"]\nconnectors: {{}}\n",
            dir.path().join("ferry.db").display(),
            folder.display()
        ),
    );
    let run = ferry(&["run", &config, "--once"]);
    assert_eq!(run.code, EXIT_USER);
    assert!(
        run.stderr.contains(
            "scheme wdt-trades-to-kingdee-v2 cannot start: variable 'salesperson' (FERRY_KINGDEE_SALESPERSON) has no value"
        ),
        "{}",
        run.stderr
    );
}
