//! Cursors, sync records and document history in one DynamoDB table (the design is in
//! docs/aws.md): every compare-and-swap is a conditional write whose condition is the rule, so
//! concurrent Lambdas race safely, exactly as two processes on the embedded SQLite file do.
//!
//! Every request asks DynamoDB for the capacity it consumed, and every item written or read is
//! also sized by DynamoDB's rules (`capacity.rs`), so a deployment knows what each document costs.
//! What keeps that low (docs/cost.md): a document's events of one append are one item, a sent
//! body and a write-ahead note are stored deflated, a claim (`in_progress`) is not indexed by
//! state, and a look-up value equal to the number is indexed once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, PutRequest, ReturnConsumedCapacity, Select, WriteRequest,
};
use jiff::Timestamp;

use super::capacity::{self, Meter, Operation, item_size, read_units, write_units};

use crate::engine::ports::{
    Cursor, CursorStore, Event, HistoryLog, RecordQueries, RecordStore, StoreError,
};
use crate::engine::record::{RecordState, SyncRecord};

/// The global secondary index listing a scheme's records by state, oldest change first.
pub const BY_STATE: &str = "by-state";
/// The index finding records by the target's document number.
pub const BY_NUMBER: &str = "by-number";
/// The index finding records by the source's look-up value (order number).
pub const BY_LOOKUP: &str = "by-lookup";
/// The TTL attribute: epoch seconds after which DynamoDB deletes the item.
pub const EXPIRES_AT: &str = "expires_at";

type Item = HashMap<String, AttributeValue>;

/// The DynamoDB store; cheap to clone (the SDK client and the counters are shared).
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// How long a synced record is kept after its last change (TTL); a re-sync of an older
    /// document relies on the target's own duplicate checks.
    pub record_retention: Duration,
    /// How long history events are kept.
    pub history_retention: Duration,
    meter: Meter,
    /// What this process last saw of each record it is working on (its size and index keys), so
    /// a write is sized as DynamoDB charges it: the larger of the old and new item, and an index
    /// write for each index entry that appears, moves or goes.
    seen: Arc<Mutex<HashMap<String, Seen>>>,
}

/// A record item as last read or written: what its next write is charged against.
#[derive(Clone, Debug)]
struct Seen {
    size: usize,
    indexes: [Option<Entry>; 3],
}

/// A record's entry in one global secondary index: its key and its size there.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    key: String,
    size: usize,
}

/// Records remembered at most; beyond it the memory is cleared (a write of a record not
/// remembered is sized as if its old item were the new one: the engine reads a record before
/// writing it, so this only happens to a process handling this many documents at once).
const SEEN_LIMIT: usize = 20_000;

/// The record indexes, in the order [`Seen::indexes`] keeps them, and whether each projects
/// every attribute (a change of any attribute rewrites its entry) or the keys only.
const RECORD_INDEXES: [(&str, &str, Option<&str>, bool); 3] = [
    (BY_STATE, "state_pk", Some("state_sk"), true),
    (BY_NUMBER, "number_pk", None, false),
    (BY_LOOKUP, "lookup_pk", None, false),
];

fn index_entries(item: &Item) -> [Option<Entry>; 3] {
    RECORD_INDEXES.map(|(_, hash, range, all)| {
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Some(v.as_str()),
            _ => None,
        };
        let key = match range {
            Some(range) => format!("{}\u{0}{}", text(hash)?, text(range)?),
            None => text(hash)?.to_owned(),
        };
        let size = if all {
            item_size(item)
        } else {
            // Keys only: the table's keys and the index's own.
            ["pk", "sk", hash]
                .iter()
                .filter_map(|n| Some(n.len() + capacity::value_size(item.get(*n)?)))
                .sum()
        };
        Some(Entry { key, size })
    })
}

/// Index write units of replacing `old` entries by `new` ones (DynamoDB's rules for global
/// secondary indexes: an entry that appears or goes is one write of its size, one that moves is
/// two, one that stays is rewritten only when the index projects attributes that changed, which
/// a record write always changes).
fn index_writes(old: &[Option<Entry>; 3], new: &[Option<Entry>; 3]) -> f64 {
    let mut units = 0.0;
    for (i, (_, _, _, all)) in RECORD_INDEXES.iter().enumerate() {
        units += match (&old[i], &new[i]) {
            (None, None) => 0.0,
            (None, Some(n)) => write_units(n.size),
            (Some(o), None) => write_units(o.size),
            (Some(o), Some(n)) if o.key != n.key => write_units(o.size) + write_units(n.size),
            (Some(_), Some(n)) if *all => write_units(n.size),
            (Some(_), Some(_)) => 0.0,
        };
    }
    units
}

/// A text kept deflated once it is this long: sent bodies and write-ahead notes are JSON, which
/// deflate shrinks several times, and DynamoDB charges a write unit per started kilobyte.
const DEFLATE_FROM: usize = 256;

fn deflate(text: &str) -> AttributeValue {
    AttributeValue::B(Blob::new(miniz_oxide::deflate::compress_to_vec(
        text.as_bytes(),
        6,
    )))
}

fn inflate(value: &AttributeValue, what: &str) -> Result<String, StoreError> {
    let bytes = match value {
        AttributeValue::B(b) => b.as_ref(),
        _ => {
            return Err(StoreError::remote(
                format!("read {what}"),
                "a deflated attribute is not binary",
            ));
        }
    };
    // Our own items hold at most a 400 KB item's worth of text; the limit only guards against a
    // corrupt one.
    let text = miniz_oxide::inflate::decompress_to_vec_with_limit(bytes, 16 << 20)
        .map_err(|e| StoreError::remote(format!("read {what}"), format!("inflate: {e:?}")))?;
    String::from_utf8(text).map_err(|e| StoreError::remote(format!("read {what}"), e))
}

