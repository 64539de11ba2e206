//! One poll of one scheme: take the lease, plan the windows, page each one drift-safely, queue its
//! documents in size-bounded messages, and move the cursor past each window once all of it is queued.
//! Also the on-demand re-syncs (a window, or documents by key), which never move the cursor.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::time::Instant;

use super::endpoints::SourceApi;
use super::message::{PageHeader, pack};
use super::ports::{CursorStore, Event, HistoryLog, PageQueue, RecordStore, StoreError};
use super::record::{RecordState, SyncRecord};
use super::window::{Window, WindowText, plan};
use crate::Scheme;
use crate::connector::CallError;
use crate::error::{Classified, Domain, RetryHint};
use crate::mapping::PageRequest;

/// How many times a window is paged again when its documents do not add up to its count.
const MAX_WINDOW_PASSES: u32 = 3;

/// The most pages a scheduled poll walks as one window: a larger window is cut in two (by time,
/// down to a second) and the cursor moves past each part, so a run that cannot page a whole day
/// still makes progress, and a backlog is caught up however long it is.
pub const MAX_WINDOW_PAGES: u64 = 20;

/// What one poll needs.
pub struct Poller<'a, C, R, Q, A> {
    /// The scheme.
    pub scheme: &'a Scheme,
    /// The source API.
    pub source: &'a A,
    /// Cursors and leases.
    pub cursors: &'a C,
    /// Sync records (documents that can never be queued are recorded as failed here).
    pub records: &'a R,
    /// The page queue.
    pub queue: &'a Q,
    /// Who is polling (a lease holder id: host and process, or the Lambda request id).
    pub holder: String,
    /// The run must end by then; it stops cleanly before, between windows or pages.
    pub deadline: Instant,
    /// How long the lease holds without renewal; it is renewed before every page, so a crashed
    /// poller blocks its scheme for at most this long.
    pub lease: Duration,
    /// Time kept in reserve before the deadline (a window is only started with more left than this).
    pub reserve: Duration,
    /// Where the first run starts, overriding the scheme's `window.start`.
    pub first_start: Option<Timestamp>,
    /// Called after each page is queued (progress bars, metrics).
    pub on_page: &'a (dyn Fn(&PageEvent) + Send + Sync),
    /// Mark what it queues as an operator's replay (documents that failed before are pushed again).
    pub replay: bool,
    /// The most documents one message carries (about one push invocation's work at the target's
    /// pace); `usize::MAX` for as many as fit.
    pub message_documents: usize,
}

/// One page queued.
#[derive(Clone, Debug)]
pub struct PageEvent {
    /// The window paged.
    pub window: Window,
    /// The page number.
    pub page: u32,
    /// Documents in the page.
    pub documents: usize,
    /// The window's total as last reported.
    pub total: Option<u64>,
}

/// Why a poll ended before reaching now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// Every planned window was queued.
    Done,
    /// The time budget ran out; the next run resumes at the cursor.
    Budget,
    /// Another poller holds the scheme's lease.
    Leased,
    /// The lease was lost mid-run (another poller took over after it lapsed).
    LeaseLost,
    /// A window's documents still did not add up to its count after every re-paging pass: it
    /// stays open (the cursor is before it) for the next run, and the poll says so.
    Unverified,
}

/// What one poll did.
#[derive(Clone, Debug, Serialize)]
pub struct PollReport {
    /// How it ended.
    pub stop: Stop,
    /// Windows fully queued.
    pub windows: u32,
    /// Source calls made.
    pub calls: u64,
    /// Documents received (repeats within a window counted once).
    pub documents: u64,
    /// Messages sent.
    pub messages: u64,
    /// Documents too large for a message, recorded as failed.
    pub oversize: u64,
    /// Windows whose documents did not add up to their count after every re-paging pass (left
    /// open for the next run).
    pub unverified: u64,
    /// The cursor afterwards (Beijing time).
    pub cursor: Option<String>,
}

impl PollReport {
    fn new() -> Self {
        PollReport {
            stop: Stop::Done,
            windows: 0,
            calls: 0,
            documents: 0,
            messages: 0,
            oversize: 0,
            unverified: 0,
            cursor: None,
        }
    }
}

/// A poll that failed; the cursor stays at the last completed window.
#[derive(Debug)]
pub enum PollError {
    /// The source failed after the client's retries.
    Source(CallError),
    /// The store or queue failed.
    Store(StoreError),
    /// The request could not be built (a scheme parameter failed to render) or asked nonsense.
    Request(String),
}

