//! In-memory adapters of every engine port (cursor, record, history, queue) and of a target:
//! the exactly-once core's unit tests run on them in milliseconds, with no HTTP, SQLite or AWS.
//!
//! They are adapters beside the real ones, not mocks: [`MemoryStore`] keeps the same
//! compare-and-swap promise as the SQLite and DynamoDB stores, [`MemoryQueue`] the same SQS
//! semantics as the embedded queue, and [`MemoryTarget`] holds bills the way a target does (numbers
//! unique, ids stable, an idempotency key answering with its first success). What they add is a few
//! hooks a test needs to reach a branch that real services reach only by bad luck: a write another
//! pusher wins, a store that fails, an answer lost after the write committed.
//!
//! Every lock is a std `Mutex` taken and released inside one synchronous step, never across an
//! `.await`, so the adapters are safe on any runtime.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use crate::Scheme;
use crate::connector::{CallError, FailureClass, Saved};
use crate::engine::{
    Addressed, Bill, Cursor, CursorStore, DeadLetter, Delivery, Event, HistoryLog, PageQueue,
    RecordQueries, RecordState, RecordStore, StoreError, SyncRecord, TargetApi,
};
use crate::mapping::functions::md5_of;

/// Locks `mutex`, carrying on past a panicked holder: the adapters' state is plain data that a
/// panic cannot leave half-written in a way the next test would mind.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// `now + duration`, saturating instead of panicking on an absurd duration.
fn after(now: Timestamp, duration: Duration) -> Timestamp {
    let span = jiff::SignedDuration::try_from(duration).unwrap_or(jiff::SignedDuration::MAX);
    now.saturating_add(span).unwrap_or(Timestamp::MAX)
}

// ------------------------------------------------------------------------------------------------
// The store: cursors, records and history.
// ------------------------------------------------------------------------------------------------

/// What a trapped record write does instead of writing.
#[derive(Clone, Debug)]
enum Trap {
    /// Another pusher wrote first: the stored revision moves on and the write is refused.
    Lose,
    /// The store fails.
    Fail(String),
}

/// A trap set on one document's record writes: it springs on the write after `skip` more.
#[derive(Clone, Debug)]
struct Armed {
    scheme: String,
    key: String,
    skip: usize,
    trap: Trap,
}

#[derive(Default)]
struct StoreState {
    cursors: HashMap<String, Cursor>,
    records: BTreeMap<(String, String), SyncRecord>,
    events: Vec<Event>,
    traps: Vec<Armed>,
}

/// Cursors, sync records and history in memory: a [`CursorStore`], [`RecordStore`],
/// [`RecordQueries`] and [`HistoryLog`] with the SQLite store's semantics, plus hooks that let a
/// unit test lose a record write to an imaginary second pusher or fail the store.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<StoreState>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// The stored record of `key`, read at once (the [`RecordStore`] read, without a future).
    pub fn stored(&self, scheme: &str, key: &str) -> Option<SyncRecord> {
        lock(&self.state)
            .records
            .get(&(scheme.to_owned(), key.to_owned()))
            .cloned()
    }

    /// Every stored record, in scheme and key order.
    pub fn all_records(&self) -> Vec<SyncRecord> {
        lock(&self.state).records.values().cloned().collect()
    }

    /// Stores `record` as it is, without compare-and-swap: the state another pusher, an older
    /// Ferry or a crash left behind. A revision of `0` is stored as `1` (a stored record has been
    /// written once), so the engine's next write must name the stored revision as always.
    pub fn insert(&self, mut record: SyncRecord) {
        record.revision = record.revision.max(1);
        lock(&self.state)
            .records
            .insert((record.scheme.clone(), record.key.clone()), record);
    }

    /// Changes the stored record of `key` in place (a lapsed claim, a note from an older run),
    /// bumping its revision as any write does; `false` if there is no such record.
    pub fn edit(&self, scheme: &str, key: &str, change: impl FnOnce(&mut SyncRecord)) -> bool {
        let mut state = lock(&self.state);
        match state.records.get_mut(&(scheme.to_owned(), key.to_owned())) {
            Some(record) => {
                change(record);
                record.revision += 1;
                true
            }
            None => false,
        }
    }

    /// Makes one write of `key`'s record lose, as if another pusher had written it first: the
    /// write after `skip` more that succeed is refused (`put` answers `false`) and the stored
    /// revision moves on (nothing is stored when there is no record yet). Traps on one key spring
    /// in the order they were set.
    pub fn lose_put(&self, scheme: &str, key: &str, skip: usize) {
        self.arm(scheme, key, skip, Trap::Lose);
    }

    /// Makes one write of `key`'s record fail with a [`StoreError`] (a disk, database or network
    /// failure): the write after `skip` more that succeed.
    pub fn fail_put(&self, scheme: &str, key: &str, skip: usize) {
        self.arm(
            scheme,
            key,
            skip,
            Trap::Fail("the memory store was told to fail".into()),
        );
    }

    fn arm(&self, scheme: &str, key: &str, skip: usize, trap: Trap) {
        lock(&self.state).traps.push(Armed {
            scheme: scheme.to_owned(),
            key: key.to_owned(),
            skip,
            trap,
        });
    }

    /// Every history event appended, in order.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.state).events.clone()
    }

    fn put_now(&self, record: &SyncRecord) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        let id = (record.scheme.clone(), record.key.clone());
        // Only the first trap set on the key counts down: traps spring in order.
        if let Some(index) = state
            .traps
            .iter()
            .position(|t| t.scheme == record.scheme && t.key == record.key)
        {
            if state.traps[index].skip > 0 {
                state.traps[index].skip -= 1;
            } else {
                let armed = state.traps.remove(index);
                return match armed.trap {
                    Trap::Lose => {
                        if let Some(stored) = state.records.get_mut(&id) {
                            stored.revision += 1;
                        }
                        Ok(false)
                    }
                    Trap::Fail(message) => Err(StoreError::new(
                        format!("save record {}/{}", record.scheme, record.key),
                        message,
                    )),
                };
            }
        }
        let stored = state.records.get(&id).map_or(0, |r| r.revision);
        if stored != record.revision {
            return Ok(false);
        }
        let mut written = record.clone();
        written.revision += 1;
        state.records.insert(id, written);
        Ok(true)
    }

    fn select(
        &self,
        scheme: &str,
        keep: impl Fn(&SyncRecord) -> bool,
        newest_first: bool,
        limit: usize,
    ) -> Vec<SyncRecord> {
        let state = lock(&self.state);
        let mut found: Vec<SyncRecord> = state
            .records
            .values()
            .filter(|r| r.scheme == scheme && keep(r))
            .cloned()
            .collect();
        found.sort_by_key(|r| r.updated_at);
        if newest_first {
            found.reverse();
        }
        found.truncate(limit);
        found
    }
}

