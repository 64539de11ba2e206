//! The operator's commands against a real store and the sandbox — status, record, replay, resync,
//! reconcile — and bad input of every kind: each is recorded with a clear error, and none blocks or
//! loses its neighbours.

use ferry_cli::error::EXIT_USER;
use ferry_common::embedded::Runtime;
use ferry_common::engine::{HistoryLog, RecordState, RecordStore};
use ferry_sandbox::fault_mix::{Mix, bundled_plans};
use ferry_sandbox::{Endpoint, Fault, Kind, Sandbox};
use ferry_tests::{Output, TempDir, ferry_async, spawn_sandbox};
use serde_json::{Value, json};

const TRADES: &str = "wdt-trades-to-kingdee";
const STOCKOUTS: &str = "wdt-stockouts-to-yonyou";

/// A process over the test's store, the bundled schemes settling at once.
fn process(sandbox: &Sandbox, dir: &TempDir) -> Runtime {
    let plans = || bundled_plans(sandbox).unwrap();
    Mix {
        sandbox,
        store: dir.path().join("ferry.db"),
        plans: &plans,
        injuries: Vec::new(),
        progress: &|_| {},
    }
    .process()
    .unwrap()
}

async fn sync(runtime: &Runtime) {
    for index in 0..runtime.schemes.len() {
        runtime.sync_once(index, &|_| {}, &|_| {}).await.unwrap();
    }
}

/// `ferry COMMAND` with the test's configuration (`ferry run` takes it as its argument).
async fn run(config: &str, args: &[&str]) -> Output {
    let mut argv = if args[0] == "run" {
        vec!["run", config]
    } else {
        vec![args[0], "--config", config]
    };
    argv.extend(&args[1..]);
    ferry_async(&argv).await
}

/// `ferry reconcile SCHEME --from FROM --to TO --json`, parsed.
async fn reconcile(config: &str, scheme: &str, from: &str, to: &str) -> Value {
    json_of(
        &run(
            config,
            &["reconcile", scheme, "--from", from, "--to", to, "--json"],
        )
        .await,
    )
}

fn json_of(output: &Output) -> Value {
    assert_eq!(output.code, 0, "{output:?}");
    serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", output.stdout))
}

