//! Cursors, sync records and document history in one DynamoDB table (the design is in
//! docs/aws.md): every compare-and-swap is a conditional write whose condition is the rule, so
//! concurrent Lambdas race safely, exactly as two processes on the embedded SQLite file do.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, Select, WriteRequest};
use jiff::Timestamp;

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

/// The DynamoDB store; cheap to clone (the SDK client is shared).
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// How long a synced record is kept after its last change (TTL); a re-sync of an older
    /// document relies on the target's own duplicate checks.
    pub record_retention: Duration,
    /// How long history events are kept.
    pub history_retention: Duration,
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
    Ok(SyncRecord {
        scheme: r.text("scheme")?,
        key: r.text("key")?,
        state: RecordState::parse(&state).ok_or_else(|| {
            StoreError::remote("read sync record", format!("unknown state '{state}'"))
        })?,
        hash: r.text_or_empty("hash"),
        version: r.text_or_empty("version"),
        number: r.text_or_empty("number"),
        lookup: r.text_or_empty("lookup"),
        target_id: r.optional_text("target_id"),
        unsure: r.optional_text("unsure"),
        lines: crate::engine::record::lines_of(&r.text_or_empty("lines")),
        attempts: r.optional_number("attempts").unwrap_or(0) as u32,
        last_error: r.optional_text("last_error"),
        claim_until: r.optional_number("claim_until").map(from_millis),
        created_at: from_millis(r.number("created_at")?),
        updated_at: from_millis(r.number("updated_at")?),
        revision: r.number("revision")? as u64,
    })
}

fn event_of(item: &Item) -> Result<Event, StoreError> {
    let r = Reader {
        item,
        what: "history event",
    };
    Ok(Event {
        scheme: r.text("scheme")?,
        key: r.text("key")?,
        at: from_millis(r.number("at")?),
        what: r.text("what")?,
        detail: r.text_or_empty("detail"),
        target_id: r.optional_text("target_id"),
        body: r.optional_text("body"),
    })
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
    reply: Result<T, SdkError<E>>,
    operation: impl FnOnce() -> String,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match reply {
        Ok(_) => Ok(true),
        Err(e) if lost_race(&e) => Ok(false),
        Err(e) => Err(failure(operation(), e)),
    }
}

/// Runs `query` page after page, handing each page to `page` until the results end or it answers
/// `false`.
async fn each_page(
    query: QueryFluentBuilder,
    operation: impl Fn() -> String,
    mut page: impl FnMut(&QueryOutput) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let mut start: Option<Item> = None;
    loop {
        let reply = query
            .clone()
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| failure(operation(), e))?;
        let more = page(&reply)?;
        match reply.last_evaluated_key() {
            Some(key) if more => start = Some(key.clone()),
            _ => return Ok(()),
        }
    }
}

/// The items `query` finds, at most `limit`, read in pages of at most 1,000.
async fn query_items(
    query: QueryFluentBuilder,
    limit: usize,
    operation: impl Fn() -> String,
) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    if limit == 0 {
        return Ok(items);
    }
    let query = query.limit(limit.min(1000) as i32);
    each_page(query, operation, |page| {
        let room = limit - items.len();
        items.extend(page.items().iter().take(room).cloned());
        Ok(items.len() < limit)
    })
    .await?;
    Ok(items)
}

impl DynamoStore {
    /// The store over `table` with a client built from the environment's AWS configuration.
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: table.into(),
            record_retention: Duration::from_secs(400 * 86_400),
            history_retention: Duration::from_secs(90 * 86_400),
        }
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
        item.insert("scheme".into(), s(&r.scheme));
        item.insert("key".into(), s(&r.key));
        item.insert("state".into(), s(r.state.as_str()));
        item.insert("hash".into(), s(&r.hash));
        item.insert("version".into(), s(&r.version));
        item.insert("number".into(), s(&r.number));
        item.insert("lookup".into(), s(&r.lookup));
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
        for (name, value) in [
            ("target_id", &r.target_id),
            ("unsure", &r.unsure),
            ("last_error", &r.last_error),
        ] {
            if let Some(value) = value {
                item.insert(name.into(), s(value));
            }
        }
        if let Some(until) = r.claim_until {
            item.insert("claim_until".into(), n(millis(until)));
        }
        // Index keys: zero-padded milliseconds sort as text; the key breaks ties.
        item.insert("state_pk".into(), s(state_partition(&r.scheme, r.state)));
        item.insert(
            "state_sk".into(),
            s(format!("{:015}#{}", millis(r.updated_at).max(0), r.key)),
        );
        // Sparse indexes: a record without a number or look-up value is not in them.
        if !r.number.is_empty() {
            item.insert("number_pk".into(), s(format!("{}#{}", r.scheme, r.number)));
        }
        if !r.lookup.is_empty() {
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

    /// Records of one by-state partition, in index order, at most `limit`.
    async fn query_state(
        &self,
        scheme: &str,
        state: RecordState,
        newest_first: bool,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_STATE)
            .key_condition_expression("state_pk = :p")
            .expression_attribute_values(":p", s(state_partition(scheme, state)))
            .scan_index_forward(!newest_first);
        query_items(query, limit, || {
            format!("list {} records of {scheme}", state.as_str())
        })
        .await?
        .iter()
        .map(record_of)
        .collect()
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
        let items = query_items(query, usize::MAX, || {
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
    }

    async fn get(
        &self,
        key: Item,
        operation: impl Fn() -> String,
    ) -> Result<Option<Item>, StoreError> {
        let reply = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failure(operation(), e))?;
        Ok(reply.item().cloned())
    }
}

