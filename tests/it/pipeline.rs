//! The whole pipeline on the embedded default against the sandbox, both bundled schemes side by side:
//! poll → SQLite queue → push → sandbox targets. Every test ends by verifying the targets against the
//! sources (every document exactly once, with its latest content) and the sync records against the
//! targets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ferry_common::connector::Clients;
use ferry_common::embedded::{Runtime, SchemeSummary, Settings};
use ferry_common::engine::{DocumentOutcome, PageQueue, RecordState, RecordStore, Window};
use ferry_sandbox::fault_mix::{bundled_plans, check_records};
use ferry_sandbox::{Endpoint, Fault, Kind, Sandbox, Verification};
use ferry_tests::{TempDir, spawn_sandbox};

/// Short timings so redeliveries, lapsed claims and lapsed leases happen within a test.
pub(crate) fn test_settings() -> Settings {
    Settings {
        max_receives: 8,
        visibility: Duration::from_secs(2),
        claim_ttl: Duration::from_secs(2),
        retry_min: Duration::from_millis(50),
        retry_max: Duration::from_millis(400),
        retry_limit: 1_000,
        poll_budget: Duration::from_secs(120),
        lease: Duration::from_secs(3),
        batch: 10,
    }
}

pub(crate) struct Pipeline {
    pub(crate) sandbox: Sandbox,
    dir: TempDir,
}

impl Pipeline {
    pub(crate) async fn spawn(
        name: &str,
        orders: u64,
        adjust: impl FnOnce(&mut ferry_sandbox::SandboxConfig),
    ) -> Pipeline {
        let sandbox = spawn_sandbox(orders, adjust).await;
        Pipeline {
            sandbox,
            dir: TempDir::new(&format!("pipeline-{name}")),
        }
    }

    /// A runtime over the test's store file: a second call is a restarted process.
    pub(crate) fn runtime(&self) -> Runtime {
        self.runtime_with(test_settings())
    }

    /// A runtime with other timings.
    pub(crate) fn runtime_with(&self, settings: Settings) -> Runtime {
        let clients = Clients::new(&self.sandbox.connectors()).unwrap();
        Runtime::new(
            &self.dir.path().join("ferry.db"),
            bundled_plans(&self.sandbox).unwrap(),
            &clients,
            &self.sandbox.rate_limits(),
            settings,
        )
        .unwrap()
    }

    /// Polls and drains both schemes.
    pub(crate) async fn sync(&self, runtime: &Runtime) -> Vec<SchemeSummary> {
        let mut out = Vec::new();
        for index in 0..runtime.schemes.len() {
            out.push(runtime.sync_once(index, &|_| {}, &|_| {}).await.unwrap());
        }
        out
    }

    pub(crate) fn verify(&self, runtime: &Runtime) -> Vec<Verification> {
        runtime
            .schemes
            .iter()
            .map(|run| self.sandbox.verify(&run.scheme))
            .collect()
    }

    /// Every document exactly once with its latest content, and the records agreeing.
    pub(crate) async fn assert_synced(&self, runtime: &Runtime) {
        for (index, (run, v)) in runtime.schemes.iter().zip(self.verify(runtime)).enumerate() {
            let id = run.scheme.id();
            eprintln!("{id}: {v:?}");
            assert!(v.expected > 0, "{id}: nothing to sync?");
            assert!(v.is_clean(), "{id}: {v:?}");
            assert_eq!(
                v.found + v.refused + v.unmappable,
                v.expected,
                "{id}: {v:?}"
            );
            let (_, _, problems) = check_records(runtime, index, &self.sandbox, &v)
                .await
                .unwrap();
            assert!(problems.is_empty(), "{id}: {problems:?}");
        }
    }
}

