//! What the AWS adapters cost, counted as they work: DynamoDB capacity units (as DynamoDB reports
//! them, and as DynamoDB's sizing rules compute them from the items written and read), SQS
//! requests in the 64 KB chunks SQS bills, and Secrets Manager reads. The push function writes
//! each invocation's share beside its metrics; the Lambda benchmark turns them into dollars
//! (docs/cost.md).
//!
//! Why both DynamoDB figures: on AWS the reported units are the bill, but an emulator's are not
//! (moto 5.2.5 answers a constant per call: 1 for PutItem, Query and a whole BatchWriteItem, 0.5
//! for GetItem and UpdateItem, whatever the sizes and indexes). The size-based units follow the
//! documented rules, so the benchmark measures what AWS would charge and a deployment can compare
//! the two.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity};

/// A DynamoDB write unit covers this many bytes of an item (a started kilobyte is a unit).
pub const WRITE_UNIT_BYTES: usize = 1024;
/// A DynamoDB read unit covers this many bytes (strongly consistent; half a unit eventually).
pub const READ_UNIT_BYTES: usize = 4096;
/// SQS bills a request per started 64 KB of payload.
pub const SQS_CHUNK_BYTES: usize = 65_536;

/// The size DynamoDB counts for an item: each attribute's name (UTF-8 bytes) plus its value.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

/// The size DynamoDB counts for a value (without its attribute name): strings and binaries by
/// their bytes; numbers one byte per two significant digits plus one (a sign one more); booleans
/// and nulls one byte; lists and maps 3 bytes plus one byte and the size of each element (a map's
/// element names included); sets the sum of their members.
pub fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

fn number_size(text: &str) -> usize {
    let negative = text.starts_with('-');
    let digits: String = text
        .chars()
        .take_while(|c| *c != 'e' && *c != 'E')
        .filter(char::is_ascii_digit)
        .collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + 1 + usize::from(negative)
}

/// Write units for writing (or deleting) an item of `bytes`: one per started kilobyte, at least one.
pub fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(WRITE_UNIT_BYTES).max(1) as f64
}

/// Read units for reading `bytes` in one request: one per started 4 KB, at least one; half as
/// much for an eventually consistent read.
pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(READ_UNIT_BYTES).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// SQS request units of one call carrying `payload` bytes (bodies and message attributes).
pub fn sqs_units(payload: usize) -> u64 {
    payload.div_ceil(SQS_CHUNK_BYTES).max(1) as u64
}

/// One kind of DynamoDB work (`record.get`, `record.put`, `history.append`...): calls, items,
/// bytes, and units both ways.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Operation {
    /// Requests sent.
    pub calls: u64,
    /// Items read or written.
    pub items: u64,
    /// Bytes of those items, as DynamoDB sizes them.
    pub bytes: u64,
    /// Read units by the sizing rules.
    pub read: f64,
    /// Write units on the table by the sizing rules.
    pub write: f64,
    /// Write units on the global secondary indexes by the sizing rules.
    pub index_write: f64,
    /// Capacity units DynamoDB reported (`ReturnConsumedCapacity=TOTAL`).
    pub reported: f64,
}

impl Operation {
    fn add(&mut self, other: &Operation) {
        self.calls += other.calls;
        self.items += other.items;
        self.bytes += other.bytes;
        self.read += other.read;
        self.write += other.write;
        self.index_write += other.index_write;
        self.reported += other.reported;
    }

    fn minus(&self, earlier: &Operation) -> Operation {
        Operation {
            calls: self.calls - earlier.calls,
            items: self.items - earlier.items,
            bytes: self.bytes - earlier.bytes,
            read: self.read - earlier.read,
            write: self.write - earlier.write,
            index_write: self.index_write - earlier.index_write,
            reported: self.reported - earlier.reported,
        }
    }
}

