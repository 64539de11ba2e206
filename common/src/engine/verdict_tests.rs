//! One test per branch of a push: what the record says, what the target is asked, and what becomes
//! of the document, for every way `sync`, `create`, `update`, `settle` and `finish` can go. They run
//! over the in-memory store and the scripted target, so each branch is reached on purpose (a lost
//! answer, a write another pusher wins) and the whole file runs in milliseconds.
//!
//! Each test is named after the branch it pins. Set-up calls are forgotten (`take_calls`) before
//! the push under test, so the calls asserted are the branch's own.

use serde_json::{Value, json};

use super::*;
use crate::engine::test_support::{
    self, delivery, stockouts_scheme, trade as sample_trade, trades_scheme,
    trades_scheme_on_change_conflict,
};
use crate::memory::{Answer, Call, MemoryStore, MemoryTarget, Op, call_error};

const TRADES: &str = "wdt-trades-to-kingdee";
const STOCKOUTS: &str = "wdt-stockouts-to-yonyou";
/// Two source versions, in order.
const V1: &str = "2026-11-15 10:02:11";
const V2: &str = "2026-11-15 10:30:00";

/// WDT trade `id` from the sample (bill number `JY{id}`), modified at `modified`, its customer
/// service remark (a field the bill carries) set to `remark`: a different remark is new content.
fn trade(id: u64, modified: &str, remark: Option<&str>) -> Value {
    let mut doc = sample_trade(id);
    doc["modified"] = json!(modified);
    if let Some(remark) = remark {
        doc["cs_remark"] = json!(remark);
    }
    doc
}

/// WDT stock-out `id` from the sample (bill number `CK{id}`), modified at `modified`, its first
/// line's remark set to `memo`.
fn stockout(id: u64, modified: &str, memo: &str) -> Value {
    let text = include_str!("../../../samples/wdt-stockout.json");
    let mut doc: Value = serde_json::from_str(text).unwrap();
    doc["stockout_id"] = json!(id);
    doc["order_no"] = json!(format!("CK{id}"));
    doc["modified"] = json!(modified);
    doc["details_list"][0]["remark"] = json!(memo);
    doc
}

type MemoryPusher<'a> = Pusher<'a, MemoryStore, MemoryTarget>;

/// A pusher with no pacer and no deadline: nothing in these tests waits on a clock.
fn pusher<'a>(
    scheme: &'a Scheme,
    target: &'a MemoryTarget,
    store: &'a MemoryStore,
) -> MemoryPusher<'a> {
    test_support::pusher(scheme, target, store, None, 10)
}

fn raw(doc: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(doc).unwrap()
}

async fn push(p: &MemoryPusher<'_>, doc: &Value) -> DocumentOutcome {
    unsent(p.push_document(&raw(doc), false).await)
}

async fn replay(p: &MemoryPusher<'_>, doc: &Value) -> DocumentOutcome {
    unsent(p.push_document(&raw(doc), true).await)
}

fn fail<T>(class: FailureClass, message: &str) -> Answer<T> {
    Answer::Fail(call_error(class, message))
}

/// The write commits, its answer never arrives.
fn lost<T>() -> Answer<T> {
    Answer::Lose(call_error(
        FailureClass::Ambiguous,
        "timed out after sending",
    ))
}

fn pushed(key: &str, target_id: &str, created: bool) -> DocumentOutcome {
    DocumentOutcome::Pushed {
        key: key.into(),
        target_id: target_id.into(),
        created,
        sent: None,
    }
}

/// The outcome without the body it sent (asserted on its own where it matters).
fn unsent(outcome: DocumentOutcome) -> DocumentOutcome {
    match outcome {
        DocumentOutcome::Pushed {
            key,
            target_id,
            created,
            ..
        } => DocumentOutcome::Pushed {
            key,
            target_id,
            created,
            sent: None,
        },
        other => other,
    }
}

/// What a branch leaves in a record: state, target id, whether a write-ahead note is kept,
/// attempts, last error.
type Shape = (RecordState, Option<String>, bool, u32, Option<String>);

fn shape(store: &MemoryStore, scheme: &str, key: &str) -> Shape {
    let r = store.stored(scheme, key).expect("a record");
    (
        r.state,
        r.target_id,
        r.unsure.is_some(),
        r.attempts,
        r.last_error,
    )
}

fn some(text: &str) -> Option<String> {
    Some(text.to_owned())
}

fn note_of(store: &MemoryStore, scheme: &str, key: &str) -> Note {
    Note::parse(&store.stored(scheme, key).unwrap().unsure.expect("a note"))
}

fn reason_of(outcome: &DocumentOutcome) -> String {
    match outcome {
        DocumentOutcome::Failed { reason, .. }
        | DocumentOutcome::Conflict { reason, .. }
        | DocumentOutcome::Blocked { reason, .. }
        | DocumentOutcome::Retry { reason, .. } => reason.clone(),
        other => panic!("no reason in {other:?}"),
    }
}

/// The change hash the pusher gives `doc`.
fn hash_of(p: &MemoryPusher<'_>, doc: &Value) -> String {
    p.prepare(&doc.to_string()).ok().expect("mappable").hash
}

// ---- sync: the verdict on a delivered version ----------------------------------------------------

#[tokio::test]
async fn new_document_is_created() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    assert_eq!(push(&p, &trade(1, V1, None)).await, pushed("1", "B1", true));
    assert_eq!(target.ops(), [Op::Send]);
    assert_eq!(
        shape(&store, TRADES, "1"),
        (RecordState::Synced, some("B1"), false, 1, None)
    );
    let record = store.stored(TRADES, "1").unwrap();
    assert_eq!(
        (record.number.as_str(), record.lookup.as_str()),
        ("JY1", "JY1")
    );
    assert_eq!((record.version.as_str(), record.claim_until), (V1, None));
    // The claim and the outcome: two writes, the note riding on the claim.
    assert_eq!(record.revision, 2);
    assert_eq!(record.lines, target.bill("B1").unwrap().lines);
    assert_eq!(target.bill("B1").unwrap().body, target.sent()[0]);
}

