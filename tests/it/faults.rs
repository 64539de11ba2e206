//! The fault mix on both bundled schemes: each fault alone, then all of them at once. Every run
//! ends with the proof: every source document in its target exactly once with its latest content,
//! failures only where the target refused a document for good (with its reason), and the sync
//! records agreeing with the target. Each test prints its figures.

use ferry_common::engine::HistoryLog;
use ferry_sandbox::Sandbox;
use ferry_sandbox::fault_mix::{Injury, Mix, MixReport, bundled_plans, sandbox_config};
use ferry_tests::{TempDir, capture_logs, spawn_sandbox};

/// Runs the mix with `injuries` over `orders` orders and as many stock-outs; asserts it clean.
async fn prove(name: &str, orders: u64, injuries: &[Injury]) -> (Sandbox, TempDir, MixReport) {
    prove_with(name, orders, injuries, |_| {}).await
}

/// [`prove`] on a sandbox that `configure` adjusts further (the answers to the contract's unknowns).
async fn prove_with(
    name: &str,
    orders: u64,
    injuries: &[Injury],
    configure: impl FnOnce(&mut ferry_sandbox::SandboxConfig),
) -> (Sandbox, TempDir, MixReport) {
    let sandbox = spawn_sandbox(orders, |c| {
        sandbox_config(injuries, c);
        configure(c);
    })
    .await;
    let dir = TempDir::new(&format!("faults-{name}"));
    let plans = || bundled_plans(&sandbox).expect("bundled schemes load");
    let mix = Mix {
        sandbox: &sandbox,
        store: dir.path().join("ferry.db"),
        plans: &plans,
        injuries: injuries.to_vec(),
        progress: &|step| eprintln!("{name}: {step}"),
    };
    let report = mix.run().await.expect("the mix runs");
    eprintln!("{}", report.summary());
    for scheme in &report.schemes {
        let v = &scheme.verification;
        assert!(v.expected > 0, "{}: nothing to sync", scheme.scheme);
        assert_eq!(
            (v.missing, v.duplicated, v.stale, v.lines_differ, v.unknown),
            (0, 0, 0, 0, 0),
            "{}: lost, duplicated, stale, lines differing, unknown\n{}",
            scheme.scheme,
            report.summary()
        );
        assert!(scheme.problems.is_empty(), "{}", report.summary());
    }
    assert!(report.is_clean());
    drop(mix);
    (sandbox, dir, report)
}

