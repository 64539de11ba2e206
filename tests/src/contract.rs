//! The ports' contract: one function per port, asserting what the engine relies on, run against
//! every adapter (tests/it/contract.rs): the in-memory ones the engine's unit tests run on, SQLite,
//! and DynamoDB and SQS on moto. What the fast tests assume of a store is what the real ones do.

use std::time::Duration;

use ferry_common::engine::{
    CursorStore, Delivery, Event, HistoryLog, PageQueue, RecordQueries, RecordState, RecordStore,
    SyncRecord,
};
use jiff::{SignedDuration, Timestamp};

/// Now, to the millisecond (what every store keeps).
fn now() -> Timestamp {
    Timestamp::from_millisecond(Timestamp::now().as_millisecond()).unwrap()
}

/// Leases: one holder at a time, a lapsed lease taken over, the cursor moved only by its holder.
pub async fn cursor_store(store: &impl CursorStore, scheme: &str) {
    let t = now();
    let minute = SignedDuration::from_secs(60);
    let fresh = store.cursor(scheme).await.unwrap();
    assert_eq!((fresh.position, fresh.holder), (None, None), "a new scheme");
    assert!(store.take_lease(scheme, "a", t, t + minute).await.unwrap());
    assert!(
        !store.take_lease(scheme, "b", t, t + minute).await.unwrap(),
        "a live lease is another's"
    );
    let later = t + minute + SignedDuration::from_secs(1);
    assert!(
        store
            .take_lease(scheme, "b", later, later + minute)
            .await
            .unwrap(),
        "a lapsed lease is taken over"
    );
    assert!(
        !store.advance(scheme, "a", t, later).await.unwrap(),
        "the old holder cannot move the cursor"
    );
    assert!(store.advance(scheme, "b", t, later).await.unwrap());
    let cursor = store.cursor(scheme).await.unwrap();
    assert_eq!(cursor.position, Some(t));
    assert_eq!(cursor.holder.as_deref(), Some("b"));
    store.release(scheme, "b").await.unwrap();
    assert!(
        store
            .take_lease(scheme, "a", later, later + minute)
            .await
            .unwrap(),
        "a released lease is free"
    );
}