/// A text as an attribute: itself while short, deflated (under `name_z`) once long.
fn text_attribute(item: &mut Item, name: &str, text: &str) {
    if text.len() >= DEFLATE_FROM {
        item.insert(format!("{name}_z"), deflate(text));
    } else {
        item.insert(name.to_owned(), s(text));
    }
}

/// Reads what [`text_attribute`] wrote (either form).
fn text_of(item: &Item, name: &str, what: &str) -> Result<Option<String>, StoreError> {
    if let Some(packed) = item.get(&format!("{name}_z")) {
        return inflate(packed, what).map(Some);
    }
    Ok(match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    })
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn millis(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn from_millis(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn cursor_key(scheme: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("cursor#{scheme}"))),
        ("sk".to_owned(), s("cursor")),
    ])
}

fn document_pk(scheme: &str, key: &str) -> String {
    format!("doc#{scheme}#{key}")
}

fn record_key(scheme: &str, key: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(document_pk(scheme, key))),
        ("sk".to_owned(), s("record")),
    ])
}

/// `scheme#state`: the by-state index's partition.
fn state_partition(scheme: &str, state: RecordState) -> String {
    format!("{scheme}#{}", state.as_str())
}

/// Reads attributes of one item, naming the item in errors.
struct Reader<'a> {
    item: &'a Item,
    what: &'a str,
}

impl Reader<'_> {
    fn text(&self, name: &str) -> Result<String, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            _ => Err(StoreError::remote(
                format!("read {}", self.what),
                format!("attribute {name} is missing or not a string"),
            )),
        }
    }

    fn text_or_empty(&self, name: &str) -> String {
        self.optional_text(name).unwrap_or_default()
    }

    fn optional_text(&self, name: &str) -> Option<String> {
        match self.item.get(name) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        }
    }

    fn optional_number(&self, name: &str) -> Option<i64> {
        match self.item.get(name) {
            Some(AttributeValue::N(v)) => v.parse().ok(),
            _ => None,
        }
    }

    fn number(&self, name: &str) -> Result<i64, StoreError> {
        self.optional_number(name).ok_or_else(|| {
            StoreError::remote(
                format!("read {}", self.what),
                format!("attribute {name} is missing or not a number"),
            )
        })
    }
}

fn record_of(item: &Item) -> Result<SyncRecord, StoreError> {
    let r = Reader {
        item,
        what: "sync record",
    };
    let state = r.text("state")?;
    let (scheme, key) = match (r.optional_text("scheme"), r.optional_text("key")) {
        (Some(scheme), Some(key)) => (scheme, key),
        _ => r
            .text("pk")?
            .strip_prefix("doc#")
            .and_then(|rest| rest.split_once('#'))
            .map(|(scheme, key)| (scheme.to_owned(), key.to_owned()))
            .ok_or_else(|| StoreError::remote("read sync record", "pk is not doc#SCHEME#KEY"))?,
    };
    let number = r.text_or_empty("number");
    Ok(SyncRecord {
        scheme,
        key,
        state: RecordState::parse(&state).ok_or_else(|| {
            StoreError::remote("read sync record", format!("unknown state '{state}'"))
        })?,
        hash: r.text_or_empty("hash"),
        version: r.text_or_empty("version"),
        lookup: r.optional_text("lookup").unwrap_or_else(|| number.clone()),
        number,
        target_id: r.optional_text("target_id"),
        unsure: text_of(item, "unsure", "sync record")?,
        lines: crate::engine::record::lines_of(&r.text_or_empty("lines")),
        attempts: r.optional_number("attempts").unwrap_or(0) as u32,
        last_error: r.optional_text("last_error"),
        claim_until: r.optional_number("claim_until").map(from_millis),
        created_at: from_millis(r.number("created_at")?),
        updated_at: from_millis(r.number("updated_at")?),
        revision: r.number("revision")? as u64,
    })
}

/// The events one history item holds, in the order they were appended: a folded item (`events`,
/// one document's events of one append) or an item of one event (the layout before folding).
fn events_of(scheme: &str, key: &str, item: &Item) -> Result<Vec<Event>, StoreError> {
    let one = |map: &Item| -> Result<Event, StoreError> {
        let r = Reader {
            item: map,
            what: "history event",
        };
        Ok(Event {
            scheme: scheme.to_owned(),
            key: key.to_owned(),
            at: from_millis(r.number("at")?),
            what: r.text("what")?,
            detail: r.text_or_empty("detail"),
            target_id: r.optional_text("target_id"),
            body: text_of(map, "body", "history event")?,
        })
    };
    match item.get("events") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| match v {
                AttributeValue::M(map) => one(map),
                _ => Err(StoreError::remote(
                    "read history event",
                    "an element of events is not a map",
                )),
            })
            .collect(),
        _ => Ok(vec![one(item)?]),
    }
}

/// One event as an element of a history item's `events`: what the port's [`Event`] holds but its
/// scheme and key, which the item's partition names.
fn event_element(e: &Event) -> AttributeValue {
    let mut map: Item = HashMap::from([
        ("at".to_owned(), n(millis(e.at))),
        ("what".to_owned(), s(&e.what)),
    ]);
    if !e.detail.is_empty() {
        map.insert("detail".into(), s(&e.detail));
    }
    if let Some(id) = &e.target_id {
        map.insert("target_id".into(), s(id));
    }
    if let Some(body) = &e.body {
        text_attribute(&mut map, "body", body);
    }
    AttributeValue::M(map)
}