impl CursorStore for MemoryStore {
    async fn cursor(&self, scheme: &str) -> Result<Cursor, StoreError> {
        Ok(lock(&self.state)
            .cursors
            .get(scheme)
            .cloned()
            .unwrap_or_default())
    }

    async fn take_lease(
        &self,
        scheme: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        let cursor = state
            .cursors
            .entry(scheme.to_owned())
            .or_insert_with(|| Cursor {
                position: None,
                holder: None,
                lease_until: None,
                updated_at: None,
            });
        let free = match &cursor.holder {
            None => true,
            Some(h) => h == holder || cursor.lease_until.is_some_and(|t| t <= now),
        };
        if free {
            cursor.holder = Some(holder.to_owned());
            cursor.lease_until = Some(until);
        }
        Ok(free)
    }

    async fn advance(
        &self,
        scheme: &str,
        holder: &str,
        position: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut state = lock(&self.state);
        // A lapsed lease nobody took over still counts: only the holder's name is checked.
        match state.cursors.get_mut(scheme) {
            Some(cursor) if cursor.holder.as_deref() == Some(holder) => {
                cursor.position = Some(position);
                cursor.updated_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, scheme: &str, holder: &str) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        if let Some(cursor) = state.cursors.get_mut(scheme)
            && cursor.holder.as_deref() == Some(holder)
        {
            cursor.holder = None;
            cursor.lease_until = None;
        }
        Ok(())
    }
}

impl RecordStore for MemoryStore {
    async fn record(&self, scheme: &str, key: &str) -> Result<Option<SyncRecord>, StoreError> {
        Ok(self.stored(scheme, key))
    }

    async fn put(&self, record: &SyncRecord) -> Result<bool, StoreError> {
        self.put_now(record)
    }

    async fn list(
        &self,
        scheme: &str,
        state: Option<RecordState>,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, StoreError> {
        Ok(self.select(scheme, |r| state.is_none_or(|s| r.state == s), false, limit))
    }
}

impl RecordQueries for MemoryStore {
    async fn recent(
        &self,
        scheme: &str,
        state: RecordState,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, StoreError> {
        Ok(self.select(scheme, |r| r.state == state, true, limit))
    }

    async fn find_by_number(
        &self,
        scheme: &str,
        text: &str,
    ) -> Result<Vec<SyncRecord>, StoreError> {
        Ok(self.select(
            scheme,
            |r| r.number == text || r.lookup == text,
            false,
            usize::MAX,
        ))
    }

    async fn counts(&self, scheme: &str) -> Result<Vec<(RecordState, u64)>, StoreError> {
        let state = lock(&self.state);
        Ok(RecordState::ALL
            .into_iter()
            .map(|s| {
                let n = state
                    .records
                    .values()
                    .filter(|r| r.scheme == scheme && r.state == s)
                    .count() as u64;
                (s, n)
            })
            .filter(|(_, n)| *n > 0)
            .collect())
    }
}

impl HistoryLog for MemoryStore {
    async fn append(&self, events: Vec<Event>) -> Result<(), StoreError> {
        lock(&self.state).events.extend(events);
        Ok(())
    }