/// What the adapters used so far (or between two snapshots: [`Usage::since`]).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Usage {
    /// DynamoDB work by kind.
    pub dynamo: BTreeMap<&'static str, Operation>,
    /// SQS requests by API action (`SendMessageBatch`, `ReceiveMessage`...).
    pub sqs_calls: BTreeMap<&'static str, u64>,
    /// SQS request units (a request per started 64 KB of payload), summed over actions.
    pub sqs_units: u64,
    /// Secrets Manager `GetSecretValue` calls.
    pub secret_reads: u64,
}

impl Usage {
    /// DynamoDB read units by the sizing rules.
    pub fn read_units(&self) -> f64 {
        self.dynamo.values().map(|o| o.read).sum()
    }

    /// DynamoDB write units by the sizing rules, indexes included.
    pub fn write_units(&self) -> f64 {
        self.dynamo.values().map(|o| o.write + o.index_write).sum()
    }

    /// Of [`Usage::write_units`], those spent on the global secondary indexes.
    pub fn index_write_units(&self) -> f64 {
        self.dynamo.values().map(|o| o.index_write).sum()
    }

    /// Read units DynamoDB reported.
    pub fn reported_read_units(&self) -> f64 {
        self.dynamo
            .iter()
            .filter(|(kind, _)| is_read(kind))
            .map(|(_, o)| o.reported)
            .sum()
    }

    /// Write units DynamoDB reported.
    pub fn reported_write_units(&self) -> f64 {
        self.dynamo
            .iter()
            .filter(|(kind, _)| !is_read(kind))
            .map(|(_, o)| o.reported)
            .sum()
    }

    /// SQS requests sent, whatever their size.
    pub fn sqs_requests(&self) -> u64 {
        self.sqs_calls.values().sum()
    }