/// Whether an SDK error is the failed condition of a conditional write (someone else won).
fn lost_race<E: ProvideErrorMetadata>(error: &SdkError<E>) -> bool {
    error
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

fn failure<E: std::error::Error + 'static>(operation: String, error: E) -> StoreError {
    StoreError::remote(operation, DisplayErrorContext(error))
}

/// A conditional write's outcome: `true` written, `false` its condition failed (someone else won).
fn won<T, E>(
    reply: &Result<T, SdkError<E>>,
    operation: impl FnOnce() -> String,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match reply {
        Ok(_) => Ok(true),
        Err(e) if lost_race(e) => Ok(false),
        Err(e) => Err(StoreError::remote(operation(), DisplayErrorContext(e))),
    }
}

/// The size-based units of one page of a query: the items read, rounded up to 4 KB for the
/// request, at half the rate for an eventually consistent read (what every query here is: a
/// global secondary index can only be read so, and history needs no more).
fn query_work(page: &QueryOutput) -> Operation {
    let bytes: usize = page.items().iter().map(item_size).sum();
    Operation {
        items: page.items().len() as u64,
        bytes: bytes as u64,
        read: read_units(bytes, false),
        reported: capacity::reported(page.consumed_capacity()),
        ..Operation::default()
    }
}

impl DynamoStore {
    /// The store over `table` with a client built from the environment's AWS configuration.
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
            record_retention: Duration::from_secs(400 * 86_400),
            history_retention: Duration::from_secs(90 * 86_400),
            meter: Meter::new(),
            seen: Arc::default(),
        }
    }

    /// The same store counting into `meter` (shared with a deployment's queues and secret).
    pub fn with_meter(mut self, meter: Meter) -> DynamoStore {
        self.meter = meter;
        self
    }

    /// The counters this store adds its capacity units to.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn expiry(&self, from: Timestamp, keep: Duration) -> AttributeValue {
        n(from.as_second() + keep.as_secs() as i64)
    }

    fn record_item(&self, r: &SyncRecord) -> Item {
        let mut item = record_key(&r.scheme, &r.key);
        // The scheme and key are the partition key's own text (`doc#SCHEME#KEY`): stored apart
        // only when that text could be misread (a scheme id never holds '#'; a test's might).
        // Every byte of a record is stored twice (the by-state index holds it all) for as long
        // as the record is kept.
        if r.scheme.contains('#') {
            item.insert("scheme".into(), s(&r.scheme));
            item.insert("key".into(), s(&r.key));
        }
        item.insert("state".into(), s(r.state.as_str()));
        item.insert("hash".into(), s(&r.hash));
        item.insert("version".into(), s(&r.version));
        item.insert("number".into(), s(&r.number));
        // A look-up value that is the number (an order numbered by its trade_no) is read back
        // from `number`.
        if r.lookup != r.number {
            item.insert("lookup".into(), s(&r.lookup));
        }
        if !r.lines.is_empty() {
            item.insert(
                "lines".into(),
                s(crate::engine::record::lines_text(&r.lines)),
            );
        }
        item.insert("attempts".into(), n(r.attempts));
        item.insert("created_at".into(), n(millis(r.created_at)));
        item.insert("updated_at".into(), n(millis(r.updated_at)));
        item.insert("revision".into(), n(r.revision + 1));
        for (name, value) in [("target_id", &r.target_id), ("last_error", &r.last_error)] {
            if let Some(value) = value {
                item.insert(name.into(), s(value));
            }
        }
        if let Some(note) = &r.unsure {
            // A keyed target's note holds the whole body sent (Yonyou: repeated byte for byte).
            text_attribute(&mut item, "unsure", note);
        }
        if let Some(until) = r.claim_until {
            item.insert("claim_until".into(), n(millis(until)));
        }
        // Index keys: zero-padded milliseconds sort as text; the key breaks ties. A claim is not
        // in the index: it lasts at most a push timeout, and leaving it out saves an index write
        // on the way in and one on the way out of every push (docs/cost.md).
        if r.state != RecordState::InProgress {
            item.insert("state_pk".into(), s(state_partition(&r.scheme, r.state)));
            item.insert(
                "state_sk".into(),
                s(format!("{:015}#{}", millis(r.updated_at).max(0), r.key)),
            );
        }
        // Sparse indexes: a record without a number or look-up value is not in them, and a
        // look-up value that is the number (an order numbered by its trade_no) is found there.
        if !r.number.is_empty() {
            item.insert("number_pk".into(), s(format!("{}#{}", r.scheme, r.number)));
        }
        if !r.lookup.is_empty() && r.lookup != r.number {
            item.insert("lookup_pk".into(), s(format!("{}#{}", r.scheme, r.lookup)));
        }
        // Only finished records expire: one still being worked on, failed or in conflict stays
        // until a person or a later push settles it.
        if r.state == RecordState::Synced {
            item.insert(
                EXPIRES_AT.into(),
                self.expiry(r.updated_at, self.record_retention),
            );
        }
        item
    }

    /// Remembers a record item as read or written (`None`: there is none), for sizing its next
    /// write.
    fn remember(&self, pk: &str, item: Option<&Item>) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= SEEN_LIMIT {
            seen.clear();
        }
        match item {
            Some(item) => {
                seen.insert(
                    pk.to_owned(),
                    Seen {
                        size: item_size(item),
                        indexes: index_entries(item),
                    },
                );
            }
            None => {
                seen.remove(pk);
            }
        }
    }

    fn recall(&self, pk: &str) -> Option<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(pk)
            .cloned()
    }

    /// Runs `query` page after page, handing each page to `page` until the results end or it
    /// answers `false`; each page's capacity is counted under `kind`.
    async fn each_page(
        &self,
        kind: &'static str,
        query: QueryFluentBuilder,
        operation: impl Fn() -> String,
        mut page: impl FnMut(&QueryOutput) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut start: Option<Item> = None;
        let query = query.return_consumed_capacity(ReturnConsumedCapacity::Total);
        loop {
            let reply = query
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| failure(operation(), e))?;
            self.meter.dynamo(kind, query_work(&reply));
            let more = page(&reply)?;
            match reply.last_evaluated_key() {
                Some(key) if more => start = Some(key.clone()),
                _ => return Ok(()),
            }
        }
    }

    /// The items `query` finds, at most `limit`, read in pages of at most 1,000.
    async fn query_items(
        &self,
        kind: &'static str,
        query: QueryFluentBuilder,
        limit: usize,
        operation: impl Fn() -> String,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        if limit == 0 {
            return Ok(items);
        }
        let query = query.limit(limit.min(1000) as i32);
        self.each_page(kind, query, operation, |page| {
            let room = limit - items.len();
            items.extend(page.items().iter().take(room).cloned());
            Ok(items.len() < limit)
        })
        .await?;
        Ok(items)
    }

    /// Records of one by-state partition, in index order, at most `limit`.
    async fn query_state(
        &self,
        scheme: &str,
        state: RecordState,
        newest_first: bool,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, StoreError> {
        if state == RecordState::InProgress {
            return self.claims(scheme, newest_first, limit).await;
        }
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_STATE)
            .key_condition_expression("state_pk = :p")
            .expression_attribute_values(":p", s(state_partition(scheme, state)))
            .scan_index_forward(!newest_first);
        self.query_items("record.query", query, limit, || {
            format!("list {} records of {scheme}", state.as_str())
        })
        .await?
        .iter()
        .map(record_of)
        .collect()
    }

    /// The records a pusher holds (`in_progress`), which the by-state index leaves out: read by
    /// scanning the table, so only for a person's or a test's look (no function asks for them).
    async fn claims(
        &self,
        scheme: &str,
        newest_first: bool,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, StoreError> {
        let mut records = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let reply = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "sk = :record AND #state = :claimed AND begins_with(pk, :scheme)",
                )
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":record", s("record"))
                .expression_attribute_values(":claimed", s(RecordState::InProgress.as_str()))
                .expression_attribute_values(":scheme", s(document_pk(scheme, "")))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| failure(format!("list claimed records of {scheme}"), e))?;
            self.meter.dynamo(
                "record.query",
                Operation {
                    items: reply.items().len() as u64,
                    // What a scan reads is every item it passes, not only those it returns; the
                    // reported units say it, the size of the matches does not.
                    read: read_units(reply.items().iter().map(item_size).sum(), false),
                    reported: capacity::reported(reply.consumed_capacity()),
                    ..Operation::default()
                },
            );
            for item in reply.items() {
                records.push(record_of(item)?);
            }
            match reply.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => break,
            }
        }
        records.sort_by_key(|r| (r.updated_at, r.key.clone()));
        if newest_first {
            records.reverse();
        }
        records.truncate(limit);
        Ok(records)
    }

    /// The keys of the records an index partition holds.
    async fn keys_in(
        &self,
        index: &str,
        attribute: &str,
        value: String,
    ) -> Result<Vec<Item>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#a = :v")
            .expression_attribute_names("#a", attribute)
            .expression_attribute_values(":v", s(&value));
        let items = self
            .query_items("record.query", query, usize::MAX, || {
                format!("find records by {attribute} {value}")
            })
            .await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let (pk, sk) = (item.get("pk")?, item.get("sk")?);
                Some(HashMap::from([
                    ("pk".to_owned(), pk.clone()),
                    ("sk".to_owned(), sk.clone()),
                ]))
            })
            .collect())
    }

    /// An UpdateItem of `scheme`'s cursor, to be given its expressions.
    fn cursor_update(&self, scheme: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(cursor_key(scheme)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
    }

    /// Counts a cursor update: the cursor item stays well under a kilobyte (keys, four numbers
    /// and a holder's name), so one write unit whether its condition held or not.
    fn count_cursor_update<T, E>(
        &self,
        reply: &Result<T, SdkError<E>>,
        consumed: impl Fn(&T) -> f64,
    ) {
        self.meter.dynamo(
            "cursor.update",
            Operation {
                items: 1,
                write: 1.0,
                reported: reply.as_ref().map(consumed).unwrap_or(0.0),
                ..Operation::default()
            },
        );
    }

    /// A strongly consistent read of one item, counted under `kind`.
    async fn get(
        &self,
        kind: &'static str,
        key: Item,
        operation: impl Fn() -> String,
    ) -> Result<Option<Item>, StoreError> {
        let reply = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| failure(operation(), e))?;
        let bytes = reply.item().map_or(0, item_size);
        self.meter.dynamo(
            kind,
            Operation {
                items: u64::from(reply.item().is_some()),
                bytes: bytes as u64,
                // An item that is not there still costs the minimum.
                read: read_units(bytes, true),
                reported: capacity::reported(reply.consumed_capacity()),
                ..Operation::default()
            },
        );
        Ok(reply.item().cloned())
    }
}