    async fn history(
        &self,
        scheme: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let state = lock(&self.state);
        let mine: Vec<&Event> = state
            .events
            .iter()
            .filter(|e| e.scheme == scheme && e.key == key)
            .collect();
        let skip = mine.len().saturating_sub(limit);
        Ok(mine.into_iter().skip(skip).cloned().collect())
    }
}

// ------------------------------------------------------------------------------------------------
// The queue.
// ------------------------------------------------------------------------------------------------

struct Message {
    id: u64,
    body: String,
    visible_at: Timestamp,
    receive_count: u32,
    receipt: Option<String>,
    dead_at: Option<Timestamp>,
}

#[derive(Default)]
struct QueueState {
    next_id: u64,
    next_receipt: u64,
    messages: Vec<Message>,
}

/// A page queue in memory with SQS semantics, as the embedded queue has them: a receive hides a
/// message for the visibility timeout and counts the delivery; a message already received
/// `max_receives` times goes to the dead-letter queue at its next receive instead; a hand-back
/// replaces the body and starts the count again; a stale receipt (the message was received again
/// since) changes nothing.
pub struct MemoryQueue {
    max_receives: u32,
    max_body: usize,
    state: Mutex<QueueState>,
}

impl Default for MemoryQueue {
    fn default() -> Self {
        MemoryQueue::new(crate::engine::DEFAULT_MAX_RECEIVES)
    }
}

impl MemoryQueue {
    /// An empty queue dead-lettering after `max_receives` deliveries (at least one).
    pub fn new(max_receives: u32) -> MemoryQueue {
        MemoryQueue {
            max_receives: max_receives.max(1),
            max_body: crate::engine::MAX_MESSAGE_BYTES,
            state: Mutex::new(QueueState::default()),
        }
    }

    /// The same queue taking bodies of at most `bytes` (to reach the oversize paths with small
    /// documents).
    pub fn with_max_body(mut self, bytes: usize) -> MemoryQueue {
        self.max_body = bytes;
        self
    }

    /// The bodies waiting or in flight (not dead), oldest first, without receiving them.
    pub fn bodies(&self) -> Vec<String> {
        lock(&self.state)
            .messages
            .iter()
            .filter(|m| m.dead_at.is_none())
            .map(|m| m.body.clone())
            .collect()
    }

    fn receive_now(&self, max: usize, visibility: Duration) -> Vec<Delivery> {
        let now = Timestamp::now();
        let mut state = lock(&self.state);
        let QueueState {
            next_receipt,
            messages,
            ..
        } = &mut *state;
        // Oldest visible first, as the SQL's `ORDER BY visible_at, id`.
        let mut ready: Vec<usize> = (0..messages.len())
            .filter(|&i| messages[i].dead_at.is_none() && messages[i].visible_at <= now)
            .collect();
        ready.sort_by_key(|&i| (messages[i].visible_at, messages[i].id));
        let mut out = Vec::new();
        for i in ready {
            if out.len() == max {
                break;
            }
            let message = &mut messages[i];
            if message.receive_count >= self.max_receives {
                // Received its maximum number of times: moved to the dead-letter queue.
                message.dead_at = Some(now);
                continue;
            }
            *next_receipt += 1;
            let receipt = format!("{}:{}", message.id, next_receipt);
            message.receive_count += 1;
            message.visible_at = after(now, visibility);
            message.receipt = Some(receipt.clone());
            out.push(Delivery {
                id: message.id.to_string(),
                receipt,
                body: message.body.clone(),
                receive_count: message.receive_count,
            });
        }
        out
    }

    /// The live message `receipt` is the current handle of, to change.
    fn with_receipt(&self, receipt: &str, change: impl FnOnce(&mut Message)) {
        let mut state = lock(&self.state);
        if let Some(message) = state
            .messages
            .iter_mut()
            .find(|m| m.dead_at.is_none() && m.receipt.as_deref() == Some(receipt))
        {
            change(message);
        }
    }
}

impl PageQueue for MemoryQueue {
    fn max_body(&self) -> usize {
        self.max_body
    }

    async fn send(&self, bodies: Vec<String>) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let mut state = lock(&self.state);
        for body in bodies {
            state.next_id += 1;
            let id = state.next_id;
            state.messages.push(Message {
                id,
                body,
                visible_at: now,
                receive_count: 0,
                receipt: None,
                dead_at: None,
            });
        }
        Ok(())
    }

    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Delivery>, StoreError> {
        Ok(self.receive_now(max, visibility))
    }