    /// What was used after `earlier` (a snapshot of the same counters).
    pub fn since(&self, earlier: &Usage) -> Usage {
        let mut dynamo = BTreeMap::new();
        for (kind, now) in &self.dynamo {
            let then = earlier.dynamo.get(kind).cloned().unwrap_or_default();
            let delta = now.minus(&then);
            if delta.calls > 0 {
                dynamo.insert(*kind, delta);
            }
        }
        let sqs_calls = self
            .sqs_calls
            .iter()
            .map(|(k, n)| (*k, n - earlier.sqs_calls.get(k).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        Usage {
            dynamo,
            sqs_calls,
            sqs_units: self.sqs_units - earlier.sqs_units,
            secret_reads: self.secret_reads - earlier.secret_reads,
        }
    }

    /// The figures a push invocation writes beside its metrics (plain properties of its EMF
    /// line, not metrics: each CloudWatch metric costs a monthly fee, and AWS/DynamoDB already
    /// graphs the table's consumed units for free).
    pub fn properties(&self) -> serde_json::Value {
        serde_json::json!({
            "DynamoReadUnits": self.read_units(),
            "DynamoWriteUnits": self.write_units(),
            "DynamoIndexWriteUnits": self.index_write_units(),
            "DynamoReportedReadUnits": self.reported_read_units(),
            "DynamoReportedWriteUnits": self.reported_write_units(),
            "DynamoCalls": self.dynamo.values().map(|o| o.calls).sum::<u64>(),
            "SqsRequests": self.sqs_requests(),
            "SqsRequestUnits": self.sqs_units,
            "SecretReads": self.secret_reads,
        })
    }
}

/// Kinds whose units are reads.
fn is_read(kind: &str) -> bool {
    kind.ends_with(".get") || kind.ends_with(".query")
}

/// Counters the adapters of one deployment share (cheap to clone: one set of counters).
#[derive(Clone, Debug, Default)]
pub struct Meter(Arc<Mutex<Usage>>);

impl Meter {
    /// New counters at zero.
    pub fn new() -> Meter {
        Meter::default()
    }

    /// What was used so far.
    pub fn snapshot(&self) -> Usage {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Usage> {
        // The counters stay usable after a panic elsewhere: they are only sums.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one DynamoDB request of `kind`.
    pub(crate) fn dynamo(&self, kind: &'static str, work: Operation) {
        self.lock()
            .dynamo
            .entry(kind)
            .or_default()
            .add(&Operation { calls: 1, ..work });
    }

    /// Counts one SQS request of `action` carrying `payload` bytes.
    pub(crate) fn sqs(&self, action: &'static str, payload: usize) {
        let mut usage = self.lock();
        *usage.sqs_calls.entry(action).or_default() += 1;
        usage.sqs_units += sqs_units(payload);
    }

    /// Counts one Secrets Manager read.
    pub(crate) fn secret_read(&self) {
        self.lock().secret_reads += 1;
    }
}

/// The capacity units DynamoDB reported in an answer (0 when it reported none).
pub(crate) fn reported(capacity: Option<&ConsumedCapacity>) -> f64 {
    capacity.and_then(|c| c.capacity_units()).unwrap_or(0.0)
}

/// The capacity units DynamoDB reported in a batch answer (one entry per table), summed.
pub(crate) fn reported_all(capacities: &[ConsumedCapacity]) -> f64 {
    capacities.iter().map(|c| reported(Some(c))).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> AttributeValue {
        AttributeValue::S(text.into())
    }

    /// The examples of the DynamoDB developer guide's item-size rules.
    #[test]
    fn sizes_follow_dynamodb_rules() {
        // Strings: UTF-8 bytes (a Chinese character is three), plus the name.
        let item = HashMap::from([("remark".to_owned(), s("礼品"))]);
        assert_eq!(item_size(&item), 6 + 6);
        // Numbers: one byte per two significant digits, plus one.
        assert_eq!(number_size("1764000000000"), 2 + 1);
        assert_eq!(number_size("1764000123456"), 7 + 1);
        assert_eq!(number_size("12345"), 3 + 1);
        assert_eq!(number_size("-1.50"), 1 + 1 + 1);
        assert_eq!(number_size("0"), 1);
        // Lists and maps: 3 bytes, one per element, the elements (a map's names too).
        let list = AttributeValue::L(vec![s("ab"), s("c")]);
        assert_eq!(value_size(&list), 3 + (1 + 2) + (1 + 1));
        let map = AttributeValue::M(HashMap::from([("at".to_owned(), s("xyz"))]));
        assert_eq!(value_size(&map), 3 + 1 + 2 + 3);
        let bytes = AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(vec![0u8; 10]));
        assert_eq!(value_size(&bytes), 10);
    }

    #[test]
    fn units_are_started_kilobytes_and_four_kilobytes() {
        assert_eq!(write_units(0), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
        assert_eq!(read_units(100, true), 1.0);
        assert_eq!(read_units(100, false), 0.5);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(sqs_units(0), 1);
        assert_eq!(sqs_units(65_536), 1);
        assert_eq!(sqs_units(256 * 1024), 4);
    }

    #[test]
    fn usage_between_snapshots() {
        let meter = Meter::new();
        meter.dynamo(
            "record.get",
            Operation {
                items: 1,
                bytes: 300,
                read: 1.0,
                reported: 0.5,
                ..Operation::default()
            },
        );
        let before = meter.snapshot();
        meter.dynamo(
            "record.put",
            Operation {
                items: 1,
                bytes: 2000,
                write: 2.0,
                index_write: 1.0,
                reported: 1.0,
                ..Operation::default()
            },
        );
        meter.sqs("SendMessageBatch", 200_000);
        meter.secret_read();
        let delta = meter.snapshot().since(&before);
        assert_eq!(delta.read_units(), 0.0);
        assert_eq!(delta.write_units(), 3.0);
        assert_eq!(delta.index_write_units(), 1.0);
        assert_eq!(delta.reported_write_units(), 1.0);
        assert_eq!(delta.sqs_units, 4);
        assert_eq!(delta.sqs_requests(), 1);
        assert_eq!(delta.secret_reads, 1);
        assert_eq!(meter.snapshot().reported_read_units(), 0.5);
    }
}