impl CursorStore for DynamoStore {
    async fn cursor(&self, scheme: &str) -> Result<Cursor, StoreError> {
        let item = self
            .get("cursor.get", cursor_key(scheme), || {
                format!("read cursor {scheme}")
            })
            .await?;
        let Some(item) = item else {
            return Ok(Cursor::default());
        };
        let r = Reader {
            item: &item,
            what: "cursor",
        };
        Ok(Cursor {
            position: r.optional_number("position").map(from_millis),
            holder: r.optional_text("holder"),
            lease_until: r.optional_number("lease_until").map(from_millis),
            updated_at: r.optional_number("updated_at").map(from_millis),
        })
    }

    async fn take_lease(
        &self,
        scheme: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let reply = self
            .cursor_update(scheme)
            .update_expression("SET holder = :h, lease_until = :until")
            .condition_expression(
                "attribute_not_exists(holder) OR holder = :h OR lease_until <= :now",
            )
            .expression_attribute_values(":h", s(holder))
            .expression_attribute_values(":until", n(millis(until)))
            .expression_attribute_values(":now", n(millis(now)))
            .send()
            .await;
        self.count_cursor_update(&reply, |r| capacity::reported(r.consumed_capacity()));
        won(&reply, || format!("lease {scheme}"))
    }

