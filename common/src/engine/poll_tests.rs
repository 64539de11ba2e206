//! A scheduled poll's windows: cut in parts by their count, the cursor moving part by part, and a
//! window that never adds up left open; against the embedded store and queue and a scripted source.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use super::*;
use crate::embedded::EmbeddedStore;
use crate::engine::ports::PageQueue;
use crate::engine::test_support::{store, trades_scheme};
use crate::time::{format_source, from_beijing, parse_source_datetime, to_beijing};

/// WDT's trade query over `documents` (one per `modified` time): filters by the window, pages by
/// `page_no`/`page_size`, and reports the window's count plus `overcount`.
struct Source {
    modified: Vec<Timestamp>,
    overcount: u64,
    calls: AtomicU64,
}

impl SourceApi for Source {
    async fn query(
        &self,
        params: &[(String, String)],
    ) -> Result<crate::connector::wdt::Page, CallError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
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
        let inside: Vec<Value> = self
            .modified
            .iter()
            .enumerate()
            .filter(|(_, t)| **t >= start && **t <= end)
            .map(|(i, t)| json!({"trade_id": i, "modified": format_source(to_beijing(*t))}))
            .collect();
        Ok(crate::connector::wdt::Page {
            total_count: Some(inside.len() as u64 + self.overcount),
            documents: inside.into_iter().skip(page * size).take(size).collect(),
        })
    }
}

/// A poll from `start` of `source`, with a minute's budget; also the largest window count a
/// queued page reported.
async fn poll(
    scheme: &Scheme,
    source: &Source,
    store: &EmbeddedStore,
    start: Timestamp,
    now: Timestamp,
) -> (PollReport, u64) {
    let largest = AtomicU64::new(0);
    let on_page = |page: &PageEvent| {
        largest.fetch_max(page.total.unwrap_or(0), Ordering::Relaxed);
    };
    let queue = store.queue("pages", 5);
    let poller = Poller {
        scheme,
        source,
        cursors: store,
        records: store,
        queue: &queue,
        holder: "test".into(),
        deadline: Instant::now() + Duration::from_secs(60),
        lease: Duration::from_secs(60),
        reserve: Duration::from_secs(1),
        first_start: Some(start),
        on_page: &on_page,
        replay: false,
        message_documents: usize::MAX,
    };
    let report = poller.run(now).await.unwrap();
    (report, largest.load(Ordering::Relaxed))
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
    let source = Source {
        modified,
        overcount: 0,
        calls: AtomicU64::new(0),
    };
    let store = store("parts");
    let (report, largest) = poll(&scheme, &source, &store, start, now).await;
    assert_eq!(report.stop, Stop::Done);
    // The window of 25 pages was walked in parts of 20 pages or fewer.
    assert!(largest > 0 && largest <= 2_000, "{largest}");
    let queue = store.queue("pages", 5);
    let mut keys = std::collections::BTreeSet::new();
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
    let source = Source {
        modified,
        overcount: 1,
        calls: AtomicU64::new(0),
    };
    let store = store("unverified");
    let (report, _) = poll(&scheme, &source, &store, start, now).await;
    assert_eq!(report.stop, Stop::Unverified);
    assert_eq!(report.unverified, 1);
    // The cursor did not move past it: the next run reads it again.
    assert_eq!(store.cursor(scheme.id()).await.unwrap().position, None);
}