    async fn delete(&self, receipt: &str) -> Result<(), StoreError> {
        lock(&self.state)
            .messages
            .retain(|m| m.receipt.as_deref() != Some(receipt));
        Ok(())
    }

    async fn retry_after(&self, receipt: &str, delay: Duration) -> Result<(), StoreError> {
        let at = after(Timestamp::now(), delay);
        self.with_receipt(receipt, |m| m.visible_at = at);
        Ok(())
    }

    async fn hand_back(
        &self,
        receipt: &str,
        body: String,
        delay: Duration,
    ) -> Result<(), StoreError> {
        let at = after(Timestamp::now(), delay);
        // Body, visibility and count change together: slow work never counts toward the DLQ.
        self.with_receipt(receipt, |m| {
            m.body = body;
            m.visible_at = at;
            m.receive_count = 0;
            m.receipt = None;
        });
        Ok(())
    }

    async fn depth(&self) -> Result<u64, StoreError> {
        Ok(lock(&self.state)
            .messages
            .iter()
            .filter(|m| m.dead_at.is_none())
            .count() as u64)
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let state = lock(&self.state);
        let mut dead: Vec<DeadLetter> = state
            .messages
            .iter()
            .filter_map(|m| {
                Some(DeadLetter {
                    id: m.id.to_string(),
                    body: m.body.clone(),
                    receive_count: m.receive_count,
                    dead_at: m.dead_at?,
                })
            })
            .collect();
        dead.sort_by(|a, b| (a.dead_at, &a.id).cmp(&(b.dead_at, &b.id)));
        Ok(dead)
    }

    async fn redrive(&self) -> Result<u64, StoreError> {
        let now = Timestamp::now();
        let mut state = lock(&self.state);
        let mut moved = 0;
        for m in state.messages.iter_mut().filter(|m| m.dead_at.is_some()) {
            m.dead_at = None;
            m.receive_count = 0;
            m.visible_at = now;
            m.receipt = None;
            moved += 1;
        }
        Ok(moved)
    }
}

// ------------------------------------------------------------------------------------------------
// The target.
// ------------------------------------------------------------------------------------------------

/// How long a [`MemoryTarget`] built for a scheme with an idempotency key remembers a key's first
/// success (Yonyou's default `resubmit_window`).
pub const DEFAULT_REPEAT_WINDOW: Duration = Duration::from_secs(3600);

/// One answer a [`MemoryTarget`] operation is scripted to give.
#[derive(Clone, Debug)]
pub enum Answer<T> {
    /// Do what a target would with the bills it holds (the answer once a script is spent).
    Real,
    /// Answer this, whatever the bills say, changing nothing.
    Give(T),
    /// Fail with this error; nothing is applied.
    Fail(CallError),
    /// Do what a target would, then fail with this error anyway: the write committed but its
    /// answer was lost (a timeout after sending, a cut connection, an unreadable answer).
    Lose(CallError),
}

/// The operations of a target, as [`MemoryTarget::ops`] lists the calls made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// [`TargetApi::send`].
    Send,
    /// [`TargetApi::find`].
    Find,
    /// [`TargetApi::address`].
    Address,
    /// [`TargetApi::kept`].
    Kept,
}

/// One call a [`MemoryTarget`] received, with what it was given.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    /// A write, with its exact body.
    Send(Value),
    /// A look-up by number.
    Find(String),
    /// An update being addressed to `bill`.
    Address {
        /// The mapped body.
        body: Value,
        /// The bill, as the caller knew it.
        bill: Bill,
    },
    /// A question whether bill `id` still holds `lines`.
    Kept {
        /// The bill's id.
        id: String,
        /// The line ids asked about.
        lines: Vec<String>,
    },
}

impl Call {
    /// Which operation it was.
    pub fn op(&self) -> Op {
        match self {
            Call::Send(_) => Op::Send,
            Call::Find(_) => Op::Find,
            Call::Address { .. } => Op::Address,
            Call::Kept { .. } => Op::Kept,
        }
    }
}

/// A bill a [`MemoryTarget`] holds.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryBill {
    /// The target's id (`B1`, `B2`...).
    pub id: String,
    /// Its number.
    pub number: String,
    /// The body of the last write that landed on it, as sent.
    pub body: Value,
    /// Its lines' ids, in order.
    pub lines: Vec<String>,
}

/// The answers still scripted for one operation, and the one given once they are spent.
struct Script<T> {
    next: VecDeque<Answer<T>>,
    otherwise: Answer<T>,
}

impl<T: Clone> Script<T> {
    fn take(&mut self) -> Answer<T> {
        self.next
            .pop_front()
            .unwrap_or_else(|| self.otherwise.clone())
    }
}

