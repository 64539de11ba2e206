//! How push settles what the target may or may not hold: a refused create whose number exists, a
//! lost Yonyou answer found again by code once its key's window is over, an update the target
//! refuses, lines a target keeps when a modify leaves them out.

use std::time::Duration;

use ferry_common::engine::{RecordState, RecordStore};
use ferry_sandbox::unknowns::{DuplicateRefusal, LeftOutLines};
use ferry_sandbox::{Endpoint, Fault, Kind};
use serde_json::Value;

use crate::pipeline::Pipeline;

const TRADES: &str = "wdt-trades-to-kingdee";
const STOCKOUTS: &str = "wdt-stockouts-to-yonyou";

/// A create refused because the number exists is decided by a look-up, whatever the refusal says:
/// the bill found is adopted and brought up to date, never duplicated or left stale.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_create_whose_number_exists_adopts_and_updates_that_bill() {
    for duplicate in [DuplicateRefusal::CombinedValue, DuplicateRefusal::Other] {
        let p = Pipeline::spawn("adopt", 30, |c| c.unknowns.kingdee_duplicate = duplicate).await;
        let runtime = p.runtime();
        // A bill of order 5 is in Kingdee already with older content (its records lost, say).
        let scheme = &runtime.schemes[0].scheme;
        let older = p.sandbox.source(|s| s.document(Kind::Order, 5));
        let body = scheme
            .mapper
            .map(&scheme.mapper.parse(&older.to_string()).unwrap())
            .unwrap();
        let client = ferry_common::connector::kingdee::KingdeeClient::new(
            p.sandbox.kingdee_config(),
            ferry_tests::quick_http(),
        )
        .unwrap();
        client.save_order(&body).await.unwrap();
        let now = jiff::Timestamp::now().as_second();
        p.sandbox.source(|s| {
            s.modify(Kind::Order, 5, now);
            s.modify(Kind::Order, 5, now);
        });
        let summary = p.sync(&runtime).await;
        assert_eq!(summary[0].push.failed, 0, "{duplicate:?}: {:?}", summary[0]);
        p.assert_synced(&runtime).await;
        let refused = p
            .sandbox
            .receptions()
            .iter()
            .filter(|r| {
                r.service == "kingdee" && r.outcome.contains(body["billno"].as_str().unwrap())
            })
            .count();
        assert_eq!(
            refused, 1,
            "{duplicate:?}: the create was refused once, then updated"
        );
    }
}

/// A lost answer older than Yonyou's key window is settled by finding the order by its code, not
/// by repeating the key: one order, and the look-up was asked.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_yonyou_answer_past_the_key_window_is_found_by_code() {
    let p = Pipeline::spawn("window", 20, |c| {
        c.resubmit_window = Duration::from_millis(10)
    })
    .await;
    // One save committed then answered 500; every other save, and every repeat inside the client,
    // meets a 503 (nothing applied): each write's outcome goes back to the engine unknown.
    p.sandbox
        .faults()
        .script(Endpoint::YonyouSave, [Fault::CommitThen5xx]);
    p.sandbox
        .faults()
        .set_rate(Endpoint::YonyouSave, Fault::ServerError, 1.0);
    let runtime = p.runtime();
    runtime.poll(1, &|_| {}).await.unwrap();
    let mut tally = ferry_common::embedded::Tally::default();
    while runtime.push_batch(1, &mut tally, &|_| {}).await.unwrap() {}
    assert!(tally.retried >= 20 && tally.pushed() == 0, "{tally:?}");
    // The target recovers; the notes are older than the key's window now.
    p.sandbox.faults().clear();
    let lookups = p.sandbox.requests(Endpoint::YonyouLookup);
    p.sync(&runtime).await;
    p.assert_synced(&runtime).await;
    assert!(p.sandbox.requests(Endpoint::YonyouLookup) > lookups);
    let created = p
        .sandbox
        .receptions()
        .iter()
        .filter(|r| r.service == "yonyou" && r.outcome == "created")
        .count();
    assert_eq!(created, 20, "no order was created twice");
}

