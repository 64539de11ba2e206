//! Verification of a sync: the sandbox's target book held up against its source, document by
//! document, through the scheme's own mapping. This is how `ferry demo` and the pipeline tests
//! decide "every source document in the target exactly once with its latest content".

use std::collections::{BTreeMap, HashMap};

use ferry_common::Scheme;
use serde::Serialize;
use serde_json::Value;

use crate::source::Kind;
use crate::targets::Bill;
use crate::{Sandbox, lock, now};

/// How the target compares with the source.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Verification {
    /// Source documents the scheme should bring over (visible, matching its filters).
    pub expected: u64,
    /// Expected documents with exactly one target bill.
    pub found: u64,
    /// Expected documents with no bill and no refusal.
    pub missing: u64,
    /// Expected documents with more than one bill.
    pub duplicated: u64,
    /// Documents whose bill holds other content than the source's latest.
    pub stale: u64,
    /// Of the stale ones, those whose lines differ from the latest mapping's (a line missing,
    /// extra, doubled or changed), not just their header.
    pub lines_differ: u64,
    /// Expected documents the target refused for good: no bill, or a bill the target kept unchanged
    /// when it refused the latest content (a re-approved stock-out whose new number it rejects).
    pub refused: u64,
    /// Expected documents the mapping rejects (no bill is right for them).
    pub unmappable: u64,
    /// Expected documents too large for any queue message (no bill is right for them either).
    pub oversize: u64,
    /// Bills that belong to no source document.
    pub unknown: u64,
    /// A few examples of each problem: category → document keys.
    pub examples: BTreeMap<String, Vec<String>>,
}

impl Verification {
    /// Nothing missing, duplicated, stale or unknown.
    pub fn is_clean(&self) -> bool {
        self.missing == 0 && self.duplicated == 0 && self.stale == 0 && self.unknown == 0
    }

    fn example(&mut self, category: &str, key: &str) {
        let list = self.examples.entry(category.to_owned()).or_default();
        if list.len() < 5 {
            list.push(key.to_owned());
        }
    }
}

/// The bill number a body carries in `field` (Kingdee `billno` or `bill_no`, Yonyou `code`),
/// without a re-approval suffix.
fn number_of(field: &str, body: &Value) -> String {
    let text = body.get(field).and_then(Value::as_str).unwrap_or_default();
    base_number(text).to_owned()
}