#[tokio::test]
async fn the_body_sent_is_kept_in_the_history_not_the_record() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    let results = p
        .push_batch(&[delivery(TRADES, "m1", &[trade(60, V1, Some("gift"))], 0)])
        .await;
    let DocumentOutcome::Pushed {
        sent: Some(sent), ..
    } = &results[0].documents[0]
    else {
        panic!("{results:?}");
    };
    // Exactly what the target received.
    assert_eq!(
        serde_json::from_str::<Value>(sent).unwrap(),
        target.sent()[0],
        "the body sent"
    );
    let created = store
        .events()
        .into_iter()
        .find(|e| e.key == "60" && e.what == "created")
        .unwrap();
    assert_eq!(created.body.as_deref(), Some(sent.as_str()));
    assert_eq!(store.stored(TRADES, "60").unwrap().unsure, None);
}

#[tokio::test]
async fn unchanged_content_makes_no_call() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    push(&p, &trade(2, V1, None)).await;
    target.take_calls();
    let before = store.stored(TRADES, "2").unwrap();
    assert_eq!(
        push(&p, &trade(2, V1, None)).await,
        DocumentOutcome::Unchanged { key: "2".into() }
    );
    // A newer version with the same content is no change either.
    assert_eq!(
        push(&p, &trade(2, V2, None)).await,
        DocumentOutcome::Unchanged { key: "2".into() }
    );
    assert!(target.calls().is_empty());
    assert_eq!(store.stored(TRADES, "2").unwrap(), before);
}

#[tokio::test]
async fn older_version_is_superseded() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    push(&p, &trade(3, V2, Some("gift wrap"))).await;
    target.take_calls();
    let before = store.stored(TRADES, "3").unwrap();
    assert_eq!(
        push(&p, &trade(3, V1, None)).await,
        DocumentOutcome::Superseded { key: "3".into() }
    );
    assert!(target.calls().is_empty());
    assert_eq!(store.stored(TRADES, "3").unwrap(), before);
}

#[tokio::test]
async fn failed_before_same_content_is_not_retried() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_sends([fail(FailureClass::Permanent, "customer unknown")]);
    let first = push(&p, &trade(4, V1, None)).await;
    target.take_calls();
    let before = store.stored(TRADES, "4").unwrap();
    let again = push(&p, &trade(4, V1, None)).await;
    assert_eq!(again, first);
    assert!(reason_of(&again).contains("customer unknown"), "{again:?}");
    assert!(target.calls().is_empty());
    assert_eq!(store.stored(TRADES, "4").unwrap(), before);
}

#[tokio::test]
async fn failed_before_is_pushed_again_on_replay() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_sends([fail(FailureClass::Permanent, "customer unknown")]);
    push(&p, &trade(5, V1, None)).await;
    target.take_calls();
    assert_eq!(
        replay(&p, &trade(5, V1, None)).await,
        pushed("5", "B1", true)
    );
    assert_eq!(target.ops(), [Op::Send]);
    assert_eq!(
        shape(&store, TRADES, "5"),
        (RecordState::Synced, some("B1"), false, 2, None)
    );
}

#[tokio::test]
async fn conflict_before_same_content_stays_conflict() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    push(&p, &trade(6, V1, None)).await;
    target.answer_sends([fail(FailureClass::Permanent, "the order is audited")]);
    let first = push(&p, &trade(6, V2, Some("gift wrap"))).await;
    assert!(
        matches!(first, DocumentOutcome::Conflict { .. }),
        "{first:?}"
    );
    target.take_calls();
    let before = store.stored(TRADES, "6").unwrap();
    assert_eq!(push(&p, &trade(6, V2, Some("gift wrap"))).await, first);
    assert!(target.calls().is_empty());
    assert_eq!(store.stored(TRADES, "6").unwrap(), before);
}

#[tokio::test]
async fn changed_after_sync_under_conflict_policy_records_conflict() {
    let scheme = trades_scheme_on_change_conflict();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    push(&p, &trade(7, V1, None)).await;
    target.take_calls();
    let v2 = trade(7, V2, Some("gift wrap"));
    let outcome = push(&p, &v2).await;
    let reason = reason_of(&outcome);
    assert_eq!(
        outcome,
        DocumentOutcome::Conflict {
            key: "7".into(),
            reason: format!(
                "conflict: the source changed after sync (version {V1} → {V2}); policy is conflict"
            ),
        }
    );
    assert!(target.calls().is_empty());
    // Not an attempt: the record now describes the new content, left for a person.
    assert_eq!(
        shape(&store, TRADES, "7"),
        (RecordState::Conflict, some("B1"), false, 1, Some(reason))
    );
    let record = store.stored(TRADES, "7").unwrap();
    assert_eq!(
        (record.hash, record.version.as_str()),
        (hash_of(&p, &v2), V2)
    );
    assert_eq!(target.bill("B1").unwrap().body["remark"], Value::Null);
}

#[tokio::test]
async fn conflict_policy_yields_to_a_replay_which_updates_by_id() {
    let scheme = trades_scheme_on_change_conflict();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    push(&p, &trade(8, V1, None)).await;
    push(&p, &trade(8, V2, Some("gift wrap"))).await;
    target.take_calls();
    assert_eq!(
        replay(&p, &trade(8, V2, Some("gift wrap"))).await,
        pushed("8", "B1", false)
    );
    assert_eq!(target.ops(), [Op::Address, Op::Send]);
    assert_eq!(target.bill("B1").unwrap().body["remark"], "gift wrap");
}

#[tokio::test]
async fn conflict_policy_record_lost_to_another_pusher_retries() {
    let scheme = trades_scheme_on_change_conflict();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    push(&p, &trade(9, V1, None)).await;
    target.take_calls();
    store.lose_put(TRADES, "9", 0);
    let outcome = push(&p, &trade(9, V2, Some("gift wrap"))).await;
    assert_eq!(
        outcome,
        DocumentOutcome::Retry {
            key: "9".into(),
            reason: "another pusher changed the record first".into(),
            after: None,
        }
    );
    assert!(target.calls().is_empty());
    assert_eq!(
        store.stored(TRADES, "9").unwrap().state,
        RecordState::Synced
    );
}