impl<T> Default for Script<T> {
    fn default() -> Self {
        Script {
            next: VecDeque::new(),
            otherwise: Answer::Real,
        }
    }
}

#[derive(Default)]
struct TargetState {
    bills: Vec<MemoryBill>,
    next_bill: u64,
    next_line: u64,
    /// Idempotency key → the first success it answered, and when.
    keys: HashMap<String, (Saved, std::time::Instant)>,
    sends: Script<Saved>,
    finds: Script<Option<Bill>>,
    addresses: Script<Addressed>,
    kept: Script<bool>,
    calls: Vec<Call>,
}

/// A scripted target holding bills in memory: a [`TargetApi`] that creates, updates and finds
/// bills as a target would, answers a repeated idempotency key inside its window with the first
/// success, and gives whatever answers a test scripts first (a refusal of any class, an answer lost
/// after the write committed, a look-up that fails). Every call is recorded, so a test can say
/// which calls were made, and that none was.
///
/// The body's shape comes from construction: where the header is (the envelope), which header field
/// holds the bill number (else the number is the md5 of the whole body, so every distinct body is
/// its own bill), the line list, and the idempotency key's field. An update names its bill by an
/// `id` in the header (what [`TargetApi::address`] adds) and its lines by their `id`s; a line marked
/// `_status: Delete` is removed.
pub struct MemoryTarget {
    /// JSON pointer to the header inside a body (`""`, or `/data` for an envelope).
    header: String,
    number: Option<String>,
    lines: Option<String>,
    key: Option<String>,
    window: Option<Duration>,
    keeps_left_out: bool,
    latency: Duration,
    state: Mutex<TargetState>,
}

impl Default for MemoryTarget {
    fn default() -> Self {
        MemoryTarget::new()
    }
}

/// A failure of `class` from the memory target, with `message` (what a scripted refusal says).
pub fn call_error(class: FailureClass, message: &str) -> CallError {
    CallError {
        class,
        service: "memory",
        operation: "target".into(),
        code: None,
        message: message.to_owned(),
        retry_after: None,
    }
}

impl MemoryTarget {
    /// A target of bare bodies numbered by the md5 of the body, without lines or idempotency key.
    pub fn new() -> MemoryTarget {
        MemoryTarget {
            header: String::new(),
            number: None,
            lines: None,
            key: None,
            window: None,
            keeps_left_out: false,
            latency: Duration::ZERO,
            state: Mutex::new(TargetState::default()),
        }
    }

    /// A target shaped as `scheme`'s target API is: its envelope, number field, line list and
    /// idempotency key, with [`DEFAULT_REPEAT_WINDOW`] when it has a key.
    pub fn for_scheme(scheme: &Scheme) -> MemoryTarget {
        let api = scheme.target_api;
        let spec = scheme.target_spec();
        MemoryTarget {
            header: api
                .envelope
                .as_ref()
                .map_or_else(String::new, |e| format!("/{e}")),
            number: Some(spec.number.clone()),
            lines: Some(spec.lines.clone()),
            key: api.idempotency_key.clone(),
            window: api.idempotency_key.as_ref().map(|_| DEFAULT_REPEAT_WINDOW),
            ..MemoryTarget::new()
        }
    }

    /// The same target numbering bills by the header field `field`.
    pub fn numbered_by(mut self, field: &str) -> MemoryTarget {
        self.number = Some(field.to_owned());
        self
    }

    /// The same target with `window` as its idempotency key's window (`None`: a repeat is a new
    /// write, as if the key had no window at all).
    pub fn with_repeat_window(mut self, window: Option<Duration>) -> MemoryTarget {
        self.window = window;
        self
    }

    /// The same target keeping lines an update leaves out (Kingdee's modify), instead of dropping
    /// them.
    pub fn keeping_left_out_lines(mut self) -> MemoryTarget {
        self.keeps_left_out = true;
        self
    }

    /// The same target taking `latency` over every send (for deadlines and same-key turns).
    pub fn with_latency(mut self, latency: Duration) -> MemoryTarget {
        self.latency = latency;
        self
    }

    /// Scripts the next sends' answers, in order, after those scripted already.
    pub fn answer_sends(&self, answers: impl IntoIterator<Item = Answer<Saved>>) {
        lock(&self.state).sends.next.extend(answers);
    }

    /// The answer of every send once the scripted ones are spent (by default [`Answer::Real`]).
    pub fn answer_every_send(&self, answer: Answer<Saved>) {
        lock(&self.state).sends.otherwise = answer;
    }

    /// Scripts the next look-ups' answers.
    pub fn answer_finds(&self, answers: impl IntoIterator<Item = Answer<Option<Bill>>>) {
        lock(&self.state).finds.next.extend(answers);
    }