/// Compare-and-swap on the revision, and the look-ups operators make.
pub async fn record_store(store: &(impl RecordStore + RecordQueries), scheme: &str) {
    let t = now();
    let first = SyncRecord::new(scheme, "k1", t);
    assert!(store.put(&first).await.unwrap(), "a new record");
    assert!(
        !store.put(&first).await.unwrap(),
        "a second writer of revision 0 loses"
    );
    let mut stored = store.record(scheme, "k1").await.unwrap().unwrap();
    assert_eq!(stored.revision, 1);
    let stale = stored.clone();
    stored.state = RecordState::Synced;
    stored.number = "N-1".into();
    stored.lookup = "L-1".into();
    stored.target_id = Some("T-1".into());
    stored.updated_at = t;
    assert!(store.put(&stored).await.unwrap());
    assert!(
        !store.put(&stale).await.unwrap(),
        "a writer of an old revision loses"
    );
    let read = store.record(scheme, "k1").await.unwrap().unwrap();
    assert_eq!(
        (read.revision, read.state, read.target_id.as_deref()),
        (2, RecordState::Synced, Some("T-1"))
    );
    assert_eq!(store.record(scheme, "k2").await.unwrap(), None);
    let keys = |records: Vec<SyncRecord>| records.into_iter().map(|r| r.key).collect::<Vec<_>>();
    assert_eq!(
        keys(
            store
                .list(scheme, Some(RecordState::Synced), 10)
                .await
                .unwrap()
        ),
        ["k1"]
    );
    assert!(
        store
            .list(scheme, Some(RecordState::Failed), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        keys(store.find_by_number(scheme, "N-1").await.unwrap()),
        ["k1"]
    );
    assert_eq!(
        keys(store.find_by_number(scheme, "L-1").await.unwrap()),
        ["k1"]
    );
    assert_eq!(
        keys(store.recent(scheme, RecordState::Synced, 5).await.unwrap()),
        ["k1"]
    );
    assert_eq!(
        store.counts(scheme).await.unwrap(),
        [(RecordState::Synced, 1)]
    );
}

/// A document's latest events, oldest first.
pub async fn history_log(log: &impl HistoryLog, scheme: &str) {
    let t = now();
    let event = |ms: i64, what: &str| Event {
        scheme: scheme.into(),
        key: "k1".into(),
        at: t + SignedDuration::from_millis(ms),
        what: what.into(),
        detail: format!("{what} detail"),
        target_id: None,
        // A write's event keeps the body it sent, Chinese text and all.
        body: (what == "created").then(|| r#"{"billno":"JY1","remark":"礼品"}"#.to_owned()),
    };
    log.append(vec![
        event(0, "fetched"),
        event(1, "retry"),
        event(2, "created"),
    ])
    .await
    .unwrap();
    let latest = log.history(scheme, "k1", 2).await.unwrap();
    assert_eq!(
        latest.iter().map(|e| e.what.as_str()).collect::<Vec<_>>(),
        ["retry", "created"]
    );
    assert_eq!(latest[0].body, None);
    assert_eq!(
        latest[1].body.as_deref(),
        Some(r#"{"billno":"JY1","remark":"礼品"}"#)
    );
    assert!(log.history(scheme, "k2", 10).await.unwrap().is_empty());
}

/// Receives until `want` messages came or a few seconds passed (SQS may answer with fewer).
async fn receive(queue: &impl PageQueue, want: usize, visibility: Duration) -> Vec<Delivery> {
    let mut got: Vec<Delivery> = Vec::new();
    for _ in 0..20 {
        got.extend(queue.receive(10, visibility).await.unwrap());
        if got.len() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    got
}

/// SQS semantics: hidden after a receive, counted per receive, rescheduled, replaced by a
/// hand-back with its count started afresh, dead-lettered after `max_receives`, redriven.
/// `queue` must be empty and dead-letter after `max_receives` = 2.
pub async fn page_queue(queue: &impl PageQueue) {
    let hidden = Duration::from_secs(30);
    queue.send(vec!["a".into(), "b".into()]).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), 2);
    let mut first = receive(queue, 2, hidden).await;
    first.sort_by(|x, y| x.body.cmp(&y.body));
    assert_eq!(
        first
            .iter()
            .map(|d| (d.body.as_str(), d.receive_count))
            .collect::<Vec<_>>(),
        [("a", 1), ("b", 1)]
    );
    assert!(
        queue.receive(10, hidden).await.unwrap().is_empty(),
        "received messages are hidden"
    );
    let (a, b) = (&first[0], &first[1]);
    queue.retry_after(&a.receipt, Duration::ZERO).await.unwrap();
    let again = receive(queue, 1, hidden).await;
    assert_eq!(
        again
            .iter()
            .map(|d| (d.body.as_str(), d.receive_count))
            .collect::<Vec<_>>(),
        [("a", 2)],
        "a retry is the same message, counted again"
    );
    queue
        .hand_back(&again[0].receipt, "a-rest".into(), Duration::ZERO)
        .await
        .unwrap();
    let handed = receive(queue, 1, hidden).await;
    assert_eq!(
        handed
            .iter()
            .map(|d| (d.body.as_str(), d.receive_count))
            .collect::<Vec<_>>(),
        [("a-rest", 1)],
        "a hand-back starts its count afresh"
    );
    queue.delete(&handed[0].receipt).await.unwrap();
    queue.delete(&b.receipt).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), 0);
    // Received twice and given back: the next receive finds it over the limit.
    queue.send(vec!["c".into()]).await.unwrap();
    for round in 1..=2 {
        let got = receive(queue, 1, hidden).await;
        assert_eq!(got.len(), 1, "receive {round}");
        queue
            .retry_after(&got[0].receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    let mut dead = Vec::new();
    for _ in 0..30 {
        assert!(
            queue.receive(10, hidden).await.unwrap().is_empty(),
            "a message over its limit is not delivered"
        );
        dead = queue.dead_letters().await.unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        dead.iter().map(|d| d.body.as_str()).collect::<Vec<_>>(),
        ["c"]
    );
    assert_eq!(queue.redrive().await.unwrap(), 1);
    let back = receive(queue, 1, hidden).await;
    assert_eq!(
        back.iter().map(|d| d.body.as_str()).collect::<Vec<_>>(),
        ["c"]
    );
}