#[tokio::test]
async fn changed_after_sync_under_update_policy_updates_by_id() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    push(&p, &trade(10, V1, None)).await;
    let lines = store.stored(TRADES, "10").unwrap().lines;
    target.take_calls();
    let v2 = trade(10, V2, Some("gift wrap"));
    assert_eq!(push(&p, &v2).await, pushed("10", "B1", false));
    assert_eq!(target.ops(), [Op::Address, Op::Send]);
    // The update names the bill and each of its lines by the ids the record kept.
    let Call::Address { bill, .. } = &target.calls()[0] else {
        panic!()
    };
    assert_eq!(
        bill,
        &Bill {
            id: "B1".into(),
            lines: Some(lines.clone()),
        }
    );
    let wire = &target.sent()[0];
    assert_eq!(wire["id"], "B1");
    assert_eq!(wire["material_entity"][0]["id"], lines[0].as_str());
    assert_eq!(target.bills().len(), 1);
    assert_eq!(target.bill("B1").unwrap().body["remark"], "gift wrap");
    assert_eq!(
        shape(&store, TRADES, "10"),
        (RecordState::Synced, some("B1"), false, 2, None)
    );
    assert_eq!(store.stored(TRADES, "10").unwrap().hash, hash_of(&p, &v2));
}

// ---- claims --------------------------------------------------------------------------------------

#[tokio::test]
async fn live_claim_of_another_pusher_retries_after_it_lapses() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    let now = Timestamp::now();
    store.insert(SyncRecord {
        state: RecordState::InProgress,
        hash: "another pusher's".into(),
        version: V1.into(),
        attempts: 1,
        claim_until: Some(now + Duration::from_secs(30)),
        ..SyncRecord::new(TRADES, "11", now)
    });
    let before = store.stored(TRADES, "11").unwrap();
    let outcome = push(&p, &trade(11, V1, None)).await;
    let DocumentOutcome::Retry { reason, after, .. } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(reason, "another pusher holds the document");
    // Asked back when the claim lapses, not sooner.
    let after = after.expect("the claim's time left");
    assert!(
        after <= Duration::from_secs(30) && after > Duration::from_secs(29),
        "{after:?}"
    );
    assert!(target.calls().is_empty());
    assert_eq!(store.stored(TRADES, "11").unwrap(), before);
    // Once it lapses, the document is taken.
    store.edit(TRADES, "11", |r| {
        r.claim_until = Some(Timestamp::now() - Duration::from_secs(1));
    });
    assert_eq!(
        push(&p, &trade(11, V1, None)).await,
        pushed("11", "B1", true)
    );
}

#[tokio::test]
async fn lapsed_claim_is_taken_over() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    // A pusher claimed the document, noted its create, and crashed before sending it.
    let doc = trade(12, V1, None);
    let prepared = p.prepare(&doc.to_string()).ok().unwrap();
    let now = Timestamp::now();
    let crashed = SyncRecord {
        state: RecordState::InProgress,
        hash: prepared.hash.clone(),
        version: V1.into(),
        number: "JY12".into(),
        attempts: 1,
        claim_until: Some(now - Duration::from_secs(1)),
        ..SyncRecord::new(TRADES, "12", now)
    };
    let wire = p.stamped(&prepared, &crashed, "create");
    let note = Note {
        hash: prepared.hash.clone(),
        at: now.as_millisecond() - 60_000,
        wire,
    };
    store.insert(SyncRecord {
        unsure: Some(serde_json::to_string(&note).unwrap()),
        ..crashed
    });
    assert_eq!(push(&p, &doc).await, pushed("12", "B1", true));
    // The crashed pusher's note is settled first: nothing under the number, so it is created.
    assert_eq!(target.calls()[0], Call::Find("JY12".into()));
    assert_eq!(target.ops(), [Op::Find, Op::Send]);
    assert_eq!(
        shape(&store, TRADES, "12"),
        (RecordState::Synced, some("B1"), false, 2, None)
    );
}

#[tokio::test]
async fn lost_race_on_claim_retries() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    store.lose_put(TRADES, "13", 0);
    assert_eq!(
        push(&p, &trade(13, V1, None)).await,
        DocumentOutcome::Retry {
            key: "13".into(),
            reason: "another pusher changed the record first".into(),
            after: None,
        }
    );
    assert!(target.calls().is_empty());
    assert_eq!(store.stored(TRADES, "13"), None);
}

#[tokio::test]
async fn lost_claim_while_recording_outcome_retries() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    // The claim lands; the outcome's write loses (our claim lapsed and another pusher wrote).
    store.lose_put(TRADES, "14", 1);
    assert_eq!(
        push(&p, &trade(14, V1, None)).await,
        DocumentOutcome::Retry {
            key: "14".into(),
            reason: "another pusher changed the record first".into(),
            after: None,
        }
    );
    assert_eq!(target.ops(), [Op::Send]);
    // The bill is in the target; the record still holds the claim and its note.
    let record = store.stored(TRADES, "14").unwrap();
    assert_eq!(
        (
            record.state,
            record.target_id.is_none(),
            record.unsure.is_some()
        ),
        (RecordState::InProgress, true, true)
    );
    // Whoever takes it next settles the note: found, the same content, nothing sent.
    store.edit(TRADES, "14", |r| {
        r.claim_until = Some(Timestamp::now() - Duration::from_secs(1));
    });
    target.take_calls();
    assert_eq!(
        push(&p, &trade(14, V1, None)).await,
        pushed("14", "B1", false)
    );
    assert_eq!(target.ops(), [Op::Find]);
    assert_eq!(target.bills().len(), 1);
}

#[tokio::test]
async fn lost_claim_before_the_update_note_sends_nothing() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    push(&p, &trade(15, V1, None)).await;
    target.take_calls();
    // The claim lands; the note of the update loses.
    store.lose_put(TRADES, "15", 1);
    let outcome = push(&p, &trade(15, V2, Some("gift wrap"))).await;
    assert!(
        matches!(&outcome, DocumentOutcome::Retry { reason, .. }
            if reason.contains("another pusher took the document over")),
        "{outcome:?}"
    );
    assert_eq!(target.ops(), [Op::Address]);
    assert_eq!(target.bill("B1").unwrap().body["remark"], Value::Null);
}

#[tokio::test]
async fn lost_claim_before_the_create_note_sends_nothing() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    // A create whose outcome is unknown (nothing landed) leaves a note to settle.
    target.answer_sends([fail(FailureClass::Ambiguous, "cut off")]);
    push(&p, &trade(16, V1, None)).await;
    target.take_calls();
    // The claim lands, the look-up finds nothing, and the new create's note loses.
    store.lose_put(TRADES, "16", 1);
    let outcome = push(&p, &trade(16, V1, None)).await;
    assert!(
        matches!(&outcome, DocumentOutcome::Retry { reason, .. }
            if reason.contains("another pusher took the document over")),
        "{outcome:?}"
    );
    assert_eq!(target.ops(), [Op::Find]);
    assert!(target.bills().is_empty());
}