fn created(summaries: &[SchemeSummary]) -> u64 {
    summaries.iter().map(|s| s.push.created).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_run_syncs_every_document_exactly_once() {
    let p = Pipeline::spawn("clean", 400, |_| {}).await;
    let runtime = p.runtime();
    let first = p.sync(&runtime).await;
    p.assert_synced(&runtime).await;
    assert_eq!(created(&first), 800);
    for s in &first {
        assert_eq!((s.push.failed, s.dead_letters), (0, 0), "{s:?}");
        assert!(s.poll.windows > 0 && s.poll.cursor.is_some());
    }
    // A second run re-reads only the lookback, and writes nothing.
    let second = p.sync(&runtime).await;
    assert_eq!(created(&second), 0);
    assert!(second.iter().all(|s| s.push.updated == 0), "{second:?}");
    p.assert_synced(&runtime).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_edited_while_paged_are_not_lost() {
    // One in ten documents served is edited right away, moving it out of the window being paged.
    let p = Pipeline::spawn("drift", 800, |c| c.drift_rate = 0.1).await;
    let runtime = p.runtime();
    p.sync(&runtime).await;
    for v in p.verify(&runtime) {
        // Nothing was skipped: every document is there (edited ones in their served version).
        assert_eq!((v.missing, v.duplicated), (0, 0), "{v:?}");
        assert!(
            v.stale > 0,
            "drift should have edited some documents: {v:?}"
        );
    }
    // Their new versions are in the next run's window.
    p.sandbox.set_drift_rate(0.0);
    let second = p.sync(&runtime).await;
    assert!(second.iter().all(|s| s.push.updated > 0), "{second:?}");
    p.assert_synced(&runtime).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn late_commits_inside_the_lookback_arrive() {
    let p = Pipeline::spawn("late", 300, |_| {}).await;
    let runtime = p.runtime();
    p.sync(&runtime).await;
    let now = jiff::Timestamp::now().as_second();
    p.sandbox.source(|s| {
        for _ in 0..4 {
            s.commit_late(Kind::Order, 240, now);
            s.commit_late(Kind::Stockout, 240, now);
        }
    });
    let second = p.sync(&runtime).await;
    assert_eq!(created(&second), 8, "{second:?}");
    p.assert_synced(&runtime).await;
    assert!(p.verify(&runtime).iter().all(|v| v.expected == 304));
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_edited_after_sync_update_their_bills() {
    let p = Pipeline::spawn("edited", 300, |_| {}).await;
    let runtime = p.runtime();
    p.sync(&runtime).await;
    let now = jiff::Timestamp::now().as_second();
    p.sandbox.source(|s| {
        // Two edits each: a new remark, then a quantity (sandbox source::edit_lines).
        for i in [3, 50, 120, 250] {
            for _ in 0..2 {
                s.modify(Kind::Order, i, now);
                s.modify(Kind::Stockout, i, now);
            }
        }
        // Re-approval: a new stock-out number for the same stock-out.
        s.reapprove(77, now);
    });
    let second = p.sync(&runtime).await;
    assert_eq!(created(&second), 0, "{second:?}");
    assert_eq!(second[0].push.updated, 4, "{:?}", second[0]);
    assert_eq!(second[1].push.updated, 5, "{:?}", second[1]);
    p.assert_synced(&runtime).await;
    let bill = p
        .sandbox
        .yonyou_orders()
        .into_iter()
        .find(|o| o.body["code"].as_str().is_some_and(|c| c.ends_with("-1")))
        .expect("the re-approved number reached Yonyou");
    assert_eq!(bill.writes, 2);
}

/// Only real changes are written: a document whose only change is its `modified` time (or a field
/// no target field reads) is fetched again and costs no target call at all.
#[tokio::test(flavor = "multi_thread")]
async fn documents_whose_only_change_is_modified_cost_no_target_call() {
    let p = Pipeline::spawn("touched", 200, |_| {}).await;
    let runtime = p.runtime();
    p.sync(&runtime).await;
    let target_calls = || {
        [
            Endpoint::KingdeeSave,
            Endpoint::KingdeeLookup,
            Endpoint::YonyouSave,
            Endpoint::YonyouLookup,
        ]
        .map(|e| p.sandbox.requests(e))
        .iter()
        .sum::<u64>()
    };
    let before = target_calls();
    let now = jiff::Timestamp::now().as_second();
    p.sandbox.source(|s| {
        for i in 0..20 {
            s.touch(Kind::Order, i * 7, now);
            s.touch(Kind::Stockout, i * 7, now);
        }
        // A stock-out's remark is no Yonyou field: an edit of it alone changes no bill.
        for i in 0..5 {
            s.modify(Kind::Stockout, 150 + i, now);
        }
    });
    let second = p.sync(&runtime).await;
    assert!(second[0].push.unchanged >= 20, "{:?}", second[0]);
    assert!(second[1].push.unchanged >= 25, "{:?}", second[1]);
    assert_eq!(second[0].push.pushed() + second[1].push.pushed(), 0);
    assert_eq!(target_calls(), before, "not one target call");
    p.assert_synced(&runtime).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_delivered_twice_write_nothing_twice() {
    let p = Pipeline::spawn("twice", 300, |_| {}).await;
    let runtime = p.runtime();
    p.sync(&runtime).await;
    let start = p.sandbox.source(|s| s.first_time());
    let end =
        ferry_common::time::format_source(ferry_common::time::to_beijing(jiff::Timestamp::now()));
    let window = Window::parse(&start, &end).unwrap();
    for (index, run) in runtime.schemes.iter().enumerate() {
        // Every page of the whole range, queued twice over: the on-demand window re-sync.
        let poller = runtime.poller(run, &|_| {});
        let first = poller.resync_window(window).await.unwrap();
        let again = poller.resync_window(window).await.unwrap();
        assert_eq!(first.documents, 300);
        assert_eq!(again.documents, 300);
        // And documents by key (trade_no / src_order_no), one unknown.
        let doc = p.sandbox.source(|s| {
            s.document(
                if index == 0 {
                    Kind::Order
                } else {
                    Kind::Stockout
                },
                9,
            )
        });
        let number = if index == 0 {
            doc["trade_no"].clone()
        } else {
            doc["src_order_no"].clone()
        };
        let (by_key, missing) = poller
            .resync_keys(&[number.as_str().unwrap().to_owned(), "NO-SUCH-NUMBER".into()])
            .await
            .unwrap();
        assert_eq!(
            (by_key.documents, missing),
            (1, vec!["NO-SUCH-NUMBER".to_owned()])
        );
        let mut tally = ferry_common::embedded::Tally::default();
        while runtime
            .push_batch(index, &mut tally, &|_| {})
            .await
            .unwrap()
        {}
        assert_eq!(
            (tally.created, tally.updated, tally.unchanged),
            (0, 0, 601),
            "{tally:?}"
        );
    }
    // The cursor did not move for on-demand work, and the targets are as they were.
    p.assert_synced(&runtime).await;
    let receptions = p.sandbox.receptions().len();
    assert_eq!(receptions, 600);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_killed_mid_run_resumes_from_its_store() {
    let p = Pipeline::spawn("restart", 1_000, |_| {}).await;
    {
        let runtime = p.runtime();
        let pushed = AtomicU64::new(0);
        let count = |o: &DocumentOutcome| {
            if matches!(o, DocumentOutcome::Pushed { .. }) {
                pushed.fetch_add(1, Ordering::SeqCst);
            }
        };
        // Killed a third of the way through the orders: pages queued, some pushed, claims held.
        let run = runtime.sync_once(0, &|_| {}, &count);
        let kill = async {
            while pushed.load(Ordering::SeqCst) < 300 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        tokio::select! {
            _ = run => panic!("the run finished before it was killed"),
            _ = kill => {}
        }
        assert!(p.sandbox.kingdee_bills().len() < 1_000);
    }
    // The new process waits out the dead one's lease, visibility and claims, then carries on.
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let runtime = p.runtime();
    let summaries = p.sync(&runtime).await;
    let kingdee = &summaries[0];
    assert!(kingdee.push.created < 1_000, "{kingdee:?}");
    p.assert_synced(&runtime).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_answers_are_settled_without_duplicates() {
    let p = Pipeline::spawn("lost", 200, |c| c.hang = Duration::from_millis(300)).await;
    // Saves that land but whose answers never arrive, and plain server errors, on both targets.
    for endpoint in [Endpoint::KingdeeSave, Endpoint::YonyouSave] {
        p.sandbox.faults().script(
            endpoint,
            [
                Fault::CommitThenLost,
                Fault::ServerError,
                Fault::CommitThenLost,
                Fault::Timeout,
            ],
        );
    }
    let runtime = p.runtime();
    let summaries = p.sync(&runtime).await;
    eprintln!("{summaries:?}");
    // Every scripted fault hit: two saves per target landed without an answer.
    assert_eq!(p.sandbox.faults().count(Fault::CommitThenLost), 4);
    assert_eq!(p.sandbox.faults().count(Fault::ServerError), 2);
    // Kingdee has no idempotency key: its lost saves were found by billno, not saved again.
    assert!(summaries[0].push.retried >= 2, "{:?}", summaries[0]);
    let created = |service: &str| {
        p.sandbox
            .receptions()
            .iter()
            .filter(|r| r.service == service && r.outcome == "created")
            .count()
    };
    assert_eq!((created("kingdee"), created("yonyou")), (200, 200));
    p.assert_synced(&runtime).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poll_out_of_time_stops_between_windows_and_the_next_run_resumes() {
    let p = Pipeline::spawn("budget", 600, |_| {}).await;
    // Two seconds are kept in reserve: this leaves a fraction of a second of polling, and every
    // source call takes 300 ms, so the run cannot get through all its windows however fast the
    // machine is.
    p.sandbox
        .faults()
        .set_rate(Endpoint::WdtQuery, Fault::Slow, 1.0);
    let runtime = p.runtime_with(Settings {
        poll_budget: Duration::from_millis(2_300),
        ..test_settings()
    });
    let first = runtime.sync_once(0, &|_| {}, &|_| {}).await.unwrap();
    assert_eq!(
        first.poll.stop,
        ferry_common::engine::Stop::Budget,
        "{first:?}"
    );
    let partial = p.sandbox.kingdee_bills().len();
    assert!(partial < 600, "{partial}");
    // The cursor sits at the last window fully queued; the next run starts there.
    p.sandbox
        .faults()
        .set_rate(Endpoint::WdtQuery, Fault::Slow, 0.0);
    let runtime = p.runtime();
    let second = runtime.sync_once(0, &|_| {}, &|_| {}).await.unwrap();
    assert_eq!(second.poll.stop, ferry_common::engine::Stop::Done);
    assert_eq!(first.push.created + second.push.created, 600);
    assert_eq!(p.verify(&runtime)[0].found, 600);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_that_keeps_failing_goes_to_the_dead_letter_queue_and_can_be_redriven() {
    let p = Pipeline::spawn("dead", 20, |_| {}).await;
    p.sandbox
        .faults()
        .set_rate(Endpoint::KingdeeSave, Fault::ServerError, 1.0);
    // Slow work is handed back without counting toward the dead-letter queue; once a message's
    // documents have spent their three rounds of retries, its own deliveries count.
    let runtime = p.runtime_with(Settings {
        max_receives: 2,
        retry_limit: 3,
        ..test_settings()
    });
    let failing = runtime.sync_once(0, &|_| {}, &|_| {}).await.unwrap();
    assert!(failing.dead_letters > 0, "{failing:?}");
    assert_eq!(failing.push.created, 0);
    let waiting = runtime
        .store
        .list("wdt-trades-to-kingdee", Some(RecordState::Retrying), 100)
        .await
        .unwrap();
    assert_eq!(waiting.len(), 20);
    for record in &waiting {
        let error = record.last_error.as_deref().unwrap_or_default();
        // A 5xx may follow a committed write: the outcome is unknown, the note is kept.
        assert!(
            error.contains("ambiguous outcome") && error.contains("503"),
            "{}: {error}",
            record.key
        );
        assert!(record.unsure.is_some(), "{}", record.key);
    }
    // The target recovers; the dead letters are put back and go through.
    p.sandbox.faults().clear();
    assert_eq!(
        runtime.schemes[0].queue.redrive().await.unwrap(),
        failing.dead_letters
    );
    let again = runtime.sync_once(0, &|_| {}, &|_| {}).await.unwrap();
    assert_eq!(again.push.created, 20, "{again:?}");
    assert_eq!(again.dead_letters, 0);
    let v = p.verify(&runtime);
    assert!(v[0].is_clean() && v[0].found == 20, "{v:?}");
}