    /// Scripts the next addressings' answers.
    pub fn answer_addresses(&self, answers: impl IntoIterator<Item = Answer<Addressed>>) {
        lock(&self.state).addresses.next.extend(answers);
    }

    /// Scripts the next answers to whether a bill kept lines.
    pub fn answer_kept(&self, answers: impl IntoIterator<Item = Answer<bool>>) {
        lock(&self.state).kept.next.extend(answers);
    }

    /// Every call received, in order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.state).calls.clone()
    }

    /// The operations of the calls received, in order.
    pub fn ops(&self) -> Vec<Op> {
        lock(&self.state).calls.iter().map(Call::op).collect()
    }

    /// The calls received so far, forgotten: what a test set up is not counted against the branch
    /// it pins.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut lock(&self.state).calls)
    }

    /// The bodies of every send received, in order (refused ones too).
    pub fn sent(&self) -> Vec<Value> {
        lock(&self.state)
            .calls
            .iter()
            .filter_map(|c| match c {
                Call::Send(wire) => Some(wire.clone()),
                _ => None,
            })
            .collect()
    }

    /// The bills held, oldest first.
    pub fn bills(&self) -> Vec<MemoryBill> {
        lock(&self.state).bills.clone()
    }

    /// Bill `id`, if held.
    pub fn bill(&self, id: &str) -> Option<MemoryBill> {
        lock(&self.state).bills.iter().find(|b| b.id == id).cloned()
    }

    /// Puts a bill of `body` in the target as a person (or a lost write) would have: numbered as the
    /// body says, with a line id per line. Returns its id.
    pub fn insert_bill(&self, body: &Value) -> String {
        let number = self.number(body);
        let count = self.line_values(body).map_or(0, Vec::len);
        let mut state = lock(&self.state);
        let lines = (0..count).map(|_| new_line(&mut state)).collect();
        let id = new_bill(&mut state);
        state.bills.push(MemoryBill {
            id: id.clone(),
            number,
            body: body.clone(),
            lines,
        });
        id
    }

    fn header_of<'a>(&self, body: &'a Value) -> Option<&'a Value> {
        body.pointer(&self.header)
    }

    fn header_mut<'a>(&self, body: &'a mut Value) -> Option<&'a mut Value> {
        body.pointer_mut(&self.header)
    }

    fn line_values<'a>(&self, body: &'a Value) -> Option<&'a Vec<Value>> {
        let field = self.lines.as_deref()?;
        self.header_of(body)?.get(field)?.as_array()
    }

    /// The idempotency key a body carries, if any.
    fn key_of(&self, wire: &Value) -> Option<String> {
        let field = self.key.as_deref()?;
        self.header_of(wire)?
            .get(field)?
            .as_str()
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
    }

    fn record(&self, call: Call) {
        lock(&self.state).calls.push(call);
    }

    /// What a target does with a write: repeat a remembered key's first success, else update the
    /// bill the header names, else create a bill (refusing a number already taken).
    fn apply(&self, wire: &Value) -> Result<Saved, CallError> {
        let key = self.key_of(wire);
        let number = self.number(wire);
        let named = self
            .header_of(wire)
            .and_then(|h| h.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let lines_in: Vec<Value> = self.line_values(wire).cloned().unwrap_or_default();
        let mut state = lock(&self.state);
        if let (Some(key), Some(window)) = (&key, self.window)
            && let Some((first, at)) = state.keys.get(key)
            && at.elapsed() < window
        {
            return Ok(Saved {
                repeat: true,
                ..first.clone()
            });
        }
        let saved = match named {
            Some(id) => {
                let Some(index) = state.bills.iter().position(|b| b.id == id) else {
                    return Err(call_error(
                        FailureClass::Permanent,
                        &format!("no bill {id} to update"),
                    ));
                };
                let old = state.bills[index].lines.clone();
                let mut lines = Vec::new();
                for line in &lines_in {
                    if line.get("_status").and_then(Value::as_str) == Some("Delete") {
                        continue;
                    }
                    match line.get("id").and_then(Value::as_str) {
                        Some(id) if old.iter().any(|l| l == id) => lines.push(id.to_owned()),
                        _ => lines.push(new_line(&mut state)),
                    }
                }
                if self.keeps_left_out {
                    let deleted: Vec<&str> = lines_in
                        .iter()
                        .filter(|l| l.get("_status").and_then(Value::as_str) == Some("Delete"))
                        .filter_map(|l| l.get("id").and_then(Value::as_str))
                        .collect();
                    let kept: Vec<String> = old
                        .iter()
                        .filter(|l| !lines.contains(l) && !deleted.contains(&l.as_str()))
                        .cloned()
                        .collect();
                    lines.extend(kept);
                }
                let bill = &mut state.bills[index];
                bill.body = wire.clone();
                bill.lines = lines.clone();
                Saved {
                    target_id: id,
                    repeat: false,
                    lines: Some(lines),
                }
            }
            None => {
                if !number.is_empty() && state.bills.iter().any(|b| b.number == number) {
                    return Err(call_error(
                        FailureClass::Permanent,
                        &format!("bill number {number} exists already"),
                    ));
                }
                let lines: Vec<String> = lines_in.iter().map(|_| new_line(&mut state)).collect();
                let id = new_bill(&mut state);
                state.bills.push(MemoryBill {
                    id: id.clone(),
                    number,
                    body: wire.clone(),
                    lines: lines.clone(),
                });
                Saved {
                    target_id: id,
                    repeat: false,
                    lines: Some(lines),
                }
            }
        };
        // Only successes are remembered, as Yonyou's resubmitCheckKey does.
        if let Some(key) = key {
            state
                .keys
                .insert(key, (saved.clone(), std::time::Instant::now()));
        }
        Ok(saved)
    }

    fn find_now(&self, number: &str) -> Option<Bill> {
        if number.is_empty() {
            return None;
        }
        lock(&self.state)
            .bills
            .iter()
            .find(|b| b.number == number)
            .map(|b| Bill {
                id: b.id.clone(),
                lines: Some(b.lines.clone()),
            })
    }

    fn address_now(&self, body: &Value, bill: &Bill) -> Result<Addressed, CallError> {
        let existing = match &bill.lines {
            Some(lines) => lines.clone(),
            None => match self.bill(&bill.id) {
                Some(held) => held.lines,
                None => {
                    return Err(call_error(
                        FailureClass::Permanent,
                        &format!("no bill {} to read", bill.id),
                    ));
                }
            },
        };
        let mut wire = body.clone();
        let mut left_out = Vec::new();
        if let Some(header) = self.header_mut(&mut wire) {
            header["id"] = Value::String(bill.id.clone());
            if let Some(field) = self.lines.as_deref()
                && let Some(lines) = header.get_mut(field).and_then(Value::as_array_mut)
            {
                for (line, id) in lines.iter_mut().zip(&existing) {
                    line["id"] = Value::String(id.clone());
                }
                left_out = existing.iter().skip(lines.len()).cloned().collect();
            }
        }
        Ok(Addressed { wire, left_out })
    }
}