#[tokio::test]
async fn store_failure_retries_without_a_call() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    store.fail_put(TRADES, "17", 0);
    let outcome = push(&p, &trade(17, V1, None)).await;
    assert!(
        matches!(&outcome, DocumentOutcome::Retry { reason, after: None, .. }
            if reason.starts_with("store: save record")),
        "{outcome:?}"
    );
    assert!(target.calls().is_empty());
}

// ---- settle: a note of a write whose outcome is unknown -------------------------------------------

#[tokio::test]
async fn unsure_note_same_content_found_applied_sends_nothing() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_sends([lost()]);
    push(&p, &trade(18, V1, None)).await;
    target.take_calls();
    assert_eq!(
        push(&p, &trade(18, V1, None)).await,
        pushed("18", "B1", false)
    );
    assert_eq!(target.calls(), [Call::Find("JY18".into())]);
    assert_eq!(target.bills().len(), 1);
    assert_eq!(
        shape(&store, TRADES, "18"),
        (RecordState::Synced, some("B1"), false, 2, None)
    );
}

#[tokio::test]
async fn unsure_note_new_content_found_applied_then_updates() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_sends([lost()]);
    push(&p, &trade(19, V1, None)).await;
    target.take_calls();
    assert_eq!(
        push(&p, &trade(19, V2, Some("gift wrap"))).await,
        pushed("19", "B1", false)
    );
    // The lost create is found, adopted, and updated to the new content.
    assert_eq!(target.ops(), [Op::Find, Op::Address, Op::Send]);
    assert_eq!(target.bills().len(), 1);
    assert_eq!(target.bill("B1").unwrap().body["remark"], "gift wrap");
    assert_eq!(
        shape(&store, TRADES, "19"),
        (RecordState::Synced, some("B1"), false, 2, None)
    );
}

#[tokio::test]
async fn unsure_note_bill_exists_then_updates() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    push(&p, &trade(20, V1, None)).await;
    // An update whose answer was lost: the record knows the bill, not whether the update landed.
    target.answer_sends([lost()]);
    push(&p, &trade(20, V2, Some("gift wrap"))).await;
    target.take_calls();
    assert_eq!(
        push(&p, &trade(20, V2, Some("gift wrap"))).await,
        pushed("20", "B1", false)
    );
    // No look-up (the bill is known) and the lines are asked afresh: the lost update may have
    // changed them.
    assert_eq!(target.ops(), [Op::Address, Op::Send]);
    let Call::Address { bill, .. } = &target.calls()[0] else {
        panic!()
    };
    assert_eq!(
        bill,
        &Bill {
            id: "B1".into(),
            lines: None,
        }
    );
    assert_eq!(
        shape(&store, TRADES, "20"),
        (RecordState::Synced, some("B1"), false, 3, None)
    );
}

#[tokio::test]
async fn unsure_note_absent_creates_again() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    // Cut off before the target committed anything.
    target.answer_sends([fail(FailureClass::Ambiguous, "cut off")]);
    push(&p, &trade(21, V1, None)).await;
    target.take_calls();
    assert_eq!(
        push(&p, &trade(21, V1, None)).await,
        pushed("21", "B1", true)
    );
    assert_eq!(target.ops(), [Op::Find, Op::Send]);
    assert_eq!(
        shape(&store, TRADES, "21"),
        (RecordState::Synced, some("B1"), false, 2, None)
    );
}

#[tokio::test]
async fn unsure_note_lookup_fails_keeps_note() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_sends([fail(FailureClass::Ambiguous, "cut off")]);
    push(&p, &trade(22, V1, None)).await;
    let note = note_of(&store, TRADES, "22");
    target.take_calls();
    // Even a permanent refusal of the look-up proves nothing about the write.
    target.answer_finds([fail(FailureClass::Permanent, "query refused")]);
    let outcome = push(&p, &trade(22, V1, None)).await;
    let reason = reason_of(&outcome);
    assert!(
        matches!(outcome, DocumentOutcome::Retry { .. })
            && reason.contains("ambiguous outcome")
            && reason.contains("could not settle an earlier write: query refused"),
        "{outcome:?}"
    );
    assert_eq!(target.ops(), [Op::Find]);
    assert_eq!(
        shape(&store, TRADES, "22"),
        (RecordState::Retrying, None, true, 2, Some(reason))
    );
    assert_eq!(note_of(&store, TRADES, "22"), note);
}

#[tokio::test]
async fn note_without_a_time_settles_by_lookup() {
    let scheme = stockouts_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_sends([lost()]);
    push(&p, &stockout(23, V1, "gift")).await;
    // A note as older Ferry wrote it: the bare body, of no known time or content.
    let wire = note_of(&store, STOCKOUTS, "23").wire;
    store.edit(STOCKOUTS, "23", |r| {
        r.unsure = Some(wire.to_string());
    });
    target.take_calls();
    assert_eq!(
        push(&p, &stockout(23, V1, "gift")).await,
        pushed("23", "B1", false)
    );
    // Never repeated (its key's age is unknown): looked up, and since its content is unknown too,
    // the bill found is updated.
    assert_eq!(target.ops(), [Op::Find, Op::Address, Op::Send]);
    assert_eq!(target.bills().len(), 1);
}

#[tokio::test]
async fn unreadable_note_settles_by_the_records_number() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_sends([lost()]);
    push(&p, &trade(25, V1, None)).await;
    // A note nobody can read back (cut short, or of a shape long gone): no body, no number in it.
    store.edit(TRADES, "25", |r| r.unsure = Some("{not json".into()));
    target.take_calls();
    assert_eq!(
        push(&p, &trade(25, V1, None)).await,
        pushed("25", "B1", false)
    );
    // The record's number finds the bill the lost write made: updated, never created twice.
    assert_eq!(target.ops(), [Op::Find, Op::Address, Op::Send]);
    assert_eq!(target.bills().len(), 1);
}

// ---- settle by repeating a keyed write -----------------------------------------------------------