impl std::fmt::Display for PollError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PollError::Source(e) => write!(f, "source: {e}"),
            PollError::Store(e) => write!(f, "store: {e}"),
            PollError::Request(e) => write!(f, "request: {e}"),
        }
    }
}

impl std::error::Error for PollError {}

impl Classified for PollError {
    fn domain(&self) -> Domain {
        match self {
            PollError::Source(e) => e.domain(),
            PollError::Store(e) => e.domain(),
            PollError::Request(_) => Domain::User,
        }
    }
    fn retry_hint(&self) -> RetryHint {
        match self {
            PollError::Source(e) => e.retry_hint(),
            PollError::Store(e) => e.retry_hint(),
            PollError::Request(_) => RetryHint::Never,
        }
    }
}

impl From<StoreError> for PollError {
    fn from(e: StoreError) -> Self {
        PollError::Store(e)
    }
}

impl From<CallError> for PollError {
    fn from(e: CallError) -> Self {
        PollError::Source(e)
    }
}

/// Whether a window was queued whole.
enum Walked {
    Complete,
    OutOfTime,
    LeaseLost,
    /// Its documents never added up to its count.
    Unverified,
    /// More than [`MAX_WINDOW_PAGES`] pages: to be cut in two first (nothing was queued).
    TooBig,
}

