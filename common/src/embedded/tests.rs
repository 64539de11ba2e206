//! The embedded store and queue against a real SQLite file: leases, compare-and-swap, visibility,
//! dead-lettering, and state surviving a reopen.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::EmbeddedStore;
use crate::engine::ports::{CursorStore, PageQueue, RecordQueries, RecordStore};
use crate::engine::record::{RecordState, SyncRecord};

fn temp_db(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ferry-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("ferry.db")
}

#[tokio::test]
async fn a_lease_excludes_other_pollers_until_it_lapses() {
    let store = EmbeddedStore::open(&temp_db("lease")).unwrap();
    let t0 = Timestamp::from_second(1_000_000).unwrap();
    let later = |s| t0 + SignedDuration::from_secs(s);
    assert!(store.take_lease("s", "a", t0, later(60)).await.unwrap());
    assert!(
        !store
            .take_lease("s", "b", later(30), later(90))
            .await
            .unwrap()
    );
    // Only the holder moves the cursor, and only while its lease runs.
    assert!(store.advance("s", "a", later(10), later(20)).await.unwrap());
    assert!(!store.advance("s", "b", later(11), later(20)).await.unwrap());
    assert_eq!(store.cursor("s").await.unwrap().position, Some(later(10)));
    // A crashed holder's lease lapses and another poller takes over.
    assert!(
        store
            .take_lease("s", "b", later(61), later(120))
            .await
            .unwrap()
    );
    assert!(!store.advance("s", "a", later(12), later(62)).await.unwrap());
    store.release("s", "b").await.unwrap();
    assert!(
        store
            .take_lease("s", "c", later(63), later(120))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn records_are_written_by_compare_and_swap_and_survive_a_reopen() {
    let path = temp_db("records");
    let now = Timestamp::now();
    {
        let store = EmbeddedStore::open(&path).unwrap();
        let mut record = SyncRecord::new("s", "1001", now);
        record.state = RecordState::InProgress;
        assert!(store.put(&record).await.unwrap());
        // A second writer holding the same (stale) revision loses.
        assert!(!store.put(&record).await.unwrap());
        let mut stored = store.record("s", "1001").await.unwrap().unwrap();
        assert_eq!(stored.revision, 1);
        stored.state = RecordState::Synced;
        stored.target_id = Some("T1".into());
        assert!(store.put(&stored).await.unwrap());
        assert!(!store.put(&stored).await.unwrap());
    }
    let store = EmbeddedStore::open(&path).unwrap();
    let record = store.record("s", "1001").await.unwrap().unwrap();
    assert_eq!(
        (record.state, record.target_id.as_deref(), record.revision),
        (RecordState::Synced, Some("T1"), 2)
    );
    assert_eq!(
        store
            .list("s", Some(RecordState::Synced), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .list("s", Some(RecordState::Failed), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.counts("s").await.unwrap(),
        vec![(RecordState::Synced, 1)]
    );
}

#[tokio::test]
async fn the_queue_hides_redelivers_and_dead_letters_like_sqs() {
    let path = temp_db("queue");
    let store = EmbeddedStore::open(&path).unwrap();
    let queue = store.queue("pages", 2);
    queue.send(vec!["a".into(), "b".into()]).await.unwrap();
    let first = queue.receive(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        first.iter().map(|d| d.body.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    // Hidden while in flight.
    assert!(
        queue
            .receive(10, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
    queue.delete(&first[0].receipt).await.unwrap();
    queue
        .retry_after(&first[1].receipt, Duration::ZERO)
        .await
        .unwrap();
    let second = queue.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!((second.len(), second[0].receive_count), (1, 2));
    // Received twice already: the next receive moves it to the dead-letter queue.
    assert!(queue.receive(10, Duration::ZERO).await.unwrap().is_empty());
    let dead = queue.dead_letters().await.unwrap();
    assert_eq!(
        (dead.len(), dead[0].body.as_str(), dead[0].receive_count),
        (1, "b", 2)
    );
    assert_eq!(queue.depth().await.unwrap(), 0);
    // Messages in other queues are untouched, and state survives a reopen.
    store
        .queue("other", 2)
        .send(vec!["c".into()])
        .await
        .unwrap();
    drop(store);
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.queue("other", 2).depth().await.unwrap(), 1);
    let queue = store.queue("pages", 2);
    assert_eq!(queue.redrive().await.unwrap(), 1);
    assert_eq!(
        queue.receive(10, Duration::ZERO).await.unwrap()[0].body,
        "b"
    );
}

#[tokio::test]
async fn history_is_kept_per_document_in_order_and_older_stores_gain_the_lookup_column() {
    use crate::engine::ports::{Event, HistoryLog};
    let path = temp_db("history");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        // A store from before records kept a look-up value.
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch(
            "CREATE TABLE records (scheme TEXT NOT NULL, key TEXT NOT NULL, state TEXT NOT NULL,
             hash TEXT NOT NULL, version TEXT NOT NULL, number TEXT NOT NULL, target_id TEXT,
             unsure TEXT, attempts INTEGER NOT NULL, last_error TEXT, claim_until INTEGER,
             created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, revision INTEGER NOT NULL,
             PRIMARY KEY (scheme, key)) WITHOUT ROWID;",
        )
        .unwrap();
    }
    let store = EmbeddedStore::open(&path).unwrap();
    let now = Timestamp::from_second(1_000_000).unwrap();
    let mut record = SyncRecord::new("s", "k1", now);
    record.lookup = "JY1".into();
    assert!(store.put(&record).await.unwrap());
    assert_eq!(
        store.record("s", "k1").await.unwrap().unwrap().lookup,
        "JY1"
    );
    assert_eq!(store.find_by_number("s", "JY1").await.unwrap().len(), 1);
    let event = |key: &str, what: &str, second: i64| Event {
        scheme: "s".into(),
        key: key.into(),
        at: Timestamp::from_second(second).unwrap(),
        what: what.into(),
        detail: String::new(),
        target_id: None,
        body: None,
    };
    store
        .append(vec![event("k1", "fetched", 1), event("k2", "fetched", 1)])
        .await
        .unwrap();
    store
        .append(vec![event("k1", "retry", 2), event("k1", "created", 3)])
        .await
        .unwrap();
    let whats = |events: Vec<Event>| events.into_iter().map(|e| e.what).collect::<Vec<_>>();
    assert_eq!(
        whats(store.history("s", "k1", 10).await.unwrap()),
        ["fetched", "retry", "created"]
    );
    // The latest ones when limited, still oldest first.
    assert_eq!(
        whats(store.history("s", "k1", 2).await.unwrap()),
        ["retry", "created"]
    );
    assert_eq!(
        whats(store.history("s", "k2", 10).await.unwrap()),
        ["fetched"]
    );
}