#[tokio::test]
async fn keyed_repeat_inside_window_settles_by_repeat() {
    let scheme = stockouts_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_sends([lost()]);
    push(&p, &stockout(24, V1, "gift")).await;
    let note = note_of(&store, STOCKOUTS, "24");
    assert!(note.wire["data"]["resubmitCheckKey"].is_string());
    target.take_calls();
    assert_eq!(
        push(&p, &stockout(24, V1, "gift")).await,
        pushed("24", "B1", false)
    );
    // The noted body again, byte for byte: the key answers with the first success.
    assert_eq!(target.calls(), [Call::Send(note.wire)]);
    assert_eq!(target.bills().len(), 1);
    assert_eq!(
        shape(&store, STOCKOUTS, "24"),
        (RecordState::Synced, some("B1"), false, 2, None)
    );
}

#[tokio::test]
async fn keyed_repeat_refused_means_absent() {
    let scheme = stockouts_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_sends([fail(FailureClass::Ambiguous, "cut off")]);
    push(&p, &stockout(25, V1, "gift")).await;
    let note = note_of(&store, STOCKOUTS, "25");
    target.take_calls();
    // Only successes are remembered: a refused repeat means the first never landed.
    target.answer_sends([fail(FailureClass::Permanent, "invalid")]);
    assert_eq!(
        push(&p, &stockout(25, V1, "gift")).await,
        pushed("25", "B1", true)
    );
    let sent = target.sent();
    assert_eq!(target.ops(), [Op::Send, Op::Send]);
    assert_eq!(sent[0], note.wire);
    // The create that follows is a write of its own, under a key of its own.
    assert_ne!(
        sent[1]["data"]["resubmitCheckKey"],
        sent[0]["data"]["resubmitCheckKey"]
    );
}

#[tokio::test]
async fn keyed_repeat_that_fails_keeps_note() {
    let scheme = stockouts_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_sends([lost()]);
    push(&p, &stockout(26, V1, "gift")).await;
    let note = note_of(&store, STOCKOUTS, "26");
    target.take_calls();
    target.answer_sends([fail(FailureClass::Retryable, "busy")]);
    let outcome = push(&p, &stockout(26, V1, "gift")).await;
    assert!(
        matches!(outcome, DocumentOutcome::Retry { .. }),
        "{outcome:?}"
    );
    assert_eq!(target.ops(), [Op::Send]);
    assert_eq!(
        shape(&store, STOCKOUTS, "26"),
        (
            RecordState::Retrying,
            None,
            true,
            2,
            Some(reason_of(&outcome))
        )
    );
    assert_eq!(note_of(&store, STOCKOUTS, "26"), note);
}

#[tokio::test]
async fn keyed_repeat_outside_window_settles_by_lookup() {
    let scheme = stockouts_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_sends([lost()]);
    push(&p, &stockout(27, V1, "gift")).await;
    // Sent two hours ago: its key's window (an hour) is over.
    let mut note = note_of(&store, STOCKOUTS, "27");
    note.at -= 2 * 3600 * 1000;
    store.edit(STOCKOUTS, "27", |r| {
        r.unsure = Some(serde_json::to_string(&note).unwrap());
    });
    target.take_calls();
    assert_eq!(
        push(&p, &stockout(27, V1, "gift")).await,
        pushed("27", "B1", false)
    );
    assert_eq!(target.calls(), [Call::Find("CK27".into())]);
}

// ---- create --------------------------------------------------------------------------------------

#[tokio::test]
async fn create_refused_and_not_found_fails() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_sends([fail(FailureClass::Permanent, "customer unknown")]);
    let outcome = push(&p, &trade(28, V1, None)).await;
    let reason = reason_of(&outcome);
    assert_eq!(
        outcome,
        DocumentOutcome::Failed {
            key: "28".into(),
            reason: "memory target: permanent failure: customer unknown".into(),
        }
    );
    // Whether the number exists is decided by a look-up, never by the refusal's code.
    assert_eq!(target.ops(), [Op::Send, Op::Find]);
    assert_eq!(target.calls()[1], Call::Find("JY28".into()));
    assert_eq!(
        shape(&store, TRADES, "28"),
        (RecordState::Failed, None, false, 1, Some(reason))
    );
}

#[tokio::test]
async fn create_refused_but_found_is_adopted_and_updated() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    // A bill under the number already, with two lines (an earlier write whose answer was lost
    // with its record, or one a person keyed in).
    let id = target.insert_bill(&json!({"billno": "JY29", "material_entity": [{}, {}]}));
    let old_lines = target.bill(&id).unwrap().lines;
    assert_eq!(
        push(&p, &trade(29, V1, None)).await,
        pushed("29", &id, false)
    );
    // The create is refused (the number is taken), the look-up finds the bill, and it is updated.
    assert_eq!(target.ops(), [Op::Send, Op::Find, Op::Address, Op::Send]);
    assert_eq!(target.bills().len(), 1);
    let bill = target.bill(&id).unwrap();
    assert_eq!(bill.lines.len(), 4);
    assert_eq!(bill.lines[..2], old_lines[..]);
    assert_eq!(
        shape(&store, TRADES, "29"),
        (RecordState::Synced, Some(id), false, 1, None)
    );
}

#[tokio::test]
async fn create_refused_and_lookup_fails_keeps_note() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_sends([fail(FailureClass::Permanent, "customer unknown")]);
    target.answer_finds([fail(FailureClass::Retryable, "busy")]);
    let outcome = push(&p, &trade(30, V1, None)).await;
    assert!(
        matches!(outcome, DocumentOutcome::Retry { .. }),
        "{outcome:?}"
    );
    assert_eq!(target.ops(), [Op::Send, Op::Find]);
    assert_eq!(
        shape(&store, TRADES, "30"),
        (
            RecordState::Retrying,
            None,
            true,
            1,
            Some(reason_of(&outcome))
        )
    );
}

