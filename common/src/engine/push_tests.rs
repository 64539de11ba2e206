//! A push batch's deadline, hand-backs and same-key turns, against the in-memory store and a
//! scripted target (no HTTP: what is pinned here is the batch's bookkeeping).

use serde_json::Value;

use super::*;
use crate::engine::test_support::{delivery, pusher, trade, trades_scheme};

const TRADES: &str = "wdt-trades-to-kingdee";
use crate::memory::{Answer, MemoryStore, MemoryTarget, call_error};

/// A target that takes `wait` per save and answers with `refuse`'s class, or success; bills are
/// numbered by the md5 of their body, so every document is its own bill.
fn scripted(wait: Duration, refuse: Option<FailureClass>) -> MemoryTarget {
    let target = MemoryTarget::new().with_latency(wait);
    if let Some(class) = refuse {
        target.answer_every_send(Answer::Fail(call_error(class, "no")));
    }
    target
}

/// The trade ids a continuation carries.
fn ids_in(body: &str) -> Vec<u64> {
    let message: Value = serde_json::from_str(body).unwrap();
    message["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["trade_id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_batch_stops_starting_at_its_deadline_and_hands_back_exactly_the_rest() {
    let scheme = trades_scheme();
    let target = scripted(Duration::from_millis(40), None);
    let records = MemoryStore::new();
    let now = Instant::now();
    let deadline = Deadline {
        starts_end: now + Duration::from_millis(100),
        calls_end: now + Duration::from_millis(400),
    };
    let pusher = pusher(&scheme, &target, &records, Some(deadline), 10);
    let trades: Vec<Value> = (1..=40).map(trade).collect();
    let results = pusher
        .push_batch(&[
            delivery(TRADES, "m1", &trades[..20], 0),
            delivery(TRADES, "m2", &trades[20..], 0),
        ])
        .await;
    let pushed: Vec<String> = results
        .iter()
        .flat_map(|r| &r.documents)
        .filter(|o| matches!(o, DocumentOutcome::Pushed { .. }))
        .map(|o| o.key().to_owned())
        .collect();
    assert!(!pushed.is_empty() && pushed.len() < 40, "{pushed:?}");
    let mut handed_back = Vec::new();
    for result in &results {
        match &result.next {
            // A message whose documents all started in time is done.
            Next::Done => {}
            Next::HandBack {
                body,
                delay,
                unstarted,
                retried,
            } => {
                // Nothing failed: the rest goes on at once, its retry count unchanged.
                assert_eq!((*delay, *retried), (Duration::ZERO, 0));
                let ids = ids_in(body);
                assert_eq!(ids.len(), *unstarted);
                assert_eq!(
                    serde_json::from_str::<Value>(body).unwrap()["retries"],
                    Value::Null
                );
                handed_back.extend(ids);
            }
            other => panic!("{other:?}"),
        }
    }
    // Every document exactly once: pushed, or handed back; none both.
    assert_eq!(pushed.len() + handed_back.len(), 40);
    for id in &handed_back {
        assert!(
            !pushed.contains(&id.to_string()),
            "{id} pushed and handed back"
        );
    }
    assert_eq!(target.bills().len(), pushed.len());
}

#[tokio::test]
async fn retries_come_back_with_a_growing_backoff_until_the_limit_then_the_queue_decides() {
    let scheme = trades_scheme();
    let target = scripted(Duration::ZERO, Some(FailureClass::Retryable));
    let records = MemoryStore::new();
    let pusher = pusher(&scheme, &target, &records, None, 3);
    let results = pusher
        .push_batch(&[delivery(TRADES, "m1", &[trade(1), trade(2)], 2)])
        .await;
    match &results[0].next {
        Next::HandBack {
            body,
            delay,
            retried,
            ..
        } => {
            assert_eq!(*retried, 2);
            let mut ids = ids_in(body);
            ids.sort();
            assert_eq!(ids, vec![1, 2]);
            assert_eq!(serde_json::from_str::<Value>(body).unwrap()["retries"], 3);
            // Within the backoff's bounds (bounded jitter never waits under half the first
            // wait, nor over the longest); the round count it grows with is in the message.
            assert!(
                (Duration::from_millis(50)..=Duration::from_secs(10)).contains(delay),
                "{delay:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Past the limit, the message itself is redelivered: its receives count toward the DLQ.
    let results = pusher
        .push_batch(&[delivery(TRADES, "m2", &[trade(3)], 3)])
        .await;
    assert!(
        matches!(results[0].next, Next::Redeliver(_)),
        "{:?}",
        results[0].next
    );
}

#[tokio::test]
async fn a_document_twice_in_a_batch_takes_turns_instead_of_waiting_out_its_own_claim() {
    let scheme = trades_scheme();
    let target = scripted(Duration::from_millis(20), None);
    let records = MemoryStore::new();
    let pusher = pusher(&scheme, &target, &records, None, 10);
    let results = pusher
        .push_batch(&[
            delivery(TRADES, "m1", &[trade(7)], 0),
            delivery(TRADES, "m2", &[trade(7)], 0),
        ])
        .await;
    let outcomes: Vec<&DocumentOutcome> = results.iter().flat_map(|r| &r.documents).collect();
    assert_eq!(outcomes.len(), 2);
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, DocumentOutcome::Pushed { created: true, .. })),
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, DocumentOutcome::Unchanged { .. })),
        "{outcomes:?}"
    );
    assert!(results.iter().all(|r| r.next == Next::Done));
    assert_eq!(target.bills().len(), 1);
}