fn order_no(sandbox: &Sandbox, index: u32) -> String {
    sandbox.source(|s| {
        s.document(Kind::Order, index)["trade_no"]
            .as_str()
            .unwrap()
            .to_owned()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn status_record_replay_resync_and_reconcile() {
    let sandbox = spawn_sandbox(120, |c| c.refuse_rate = 0.05).await;
    let dir = TempDir::new("ops");
    let config = dir.write(
        "ferry.yaml",
        &ferry_tests::sandbox_run_config(&sandbox, &dir.path().join("ferry.db")),
    );
    // The Kingdee target is down for the first run: its messages end in the dead-letter queue.
    sandbox
        .faults()
        .set_rate(Endpoint::KingdeeSave, Fault::ServerError, 1.0);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace("max_receives: 30", "max_receives: 2");
    std::fs::write(&config, &text).unwrap();
    let first = run(&config, &["run", "--once", "--json"]).await;
    assert_eq!(first.code, 0, "{first:?}");

    let status = json_of(&run(&config, &["status", "--json"]).await);
    let trades = &status["schemes"][0];
    assert_eq!(trades["scheme"], TRADES);
    assert!(trades["cursor"].is_string() && trades["lag_seconds"].as_i64() >= Some(0));
    assert!(trades["dead_letters"].as_u64() > Some(0), "{trades}");
    assert_eq!(trades["records"]["retrying"], 120, "{trades}");
    let stockouts = &status["schemes"][1];
    let refused = stockouts["records"]["failed"].as_u64().unwrap();
    assert!(refused > 0, "{stockouts}");
    assert_eq!(
        stockouts["records"]["synced"].as_u64().unwrap() + refused,
        120
    );
    let failure = &stockouts["recent_failures"][0];
    assert!(
        failure["reason"].as_str().unwrap().contains("信用额度不足"),
        "the target's own reason: {failure}"
    );
    let table = run(&config, &["status"]).await;
    assert!(table.stdout.contains(TRADES) && table.stdout.contains("latest failures"));

    // The target recovers; the operator replays the dead letters.
    sandbox.faults().clear();
    let replayed = json_of(&run(&config, &["replay", TRADES, "--dead-letters", "--json"]).await);
    // Kingdee refuses some documents for good too (frozen customers).
    let kd_refused = replayed["push"]["failed"].as_u64().unwrap();
    assert!(kd_refused > 0, "{replayed}");
    assert_eq!(
        replayed["push"]["created"].as_u64().unwrap() + kd_refused,
        120,
        "{replayed}"
    );
    let store = ferry_common::embedded::EmbeddedStore::open(&dir.path().join("ferry.db")).unwrap();
    let mut synced = Vec::new();
    for index in 0..120 {
        let key = sandbox.source(|s| s.key(Kind::Order, index));
        let record = store.record(TRADES, &key).await.unwrap().unwrap();
        if record.state == RecordState::Synced {
            synced.push(index);
        }
    }

    // A document's history, by its order number: fetched, retried with the 503, created.
    let number = order_no(&sandbox, synced[0]);
    let record = json_of(&run(&config, &["record", TRADES, &number, "--json"]).await);
    assert_eq!(record["record"]["state"], "synced");
    let whats: Vec<&str> = record["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["what"].as_str().unwrap())
        .collect();
    assert_eq!(whats.first(), Some(&"fetched"), "{whats:?}");
    assert_eq!(whats.last(), Some(&"created"), "{whats:?}");
    assert!(whats.contains(&"retry"), "{whats:?}");
    let retry = record["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["what"] == "retry")
        .unwrap();
    assert!(retry["detail"].as_str().unwrap().contains("503"), "{retry}");
    assert!(record["history"].as_array().unwrap().last().unwrap()["target_id"].is_string());
    let shown = run(&config, &["record", TRADES, &number]).await;
    assert!(shown.stdout.contains("History") && shown.stdout.contains("created"));
    let unknown = run(&config, &["record", TRADES, "JY-NO-SUCH"]).await;
    assert_eq!(unknown.code, EXIT_USER);
    assert!(
        unknown.stderr.contains("has no record of 'JY-NO-SUCH'"),
        "{unknown:?}"
    );

    // Replaying the refused stock-outs asks the target again: refused again, nothing created twice.
    let bills = sandbox.yonyou_orders().len();
    let again = json_of(&run(&config, &["replay", STOCKOUTS, "--failed", "--json"]).await);
    assert_eq!(again["queued"].as_u64(), Some(refused), "{again}");
    assert_eq!(again["push"]["failed"].as_u64(), Some(refused), "{again}");
    assert_eq!(sandbox.yonyou_orders().len(), bills);
    // Replaying a synced document by key writes nothing.
    let same = json_of(&run(&config, &["replay", TRADES, &number, "--json"]).await);
    assert_eq!(
        (
            same["push"]["unchanged"].as_u64(),
            same["push"]["created"].as_u64()
        ),
        (Some(1), Some(0))
    );

    // Re-sync a whole range and a key: everything is unchanged; the cursor does not move.
    let start = sandbox.source(|s| s.first_time());
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
        .date()
        .to_string();
    let range = json_of(
        &run(
            &config,
            &["resync", TRADES, "--from", &start, "--to", &today, "--json"],
        )
        .await,
    );
    assert_eq!(range["queued"], 120, "{range}");
    assert_eq!(
        range["push"]["unchanged"].as_u64(),
        Some(120 - kd_refused),
        "{range}"
    );
    assert_eq!(
        range["push"]["failed"].as_u64(),
        Some(kd_refused),
        "{range}"
    );
    let keys = json_of(
        &run(
            &config,
            &["resync", TRADES, "--keys", &number, "NOPE", "--json"],
        )
        .await,
    );
    assert_eq!(
        (keys["queued"].clone(), keys["not_found"].clone()),
        (json!(1), json!(["NOPE"]))
    );
    let after = json_of(&run(&config, &["status", "--json"]).await);
    assert_eq!(after["schemes"][0]["cursor"], trades["cursor"]);

    // Bad on-demand requests are refused with what is wrong, and change nothing.
    let bad = run(
        &config,
        &["resync", TRADES, "--from", "2026-13-01", "--to", &today],
    )
    .await;
    assert_eq!(bad.code, EXIT_USER);
    assert!(bad.stderr.contains("--from"), "{bad:?}");
    let reversed = run(
        &config,
        &["resync", TRADES, "--from", &today, "--to", "2020-01-01"],
    )
    .await;
    assert!(reversed.stderr.contains("is after --to"), "{reversed:?}");
    assert_eq!(reversed.code, EXIT_USER);
    let unknown = run(&config, &["resync", "no-such-scheme", "--keys", "X"]).await;
    assert_eq!(unknown.code, EXIT_USER);
    assert!(
        unknown.stderr.contains("unknown scheme 'no-such-scheme': this configuration runs wdt-trades-to-kingdee, wdt-stockouts-to-yonyou"),
        "{unknown:?}"
    );
    let neither = run(&config, &["resync", TRADES]).await;
    assert_eq!(neither.code, EXIT_USER, "{neither:?}");

    // Month-end reconciliation: per day, source = synced + failed, the target agreeing.
    let trades_check = reconcile(&config, TRADES, start.get(..10).unwrap(), &today).await;
    let days = trades_check["days"].as_array().unwrap();
    let sum =
        |field: &str, days: &[Value]| days.iter().map(|d| d[field].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("source", days), 120);
    assert_eq!(sum("synced", days), 120 - kd_refused);
    assert_eq!(sum("failed", days), kd_refused);
    assert_eq!(sum("in_target", days), 120 - kd_refused);
    let differences = trades_check["differences"].as_array().unwrap();
    assert_eq!(differences.len() as u64, kd_refused, "{differences:?}");
    assert!(
        differences
            .iter()
            .all(|d| d["issue"].as_str().unwrap().contains("已冻结"))
    );
    let stockout_check = reconcile(&config, STOCKOUTS, start.get(..10).unwrap(), &today).await;
    let days = stockout_check["days"].as_array().unwrap();
    assert_eq!(sum("source", days), 120);
    assert_eq!(sum("failed", days), refused);
    // Yonyou itself is asked, order by order, through voucherorder/list by code.
    assert_eq!(sum("in_target", days), 120 - refused);
    let differences = stockout_check["differences"].as_array().unwrap();
    assert_eq!(differences.len() as u64, refused, "{differences:?}");
    assert!(
        differences
            .iter()
            .all(|d| d["issue"].as_str().unwrap().contains("信用额度不足"))
    );
    // A document edited after sync shows up as a difference until it is synced again.
    sandbox.source(|s| {
        s.modify(
            Kind::Order,
            synced[1],
            jiff::Timestamp::now().as_second() - 5,
        )
    });
    let edited = reconcile(&config, TRADES, start.get(..10).unwrap(), &today).await;
    let issues = edited["differences"].as_array().unwrap();
    assert_eq!(issues.len() as u64, kd_refused + 1, "{issues:?}");
    assert!(issues.iter().any(|i| {
        i["issue"]
            .as_str()
            .unwrap()
            .contains("changed in the source after sync")
    }));
    let people = run(
        &config,
        &[
            "reconcile",
            TRADES,
            "--from",
            start.get(..10).unwrap(),
            "--to",
            &today,
        ],
    )
    .await;
    assert!(
        people.stdout.contains("total")
            && people
                .stdout
                .contains(&format!("{} differences", kd_refused + 1)),
        "{}",
        people.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_map_fixed_after_the_failures_lets_replay_sync_them() {
    let sandbox = spawn_sandbox(150, |_| {}).await;
    let dir = TempDir::new("ops-fix");
    // The scheme as first configured: the Douyin shop has no Kingdee customer yet.
    let original = std::fs::read_to_string(
        ferry_tests::workspace().join("schemes/wdt-trades-to-kingdee.yaml"),
    )
    .unwrap();
    let broken = original.replace("      douyin-001: CUST-DOUYIN\n", "");
    assert_ne!(broken, original);
    dir.write("trades.yaml", &broken);
    let config = ferry_tests::sandbox_run_config(&sandbox, &dir.path().join("ferry.db"))
        .replace("scheme: wdt-trades-to-kingdee", "scheme: trades.yaml");
    let config = dir.write("ferry.yaml", &config);
    let first = run(&config, &["run", "--once", "--json"]).await;
    assert_eq!(first.code, 0, "{first:?}");
    let status = json_of(&run(&config, &["status", "--json"]).await);
    let failed = status["schemes"][0]["records"]["failed"].as_u64().unwrap();
    assert!(failed > 0, "{status}");
    let reason = status["schemes"][0]["recent_failures"][0]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.contains(
            "field customerid_id: 'douyin-001' has no entry in value map 'shop_customer'"
        ),
        "{reason}"
    );
    // Fixed; the failures are replayed and every one is created, once.
    dir.write("trades.yaml", &original);
    let replay = json_of(
        &run(
            &config,
            &["replay", "wdt-trades-to-kingdee", "--failed", "--json"],
        )
        .await,
    );
    assert_eq!(replay["push"]["created"].as_u64(), Some(failed), "{replay}");
    let scheme = ferry_tests::scheme("wdt-trades-to-kingdee");
    let v = sandbox.verify(&scheme);
    assert!(v.is_clean() && v.found == 150, "{v:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_documents_are_recorded_with_their_reason_and_block_nothing() {
    let sandbox = spawn_sandbox(200, |_| {}).await;
    let dir = TempDir::new("bad-input");
    let lines_with = |index: u32, price: &str| {
        let mut lines = sandbox.source(|s| s.document(Kind::Order, index))["goods_list"].clone();
        lines[0]["share_price"] = json!(price);
        lines
    };
    let bad_number = lines_with(8, "12,5x");
    let giant = "备".repeat(10 * 1024 * 1024 / 3);
    let patches: Vec<(u32, &str, Option<Value>, &str)> = vec![
        (
            4,
            "goods_list",
            None,
            "field material_entity: required by the target API",
        ),
        (5, "trade_id", None, "document has no trade_id"),
        (
            6,
            "trade_time",
            Some(json!("not a date")),
            "field billdate: date(): 'not a date' is not a time",
        ),
        (
            8,
            "goods_list",
            Some(bad_number),
            "field material_entity[0].taxprice: dec(): '12,5x' is not a decimal number",
        ),
        (
            9,
            "shop_no",
            Some(json!("unknown-shop")),
            "'unknown-shop' has no entry in value map 'shop_customer'",
        ),
        (
            10,
            "buyer_message",
            Some(json!(giant)),
            "more than a queue message can carry",
        ),
    ];
    sandbox.source(|s| {
        for (index, field, value, _) in &patches {
            s.patch(Kind::Order, *index, field, value.clone());
        }
        s.patch(
            Kind::Stockout,
            12,
            "consign_time",
            Some(json!("yesterday-ish")),
        );
    });
    // Answers that are not JSON on both targets, and a source page truncated mid-JSON three times
    // running (more than the client retries): the poll fails with the reason and resumes next run.
    // (Yonyou's not-JSON answer is `非法token`: met twice running, a fresh token refused too, it
    // would be a credentials refusal that stops the run; once, then a truncated answer, it is not.)
    sandbox
        .faults()
        .script(Endpoint::KingdeeSave, [Fault::NotJson, Fault::NotJson]);
    sandbox
        .faults()
        .script(Endpoint::YonyouSave, [Fault::NotJson, Fault::Malformed]);
    sandbox
        .faults()
        .script(Endpoint::WdtQuery, [Fault::Malformed; 3]);
    let runtime = process(&sandbox, &dir);
    let error = runtime.poll(0, &|_| {}).await.unwrap_err().to_string();
    assert!(
        error.contains("poll wdt-trades-to-kingdee: source:") && error.contains("JSON"),
        "{error}"
    );
    sync(&runtime).await;
    let store = &runtime.store;
    for (index, field, _, reason) in &patches {
        let key = if *field == "trade_id" {
            let failed = store
                .list(TRADES, Some(RecordState::Failed), 100)
                .await
                .unwrap();
            failed
                .into_iter()
                .find(|r| r.key.starts_with("unkeyed:"))
                .expect("the unkeyed document is recorded")
                .key
        } else {
            sandbox.source(|s| s.key(Kind::Order, *index))
        };
        let record = store.record(TRADES, &key).await.unwrap().expect("recorded");
        assert_eq!(record.state, RecordState::Failed, "{key}");
        let error = record.last_error.unwrap_or_default();
        assert!(error.contains(reason), "{key}: {error}");
        let history = store.history(TRADES, &key, 10).await.unwrap();
        assert!(
            history
                .iter()
                .any(|e| e.what == "failed" && e.detail.contains(reason)),
            "{history:?}"
        );
    }
    let stockout = sandbox.source(|s| s.key(Kind::Stockout, 12));
    let record = store.record(STOCKOUTS, &stockout).await.unwrap().unwrap();
    assert!(
        record
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("'yesterday-ish'"),
        "{record:?}"
    );
    // Every neighbour arrived exactly once; the not-JSON answers were settled, not duplicated.
    for run in &runtime.schemes {
        let v = sandbox.verify(&run.scheme);
        assert!(v.is_clean(), "{v:?}");
        assert_eq!(v.found + v.unmappable + v.oversize, v.expected, "{v:?}");
    }
    let trades = sandbox.verify(&runtime.schemes[0].scheme);
    assert_eq!(
        (trades.found, trades.unmappable, trades.oversize),
        (194, 5, 1),
        "{trades:?}"
    );
    assert_eq!(sandbox.faults().count(Fault::NotJson), 3);
    assert_eq!(sandbox.faults().count(Fault::Malformed), 4);
    let created = sandbox
        .receptions()
        .iter()
        .filter(|r| r.outcome == "created")
        .count();
    assert_eq!(created, 194 + 199);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_scheme_is_refused_at_load_naming_file_line_and_field() {
    let sandbox = spawn_sandbox(10, |_| {}).await;
    let dir = TempDir::new("ops-broken");
    let original = std::fs::read_to_string(
        ferry_tests::workspace().join("schemes/wdt-trades-to-kingdee.yaml"),
    )
    .unwrap();
    dir.write(
        "trades.yaml",
        &original.replace("doc.trade_no", "doc.trade_nox"),
    );
    let config = ferry_tests::sandbox_run_config(&sandbox, &dir.path().join("ferry.db"))
        .replace("scheme: wdt-trades-to-kingdee", "scheme: trades.yaml");
    let config = dir.write("ferry.yaml", &config);
    for command in [&["run", "--once"][..], &["status"][..]] {
        let out = run(&config, command).await;
        assert_eq!(out.code, EXIT_USER, "a broken scheme is the user's to fix");
        assert!(
            out.stderr.contains("trades.yaml:75:")
                && out
                    .stderr
                    .contains("target field billno: unknown source field doc.trade_nox"),
            "{out:?}"
        );
    }
}

/// After a run stopped mid-push (its claims still live), the next `ferry run --once` says what it
/// waits for and how long, then pushes those documents once the claims lapse: bounded, not silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_after_a_crash_says_which_claims_it_waits_for() {
    use ferry_common::embedded::EmbeddedStore;
    use ferry_common::engine::SyncRecord;
    let sandbox = spawn_sandbox(20, |_| {}).await;
    let dir = TempDir::new("crash-wait");
    let store_path = dir.path().join("ferry.db");
    let config = dir.write(
        "ferry.yaml",
        &ferry_tests::sandbox_run_config(&sandbox, &store_path),
    );
    // What a run killed mid-push leaves: three documents claimed for three more seconds.
    {
        let store = EmbeddedStore::open(&store_path).unwrap();
        let now = jiff::Timestamp::now();
        for index in 0..3 {
            let key = sandbox.source(|s| s.key(Kind::Order, index));
            let mut record = SyncRecord::new(TRADES, &key, now);
            record.state = RecordState::InProgress;
            record.claim_until = Some(now + jiff::SignedDuration::from_millis(2_900));
            assert!(store.put(&record).await.unwrap());
        }
    }
    let started = std::time::Instant::now();
    let run = ferry_async(&["run", &config, "--once"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("waiting 3 s for 3 claims of a stopped run to lapse"),
        "{}",
        run.stderr
    );
    // Pushed once their claims lapsed, not before, and nothing else waited for them.
    assert!(started.elapsed() >= std::time::Duration::from_millis(2_000));
    for id in [TRADES, STOCKOUTS] {
        let v = sandbox.verify(&ferry_tests::scheme(id));
        assert!(v.is_clean() && v.found == v.expected, "{id}: {v:?}");
    }
}