impl CursorStore for DynamoStore {
    async fn cursor(&self, scheme: &str) -> Result<Cursor, StoreError> {
        let item = self
            .get(cursor_key(scheme), || format!("read cursor {scheme}"))
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
        won(reply, || format!("lease {scheme}"))
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
        won(reply, || format!("advance cursor {scheme}"))
    }

    async fn release(&self, scheme: &str, holder: &str) -> Result<(), StoreError> {
        let reply = self
            .cursor_update(scheme)
            .update_expression("REMOVE holder, lease_until")
            .condition_expression("holder = :h")
            .expression_attribute_values(":h", s(holder))
            .send()
            .await;
        // Not holding it (any more) is fine: there is nothing to give up.
        won(reply, || format!("release lease {scheme}")).map(|_| ())
    }
}

impl RecordStore for DynamoStore {
    async fn record(&self, scheme: &str, key: &str) -> Result<Option<SyncRecord>, StoreError> {
        self.get(record_key(scheme, key), || {
            format!("read record {scheme}/{key}")
        })
        .await?
        .as_ref()
        .map(record_of)
        .transpose()
    }

    async fn put(&self, r: &SyncRecord) -> Result<bool, StoreError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.record_item(r)));
        let request = if r.revision == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("revision = :r")
                .expression_attribute_values(":r", n(r.revision))
        };
        won(request.send().await, || {
            format!("save record {}/{}", r.scheme, r.key)
        })
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
                .get(key, || format!("find records {scheme} numbered {text}"))
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

    async fn counts(&self, scheme: &str) -> Result<Vec<(RecordState, u64)>, StoreError> {
        let mut out = Vec::new();
        for state in RecordState::ALL {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_STATE)
                .key_condition_expression("state_pk = :p")
                .expression_attribute_values(":p", s(state_partition(scheme, state)))
                .select(Select::Count);
            let mut count = 0u64;
            each_page(
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

impl HistoryLog for DynamoStore {
    async fn append(&self, events: Vec<Event>) -> Result<(), StoreError> {
        let salt = fastrand::u32(..);
        let mut requests = Vec::with_capacity(events.len());
        for (seq, e) in events.iter().enumerate() {
            let mut item: Item = HashMap::new();
            item.insert("pk".into(), s(document_pk(&e.scheme, &e.key)));
            // Time, then the position in this append (events of one batch keep their order),
            // then a salt so two pushers' events of the same millisecond never collide.
            item.insert(
                "sk".into(),
                s(format!(
                    "event#{:015}#{seq:05}#{salt:08x}",
                    millis(e.at).max(0)
                )),
            );
            item.insert("scheme".into(), s(&e.scheme));
            item.insert("key".into(), s(&e.key));
            item.insert("at".into(), n(millis(e.at)));
            item.insert("what".into(), s(&e.what));
            item.insert("detail".into(), s(&e.detail));
            if let Some(id) = &e.target_id {
                item.insert("target_id".into(), s(id));
            }
            if let Some(body) = &e.body {
                item.insert("body".into(), s(body));
            }
            item.insert(EXPIRES_AT.into(), self.expiry(e.at, self.history_retention));
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| StoreError::remote("append history", e))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        for chunk in requests.chunks(WRITE_BATCH) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                let reply = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| failure("append history".into(), e))?;
                pending = reply
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if !pending.is_empty() {
                    // Throttled: back off as the DynamoDB guide asks, then send the rest.
                    attempt += 1;
                    if attempt > 8 {
                        return Err(StoreError::remote(
                            "append history",
                            format!(
                                "{} events unprocessed after {attempt} attempts",
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
        let mut events = query_items(query, limit, || format!("read history {scheme}/{key}"))
            .await?
            .iter()
            .map(event_of)
            .collect::<Result<Vec<_>, _>>()?;
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
    /// Records what `function` runs (one item per scheme, replacing the previous ones).
    pub async fn record_deployed(&self, deployed: &[DeployedScheme]) -> Result<(), StoreError> {
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
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|e| failure("record the deployed schemes".into(), e))?;
        }
        Ok(())
    }

    /// What each function of the deployment last said it runs, by scheme then function.
    pub async fn deployed(&self) -> Result<Vec<DeployedScheme>, StoreError> {
        let reply = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(DEPLOYMENT_PK))
            .send()
            .await
            .map_err(|e| failure("read the deployed schemes".into(), e))?;
        let text = |item: &Item, name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        Ok(reply
            .items()
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