    async fn advance(
        &self,
        scheme: &str,
        holder: &str,
        position: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let reply = self
            .cursor_update(scheme)
            .update_expression("SET #p = :p, updated_at = :now")
            .condition_expression("holder = :h")
            // `position` is a DynamoDB reserved word.
            .expression_attribute_names("#p", "position")
            .expression_attribute_values(":h", s(holder))
            .expression_attribute_values(":p", n(millis(position)))
            .expression_attribute_values(":now", n(millis(now)))
            .send()
            .await;
        self.count_cursor_update(&reply, |r| capacity::reported(r.consumed_capacity()));
        won(&reply, || format!("advance cursor {scheme}"))
    }

    async fn release(&self, scheme: &str, holder: &str) -> Result<(), StoreError> {
        let reply = self
            .cursor_update(scheme)
            .update_expression("REMOVE holder, lease_until")
            .condition_expression("holder = :h")
            .expression_attribute_values(":h", s(holder))
            .send()
            .await;
        self.count_cursor_update(&reply, |r| capacity::reported(r.consumed_capacity()));
        // Not holding it (any more) is fine: there is nothing to give up.
        won(&reply, || format!("release lease {scheme}")).map(|_| ())
    }
}

impl RecordStore for DynamoStore {
    async fn record(&self, scheme: &str, key: &str) -> Result<Option<SyncRecord>, StoreError> {
        let item = self
            .get("record.get", record_key(scheme, key), || {
                format!("read record {scheme}/{key}")
            })
            .await?;
        self.remember(&document_pk(scheme, key), item.as_ref());
        item.as_ref().map(record_of).transpose()
    }

    async fn put(&self, r: &SyncRecord) -> Result<bool, StoreError> {
        let item = self.record_item(r);
        let pk = document_pk(&r.scheme, &r.key);
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item.clone()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let request = if r.revision == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("revision = :r")
                .expression_attribute_values(":r", n(r.revision))
        };
        let reply = request.send().await;
        let written = won(&reply, || format!("save record {}/{}", r.scheme, r.key))?;
        let size = item_size(&item);
        let new_entries = index_entries(&item);
        // The item replaced, as last seen: none for a new record; when not remembered, the new
        // item's size and index keys stand in for it.
        let old = if r.revision == 0 {
            None
        } else {
            Some(self.recall(&pk).unwrap_or_else(|| Seen {
                size,
                indexes: new_entries.clone(),
            }))
        };
        let old_size = old.as_ref().map_or(0, |o| o.size);
        let work = if written {
            let no_entries = [None, None, None];
            Operation {
                items: 1,
                bytes: size as u64,
                // A put is charged for the larger of the item it replaces and the new one.
                write: write_units(size.max(old_size)),
                index_write: index_writes(
                    old.as_ref().map_or(&no_entries, |o| &o.indexes),
                    &new_entries,
                ),
                reported: reply
                    .as_ref()
                    .map(|r| capacity::reported(r.consumed_capacity()))
                    .unwrap_or(0.0),
                ..Operation::default()
            }
        } else {
            // A failed condition still costs the write of the item that is there (at least one
            // unit), and touches no index.
            Operation {
                write: write_units(old_size),
                ..Operation::default()
            }
        };
        self.meter.dynamo("record.put", work);
        if written {
            if r.state == RecordState::InProgress {
                self.remember(&pk, Some(&item));
            } else {
                // Settled: the next write of it comes after a fresh read.
                self.remember(&pk, None);
            }
        }
        Ok(written)
    }

    async fn list(
        &self,
        scheme: &str,
        state: Option<RecordState>,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, StoreError> {
        match state {
            Some(state) => self.query_state(scheme, state, false, limit).await,
            None => {
                // Each state's partition is in change order; their merge is too.
                let mut all = Vec::new();
                for state in RecordState::ALL {
                    all.extend(self.query_state(scheme, state, false, limit).await?);
                }
                all.sort_by_key(|r| (r.updated_at, r.key.clone()));
                all.truncate(limit);
                Ok(all)
            }
        }
    }
}