/// The bill number a body carries, as sent (a re-approval suffix included).
fn full_number(field: &str, body: &Value) -> String {
    body.get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A stock-out number approved again gets `-N` appended; the base names the stock-out for ever.
fn base_number(text: &str) -> &str {
    match text.rsplit_once('-') {
        Some((base, n)) if n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => base,
        _ => text,
    }
}

/// Header fields only a request or the target adds: ids, statuses, idempotency keys.
const HEADER_MARKERS: &[&str] = &["id", "_status", "resubmitCheckKey", "orderPrices!orderId"];
/// Line fields only a request or the target adds.
const LINE_MARKERS: &[&str] = &["id", "_status", "orderDetailPrices!orderDetailId"];

/// The body as the target keeps it, without what only requests and the target add, its lines
/// (under `list`) in a canonical order: two bills compare equal when their headers agree and they
/// hold the same lines, none missing, extra or doubled, whatever order the target keeps them in.
fn comparable(mut body: Value, list: &str) -> Value {
    if let Some(map) = body.as_object_mut() {
        for field in HEADER_MARKERS {
            map.remove(*field);
        }
        if let Some(Value::Array(lines)) = map.get_mut(list) {
            for line in lines.iter_mut() {
                if let Some(line) = line.as_object_mut() {
                    for field in LINE_MARKERS {
                        line.remove(*field);
                    }
                }
            }
            lines.sort_by_cached_key(|line| line.to_string());
        }
    }
    body
}

impl Sandbox {
    /// Compares the target of `scheme` with the source, through the scheme's mapping.
    pub fn verify(&self, scheme: &Scheme) -> Verification {
        let connector = scheme.config.target.connector.value.name();
        let play = crate::target_play(connector)
            .unwrap_or_else(|| panic!("the sandbox plays no {connector} target"));
        let spec = scheme.target_spec();
        let (field, list) = (spec.number.as_str(), spec.lines.as_str());
        let (kind, bills): (Kind, Vec<Bill>) = (play.kind, (play.bills)(self));
        let filters = constant_filters(scheme);
        let mut report = Verification::default();
        // Expected content per document number.
        let mut expected: HashMap<String, (String, Option<Value>)> = HashMap::new();
        {
            let source = lock(&self.state.source);
            let now = now();
            for index in 0..source.len(kind) as u32 {
                if !source.is_visible(kind, index, now) {
                    continue;
                }
                let doc = source.document(kind, index);
                if !filters
                    .iter()
                    .all(|(field, value)| text(&doc[field.as_str()]) == *value)
                {
                    continue;
                }
                let key = text(&doc[scheme.mapper.key_field()]);
                if key.is_empty() {
                    // Without its key a document cannot be tracked, so it must not be synced.
                    expected.insert(format!("unkeyed:{index}"), (key, None));
                    continue;
                }
                let raw = doc.to_string();
                if raw.len() > ferry_common::engine::MAX_MESSAGE_BYTES {
                    expected.insert(format!("oversize:{key}"), (key, None));
                    continue;
                }
                let parsed = ferry_common::mapping::parse_document(&raw).ok();
                let mapped = parsed.and_then(|d| scheme.mapper.map(&d).ok()).map(|body| {
                    let inner = match &scheme.target_api.envelope {
                        Some(name) => body.get(name).cloned().unwrap_or(Value::Null),
                        None => body,
                    };
                    comparable(inner, list)
                });
                let number = match &mapped {
                    Some(body) => number_of(field, body),
                    None => format!("unmappable:{key}"),
                };
                expected.insert(number, (key, mapped));
            }
        }
        let refused: std::collections::HashSet<String> = self
            .receptions()
            .iter()
            .filter(|r| r.for_good)
            .map(|r| {
                let body = r.body.pointer(play.header).cloned().unwrap_or_default();
                full_number(field, &body)
            })
            .collect();
        let mut by_number: HashMap<String, Vec<Bill>> = HashMap::new();
        for bill in bills {
            by_number
                .entry(number_of(field, &bill.body))
                .or_default()
                .push(bill);
        }
        report.expected = expected.len() as u64;
        for (number, (key, mapped)) in &expected {
            let Some(mapped) = mapped else {
                if number.starts_with("oversize:") {
                    report.oversize += 1;
                } else {
                    report.unmappable += 1;
                }
                continue;
            };
            let refused_latest = refused.contains(&full_number(field, mapped));
            match by_number.get(number).map(Vec::as_slice) {
                None | Some([]) if refused_latest => report.refused += 1,
                None | Some([]) => {
                    report.missing += 1;
                    report.example("missing", key);
                }
                Some([bill])
                    if refused_latest && comparable(bill.body.clone(), list) != *mapped =>
                {
                    report.refused += 1;
                }
                Some([bill]) => {
                    report.found += 1;
                    let held = comparable(bill.body.clone(), list);
                    if held != *mapped {
                        report.stale += 1;
                        report.example("stale", key);
                        if held.get(list) != mapped.get(list) {
                            report.lines_differ += 1;
                            report.example("lines differ", key);
                        }
                    }
                }
                Some(_) => {
                    report.duplicated += 1;
                    report.example("duplicated", key);
                }
            }
        }
        for (number, bills) in &by_number {
            if !expected.contains_key(number) {
                report.unknown += bills.len() as u64;
                report.example("unknown", number);
            }
        }
        report
    }
}

/// Constant request filters that are also document fields (`status: 110`): documents must match.
fn constant_filters(scheme: &Scheme) -> Vec<(String, String)> {
    scheme
        .config
        .source
        .params
        .iter()
        .filter(|(name, value)| {
            let text = value.value.to_text();
            !text.contains("{{") && scheme.source_api.has_field(name) && name.as_str() == "status"
        })
        .map(|(name, value)| (name.clone(), value.value.to_text()))
        .collect()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
