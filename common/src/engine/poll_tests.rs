//! A scheduled poll's windows: cut in parts by their count, the cursor moving part by part, a
//! window that never adds up left open, drift-safe paging, leases, the time budget and documents too
//! large to queue; against the in-memory store and queue and a scripted source.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::FutureExt;
use serde_json::{Value, json};

use super::*;
use crate::engine::ports::PageQueue;
use crate::engine::test_support::trades_scheme;
use crate::memory::{MemoryQueue, MemoryStore};
use crate::time::{format_source, from_beijing, parse_source_datetime, to_beijing};

/// WDT's trade query over `documents` (one per `modified` time): filters by the window, pages by
/// `page_no`/`page_size`, and reports the window's count plus `overcount`.
struct Source {
    modified: Mutex<Vec<Timestamp>>,
    overcount: u64,
    calls: AtomicU64,
    /// An edit made right after the first call is answered: the document and its new time.
    edit: Option<(usize, Timestamp)>,
    /// A document too large for the queue: its index and its padding in bytes.
    giant: Option<(usize, usize)>,
}

impl Source {
    fn new(modified: Vec<Timestamp>, overcount: u64) -> Source {
        Source {
            modified: Mutex::new(modified),
            overcount,
            calls: AtomicU64::new(0),
            edit: None,
            giant: None,
        }
    }
}

impl SourceApi for Source {
    async fn query(&self, params: &[(String, String)]) -> Result<crate::engine::Page, CallError> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let param = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let time = |name: &str| from_beijing(parse_source_datetime(&param(name)).unwrap());
        let (start, end) = (time("start_time"), time("end_time"));
        let size: usize = param("page_size").parse().unwrap();
        let page: usize = param("page_no").parse().unwrap();
        let mut modified = self.modified.lock().unwrap();
        // The source lists a window in time order, as WDT does: an edited document moves.
        let mut inside: Vec<(usize, Timestamp)> = modified
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, t)| *t >= start && *t <= end)
            .collect();
        inside.sort_by_key(|(i, t)| (*t, *i));
        let inside: Vec<Value> = inside
            .into_iter()
            .map(|(i, t)| {
                let mut doc = json!({"trade_id": i, "modified": format_source(to_beijing(t))});
                if let Some((giant, bytes)) = self.giant
                    && giant == i
                {
                    doc["pad"] = json!("x".repeat(bytes));
                }
                doc
            })
            .collect();
        if call == 0
            && let Some((document, to)) = self.edit
        {
            modified[document] = to;
        }
        Ok(crate::engine::Page {
            total_count: Some(inside.len() as u64 + self.overcount),
            documents: inside.into_iter().skip(page * size).take(size).collect(),
        })
    }
}

type MemoryPoller<'a> = Poller<'a, MemoryStore, MemoryStore, MemoryQueue, Source>;

/// A poller from `start` with a minute's budget and a minute's lease, reporting pages to `on_page`.
fn poller<'a>(
    scheme: &'a Scheme,
    source: &'a Source,
    store: &'a MemoryStore,
    queue: &'a MemoryQueue,
    start: Timestamp,
    on_page: &'a (dyn Fn(&PageEvent) + Send + Sync),
) -> MemoryPoller<'a> {
    Poller {
        scheme,
        source,
        cursors: store,
        records: store,
        queue,
        holder: "test".into(),
        deadline: Instant::now() + Duration::from_secs(60),
        lease: Duration::from_secs(60),
        reserve: Duration::from_secs(1),
        first_start: Some(start),
        on_page,
        replay: false,
        message_documents: usize::MAX,
    }
}

/// A poll from `start` of `source` into `queue`, with a minute's budget; also the largest window
/// count a queued page reported.
async fn poll(
    scheme: &Scheme,
    source: &Source,
    store: &MemoryStore,
    queue: &MemoryQueue,
    start: Timestamp,
    now: Timestamp,
) -> (PollReport, u64) {
    let largest = AtomicU64::new(0);
    let on_page = |page: &PageEvent| {
        largest.fetch_max(page.total.unwrap_or(0), Ordering::Relaxed);
    };
    let report = poller(scheme, source, store, queue, start, &on_page)
        .run(now)
        .await
        .unwrap();
    (report, largest.load(Ordering::Relaxed))
}