impl RecordQueries for DynamoStore {
    async fn recent(
        &self,
        scheme: &str,
        state: RecordState,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, StoreError> {
        self.query_state(scheme, state, true, limit).await
    }

    async fn find_by_number(
        &self,
        scheme: &str,
        text: &str,
    ) -> Result<Vec<SyncRecord>, StoreError> {
        let mut keys = self
            .keys_in(BY_NUMBER, "number_pk", format!("{scheme}#{text}"))
            .await?;
        keys.extend(
            self.keys_in(BY_LOOKUP, "lookup_pk", format!("{scheme}#{text}"))
                .await?,
        );
        let mut records: Vec<SyncRecord> = Vec::new();
        for key in keys {
            if let Some(item) = self
                .get("record.get", key, || {
                    format!("find records {scheme} numbered {text}")
                })
                .await?
            {
                let record = record_of(&item)?;
                if !records.iter().any(|r| r.key == record.key) {
                    records.push(record);
                }
            }
        }
        Ok(records)
    }

    /// Records per state, from the by-state index. Claims (`in_progress`) are not indexed (a
    /// claim lasts at most a push timeout) and are not counted here.
    async fn counts(&self, scheme: &str) -> Result<Vec<(RecordState, u64)>, StoreError> {
        let mut out = Vec::new();
        for state in RecordState::ALL {
            if state == RecordState::InProgress {
                continue;
            }
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_STATE)
                .key_condition_expression("state_pk = :p")
                .expression_attribute_values(":p", s(state_partition(scheme, state)))
                .select(Select::Count);
            let mut count = 0u64;
            self.each_page(
                "record.query",
                query,
                || format!("count records {scheme}"),
                |page| {
                    count += page.count().max(0) as u64;
                    Ok(true)
                },
            )
            .await?;
            if count > 0 {
                out.push((state, count));
            }
        }
        Ok(out)
    }
}

/// Creates the table as template.yaml declares it (keys, the three indexes, on-demand billing):
/// for emulators and trials outside CloudFormation. A test compares the two definitions.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("name and type are set")
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("name and type are set")
    };
    let index = |name: &str, keys: Vec<KeySchemaElement>, projection: ProjectionType| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .set_key_schema(Some(keys))
            .projection(Projection::builder().projection_type(projection).build())
            .build()
            .expect("name, keys and projection are set")
    };
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(
            ["pk", "sk", "state_pk", "state_sk", "number_pk", "lookup_pk"]
                .into_iter()
                .map(attribute)
                .collect(),
        ))
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .global_secondary_indexes(index(
            BY_STATE,
            vec![
                key("state_pk", KeyType::Hash),
                key("state_sk", KeyType::Range),
            ],
            ProjectionType::All,
        ))
        .global_secondary_indexes(index(
            BY_NUMBER,
            vec![key("number_pk", KeyType::Hash)],
            ProjectionType::KeysOnly,
        ))
        .global_secondary_indexes(index(
            BY_LOOKUP,
            vec![key("lookup_pk", KeyType::Hash)],
            ProjectionType::KeysOnly,
        ))
        .send()
        .await
        .map_err(|e| failure(format!("create table {table}"), e))?;
    Ok(())
}

/// BatchWriteItem's limit.
const WRITE_BATCH: usize = 25;

/// The most a history item holds before a document's events of one append go into a second one
/// (DynamoDB's item limit is 400 KB; bodies are deflated, so this is a document written several
/// times with very large bodies in one batch).
const HISTORY_ITEM_BYTES: usize = 300 * 1024;

impl DynamoStore {
    /// The history items of one append: per document, its events in one item (split only past
    /// [`HISTORY_ITEM_BYTES`]), sorted after earlier appends by the time of its latest event.
    fn history_items(&self, events: &[Event]) -> Vec<Item> {
        let salt = fastrand::u32(..);
        // Documents in the order their first event comes, each with its events in order.
        let mut order: Vec<(&str, &str)> = Vec::new();
        let mut by_document: HashMap<(&str, &str), Vec<(usize, &Event)>> = HashMap::new();
        for (seq, e) in events.iter().enumerate() {
            let id = (e.scheme.as_str(), e.key.as_str());
            by_document
                .entry(id)
                .or_insert_with(|| {
                    order.push(id);
                    Vec::new()
                })
                .push((seq, e));
        }
        let mut items = Vec::new();
        for id in order {
            let mut chunk: Vec<(usize, AttributeValue, Timestamp)> = Vec::new();
            let mut bytes = 0;
            for (seq, e) in &by_document[&id] {
                let element = event_element(e);
                let size = capacity::value_size(&element) + 1;
                if !chunk.is_empty() && bytes + size > HISTORY_ITEM_BYTES {
                    items.push(self.history_item(id, std::mem::take(&mut chunk), salt));
                    bytes = 0;
                }
                bytes += size;
                chunk.push((*seq, element, e.at));
            }
            items.push(self.history_item(id, chunk, salt));
        }
        items
    }

    fn history_item(
        &self,
        (scheme, key): (&str, &str),
        chunk: Vec<(usize, AttributeValue, Timestamp)>,
        salt: u32,
    ) -> Item {
        let latest = chunk
            .iter()
            .map(|(_, _, at)| *at)
            .max()
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let seq = chunk.first().map_or(0, |(seq, _, _)| *seq);
        let mut item: Item = HashMap::new();
        item.insert("pk".into(), s(document_pk(scheme, key)));
        // The latest event's time (appends follow one another: a later append sorts after),
        // the position of the first event in this append, and a salt so two pushers' appends of
        // the same millisecond never collide.
        item.insert(
            "sk".into(),
            s(format!(
                "event#{:015}#{seq:05}#{salt:08x}",
                millis(latest).max(0)
            )),
        );
        item.insert(
            "events".into(),
            AttributeValue::L(chunk.into_iter().map(|(_, e, _)| e).collect()),
        );
        item.insert(
            EXPIRES_AT.into(),
            self.expiry(latest, self.history_retention),
        );
        item
    }
}