/// An order the target will not modify (audited in Yonyou) is a conflict with the target's
/// message, recorded once: later runs do not send it again.
#[tokio::test(flavor = "multi_thread")]
async fn an_update_the_target_refuses_is_a_conflict_with_its_message() {
    let p = Pipeline::spawn("audited", 20, |_| {}).await;
    let runtime = p.runtime();
    p.sync(&runtime).await;
    let key = p.sandbox.source(|s| s.key(Kind::Stockout, 4));
    let code = p.sandbox.source(|s| s.document(Kind::Stockout, 4))["order_no"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(p.sandbox.audit_yonyou_order(&code));
    let now = jiff::Timestamp::now().as_second();
    p.sandbox.source(|s| {
        s.modify(Kind::Stockout, 4, now);
        s.modify(Kind::Stockout, 4, now);
    });
    let second = p.sync(&runtime).await;
    assert_eq!(second[1].push.conflicts, 1, "{:?}", second[1]);
    assert_eq!(second[1].push.failed, 0);
    let record = runtime
        .store
        .record(STOCKOUTS, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, RecordState::Conflict);
    let reason = record.last_error.unwrap();
    assert!(reason.contains("已审核"), "{reason}");
    assert!(record.unsure.is_none());
    let saves = p.sandbox.requests(Endpoint::YonyouSave);
    p.sync(&runtime).await;
    assert_eq!(
        p.sandbox.requests(Endpoint::YonyouSave),
        saves,
        "not retried"
    );
}

/// A line removed from an order: a Kingdee that deletes entries a modify leaves out ends equal to
/// the source; one that keeps them cannot be corrected through the API, and Ferry says so as a
/// conflict naming the entries, instead of calling the bill synced.
#[tokio::test(flavor = "multi_thread")]
async fn a_removed_order_line_is_deleted_or_reported_as_kept() {
    for left_out in [LeftOutLines::Deleted, LeftOutLines::Kept] {
        let p = Pipeline::spawn("removed", 30, |c| c.unknowns.kingdee_left_out = left_out).await;
        let runtime = p.runtime();
        p.sync(&runtime).await;
        // An order with several lines loses its first one.
        let index = (0..30u32)
            .find(|&i| {
                let doc = p.sandbox.source(|s| s.document(Kind::Order, i));
                let lines = doc["goods_list"].as_array().unwrap();
                lines.len() > 2 && lines.iter().all(|l| l["refund_status"] != "5")
            })
            .expect("a multi-line order");
        let now = jiff::Timestamp::now().as_second();
        p.sandbox.source(|s| {
            let doc = s.document(Kind::Order, index);
            let mut lines: Vec<Value> = doc["goods_list"].as_array().unwrap().clone();
            lines.remove(0);
            s.patch(Kind::Order, index, "goods_list", Some(Value::Array(lines)));
            s.touch(Kind::Order, index, now);
        });
        let second = p.sync(&runtime).await;
        let key = p.sandbox.source(|s| s.key(Kind::Order, index));
        let record = runtime.store.record(TRADES, &key).await.unwrap().unwrap();
        match left_out {
            LeftOutLines::Deleted => {
                assert_eq!(second[0].push.updated, 1, "{:?}", second[0]);
                assert_eq!(record.state, RecordState::Synced);
                p.assert_synced(&runtime).await;
            }
            LeftOutLines::Kept => {
                assert_eq!(second[0].push.conflicts, 1, "{:?}", second[0]);
                assert_eq!(record.state, RecordState::Conflict);
                let reason = record.last_error.unwrap();
                assert!(reason.contains("kept 1 line"), "{reason}");
                // The verification sees the extra entry Ferry reported.
                let v = p.sandbox.verify(&runtime.schemes[0].scheme);
                assert_eq!((v.stale, v.lines_differ), (1, 1), "{v:?}");
            }
        }
    }
}
