//! A deployment of a user's scheme folder, made the way `scripts/deploy` makes it: the folder is
//! checked and packed by the schemes layer's Makefile (the target `sam build` runs, with the real
//! `ferry` program), and the poll and push functions' own processes run it from the layer's folder
//! under the Lambda emulator, over moto and the sandbox. The scheme exists only as files in a
//! temporary folder: the example customer's Kingdee V2 scheme with its CSV and YAML maps.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferry_common::Scheme;
use ferry_sandbox::{Kind, Sandbox};
use ferry_tests::aws::{AwsWorld, depth};
use ferry_tests::lambda::{
    Function, FunctionSpec, Invoked, MappingSpec, MappingStats, run_mapping,
};
use ferry_tests::{TempDir, event, spawn_sandbox, workspace};
use serde_json::Value;

const SCHEME: &str = "wdt-trades-to-kingdee-v2";
const SALESPERSON: &str = "FERRY_KINGDEE_SALESPERSON=YW007";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// What `sam build` does for the schemes layer: `make build-SchemesLayer` in a copy of
/// infra/schemes-layer, with the folder and the ferry program named; the layer's content is
/// returned (its `schemes/` is the functions' /opt/schemes), or make's output when it fails.
fn build_layer(schemes: &Path, artifacts: &Path) -> Result<PathBuf, String> {
    let scratch = artifacts.with_extension("scratch");
    copy_dir(&workspace().join("infra/schemes-layer"), &scratch);
    let out = std::process::Command::new("make")
        .arg("build-SchemesLayer")
        .current_dir(&scratch)
        .env("ARTIFACTS_DIR", artifacts)
        .env("FERRY_SCHEMES", schemes)
        .env("FERRY", env!("CARGO_BIN_EXE_ferry-bin"))
        .output()
        .expect("make runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(artifacts.join("schemes"))
    } else {
        Err(said)
    }
}

/// The scheme as the deployment loads it, for the sandbox's verification.
fn deployed_scheme(layer: &Path) -> Scheme {
    let vars = |key: &str| {
        let (name, value) = SALESPERSON.split_once('=').unwrap();
        (key == name).then(|| value.to_owned())
    };
    ferry_common::scheme::load_folder(layer, &vars)
        .unwrap()
        .into_iter()
        .next()
        .unwrap()
}