impl HistoryLog for DynamoStore {
    async fn append(&self, events: Vec<Event>) -> Result<(), StoreError> {
        let mut requests = Vec::new();
        for item in self.history_items(&events) {
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| StoreError::remote("append history", e))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        let units = |requests: &[WriteRequest]| -> (u64, f64) {
            requests
                .iter()
                .filter_map(|r| r.put_request())
                .map(|p| item_size(p.item()))
                .fold((0, 0.0), |(bytes, units), size| {
                    (bytes + size as u64, units + write_units(size))
                })
        };
        for chunk in requests.chunks(WRITE_BATCH) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                let reply = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending.clone())
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(|e| failure("append history".into(), e))?;
                let unprocessed = reply
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                // Each item written is charged by its own size; those sent back are not written.
                let (sent_bytes, sent_units) = units(&pending);
                let (back_bytes, back_units) = units(&unprocessed);
                self.meter.dynamo(
                    "history.append",
                    Operation {
                        items: (pending.len() - unprocessed.len()) as u64,
                        bytes: sent_bytes - back_bytes,
                        write: sent_units - back_units,
                        reported: capacity::reported_all(reply.consumed_capacity()),
                        ..Operation::default()
                    },
                );
                pending = unprocessed;
                if !pending.is_empty() {
                    // Throttled: back off as the DynamoDB guide asks, then send the rest.
                    attempt += 1;
                    if attempt > 8 {
                        return Err(StoreError::remote(
                            "append history",
                            format!(
                                "{} history items unprocessed after {attempt} attempts",
                                pending.len()
                            ),
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(25 << attempt.min(6))).await;
                }
            }
        }
        Ok(())
    }

    async fn history(
        &self,
        scheme: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND begins_with(sk, :e)")
            .expression_attribute_values(":p", s(document_pk(scheme, key)))
            .expression_attribute_values(":e", s("event#"))
            .scan_index_forward(false);
        // Each item holds at least one event: `limit` items hold enough.
        let items = self
            .query_items("history.query", query, limit, || {
                format!("read history {scheme}/{key}")
            })
            .await?;
        let mut events = Vec::new();
        for item in &items {
            let mut held = events_of(scheme, key, item)?;
            held.reverse();
            events.extend(held);
            if events.len() >= limit {
                break;
            }
        }
        events.truncate(limit);
        events.reverse();
        Ok(events)
    }
}

/// What one function of a deployment runs: a scheme and the version of its files, recorded by
/// each function when its execution environment starts (`ferry status` reads them back).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeployedScheme {
    /// The scheme id.
    pub scheme: String,
    /// `poll` or `push`.
    pub function: String,
    /// The version of the scheme's files (`Scheme::version`).
    pub version: String,
    /// The files, as the function read them.
    pub files: Vec<String>,
    /// When the environment loaded them.
    pub loaded_at: Timestamp,
}

/// The partition of the deployed-scheme items.
const DEPLOYMENT_PK: &str = "deployment";