#[tokio::test]
async fn create_answer_lost_keeps_note_and_retries() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    let doc = trade(31, V1, None);
    target.answer_sends([lost()]);
    let outcome = push(&p, &doc).await;
    assert_eq!(
        outcome,
        DocumentOutcome::Retry {
            key: "31".into(),
            reason: "memory target: ambiguous outcome: timed out after sending".into(),
            after: None,
        }
    );
    assert_eq!(target.ops(), [Op::Send]);
    // The bill landed; the record does not know it, but its note says which content was sent
    // and when. Kingdee has no idempotency key, so the note keeps no body: a look-up by the
    // record's number settles it.
    assert_eq!(target.bills().len(), 1);
    assert_eq!(
        shape(&store, TRADES, "31"),
        (
            RecordState::Retrying,
            None,
            true,
            1,
            Some(reason_of(&outcome))
        )
    );
    let note = note_of(&store, TRADES, "31");
    assert_eq!((note.hash, note.wire), (hash_of(&p, &doc), Value::Null));
    let text = store.stored(TRADES, "31").unwrap().unsure.unwrap();
    assert!(text.len() < 120, "a body-less note is small: {text}");
}

#[tokio::test]
async fn keyed_note_keeps_the_exact_body_sent() {
    let scheme = stockouts_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_sends([lost()]);
    push(&p, &stockout(32, V1, "gift")).await;
    // Yonyou's resubmitCheckKey: the write is settled by repeating it byte for byte.
    assert_eq!(note_of(&store, STOCKOUTS, "32").wire, target.sent()[0]);
}

#[tokio::test]
async fn retryable_refusal_retries_after_its_hint() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    let mut throttled = call_error(FailureClass::Retryable, "too many requests");
    throttled.retry_after = Some(Duration::from_secs(7));
    target.answer_sends([Answer::Fail(throttled)]);
    let outcome = push(&p, &trade(32, V1, None)).await;
    assert!(
        matches!(outcome, DocumentOutcome::Retry { after: Some(after), .. }
            if after == Duration::from_secs(7)),
        "{outcome:?}"
    );
    // No look-up: nothing was applied; the note stays for the next attempt to settle anyway.
    assert_eq!(target.ops(), [Op::Send]);
    assert_eq!(
        shape(&store, TRADES, "32"),
        (
            RecordState::Retrying,
            None,
            true,
            1,
            Some(reason_of(&outcome))
        )
    );
}

#[tokio::test]
async fn create_answered_as_a_repeat_is_not_new() {
    let scheme = stockouts_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_sends([Answer::Give(Saved {
        target_id: "B7".into(),
        repeat: true,
        lines: None,
    })]);
    assert_eq!(
        push(&p, &stockout(33, V1, "gift")).await,
        pushed("33", "B7", false)
    );
    assert_eq!(
        shape(&store, STOCKOUTS, "33"),
        (RecordState::Synced, some("B7"), false, 1, None)
    );
}

// ---- update --------------------------------------------------------------------------------------

#[tokio::test]
async fn update_refused_is_conflict() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    push(&p, &trade(34, V1, None)).await;
    target.take_calls();
    target.answer_sends([fail(FailureClass::Permanent, "the order is audited")]);
    let outcome = push(&p, &trade(34, V2, Some("gift wrap"))).await;
    let reason = reason_of(&outcome);
    assert_eq!(
        outcome,
        DocumentOutcome::Conflict {
            key: "34".into(),
            reason: "the target refused to update its bill B1: memory target: permanent failure: \
                     the order is audited"
                .into(),
        }
    );
    assert_eq!(target.ops(), [Op::Address, Op::Send]);
    assert_eq!(
        shape(&store, TRADES, "34"),
        (RecordState::Conflict, some("B1"), false, 2, Some(reason))
    );
    assert_eq!(target.bill("B1").unwrap().body["remark"], Value::Null);
}

#[tokio::test]
async fn update_address_refused_is_conflict() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    push(&p, &trade(35, V1, None)).await;
    target.take_calls();
    target.answer_addresses([fail(FailureClass::Permanent, "no such bill")]);
    let outcome = push(&p, &trade(35, V2, Some("gift wrap"))).await;
    assert!(
        matches!(&outcome, DocumentOutcome::Conflict { reason, .. }
            if reason.starts_with("the target's bill B1 cannot be read for the update")),
        "{outcome:?}"
    );
    assert_eq!(target.ops(), [Op::Address]);
    assert_eq!(
        shape(&store, TRADES, "35"),
        (
            RecordState::Conflict,
            some("B1"),
            false,
            2,
            Some(reason_of(&outcome))
        )
    );
}

#[tokio::test]
async fn update_address_failure_retries() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    push(&p, &trade(36, V1, None)).await;
    target.take_calls();
    target.answer_addresses([fail(FailureClass::Retryable, "busy")]);
    let outcome = push(&p, &trade(36, V2, Some("gift wrap"))).await;
    assert!(
        matches!(outcome, DocumentOutcome::Retry { .. }),
        "{outcome:?}"
    );
    // Nothing was sent, so nothing is noted.
    assert_eq!(target.ops(), [Op::Address]);
    assert_eq!(
        shape(&store, TRADES, "36"),
        (
            RecordState::Retrying,
            some("B1"),
            false,
            2,
            Some(reason_of(&outcome))
        )
    );
}

#[tokio::test]
async fn update_answer_lost_keeps_note_and_retries() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    push(&p, &trade(37, V1, None)).await;
    target.take_calls();
    target.answer_sends([lost()]);
    let outcome = push(&p, &trade(37, V2, Some("gift wrap"))).await;
    assert!(
        matches!(outcome, DocumentOutcome::Retry { .. }),
        "{outcome:?}"
    );
    assert_eq!(target.ops(), [Op::Address, Op::Send]);
    assert_eq!(
        shape(&store, TRADES, "37"),
        (
            RecordState::Retrying,
            some("B1"),
            true,
            2,
            Some(reason_of(&outcome))
        )
    );
    // The lines the record knew may have changed with the lost update.
    assert!(store.stored(TRADES, "37").unwrap().lines.is_empty());
}

/// Trade `id` at V2 with its first goods line gone and a remark.
fn trade_without_first_line(id: u64) -> Value {
    let mut doc = trade(id, V2, Some("one line less"));
    doc["goods_list"].as_array_mut().unwrap().remove(0);
    doc
}