fn new_bill(state: &mut TargetState) -> String {
    state.next_bill += 1;
    format!("B{}", state.next_bill)
}

fn new_line(state: &mut TargetState) -> String {
    state.next_line += 1;
    format!("L{}", state.next_line)
}

impl TargetApi for MemoryTarget {
    fn number(&self, body: &Value) -> String {
        let Some(field) = &self.number else {
            return md5_of(&body.to_string());
        };
        match self.header_of(body).and_then(|h| h.get(field)) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        }
    }

    async fn send(&self, wire: &Value) -> Result<Saved, CallError> {
        self.record(Call::Send(wire.clone()));
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let answer = lock(&self.state).sends.take();
        match answer {
            Answer::Real => self.apply(wire),
            Answer::Give(saved) => Ok(saved),
            Answer::Fail(e) => Err(e),
            Answer::Lose(e) => {
                // Whatever the write did, its answer never arrives.
                let _ = self.apply(wire);
                Err(e)
            }
        }
    }

    async fn address(&self, body: &Value, bill: &Bill) -> Result<Addressed, CallError> {
        self.record(Call::Address {
            body: body.clone(),
            bill: bill.clone(),
        });
        let answer = lock(&self.state).addresses.take();
        match answer {
            Answer::Real => self.address_now(body, bill),
            Answer::Give(addressed) => Ok(addressed),
            Answer::Fail(e) | Answer::Lose(e) => Err(e),
        }
    }

    fn repeat_window(&self, wire: &Value) -> Option<Duration> {
        self.key_of(wire).and(self.window)
    }

    async fn find(&self, number: &str) -> Result<Option<Bill>, CallError> {
        self.record(Call::Find(number.to_owned()));
        let answer = lock(&self.state).finds.take();
        match answer {
            Answer::Real => Ok(self.find_now(number)),
            Answer::Give(bill) => Ok(bill),
            Answer::Fail(e) | Answer::Lose(e) => Err(e),
        }
    }

    async fn kept(&self, id: &str, lines: &[String]) -> Result<bool, CallError> {
        self.record(Call::Kept {
            id: id.to_owned(),
            lines: lines.to_vec(),
        });
        let answer = lock(&self.state).kept.take();
        match answer {
            Answer::Real => Ok(self
                .bill(id)
                .is_some_and(|b| lines.iter().any(|l| b.lines.contains(l)))),
            Answer::Give(kept) => Ok(kept),
            Answer::Fail(e) | Answer::Lose(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_are_written_by_compare_and_swap() {
        let store = MemoryStore::new();
        let now = Timestamp::now();
        let record = SyncRecord::new("s", "1", now);
        assert!(store.put(&record).await.unwrap());
        // A second writer holding the same (stale) revision loses.
        assert!(!store.put(&record).await.unwrap());
        let mut stored = store.record("s", "1").await.unwrap().unwrap();
        assert_eq!(stored.revision, 1);
        stored.state = RecordState::Synced;
        assert!(store.put(&stored).await.unwrap());
        assert!(!store.put(&stored).await.unwrap());
        assert_eq!(store.stored("s", "1").unwrap().revision, 2);
        assert_eq!(store.counts("s").await.unwrap(), [(RecordState::Synced, 1)]);
        // A lost write moves the revision on, as the other pusher's write would have.
        let current = store.stored("s", "1").unwrap();
        store.lose_put("s", "1", 0);
        assert!(!store.put(&current).await.unwrap());
        assert_eq!(store.stored("s", "1").unwrap().revision, 3);
        store.fail_put("s", "1", 1);
        let current = store.stored("s", "1").unwrap();
        assert!(store.put(&current).await.unwrap());
        let current = store.stored("s", "1").unwrap();
        assert!(store.put(&current).await.is_err());
    }

    #[tokio::test]
    async fn a_lease_excludes_other_pollers_until_it_lapses() {
        let store = MemoryStore::new();
        let t0 = Timestamp::from_second(1_000_000).unwrap();
        let later = |s| t0 + jiff::SignedDuration::from_secs(s);
        assert!(store.take_lease("s", "a", t0, later(60)).await.unwrap());
        assert!(
            !store
                .take_lease("s", "b", later(30), later(90))
                .await
                .unwrap()
        );
        assert!(store.advance("s", "a", later(10), later(20)).await.unwrap());
        assert!(!store.advance("s", "b", later(11), later(20)).await.unwrap());
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
        assert_eq!(store.cursor("s").await.unwrap().position, Some(later(10)));
    }

    #[tokio::test]
    async fn the_queue_hides_redelivers_and_dead_letters_like_sqs() {
        let queue = MemoryQueue::new(2);
        queue.send(vec!["a".into(), "b".into()]).await.unwrap();
        let first = queue.receive(10, Duration::from_secs(60)).await.unwrap();
        let bodies: Vec<&str> = first.iter().map(|d| d.body.as_str()).collect();
        assert_eq!(bodies, ["a", "b"]);
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
        assert_eq!((second[0].body.as_str(), second[0].receive_count), ("b", 2));
        // A stale receipt changes nothing.
        queue
            .hand_back(&first[1].receipt, "stale".into(), Duration::ZERO)
            .await
            .unwrap();
        // Received twice already: the next receive dead-letters it.
        assert!(queue.receive(10, Duration::ZERO).await.unwrap().is_empty());
        assert_eq!(queue.depth().await.unwrap(), 0);
        let dead = queue.dead_letters().await.unwrap();
        assert_eq!((dead[0].body.as_str(), dead[0].receive_count), ("b", 2));
        assert_eq!(queue.redrive().await.unwrap(), 1);
        let again = queue.receive(10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(again[0].receive_count, 1);
        // A hand-back replaces the body and starts the count again.
        queue
            .hand_back(&again[0].receipt, "rest".into(), Duration::ZERO)
            .await
            .unwrap();
        let handed = queue.receive(10, Duration::from_secs(60)).await.unwrap();
        assert_eq!(
            (handed[0].body.as_str(), handed[0].receive_count),
            ("rest", 1)
        );
    }

    #[tokio::test]
    async fn the_target_keeps_numbers_unique_and_answers_a_repeated_key_with_its_first_success() {
        let target = MemoryTarget::new()
            .numbered_by("no")
            .with_repeat_window(Some(Duration::from_secs(60)));
        let target = MemoryTarget {
            key: Some("key".into()),
            lines: Some("lines".into()),
            ..target
        };
        let body = serde_json::json!({"no": "N1", "key": "k1", "lines": [{}, {}]});
        let first = target.send(&body).await.unwrap();
        assert_eq!(first.lines.as_ref().map(Vec::len), Some(2));
        let repeat = target.send(&body).await.unwrap();
        assert!(repeat.repeat);
        assert_eq!(repeat.target_id, first.target_id);
        // Without the key, the number is taken.
        let other = serde_json::json!({"no": "N1", "key": "k2"});
        assert_eq!(
            target.send(&other).await.unwrap_err().class,
            FailureClass::Permanent
        );
        let found = target.find("N1").await.unwrap().unwrap();
        assert_eq!(found.id, first.target_id);
        assert_eq!(target.ops(), [Op::Send, Op::Send, Op::Send, Op::Find]);
    }
}