impl DynamoStore {
    /// Records what `function` runs (one item per scheme, replacing the previous ones), in one
    /// request.
    pub async fn record_deployed(&self, deployed: &[DeployedScheme]) -> Result<(), StoreError> {
        let mut requests = Vec::new();
        for d in deployed {
            let item: Item = [
                ("pk".to_owned(), s(DEPLOYMENT_PK)),
                (
                    "sk".to_owned(),
                    s(format!("scheme#{}#{}", d.scheme, d.function)),
                ),
                ("scheme".to_owned(), s(&d.scheme)),
                ("function".to_owned(), s(&d.function)),
                ("version".to_owned(), s(&d.version)),
                (
                    "files".to_owned(),
                    AttributeValue::L(d.files.iter().map(s).collect()),
                ),
                ("loaded_at".to_owned(), n(millis(d.loaded_at))),
            ]
            .into();
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| StoreError::remote("record the deployed schemes", e))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        for chunk in requests.chunks(WRITE_BATCH) {
            let sizes: Vec<usize> = chunk
                .iter()
                .filter_map(|r| r.put_request())
                .map(|p| item_size(p.item()))
                .collect();
            let reply = self
                .client
                .batch_write_item()
                .request_items(&self.table, chunk.to_vec())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| failure("record the deployed schemes".into(), e))?;
            self.meter.dynamo(
                "deployment.put",
                Operation {
                    items: sizes.len() as u64,
                    bytes: sizes.iter().sum::<usize>() as u64,
                    write: sizes.iter().map(|s| write_units(*s)).sum(),
                    reported: capacity::reported_all(reply.consumed_capacity()),
                    ..Operation::default()
                },
            );
            if reply
                .unprocessed_items()
                .is_some_and(|u| u.values().any(|l| !l.is_empty()))
            {
                // Not worth a retry loop: the next start records them again.
                return Err(StoreError::remote(
                    "record the deployed schemes",
                    "DynamoDB left some of them unprocessed (throttled)",
                ));
            }
        }
        Ok(())
    }

    /// What each function of the deployment last said it runs, by scheme then function.
    pub async fn deployed(&self) -> Result<Vec<DeployedScheme>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(DEPLOYMENT_PK));
        let items = self
            .query_items("deployment.query", query, usize::MAX, || {
                "read the deployed schemes".into()
            })
            .await?;
        let text = |item: &Item, name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        Ok(items
            .iter()
            .map(|item| DeployedScheme {
                scheme: text(item, "scheme"),
                function: text(item, "function"),
                version: text(item, "version"),
                files: item
                    .get("files")
                    .and_then(|v| v.as_l().ok())
                    .map(|l| l.iter().filter_map(|f| f.as_s().ok().cloned()).collect())
                    .unwrap_or_default(),
                loaded_at: item
                    .get("loaded_at")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|t| t.parse().ok())
                    .map_or(Timestamp::UNIX_EPOCH, from_millis),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> DynamoStore {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        DynamoStore::new(Client::from_conf(config), "t")
    }

    fn record(state: RecordState) -> SyncRecord {
        let mut r = SyncRecord::new("s", "1001", Timestamp::from_second(1_764_000_000).unwrap());
        r.state = state;
        r.hash = "0123456789abcdef0123456789abcdef".into();
        r.version = "2026-11-22 10:00:00".into();
        r.number = "JY1001".into();
        r.lookup = "JY1001".into();
        r
    }

    /// A claim is left out of the by-state index, and a look-up value equal to the number is
    /// indexed once: each saves an index write on every push.
    #[test]
    fn claims_are_not_indexed_by_state_and_a_number_is_indexed_once() {
        let store = store();
        let claimed = store.record_item(&record(RecordState::InProgress));
        assert!(!claimed.contains_key("state_pk") && !claimed.contains_key("state_sk"));
        assert!(claimed.contains_key("number_pk") && !claimed.contains_key("lookup_pk"));
        let synced = store.record_item(&record(RecordState::Synced));
        assert_eq!(synced["state_pk"].as_s().unwrap(), "s#synced");
        // Scheme, key and look-up value are not stored twice, and read back all the same.
        assert!(!synced.contains_key("scheme") && !synced.contains_key("lookup"));
        let back = record_of(&synced).unwrap();
        assert_eq!(
            (
                back.scheme.as_str(),
                back.key.as_str(),
                back.lookup.as_str()
            ),
            ("s", "1001", "JY1001")
        );
        let mut other = record(RecordState::Failed);
        other.lookup = "T1001".into();
        assert!(store.record_item(&other).contains_key("lookup_pk"));
    }

    /// New record (claim) → synced → claimed again for an update → synced: the index writes
    /// DynamoDB charges for each step.
    #[test]
    fn index_writes_follow_dynamodb_rules() {
        let store = store();
        let none = [None, None, None];
        let claim = index_entries(&store.record_item(&record(RecordState::InProgress)));
        // A new claim: by-number only.
        assert_eq!(index_writes(&none, &claim), 1.0);
        let synced = index_entries(&store.record_item(&record(RecordState::Synced)));
        // Synced: it enters by-state; by-number stays (keys only: nothing to rewrite).
        assert_eq!(index_writes(&claim, &synced), 1.0);
        // Claimed again: it leaves by-state.
        assert_eq!(index_writes(&synced, &claim), 1.0);
        // A record moving between by-state partitions: out of one, into the other.
        let mut failed = record(RecordState::Failed);
        failed.updated_at = Timestamp::from_second(1_764_000_100).unwrap();
        let failed = index_entries(&store.record_item(&failed));
        assert_eq!(index_writes(&synced, &failed), 2.0);
        // The same by-state key: its projected attributes are rewritten.
        assert_eq!(index_writes(&synced, &synced), 1.0);
    }

    /// A long note and a long body are kept deflated and read back as written; short ones stay
    /// plain text.
    #[test]
    fn long_texts_are_deflated_and_read_back() {
        let store = store();
        let body = format!(
            r#"{{"data":{{"code":"XS-1","memo":"礼品","lines":[{}]}}}}"#,
            (0..40)
                .map(|i| format!(r#"{{"product":"SKU-{i}","qty":1,"price":"12.50"}}"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut r = record(RecordState::Retrying);
        r.unsure = Some(body.clone());
        let item = store.record_item(&r);
        assert!(item.contains_key("unsure_z") && !item.contains_key("unsure"));
        assert!(item_size(&item) < body.len(), "deflated");
        assert_eq!(record_of(&item).unwrap().unsure.as_deref(), Some(&*body));
        let mut short = record(RecordState::Retrying);
        short.unsure = Some(r#"{"hash":"h","at":1}"#.into());
        let item = store.record_item(&short);
        assert_eq!(item["unsure"].as_s().unwrap(), r#"{"hash":"h","at":1}"#);
        // History: one item per document and append, bodies deflated, order kept.
        let event = |key: &str, what: &str, ms: i64, body: Option<&str>| Event {
            scheme: "s".into(),
            key: key.into(),
            at: Timestamp::from_millisecond(1_764_000_000_000 + ms).unwrap(),
            what: what.into(),
            detail: format!("{what} detail"),
            target_id: None,
            body: body.map(str::to_owned),
        };
        let events = vec![
            event("a", "fetched", 0, None),
            event("b", "fetched", 0, None),
            event("a", "created", 5, Some(&body)),
            event("b", "unchanged", 6, None),
        ];
        let items = store.history_items(&events);
        assert_eq!(items.len(), 2, "one item per document");
        let a = events_of("s", "a", &items[0]).unwrap();
        assert_eq!(a, vec![events[0].clone(), events[2].clone()]);
        assert!(
            item_size(&items[0]) < 1024,
            "the body deflated: one write unit"
        );
        assert!(
            items[0]["sk"]
                .as_s()
                .unwrap()
                .starts_with("event#001764000000005#00000#")
        );
    }
}