#[tokio::test]
async fn update_that_target_keeps_lines_is_conflict() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme).keeping_left_out_lines();
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    push(&p, &trade(38, V1, None)).await;
    let last_line = target.bill("B1").unwrap().lines[3].clone();
    target.take_calls();
    let outcome = push(&p, &trade_without_first_line(38)).await;
    let reason = reason_of(&outcome);
    assert!(
        matches!(outcome, DocumentOutcome::Conflict { .. })
            && reason.starts_with("the target kept 1 line(s) of bill B1")
            && reason.contains(&format!("(ids {last_line})")),
        "{outcome:?}"
    );
    assert_eq!(target.ops(), [Op::Address, Op::Send, Op::Kept]);
    assert_eq!(
        shape(&store, TRADES, "38"),
        (RecordState::Conflict, some("B1"), false, 2, Some(reason))
    );
}

#[tokio::test]
async fn update_that_target_drops_left_out_lines_is_synced() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    push(&p, &trade(39, V1, None)).await;
    target.take_calls();
    assert_eq!(
        push(&p, &trade_without_first_line(39)).await,
        pushed("39", "B1", false)
    );
    assert_eq!(target.ops(), [Op::Address, Op::Send, Op::Kept]);
    assert_eq!(target.bill("B1").unwrap().lines.len(), 3);
}

#[tokio::test]
async fn kept_lookup_fails_keeps_note() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    push(&p, &trade(40, V1, None)).await;
    target.take_calls();
    target.answer_kept([fail(FailureClass::Permanent, "detail refused")]);
    let outcome = push(&p, &trade_without_first_line(40)).await;
    assert!(
        matches!(&outcome, DocumentOutcome::Retry { reason, .. }
            if reason.contains("could not settle an earlier write")),
        "{outcome:?}"
    );
    assert_eq!(target.ops(), [Op::Address, Op::Send, Op::Kept]);
    assert_eq!(
        shape(&store, TRADES, "40"),
        (
            RecordState::Retrying,
            some("B1"),
            true,
            2,
            Some(reason_of(&outcome))
        )
    );
}

// ---- finish: credentials, deadlines and the pacer ------------------------------------------------

#[tokio::test]
async fn credentials_refused_blocks_without_failing() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_sends([fail(FailureClass::Credentials, "signature invalid")]);
    let outcome = push(&p, &trade(41, V1, None)).await;
    assert_eq!(
        outcome,
        DocumentOutcome::Blocked {
            key: "41".into(),
            reason: "memory target: credentials refused: signature invalid".into(),
        }
    );
    // No look-up, and not the document's fault: it waits, note and all.
    assert_eq!(target.ops(), [Op::Send]);
    assert_eq!(
        shape(&store, TRADES, "41"),
        (
            RecordState::Retrying,
            None,
            true,
            1,
            Some(reason_of(&outcome))
        )
    );
}

#[tokio::test]
async fn credentials_refused_in_a_batch_leaves_the_rest_unstarted() {
    let mut scheme = trades_scheme();
    // One at a time, so "the rest" is a fixed set.
    scheme.push.concurrency = 1;
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_every_send(fail(FailureClass::Credentials, "signature invalid"));
    let docs = [
        trade(42, V1, None),
        trade(43, V1, None),
        trade(44, V1, None),
    ];
    let results = p.push_batch(&[delivery(TRADES, "m1", &docs, 0)]).await;
    assert_eq!(results[0].documents.len(), 1);
    assert!(matches!(
        results[0].documents[0],
        DocumentOutcome::Blocked { .. }
    ));
    assert_eq!(
        blocked_by(&results),
        Some(reason_of(&results[0].documents[0]).as_str())
    );
    match &results[0].next {
        // No quick retry can pass: the longest wait.
        Next::HandBack {
            delay,
            unstarted,
            retried,
            ..
        } => assert_eq!((*delay, *unstarted, *retried), (p.backoff.max, 2, 1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(target.ops(), [Op::Send]);
    assert_eq!(store.stored(TRADES, "43"), None);
    assert_eq!(store.stored(TRADES, "44"), None);
}

#[tokio::test(start_paused = true)]
async fn call_cut_off_by_the_deadline_keeps_its_note() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme).with_latency(Duration::from_millis(50));
    let store = MemoryStore::new();
    let now = Instant::now();
    let p = Pusher {
        deadline: Some(Deadline {
            starts_end: now + Duration::from_millis(10),
            calls_end: now + Duration::from_millis(10),
        }),
        ..pusher(&scheme, &target, &store)
    };
    let outcome = push(&p, &trade(45, V1, None)).await;
    assert!(
        matches!(&outcome, DocumentOutcome::Retry { reason, .. }
            if reason.contains("cut off by the invocation's deadline")),
        "{outcome:?}"
    );
    assert_eq!(target.ops(), [Op::Send]);
    assert!(target.bills().is_empty());
    assert_eq!(
        shape(&store, TRADES, "45"),
        (
            RecordState::Retrying,
            None,
            true,
            1,
            Some(reason_of(&outcome))
        )
    );
}

#[tokio::test]
async fn pacer_turn_after_the_deadline_makes_no_call() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    // One call a minute, and this minute's call is taken.
    let pacer = Arc::new(Pacer::per_minute(1, 1.0));
    assert!(
        pacer
            .wait_until(Instant::now() + Duration::from_secs(1))
            .await
    );
    let now = Instant::now();
    let p = Pusher {
        pacer: Some(pacer),
        deadline: Some(Deadline {
            starts_end: now + Duration::from_secs(1),
            calls_end: now + Duration::from_secs(1),
        }),
        ..pusher(&scheme, &target, &store)
    };
    let outcome = push(&p, &trade(46, V1, None)).await;
    assert!(
        matches!(&outcome, DocumentOutcome::Retry { reason, .. }
            if reason.contains("comes before this call's turn")),
        "{outcome:?}"
    );
    assert!(target.calls().is_empty());
    assert_eq!(
        shape(&store, TRADES, "46"),
        (
            RecordState::Retrying,
            None,
            true,
            1,
            Some(reason_of(&outcome))
        )
    );
}

// ---- documents that cannot be mapped, and messages that cannot be read ---------------------------

/// Trade `id` from a shop the scheme's customer map does not know (its map fails on unknowns).
fn unmappable_trade(id: u64) -> Value {
    let mut doc = trade(id, V1, None);
    doc["shop_no"] = json!("nowhere-001");
    doc
}