impl<C, R, Q, A> Poller<'_, C, R, Q, A>
where
    C: CursorStore,
    R: RecordStore + HistoryLog,
    Q: PageQueue,
    A: SourceApi,
{
    /// Takes or renews the scheme's lease from `now`.
    async fn lease_from(&self, now: Timestamp) -> Result<bool, StoreError> {
        let span = jiff::SignedDuration::try_from(self.lease).unwrap_or_default();
        let until = now.saturating_add(span).expect("in range");
        self.cursors
            .take_lease(self.scheme.id(), &self.holder, now, until)
            .await
    }

    /// The scheduled poll: from the cursor to now, window by window.
    pub async fn run(&self, now: Timestamp) -> Result<PollReport, PollError> {
        let scheme = self.scheme.id();
        let mut report = PollReport::new();
        if !self.lease_from(now).await? {
            report.stop = Stop::Leased;
            return Ok(report);
        }
        let result = self.walk_from_cursor(now, &mut report).await;
        // Released even after a failure: the next run should not wait out the lease.
        let released = self.cursors.release(scheme, &self.holder).await;
        result?;
        released?;
        Ok(report)
    }

    async fn walk_from_cursor(
        &self,
        now: Timestamp,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        let scheme = self.scheme.id();
        let cursor = self.cursors.cursor(scheme).await?;
        if cursor.position.is_none()
            && self.first_start.is_none()
            && self.scheme.window.start.is_none()
        {
            // Reading only the last lookback would silently skip everything older.
            return Err(PollError::Request(format!(
                "scheme {scheme} never ran and names no start: set window.start in the scheme or \
                 the deployment's first start (FERRY_START, the template's FirstPollStart; `now` \
                 reads only what changes from now on)"
            )));
        }
        report.cursor = cursor
            .position
            .map(|p| crate::time::format_source(crate::time::to_beijing(p)));
        for window in plan(
            &self.scheme.window,
            cursor.position.or(self.first_start),
            now,
        ) {
            // Parts still to walk, the next one last.
            let mut parts = vec![window];
            while let Some(part) = parts.pop() {
                if self.out_of_time() {
                    report.stop = Stop::Budget;
                    return Ok(());
                }
                if !self.lease_from(Timestamp::now()).await? {
                    report.stop = Stop::LeaseLost;
                    return Ok(());
                }
                match self.walk(part, report, true).await? {
                    Walked::OutOfTime => {
                        report.stop = Stop::Budget;
                        return Ok(());
                    }
                    Walked::LeaseLost => {
                        report.stop = Stop::LeaseLost;
                        return Ok(());
                    }
                    Walked::Unverified => {
                        report.unverified += 1;
                        report.stop = Stop::Unverified;
                        return Ok(());
                    }
                    Walked::TooBig => {
                        let (first, second) = halves(part);
                        parts.push(second);
                        parts.push(first);
                        continue;
                    }
                    Walked::Complete => {}
                }
                if !self
                    .cursors
                    .advance(scheme, &self.holder, part.end, Timestamp::now())
                    .await?
                {
                    report.stop = Stop::LeaseLost;
                    return Ok(());
                }
                report.windows += 1;
                report.cursor = Some(part.end_text());
                tracing::debug!(scheme, window = %part, "window queued; cursor advanced");
            }
        }
        Ok(())
    }

    /// Whether the time left is within the reserve (the last page's send and the cursor's move).
    fn out_of_time(&self) -> bool {
        self.deadline.saturating_duration_since(Instant::now()) <= self.reserve
    }

    /// Re-reads `window` (cut to the API's span) and queues what it holds; the cursor stays put.
    pub async fn resync_window(&self, window: Window) -> Result<PollReport, PollError> {
        let mut report = PollReport::new();
        for part in window.split(self.scheme.window.max_span) {
            match self.walk(part, &mut report, false).await? {
                Walked::OutOfTime | Walked::LeaseLost => {
                    report.stop = Stop::Budget;
                    return Ok(report);
                }
                Walked::Unverified => {
                    report.unverified += 1;
                    report.stop = Stop::Unverified;
                }
                Walked::Complete | Walked::TooBig => report.windows += 1,
            }
        }
        Ok(report)
    }

    /// Looks documents up by the scheme's look-up keys (`trade_no`, `src_tid`, `src_order_no`...)
    /// and queues what it finds. Returns the report and the values nothing was found for.
    pub async fn resync_keys(
        &self,
        values: &[String],
    ) -> Result<(PollReport, Vec<String>), PollError> {
        let mut report = PollReport::new();
        let mut missing = Vec::new();
        for value in values {
            let (calls, found) = lookup(self.scheme, self.source, value).await?;
            report.calls += calls;
            if found.is_empty() {
                missing.push(value.clone());
                continue;
            }
            let documents = found.iter().map(raw).collect::<Vec<_>>();
            report.documents += documents.len() as u64;
            self.enqueue(None, 0, documents, &mut report).await?;
        }
        Ok((report, missing))
    }

    /// Pages one window drift-safely and queues its documents.
    ///
    /// Page 0 tells the count; then pages are read from the last back to 1, and page 0 once more.
    /// A document edited while the window is paged leaves it (its new time is past the window's end),
    /// which moves every later document one place down: pages already read are behind the reader,
    /// so nothing is skipped, and the final page 0 catches what slid into it after the first read.
    /// If the distinct documents seen are still fewer than the final count, the window is paged again.
    async fn walk(
        &self,
        window: Window,
        report: &mut PollReport,
        leased: bool,
    ) -> Result<Walked, PollError> {
        let size = page_size(self.scheme);
        // (key → version) already queued from this window: repeats are not queued twice.
        let mut queued: HashMap<String, String> = HashMap::new();
        for pass in 0..MAX_WINDOW_PASSES {
            let first = self.read(&window, 0, report).await?;
            let total = first.total_count.unwrap_or(first.documents.len() as u64);
            let pages = total.div_ceil(u64::from(size));
            // Only a scheduled poll cuts windows (its cursor moves part by part).
            let splittable = window.end.duration_since(window.start).as_secs() >= 2;
            if leased && pass == 0 && pages > MAX_WINDOW_PAGES && splittable {
                return Ok(Walked::TooBig);
            }
            let total = self
                .queue_page(&window, 0, first, report, &mut queued)
                .await?;
            let last_page = (total.saturating_sub(1) / u64::from(size)) as u32;
            let mut final_total = total;
            if last_page > 0 {
                for page in (1..=last_page).rev() {
                    if self.out_of_time() {
                        return Ok(Walked::OutOfTime);
                    }
                    if leased && !self.lease_from(Timestamp::now()).await? {
                        return Ok(Walked::LeaseLost);
                    }
                    self.fetch(&window, page, report, &mut queued).await?;
                }
                final_total = self.fetch(&window, 0, report, &mut queued).await?;
            }
            if queued.len() as u64 >= final_total {
                return Ok(Walked::Complete);
            }
            tracing::warn!(
                scheme = self.scheme.id(),
                window = %window,
                pass,
                seen = queued.len(),
                total = final_total,
                "documents moved while the window was paged; paging it again"
            );
            if self.out_of_time() {
                return Ok(Walked::OutOfTime);
            }
        }
        tracing::error!(
            scheme = self.scheme.id(),
            window = %window,
            passes = MAX_WINDOW_PASSES,
            "the window's documents never added up to its count; it stays open for the next run"
        );
        Ok(Walked::Unverified)
    }

    /// Reads and queues one page; returns the window's total as the page reported it (its own
    /// length if it reported none: only page 0's total is trusted).
    async fn fetch(
        &self,
        window: &Window,
        page_no: u32,
        report: &mut PollReport,
        queued: &mut HashMap<String, String>,
    ) -> Result<u64, PollError> {
        let page = self.read(window, page_no, report).await?;
        self.queue_page(window, page_no, page, report, queued).await
    }

    /// Reads one page.
    async fn read(
        &self,
        window: &Window,
        page_no: u32,
        report: &mut PollReport,
    ) -> Result<crate::engine::Page, PollError> {
        let params = page_params(self.scheme, window, page_no)?;
        report.calls += 1;
        Ok(self.source.query(&params).await?)
    }

    /// Queues a page read from `window`; returns the window's total as the page reported it.
    async fn queue_page(
        &self,
        window: &Window,
        page_no: u32,
        page: crate::engine::Page,
        report: &mut PollReport,
        queued: &mut HashMap<String, String>,
    ) -> Result<u64, PollError> {
        let key_field = self.scheme.mapper.key_field();
        let version_field = &self.scheme.config.source.version.value;
        let count = page.documents.len();
        let mut fresh = Vec::with_capacity(count);
        for doc in &page.documents {
            let key = scalar_text(doc.get(key_field));
            let version = scalar_text(doc.get(version_field.as_str()));
            // Documents without a key are queued anyway (push records them as failed with the
            // reason) and counted by their content, so the window's count still adds up.
            let key = key.unwrap_or_else(|| {
                let text = serde_json::to_string(doc).expect("a JSON value serialises");
                format!("\u{0}unkeyed:{}", super::push::content_hash(&text))
            });
            let version = version.unwrap_or_default();
            if queued.get(&key) == Some(&version) {
                continue;
            }
            queued.insert(key, version);
            fresh.push(raw(doc));
        }
        report.documents += fresh.len() as u64;
        self.enqueue(Some(*window), page_no, fresh, report).await?;
        (self.on_page)(&PageEvent {
            window: *window,
            page: page_no,
            documents: count,
            total: page.total_count,
        });
        Ok(page.total_count.unwrap_or(count as u64))
    }

    async fn enqueue(
        &self,
        window: Option<Window>,
        page: u32,
        documents: Vec<Box<RawValue>>,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        if documents.is_empty() {
            return Ok(());
        }
        let header = PageHeader {
            scheme: self.scheme.id().to_owned(),
            window: window.map(WindowText::from),
            page,
            fetched_at: Timestamp::now(),
            replay: self.replay,
        };
        let (bodies, oversize) = pack(
            &header,
            documents,
            self.queue.max_body(),
            self.message_documents,
        );
        report.messages += bodies.len() as u64;
        if !bodies.is_empty() {
            self.queue.send(bodies).await?;
        }
        for giant in oversize {
            report.oversize += 1;
            self.record_oversize(giant.document.get(), giant.bytes)
                .await?;
        }
        Ok(())
    }

    /// A document no message can carry is recorded as failed, so a person sees it.
    async fn record_oversize(&self, text: &str, bytes: usize) -> Result<(), PollError> {
        // Key, version and look-up value read as push reads them, so the record is the one push uses.
        let mapper = &self.scheme.mapper;
        let key_field = mapper.key_field();
        let doc = mapper.parse(text).ok();
        let key = doc.as_ref().and_then(|d| mapper.document_key(d));
        let (Some(doc), Some(key)) = (doc, key.filter(|k| !k.is_empty())) else {
            tracing::error!(
                scheme = self.scheme.id(),
                bytes,
                "a document without {key_field} is too large to queue"
            );
            return Ok(());
        };
        let now = Timestamp::now();
        for _ in 0..3 {
            let mut record = self
                .records
                .record(self.scheme.id(), &key)
                .await?
                .unwrap_or_else(|| SyncRecord::new(self.scheme.id(), &key, now));
            record.state = RecordState::Failed;
            record.version = mapper.document_version(&doc).unwrap_or_default();
            record.hash = format!("oversize:{bytes}");
            let reason = format!(
                "document {key_field}={key} is {bytes} bytes, more than a queue message can carry ({} bytes)",
                self.queue.max_body()
            );
            record.last_error = Some(reason.clone());
            record.lookup = mapper.document_lookup(&doc).unwrap_or_default();
            record.updated_at = now;
            if self.records.put(&record).await? {
                self.records
                    .append(vec![Event {
                        scheme: self.scheme.id().to_owned(),
                        key,
                        at: now,
                        what: "failed".into(),
                        detail: format!("fetched but not queued: {reason}"),
                        target_id: None,
                        body: None,
                    }])
                    .await?;
                break;
            }
        }
        Ok(())
    }
}