fn injected(report: &MixReport, fault: ferry_sandbox::Fault) -> u64 {
    report
        .injected
        .iter()
        .filter(|i| i.fault == fault)
        .map(|i| i.count)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors() {
    let (_, _, report) = prove("5xx", 300, &[Injury::ServerErrors]).await;
    assert!(injected(&report, ferry_sandbox::Fault::ServerError) > 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn timeouts() {
    let (_, _, report) = prove("timeouts", 200, &[Injury::Timeouts]).await;
    assert!(injected(&report, ferry_sandbox::Fault::Timeout) > 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_answers() {
    let (sandbox, _, report) = prove("lost", 400, &[Injury::LostAnswers]).await;
    assert!(injected(&report, ferry_sandbox::Fault::CommitThenLost) > 4);
    // Committed, then answered 500/502/504: settled by look-up like any lost answer.
    assert!(injected(&report, ferry_sandbox::Fault::CommitThen5xx) > 4);
    // Each lost save was settled (found or repeated), never saved as a second bill.
    let lost = sandbox
        .receptions()
        .iter()
        .filter(|r| r.answer_lost)
        .count();
    assert!(lost > 4, "{lost}");
}

#[tokio::test(flavor = "multi_thread")]
async fn token_expiry() {
    let (_, _, report) = prove("tokens", 400, &[Injury::TokenExpiry]).await;
    assert!(injected(&report, ferry_sandbox::Fault::TokenExpiry) > 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling() {
    let (_, _, report) = prove("throttle", 300, &[Injury::Throttling]).await;
    assert!(injected(&report, ferry_sandbox::Fault::Throttle) > 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_deliveries() {
    let (_, _, report) = prove("duplicates", 200, &[Injury::DuplicateDeliveries]).await;
    assert!(report.engine.duplicate_messages >= 4, "{:?}", report.engine);
    // The second copy of every page found its documents synced already.
    assert!(report.schemes.iter().all(|s| s.push.unchanged >= 200));
}

#[tokio::test(flavor = "multi_thread")]
async fn poller_killed_mid_window() {
    let (_, _, report) = prove("poller", 400, &[Injury::PollerKilled]).await;
    assert_eq!(report.engine.pollers_killed, 2, "{:?}", report.engine);
}

#[tokio::test(flavor = "multi_thread")]
async fn pusher_killed_after_the_target_write() {
    let (sandbox, _, report) = prove("pusher", 200, &[Injury::PusherKilled]).await;
    assert_eq!(report.engine.pushers_killed, 2, "{:?}", report.engine);
    // Both hung saves were applied by the target, and no second bill was made for them.
    let created = |service: &str| {
        sandbox
            .receptions()
            .iter()
            .filter(|r| r.service == service && r.outcome == "created")
            .count()
    };
    assert_eq!((created("kingdee"), created("yonyou")), (200, 200));
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_modified_while_paged() {
    prove("drift", 400, &[Injury::Drift]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn late_commits() {
    let (_, _, report) = prove("late", 200, &[Injury::LateCommits]).await;
    assert_eq!(report.engine.late_commits, 6);
    assert!(
        report
            .schemes
            .iter()
            .all(|s| s.verification.expected == 203)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stockout_reapproval() {
    let (sandbox, _, report) = prove("reapproval", 200, &[Injury::Reapproval]).await;
    assert_eq!(report.engine.reapprovals, 2);
    let renumbered = sandbox
        .yonyou_orders()
        .iter()
        .filter(|o| o.body["code"].as_str().is_some_and(|c| c.ends_with("-1")))
        .count();
    assert_eq!(renumbered, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn edits_after_sync() {
    let (_, _, report) = prove("edits", 200, &[Injury::EditsAfterSync]).await;
    // Orders carry the remark to Kingdee: all four edits reach it. A stock-out edited once changed
    // only its remark, which no Yonyou field carries: that costs no call.
    let updated: Vec<u64> = report.schemes.iter().map(|s| s.push.updated).collect();
    assert_eq!(updated, [4, 3], "{}", report.summary());
    for s in &report.schemes {
        assert_eq!(s.verification.lines_differ, 0, "{}", report.summary());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_the_only_failures_and_carry_the_targets_reason() {
    let (_, _, report) = prove("refusals", 400, &[Injury::Refusals]).await;
    for s in &report.schemes {
        assert!(s.verification.refused > 0, "{}", report.summary());
        assert_eq!(s.failed, s.verification.refused);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fault_at_once_loses_nothing_duplicates_nothing_and_leaks_no_secret() {
    let logs = capture_logs();
    let (sandbox, dir, report) = prove("all", 600, &Injury::ALL).await;
    for fault in [
        ferry_sandbox::Fault::ServerError,
        ferry_sandbox::Fault::Timeout,
        ferry_sandbox::Fault::CommitThenLost,
        ferry_sandbox::Fault::Throttle,
        ferry_sandbox::Fault::TokenExpiry,
        ferry_sandbox::Fault::CommitThenHang,
    ] {
        assert!(injected(&report, fault) > 0, "{fault:?} was never injected");
    }
    let e = &report.engine;
    assert!(e.pollers_killed > 0 && e.pushers_killed > 0 && e.duplicate_messages > 0);
    // What operators read is as clean as the logs: status, and a document's history.
    let config = ferry_tests::sandbox_run_config(&sandbox, &dir.path().join("ferry.db"));
    let config = dir.write("ferry.yaml", &config);
    let status = ferry_tests::ferry_async(&["status", "--config", &config, "--json"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    let store = ferry_common::embedded::EmbeddedStore::open(&dir.path().join("ferry.db")).unwrap();
    let key = sandbox.source(|s| s.key(ferry_sandbox::Kind::Order, 11));
    let history = store
        .history("wdt-trades-to-kingdee", &key, 100)
        .await
        .unwrap();
    assert!(history.iter().any(|e| e.what == "fetched"), "{history:?}");
    let record =
        ferry_tests::ferry_async(&["record", "--config", &config, "wdt-trades-to-kingdee", &key])
            .await;
    assert_eq!(record.code, 0, "{record:?}");
    let logged = logs.text();
    assert!(logged.contains("TRACE") || logged.contains("DEBUG"));
    let outputs = [
        ("logs", logged),
        ("status", format!("{status:?}")),
        ("record", format!("{record:?}")),
        ("report", format!("{report:?}")),
    ];
    let texts: Vec<(&str, &str)> = outputs.iter().map(|(w, t)| (*w, t.as_str())).collect();
    let checked = ferry_tests::assert_no_secrets(&sandbox, &[], &texts);
    assert!(checked > 5, "tokens were issued");
}

/// The whole mix (commit-then-5xx on both targets included) under the answers to the contract's
/// unknowns (§5) that change what Ferry sees: whether a target keeps lines a modify leaves out, how
/// Kingdee refuses a duplicate number and an expired token and says "no such bill", Yonyou's
/// repeat code and a key window short enough that lost answers are settled by finding the order by
/// code, WDT's result order and its total on later pages. Every row: nothing lost, duplicated or
/// stale, every bill's lines equal to the latest mapping.
#[tokio::test(flavor = "multi_thread")]
async fn every_fault_under_every_answer_to_the_unknowns() {
    use ferry_sandbox::unknowns::*;
    use std::time::Duration;
    let rows = [
        (
            "defaults",
            Unknowns::default(),
            Duration::from_secs(3600),
            false,
        ),
        (
            "kept-401-10004-by-id-repeated",
            Unknowns {
                kingdee_left_out: LeftOutLines::Kept,
                yonyou_left_out: LeftOutLines::Kept,
                kingdee_duplicate: DuplicateRefusal::Other,
                kingdee_expired_token: ExpiredToken::Http401,
                yonyou_repeat: RepeatCode::C10004,
                wdt_order: ResultOrder::ById,
                wdt_later_total: LaterTotal::Repeated,
            },
            Duration::from_secs(1),
            true,
        ),
        (
            "mixed-othercode-unordered-minus-one",
            Unknowns {
                kingdee_left_out: LeftOutLines::Deleted,
                yonyou_left_out: LeftOutLines::Kept,
                kingdee_duplicate: DuplicateRefusal::CombinedValue,
                kingdee_expired_token: ExpiredToken::OtherCode,
                yonyou_repeat: RepeatCode::C100004,
                wdt_order: ResultOrder::Unordered,
                wdt_later_total: LaterTotal::MinusOne,
            },
            Duration::from_secs(1),
            false,
        ),
    ];
    let runs = rows.map(|(name, unknowns, window, empty)| async move {
        let (_, _, report) = prove_with(&format!("matrix-{name}"), 150, &Injury::ALL, |c| {
            c.unknowns = unknowns;
            c.resubmit_window = window;
            c.kingdee_not_found_empty = empty;
        })
        .await;
        for fault in [
            ferry_sandbox::Fault::CommitThen5xx,
            ferry_sandbox::Fault::CommitThenLost,
            ferry_sandbox::Fault::TokenExpiry,
        ] {
            assert!(
                injected(&report, fault) > 0,
                "{name}: {fault:?} never injected"
            );
        }
        report
    });
    let reports = futures_util::future::join_all(runs).await;
    assert_eq!(reports.len(), 3);
}