/// The two functions of one deployment of `layer`: fresh execution environments.
fn functions(world: &AwsWorld, sandbox: &Sandbox, layer: &Path) -> (Arc<Function>, Arc<Function>) {
    let mut env = world.function_env();
    env.extend(
        [
            ("FERRY_SCHEME_DIR", layer.display().to_string()),
            ("FERRY_VARIABLES", SALESPERSON.to_owned()),
            ("FERRY_START", sandbox.source(|s| s.first_time())),
            ("FERRY_RATE_LIMITS", "kingdee=50000,yonyou=50000".to_owned()),
            ("FERRY_PUSH_TIMEOUT", "5s".to_owned()),
            ("FERRY_PUSH_CONCURRENCY", "1".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let function = |name: &str, binary: &str, timeout: u64| {
        Function::new(FunctionSpec {
            name: name.into(),
            binary: binary.into(),
            timeout: Duration::from_secs(timeout),
            env: env.clone(),
            kill_rate: 0.0,
        })
    };
    (
        function("ferry-poll", env!("CARGO_BIN_EXE_lambda-poll"), 60),
        function("ferry-push", env!("CARGO_BIN_EXE_lambda-push"), 5),
    )
}

/// Invokes poll with `payload` and returns its answer.
async fn poll(function: &Function, payload: Value) -> Value {
    match function.invoke(payload).await {
        Invoked::Answer(answer) => answer,
        other => panic!(
            "poll: {other:?}; logs: {:?}",
            function.output.lock().unwrap()
        ),
    }
}

/// Runs the Kingdee queue's event source mapping until the queue is empty.
async fn drain(world: &AwsWorld, push: Arc<Function>) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let pair = &world.queues["kingdee"];
    let mapping = tokio::spawn(run_mapping(
        world.sqs(),
        MappingSpec {
            url: pair.url.clone(),
            arn: pair.arn.clone(),
            batch_size: 2,
            batching_window: Duration::from_millis(200),
            maximum_concurrency: 1,
        },
        push,
        Arc::new(MappingStats::default()),
        stopped,
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while depth(&world.sqs(), &pair.url).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the queue never drained"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The last batch's deletes land after its invocation answers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).unwrap();
    mapping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheme_folder_deploys_syncs_and_a_changed_csv_reaches_the_next_documents() {
    let sandbox = spawn_sandbox(30, |_| {}).await;
    let world = AwsWorld::new(&sandbox, 5).await;
    let dir = TempDir::new("deploy");
    let folder = dir.path().join("schemes");
    copy_dir(&workspace().join("examples/schemes"), &folder);

    // A broken value map stops the build: nothing deploys.
    let csv = folder.join("maps/shop-customers.csv");
    let good = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, format!("{good}jd-001,CUST-JD-2\n")).unwrap();
    let refused = build_layer(&folder, &dir.path().join("refused")).unwrap_err();
    assert!(
        refused.contains("shop-customers.csv:7:1: duplicate key 'jd-001' (first at line 3)"),
        "{refused}"
    );
    assert!(!dir.path().join("refused/schemes").exists());
    std::fs::write(&csv, &good).unwrap();

    // Deploy: one tick of the schedule polls the scheme; push writes every order through V2.
    let layer = build_layer(&folder, &dir.path().join("layer-1")).unwrap();
    let scheme = deployed_scheme(&layer);
    let (poll_fn, push_fn) = functions(&world, &sandbox, &layer);
    let tick = poll(&poll_fn, event("scheduled-event-without-scheme.json")).await;
    assert_eq!(tick["request"], "tick");
    assert_eq!(tick["polled"][0]["scheme"], SCHEME, "{tick}");
    assert_eq!(tick["polled"][0]["report"]["documents"], 30, "{tick}");
    drain(&world, push_fn.clone()).await;
    let verification = sandbox.verify(&scheme);
    assert!(verification.is_clean(), "{verification:?}");
    assert_eq!(verification.found, 30);
    let bills = sandbox.kingdee_bills();
    assert!(bills.iter().all(|b| b.body["emp_number"] == "YW007"));
    assert!(bills.iter().all(|b| b.body.get("bill_no").is_some()));

    // What the deployment runs, as each function recorded it.
    let deployed = world.store().deployed().await.unwrap();
    let mut seen: Vec<(String, String, String)> = deployed
        .iter()
        .map(|d| (d.scheme.clone(), d.function.clone(), d.version.clone()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (SCHEME.to_owned(), "poll".to_owned(), scheme.version.clone()),
            (SCHEME.to_owned(), "push".to_owned(), scheme.version.clone()),
        ]
    );
    assert!(
        deployed[0]
            .files
            .contains(&"maps/shop-customers.csv".to_owned())
    );

    // A tick right after: the scheme's 1-minute interval has not passed.
    let early = poll(&poll_fn, event("scheduled-event-without-scheme.json")).await;
    assert_eq!(early["polled"], serde_json::json!([]), "{early}");
    assert_eq!(early["waiting"][0][0], SCHEME);

    // The customer's tmall shop gets a new customer code: edit the CSV, redeploy.
    std::fs::write(
        &csv,
        good.replace("tmall-001,CUST-TMALL", "tmall-001,CUST-TMALL-2"),
    )
    .unwrap();
    let layer = build_layer(&folder, &dir.path().join("layer-2")).unwrap();
    let changed = deployed_scheme(&layer);
    assert_ne!(changed.version, scheme.version);
    let (poll_fn, push_fn) = functions(&world, &sandbox, &layer);
    // Tmall orders edited at the source (stamped inside the lookback, as if just settled).
    let settled = jiff::Timestamp::now().as_second() - 70;
    let tmall: Vec<String> = sandbox.source(|s| {
        let indexes: Vec<u32> = (0..s.len(Kind::Order) as u32)
            .filter(|&i| s.document(Kind::Order, i)["shop_no"] == "tmall-001")
            .collect();
        indexes
            .into_iter()
            .map(|i| {
                s.touch(Kind::Order, i, settled);
                s.document(Kind::Order, i)["trade_no"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    });
    assert!(!tmall.is_empty());
    let again = poll(&poll_fn, serde_json::json!({ "scheme": SCHEME })).await;
    assert!(again["report"]["documents"].as_u64().unwrap() >= tmall.len() as u64);
    drain(&world, push_fn).await;
    let verification = sandbox.verify(&changed);
    assert!(verification.is_clean(), "{verification:?}");
    for bill in sandbox.kingdee_bills() {
        let expected = if tmall.contains(&bill.number) {
            "CUST-TMALL-2"
        } else {
            bill.body["customer_id"].as_str().unwrap()
        };
        assert_eq!(bill.body["customer_id"], expected, "{}", bill.number);
        assert_ne!(bill.body["customer_id"], "CUST-TMALL", "{}", bill.number);
    }
    let versions: Vec<String> = world
        .store()
        .deployed()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.version)
        .collect();
    assert!(
        versions.iter().all(|v| *v == changed.version),
        "{versions:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_without_a_variable_or_a_start_refuses_saying_what_to_set() {
    let sandbox = spawn_sandbox(10, |_| {}).await;
    let world = AwsWorld::new(&sandbox, 5).await;
    let dir = TempDir::new("deploy-refusals");
    let layer = build_layer(
        &workspace().join("examples/schemes"),
        &dir.path().join("layer"),
    )
    .unwrap();
    let mut env = world.function_env();
    env.push(("FERRY_SCHEME_DIR".into(), layer.display().to_string()));
    env.push(("FERRY_PUSH_TIMEOUT".into(), "5s".into()));
    let poll_fn = Function::new(FunctionSpec {
        name: "ferry-poll".into(),
        binary: env!("CARGO_BIN_EXE_lambda-poll").into(),
        timeout: Duration::from_secs(30),
        env: env.clone(),
        kill_rate: 0.0,
    });
    match poll_fn
        .invoke(event("scheduled-event-without-scheme.json"))
        .await
    {
        Invoked::Error(e) => assert!(
            e.contains("variable 'salesperson' (FERRY_KINGDEE_SALESPERSON) has no value"),
            "{e}"
        ),
        other => panic!("started without its variable: {other:?}"),
    }
    env.push(("FERRY_VARIABLES".into(), SALESPERSON.into()));
    let poll_fn = Function::new(FunctionSpec {
        name: "ferry-poll".into(),
        binary: env!("CARGO_BIN_EXE_lambda-poll").into(),
        timeout: Duration::from_secs(30),
        env,
        kill_rate: 0.0,
    });
    match poll_fn
        .invoke(event("scheduled-event-without-scheme.json"))
        .await
    {
        Invoked::Error(e) => assert!(
            e.contains("never ran and names no start") && e.contains("FirstPollStart"),
            "{e}"
        ),
        other => panic!("a first poll without a start ran: {other:?}"),
    }
    assert_eq!(depth(&world.sqs(), &world.queues["kingdee"].url).await, 0);
}