/// A window of two seconds or more cut in two at its middle second (the halves share it, as split
/// windows do).
fn halves(window: Window) -> (Window, Window) {
    let span = window.end.duration_since(window.start);
    let middle = window
        .start
        .saturating_add(jiff::SignedDuration::from_secs(span.as_secs() / 2))
        .expect("in range");
    (
        Window::new(window.start, middle).expect("ordered"),
        Window::new(middle, window.end).expect("ordered"),
    )
}

/// A document's field as text (a source may send ids as numbers or as strings).
fn scalar_text(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn raw(doc: &serde_json::Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(doc).expect("a JSON value serialises")
}

/// The source API's page size for `scheme` (100 unless the scheme says).
fn page_size(scheme: &Scheme) -> u32 {
    scheme
        .config
        .source
        .page_size
        .as_ref()
        .map_or(100, |s| s.value)
}

/// The source call's parameters for one page of `window`.
fn page_params(
    scheme: &Scheme,
    window: &Window,
    page_no: u32,
) -> Result<Vec<(String, String)>, PollError> {
    scheme
        .mapper
        .render_params(&PageRequest {
            window_start: window.start_text(),
            window_end: window.end_text(),
            page_size: page_size(scheme),
            page_no,
        })
        .map_err(|e| PollError::Request(format!("{}: {}", e.path, e.reason)))
}

/// The source's documents whose look-up field (each of the scheme's `lookup_keys`, in order,
/// until one answers) is `value`, and the calls it took. A look-up ignores the window, but the
/// request must still carry a valid one.
pub async fn lookup<A: SourceApi>(
    scheme: &Scheme,
    source: &A,
    value: &str,
) -> Result<(u64, Vec<serde_json::Value>), PollError> {
    let lookup_keys: Vec<&str> = scheme
        .config
        .source
        .lookup_keys
        .iter()
        .map(|k| k.value.as_str())
        .collect();
    if lookup_keys.is_empty() {
        return Err(PollError::Request(format!(
            "scheme {} declares no lookup_keys, so documents cannot be asked for by key",
            scheme.id()
        )));
    }
    let end = Timestamp::now();
    let window = Window::new(
        end.saturating_sub(jiff::SignedDuration::from_mins(30))
            .expect("in range"),
        end,
    )
    .expect("ordered");
    let mut calls = 0;
    for field in &lookup_keys {
        let mut params = page_params(scheme, &window, 0)?;
        params.retain(|(name, _)| !lookup_keys.contains(&name.as_str()));
        params.push(((*field).to_owned(), value.to_owned()));
        calls += 1;
        let page = source.query(&params).await?;
        if !page.documents.is_empty() {
            return Ok((calls, page.documents));
        }
    }
    Ok((calls, Vec::new()))
}

/// Every document of `scheme` in `window` (cut to the API's span), read without queueing anything
/// and without touching cursor or records: what reconciliation counts. One entry per key, its
/// latest version; documents without a key are kept too, for the caller to report.
pub async fn scan(
    scheme: &Scheme,
    source: &impl SourceApi,
    window: Window,
) -> Result<Vec<serde_json::Value>, PollError> {
    let key_field = scheme.mapper.key_field();
    let size = u64::from(page_size(scheme));
    let mut seen: HashMap<String, serde_json::Value> = HashMap::new();
    let mut unkeyed = Vec::new();
    for part in window.split(scheme.window.max_span) {
        let mut page_no = 0;
        // A source may report the window's total on page 0 only; later pages omit it or say -1.
        let mut total = 0;
        loop {
            let page = source.query(&page_params(scheme, &part, page_no)?).await?;
            if page_no == 0 {
                total = page.total_count.unwrap_or(page.documents.len() as u64);
            }
            for doc in page.documents {
                match scalar_text(doc.get(key_field)) {
                    Some(key) => {
                        seen.insert(key, doc);
                    }
                    None => unkeyed.push(doc),
                }
            }
            page_no += 1;
            if u64::from(page_no) * size >= total {
                break;
            }
        }
    }
    let mut documents: Vec<serde_json::Value> = seen.into_values().collect();
    documents.extend(unkeyed);
    Ok(documents)
}

#[cfg(test)]
#[path = "poll_tests.rs"]
mod tests;