fn ignore(_: &PageEvent) {}

/// The trade ids of every document queued, repeats included, in queue order.
fn queued_ids(queue: &MemoryQueue) -> Vec<u64> {
    queue
        .bodies()
        .iter()
        .flat_map(|body| {
            let message: Value = serde_json::from_str(body).unwrap();
            message["documents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["trade_id"].as_u64().unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `count` documents every `every` from `start`.
fn spread(start: Timestamp, count: i64, every: jiff::SignedDuration) -> Vec<Timestamp> {
    (0..count).map(|i| start + every * i as i32).collect()
}

#[tokio::test]
async fn a_window_of_more_than_twenty_pages_is_walked_in_parts_the_cursor_moving_past_each() {
    let scheme = trades_scheme();
    let now = Timestamp::now();
    let start = now - jiff::SignedDuration::from_hours(2);
    // 2,500 documents in the first 50 minutes: 25 pages of 100 in one window.
    let modified = (0..2_500)
        .map(|i| start + jiff::SignedDuration::from_millis(i * 1_200))
        .collect();
    let source = Source::new(modified, 0);
    let store = MemoryStore::new();
    let queue = MemoryQueue::default();
    let (report, largest) = poll(&scheme, &source, &store, &queue, start, now).await;
    assert_eq!(report.stop, Stop::Done);
    // The window of 25 pages was walked in parts of 20 pages or fewer.
    assert!(largest > 0 && largest <= 2_000, "{largest}");
    let mut keys = BTreeSet::new();
    loop {
        let batch = queue.receive(10, Duration::from_secs(60)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for d in batch {
            let message: Value = serde_json::from_str(&d.body).unwrap();
            for doc in message["documents"].as_array().unwrap() {
                keys.insert(doc["trade_id"].as_u64().unwrap());
            }
        }
    }
    assert_eq!(keys.len(), 2_500, "every document queued");
    assert!(store.cursor(scheme.id()).await.unwrap().position.is_some());
}

#[tokio::test]
async fn a_window_that_never_adds_up_stays_open_and_says_so() {
    let scheme = trades_scheme();
    let now = Timestamp::now();
    let start = now - jiff::SignedDuration::from_hours(1);
    let modified = (0..30)
        .map(|i| start + jiff::SignedDuration::from_secs(i * 60))
        .collect();
    // The source's count is one more than the documents it ever returns.
    let source = Source::new(modified, 1);
    let store = MemoryStore::new();
    let queue = MemoryQueue::default();
    let (report, _) = poll(&scheme, &source, &store, &queue, start, now).await;
    assert_eq!(report.stop, Stop::Unverified);
    assert_eq!(report.unverified, 1);
    // The cursor did not move past it: the next run reads it again.
    assert_eq!(store.cursor(scheme.id()).await.unwrap().position, None);
}

#[tokio::test]
async fn a_window_is_read_back_to_front_and_each_document_queued_once() {
    let scheme = trades_scheme();
    let now = Timestamp::now();
    let start = now - jiff::SignedDuration::from_hours(2);
    // 250 documents in the first window: three pages of 100.
    let source = Source::new(spread(start, 250, jiff::SignedDuration::from_secs(12)), 0);
    let store = MemoryStore::new();
    let queue = MemoryQueue::default();
    let pages = Mutex::new(Vec::new());
    let on_page = |page: &PageEvent| pages.lock().unwrap().push(page.page);
    let report = poller(&scheme, &source, &store, &queue, start, &on_page)
        .run(now)
        .await
        .unwrap();
    assert_eq!(report.stop, Stop::Done);
    // Page 0 for the count, then the last page back to 1, then page 0 again; each later window
    // (empty: every document is in the first) is one call.
    let pages = pages.into_inner().unwrap();
    assert_eq!(pages[..4], [0, 2, 1, 0]);
    assert!(pages[4..].iter().all(|p| *p == 0), "{pages:?}");
    assert_eq!(report.calls, pages.len() as u64);
    assert_eq!(report.windows as usize, pages.len() - 3);
    // Page 0 was read twice but its documents are queued once.
    let ids = queued_ids(&queue);
    assert_eq!(ids.len(), 250);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 250);
    assert_eq!(report.documents, 250);
    let cursor = store.cursor(scheme.id()).await.unwrap();
    assert_eq!(cursor.holder, None, "the lease is released");
    assert!(cursor.position.is_some());
}

#[tokio::test]
async fn a_document_edited_while_its_window_is_paged_is_not_skipped() {
    let scheme = trades_scheme();
    let now = Timestamp::now();
    let start = now - jiff::SignedDuration::from_hours(2);
    let mut source = Source::new(spread(start, 250, jiff::SignedDuration::from_secs(12)), 0);
    // Right after page 0 is read, document 5 is edited: it leaves the window (its new time is in
    // the next one) and every later document moves one place down.
    source.edit = Some((5, now - jiff::SignedDuration::from_mins(5)));
    let store = MemoryStore::new();
    let queue = MemoryQueue::default();
    let (report, _) = poll(&scheme, &source, &store, &queue, start, now).await;
    assert_eq!(report.stop, Stop::Done);
    let ids = queued_ids(&queue);
    // Document 100 slid from page 1 to page 0 after page 0 was read: the final page 0 catches it.
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        250,
        "none skipped"
    );
    // Document 5 twice: its old version from the first window, its new one from the second.
    assert_eq!(ids.iter().filter(|i| **i == 5).count(), 2);
    assert_eq!(ids.len(), 251);
}

#[tokio::test]
async fn another_pollers_live_lease_stops_the_run_before_any_call() {
    let scheme = trades_scheme();
    let now = Timestamp::now();
    let start = now - jiff::SignedDuration::from_hours(1);
    let source = Source::new(spread(start, 10, jiff::SignedDuration::from_mins(1)), 0);
    let store = MemoryStore::new();
    let queue = MemoryQueue::default();
    let until = now + jiff::SignedDuration::from_mins(1);
    assert!(
        store
            .take_lease(scheme.id(), "other", now, until)
            .await
            .unwrap()
    );
    let (report, _) = poll(&scheme, &source, &store, &queue, start, now).await;
    assert_eq!(report.stop, Stop::Leased);
    assert_eq!(source.calls.load(Ordering::Relaxed), 0);
    let cursor = store.cursor(scheme.id()).await.unwrap();
    assert_eq!(
        (cursor.holder.as_deref(), cursor.position),
        (Some("other"), None)
    );
}

#[tokio::test]
async fn a_poller_whose_lease_was_taken_over_stops_without_moving_the_cursor() {
    let scheme = trades_scheme();
    let now = Timestamp::now();
    let start = now - jiff::SignedDuration::from_hours(2);
    let source = Source::new(spread(start, 250, jiff::SignedDuration::from_secs(12)), 0);
    let store = MemoryStore::new();
    let queue = MemoryQueue::default();
    // Our lease lapses at once; after the first page another poller takes the scheme over.
    let on_page = |_: &PageEvent| {
        let at = Timestamp::now();
        let until = at + jiff::SignedDuration::from_mins(1);
        let taken = store
            .take_lease(scheme.id(), "other", at, until)
            .now_or_never()
            .expect("the memory store answers at once")
            .unwrap();
        assert!(taken);
    };
    let report = Poller {
        lease: Duration::ZERO,
        ..poller(&scheme, &source, &store, &queue, start, &on_page)
    }
    .run(now)
    .await
    .unwrap();
    assert_eq!(report.stop, Stop::LeaseLost);
    assert_eq!(source.calls.load(Ordering::Relaxed), 1);
    let cursor = store.cursor(scheme.id()).await.unwrap();
    // Ours to release no more: the other poller keeps it, and the cursor has not moved.
    assert_eq!(
        (cursor.holder.as_deref(), cursor.position),
        (Some("other"), None)
    );
}

#[tokio::test]
async fn a_run_without_time_left_starts_no_window() {
    let scheme = trades_scheme();
    let now = Timestamp::now();
    let start = now - jiff::SignedDuration::from_hours(1);
    let source = Source::new(spread(start, 10, jiff::SignedDuration::from_mins(1)), 0);
    let store = MemoryStore::new();
    let queue = MemoryQueue::default();
    // The deadline is inside the reserve already.
    let report = Poller {
        deadline: Instant::now() + Duration::from_millis(500),
        ..poller(&scheme, &source, &store, &queue, start, &ignore)
    }
    .run(now)
    .await
    .unwrap();
    assert_eq!(report.stop, Stop::Budget);
    assert_eq!(source.calls.load(Ordering::Relaxed), 0);
    let cursor = store.cursor(scheme.id()).await.unwrap();
    assert_eq!((cursor.holder, cursor.position), (None, None));
}

#[tokio::test]
async fn a_scheme_that_never_ran_and_names_no_start_refuses_and_releases_its_lease() {
    let scheme = trades_scheme();
    assert!(scheme.window.start.is_none());
    let now = Timestamp::now();
    let source = Source::new(Vec::new(), 0);
    let store = MemoryStore::new();
    let queue = MemoryQueue::default();
    let result = Poller {
        first_start: None,
        ..poller(&scheme, &source, &store, &queue, now, &ignore)
    }
    .run(now)
    .await;
    assert!(
        matches!(&result, Err(PollError::Request(message)) if message.contains("names no start")),
        "{result:?}"
    );
    assert_eq!(source.calls.load(Ordering::Relaxed), 0);
    assert_eq!(store.cursor(scheme.id()).await.unwrap().holder, None);
}

#[tokio::test]
async fn a_document_too_large_for_a_message_is_recorded_failed_not_queued() {
    let scheme = trades_scheme();
    let now = Timestamp::now();
    let start = now - jiff::SignedDuration::from_hours(1);
    let mut source = Source::new(spread(start, 10, jiff::SignedDuration::from_mins(1)), 0);
    source.giant = Some((3, 3_000));
    let store = MemoryStore::new();
    let queue = MemoryQueue::default().with_max_body(2_000);
    let (report, _) = poll(&scheme, &source, &store, &queue, start, now).await;
    // The window still adds up: the giant was received, just not queued.
    assert_eq!((report.stop, report.oversize), (Stop::Done, 1));
    let ids = queued_ids(&queue);
    assert_eq!(ids.len(), 9);
    assert!(!ids.contains(&3));
    let record = store.stored(scheme.id(), "3").unwrap();
    assert_eq!(record.state, RecordState::Failed);
    assert!(record.hash.starts_with("oversize:"), "{}", record.hash);
    assert!(
        record
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("more than a queue message can carry")),
        "{record:?}"
    );
    let events = store.history(scheme.id(), "3", 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].what, "failed");
    assert!(store.cursor(scheme.id()).await.unwrap().position.is_some());
}

#[tokio::test]
async fn a_resync_of_a_window_queues_it_without_lease_or_cursor() {
    let scheme = trades_scheme();
    let now = Timestamp::now();
    let start = now - jiff::SignedDuration::from_hours(3);
    let source = Source::new(spread(start, 30, jiff::SignedDuration::from_mins(5)), 0);
    let store = MemoryStore::new();
    let queue = MemoryQueue::default();
    let window = Window::new(start, start + jiff::SignedDuration::from_mins(150)).unwrap();
    let report = poller(&scheme, &source, &store, &queue, start, &ignore)
        .resync_window(window)
        .await
        .unwrap();
    // Cut to the API's span of an hour: three parts, every document in them queued.
    assert_eq!((report.stop, report.windows), (Stop::Done, 3));
    assert_eq!(queued_ids(&queue).iter().collect::<BTreeSet<_>>().len(), 30);
    let cursor = store.cursor(scheme.id()).await.unwrap();
    assert_eq!((cursor.holder, cursor.position), (None, None));
}