#[tokio::test]
async fn unmappable_document_fails_and_neighbours_go_on() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    let docs = [
        trade(47, V1, None),
        unmappable_trade(48),
        trade(49, V1, None),
    ];
    let results = p.push_batch(&[delivery(TRADES, "m1", &docs, 0)]).await;
    assert_eq!(results[0].next, Next::Done);
    let mut outcomes = results[0].documents.clone();
    outcomes.sort_by(|a, b| a.key().cmp(b.key()));
    assert!(
        matches!(&outcomes[0], DocumentOutcome::Pushed { key, created: true, .. } if key == "47")
    );
    assert!(
        matches!(&outcomes[1], DocumentOutcome::Failed { key, reason } if key == "48"
            && reason.contains("nowhere-001")),
        "{:?}",
        outcomes[1]
    );
    assert!(
        matches!(&outcomes[2], DocumentOutcome::Pushed { key, created: true, .. } if key == "49")
    );
    assert_eq!(target.ops(), [Op::Send, Op::Send]);
    assert_eq!(
        shape(&store, TRADES, "48"),
        (
            RecordState::Failed,
            None,
            false,
            1,
            Some(reason_of(&outcomes[1]))
        )
    );
    // The failure is about that exact source text.
    assert!(
        store
            .stored(TRADES, "48")
            .unwrap()
            .hash
            .starts_with("source:")
    );
    let history: Vec<String> = store
        .events()
        .iter()
        .filter(|e| e.key == "48")
        .map(|e| e.what.clone())
        .collect();
    assert_eq!(history, ["fetched", "failed"]);
}

#[tokio::test]
async fn unmappable_document_again_writes_nothing() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    let first = push(&p, &unmappable_trade(50)).await;
    let before = store.stored(TRADES, "50").unwrap();
    assert_eq!(push(&p, &unmappable_trade(50)).await, first);
    assert_eq!(store.stored(TRADES, "50").unwrap(), before);
    assert!(target.calls().is_empty());
}

#[tokio::test]
async fn older_unmappable_version_is_superseded_not_failed() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    let mut newer = trade(51, V2, None);
    newer["trade_no"] = json!("JY51");
    assert_eq!(push(&p, &newer).await, pushed("51", "B1", true));
    let before = store.stored(TRADES, "51").unwrap();
    let mut old = unmappable_trade(51);
    old["modified"] = json!(V1);
    // Old news whatever its content: the record, synced with the newer version, stays as it is.
    assert_eq!(
        push(&p, &old).await,
        DocumentOutcome::Superseded { key: "51".into() }
    );
    assert_eq!(store.stored(TRADES, "51").unwrap(), before);
}

#[tokio::test]
async fn unmappable_document_under_a_live_claim_retries() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    let now = Timestamp::now();
    store.insert(SyncRecord {
        state: RecordState::InProgress,
        claim_until: Some(now + Duration::from_secs(30)),
        ..SyncRecord::new(TRADES, "51", now)
    });
    assert_eq!(
        push(&p, &unmappable_trade(51)).await,
        DocumentOutcome::Retry {
            key: "51".into(),
            reason: "another pusher holds the document".into(),
            after: Some(p.claim_ttl),
        }
    );
    assert_eq!(
        store.stored(TRADES, "51").unwrap().state,
        RecordState::InProgress
    );
}

#[tokio::test]
async fn unmappable_record_that_keeps_changing_retries() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    for _ in 0..3 {
        store.lose_put(TRADES, "52", 0);
    }
    assert_eq!(
        push(&p, &unmappable_trade(52)).await,
        DocumentOutcome::Retry {
            key: "52".into(),
            reason: "the record kept changing".into(),
            after: None,
        }
    );
    assert_eq!(store.stored(TRADES, "52"), None);
}

#[tokio::test]
async fn unkeyed_document_fails_under_a_stand_in_key() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    let mut doc = trade(53, V1, None);
    doc.as_object_mut().unwrap().remove("trade_id");
    let outcome = push(&p, &doc).await;
    let DocumentOutcome::Failed { key, reason } = &outcome else {
        panic!("{outcome:?}")
    };
    assert!(key.starts_with("unkeyed:"), "{key}");
    assert_eq!(reason, "document has no trade_id");
    assert_eq!(
        store.stored(TRADES, key).unwrap().state,
        RecordState::Failed
    );
    assert!(target.calls().is_empty());
}

#[tokio::test]
async fn message_of_another_scheme_is_failed_not_pushed() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    let results = p
        .push_batch(&[delivery(STOCKOUTS, "m1", &[stockout(54, V1, "gift")], 0)])
        .await;
    assert_eq!(results[0].next, Next::Done);
    assert!(
        matches!(&results[0].documents[..], [DocumentOutcome::Failed { key, reason }]
            if key == "message:m1" && reason.contains("delivered to the pusher of")),
        "{:?}",
        results[0].documents
    );
    assert!(target.calls().is_empty());
    assert!(store.all_records().is_empty());
}

#[tokio::test]
async fn unreadable_message_is_failed_and_dropped() {
    let scheme = trades_scheme();
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    let results = p
        .push_batch(&[Delivery {
            body: "not a page message".into(),
            ..delivery(TRADES, "m1", &[], 0)
        }])
        .await;
    assert_eq!(results[0].next, Next::Done);
    assert!(
        matches!(&results[0].documents[..], [DocumentOutcome::Failed { key, reason }]
            if key == "message:m1" && reason.starts_with("unreadable page message")),
        "{:?}",
        results[0].documents
    );
    assert!(target.calls().is_empty());
}

#[tokio::test]
async fn retried_document_alone_is_handed_back() {
    let mut scheme = trades_scheme();
    scheme.push.concurrency = 1;
    let target = MemoryTarget::for_scheme(&scheme);
    let store = MemoryStore::new();
    let p = pusher(&scheme, &target, &store);
    target.answer_sends([fail(FailureClass::Retryable, "busy")]);
    let docs = [trade(55, V1, None), trade(56, V1, None)];
    let results = p.push_batch(&[delivery(TRADES, "m1", &docs, 0)]).await;
    match &results[0].next {
        Next::HandBack {
            body,
            unstarted,
            retried,
            ..
        } => {
            assert_eq!((*unstarted, *retried), (0, 1));
            let message: Value = serde_json::from_str(body).unwrap();
            assert_eq!(message["documents"].as_array().unwrap().len(), 1);
            assert_eq!(message["documents"][0]["trade_id"], 55);
            assert_eq!(message["retries"], 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.stored(TRADES, "56").unwrap().state,
        RecordState::Synced
    );
}
