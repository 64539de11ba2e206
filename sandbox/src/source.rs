//! The WDT side of the sandbox: the seeded orders and stock-outs, indexed by the times the queries
//! filter on, and the changes the real service sees while an integration runs: edits (a new
//! `modified` time and content), late commits (a document that appears with an earlier time), a
//! stock-out approved again under a new `order_no`, and drift while a window is paged.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::Value;

use crate::data::Generator;

/// Which WDT document list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `wdt.trade.query` orders, keyed on `trade_id`.
    Order,
    /// `wdt.stockout.order.query.trade` sales stock-outs, keyed on `stockout_id`.
    Stockout,
}

/// Which time a query filters on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeField {
    /// `modified`.
    Modified,
    /// `consign_time` (stock-outs only).
    Consign,
}

#[derive(Clone, Debug)]
struct Entry {
    /// `modified`, unix seconds.
    modified: i64,
    /// `consign_time`, unix seconds (stock-outs).
    consign: i64,
    /// 0 as generated; each edit adds one.
    version: u32,
    /// Re-approvals (each gives the stock-out a new `order_no`).
    reapprovals: u32,
    /// Hidden from queries until this instant (unix seconds): a late commit.
    visible_from: i64,
    /// The generator's document this one is built from.
    template: u64,
    /// Top-level fields set (`Some`) or removed (`None`) after generation: bad input on purpose.
    patches: Vec<(String, Option<Value>)>,
}

#[derive(Debug, Default)]
struct Collection {
    entries: Vec<Entry>,
    by_modified: BTreeSet<(i64, u32)>,
    by_consign: BTreeSet<(i64, u32)>,
}

impl Collection {
    fn push(&mut self, entry: Entry) -> u32 {
        let index = self.entries.len() as u32;
        self.by_modified.insert((entry.modified, index));
        self.by_consign.insert((entry.consign, index));
        self.entries.push(entry);
        index
    }

    fn set_modified(&mut self, index: u32, modified: i64) {
        let entry = &mut self.entries[index as usize];
        self.by_modified.remove(&(entry.modified, index));
        entry.modified = modified;
        self.by_modified.insert((modified, index));
    }
}

/// The documents a WDT account holds.
#[derive(Debug)]
pub struct SourceData {
    generator: Generator,
    /// Unix seconds of the generator's base time.
    base: i64,
    orders: Collection,
    stockouts: Collection,
}

fn beijing(unix: i64) -> String {
    ferry_common::time::format_source(ferry_common::time::to_beijing(
        Timestamp::from_second(unix).expect("a time in range"),
    ))
}

impl SourceData {
    /// `count` orders and their `count` stock-outs from `seed`, the newest stock-out shipped just
    /// before `now` (so the whole data set is in the past when the sandbox starts).
    pub fn generate(seed: u64, count: u64, now: Timestamp) -> Self {
        let span = Generator::span(count);
        let base_instant = now
            .checked_sub(jiff::SignedDuration::from_secs(span + 60))
            .expect("a time in range");
        let base = ferry_common::time::to_beijing(base_instant);
        let generator = Generator::with_base(seed, base);
        let mut data = SourceData {
            generator,
            base: base_instant.as_second(),
            orders: Collection::default(),
            stockouts: Collection::default(),
        };
        for index in 0..count {
            let modified = data.base + data.generator.order_modified_offset(index);
            data.orders.push(Entry {
                modified,
                consign: modified,
                version: 0,
                reapprovals: 0,
                visible_from: 0,
                template: index,
                patches: Vec::new(),
            });
            let shipped = data.base + data.generator.stockout_shipped_offset(index);
            data.stockouts.push(Entry {
                modified: shipped,
                consign: shipped,
                version: 0,
                reapprovals: 0,
                visible_from: 0,
                template: index,
                patches: Vec::new(),
            });
        }
        data
    }

    fn collection(&self, kind: Kind) -> &Collection {
        match kind {
            Kind::Order => &self.orders,
            Kind::Stockout => &self.stockouts,
        }
    }

    fn collection_mut(&mut self, kind: Kind) -> &mut Collection {
        match kind {
            Kind::Order => &mut self.orders,
            Kind::Stockout => &mut self.stockouts,
        }
    }

    /// Documents of `kind`, late commits not yet visible included.
    pub fn len(&self, kind: Kind) -> usize {
        self.collection(kind).entries.len()
    }

    /// Whether there are no documents at all.
    pub fn is_empty(&self) -> bool {
        self.orders.entries.is_empty()
    }

    /// The earliest `modified` time of the data set, Beijing time: where a first sync starts.
    pub fn first_time(&self) -> String {
        beijing(self.base)
    }

    /// The status of document `index` (`trade_status` of orders, `status` of stock-outs): every
    /// generated document is completed (110), which is what the bundled schemes sync.
    pub fn status(&self, _kind: Kind, _index: u32) -> &'static str {
        "110"
    }

    /// Document `index` of `kind` as the API returns it now.
    pub fn document(&self, kind: Kind, index: u32) -> Value {
        let entry = &self.collection(kind).entries[index as usize];
        let mut doc = match kind {
            Kind::Order => self.generator.order(entry.template),
            Kind::Stockout => self.generator.stockout(entry.template),
        };
        let id_field = match kind {
            Kind::Order => "trade_id",
            Kind::Stockout => "stockout_id",
        };
        if entry.template != u64::from(index) {
            // A late commit: a document of its own, built from an existing one.
            let offset = match kind {
                Kind::Order => 100_000,
                Kind::Stockout => 500_000,
            };
            let id = (offset + u64::from(index)).to_string();
            doc[id_field] = Value::String(id.clone());
            if kind == Kind::Order {
                doc["trade_no"] = Value::String(format!("JYL{index:09}"));
                doc["src_tids"] = Value::String(format!("L{index:012}"));
            } else {
                doc["src_order_no"] = Value::String(format!("JYL{index:09}"));
                doc["order_no"] = Value::String(format!("CKL{index:09}"));
                if let Some(lines) = doc["details_list"].as_array_mut() {
                    for line in lines {
                        line["stockout_id"] = Value::String(id.clone());
                    }
                }
            }
        }
        doc["modified"] = Value::String(beijing(entry.modified));
        if kind == Kind::Stockout {
            doc["consign_time"] = Value::String(beijing(entry.consign));
        }
        if entry.version > 0 {
            let note = format!("第{}次修改", entry.version);
            let field = match kind {
                Kind::Order => "cs_remark",
                Kind::Stockout => "remark",
            };
            doc[field] = Value::String(note);
            edit_lines(kind, &mut doc, entry.version);
        }
        if entry.reapprovals > 0
            && let Some(number) = doc["order_no"].as_str()
        {
            doc["order_no"] = Value::String(format!("{number}-{}", entry.reapprovals));
        }
        if let Some(map) = doc.as_object_mut() {
            for (field, value) in &entry.patches {
                match value {
                    Some(value) => map.insert(field.clone(), value.clone()),
                    None => map.remove(field),
                };
            }
        }
        doc
    }

    /// The key of document `index` (`trade_id` or `stockout_id`).
    pub fn key(&self, kind: Kind, index: u32) -> String {
        let offset = match kind {
            Kind::Order => 100_000,
            Kind::Stockout => 500_000,
        };
        (offset + u64::from(index)).to_string()
    }

    /// The index of the document whose key is `key`.
    pub fn index_of_key(&self, kind: Kind, key: &str) -> Option<u32> {
        let offset = match kind {
            Kind::Order => 100_000,
            Kind::Stockout => 500_000,
        };
        let index = key.parse::<u64>().ok()?.checked_sub(offset)?;
        (index < self.len(kind) as u64).then_some(index as u32)
    }

    /// Indexes of the visible documents whose `field` time lies in `[start, end]` (unix seconds,
    /// both ends included), ordered by that time.
    pub fn window(&self, kind: Kind, field: TimeField, start: i64, end: i64, now: i64) -> Vec<u32> {
        let collection = self.collection(kind);
        let index = match field {
            TimeField::Modified => &collection.by_modified,
            TimeField::Consign => &collection.by_consign,
        };
        index
            .range((start, 0)..=(end, u32::MAX))
            .map(|&(_, i)| i)
            .filter(|&i| collection.entries[i as usize].visible_from <= now)
            .collect()
    }

    /// The visible documents whose `field` (`trade_no`, `src_tid`, `src_order_no`) equals `value`.
    pub fn lookup(&self, kind: Kind, field: &str, value: &str, now: i64) -> Vec<u32> {
        let matches = |doc: &Value| match field {
            "src_tid" => doc["src_tids"]
                .as_str()
                .is_some_and(|tids| tids.split(',').any(|t| t == value)),
            _ => doc[field].as_str() == Some(value),
        };
        let candidates = self.candidates(kind, field, value);
        let mut found: Vec<u32> = candidates
            .into_iter()
            .filter(|&i| (i as usize) < self.len(kind))
            .filter(|&i| self.collection(kind).entries[i as usize].visible_from <= now)
            .filter(|&i| matches(&self.document(kind, i)))
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }

    /// The indexes a number can belong to, so a look-up builds a handful of documents, not all:
    /// generated numbers end in the index modulo 10⁶ (`trade_no`, `order_no`) or in index × 7919
    /// modulo 10¹² (`src_tid`); late commits end in their index (9 digits). A re-approval's `-N` is
    /// ignored.
    fn candidates(&self, kind: Kind, field: &str, value: &str) -> Vec<u32> {
        /// 7919⁻¹ modulo 10¹².
        const INVERSE_7919: u128 = 524_940_017_679;
        let value = value.split('-').next().unwrap_or(value);
        let tail = |digits: usize| {
            value
                .len()
                .checked_sub(digits)
                .and_then(|at| value.get(at..))
                .and_then(|text| text.parse::<u64>().ok())
        };
        let len = self.len(kind) as u64;
        let mut out: Vec<u64> = tail(9).into_iter().collect();
        if field == "src_tid" {
            if let Some(product) = tail(12) {
                out.push((u128::from(product) * INVERSE_7919 % 1_000_000_000_000) as u64);
            }
        } else if let Some(rest) = tail(6) {
            out.extend((rest..len).step_by(1_000_000));
        }
        out.into_iter()
            .filter(|&i| i < len)
            .map(|i| i as u32)
            .collect()
    }

    /// Touches document `index` at `now`: a new `modified` time and nothing else (what WDT does
    /// when a field no scheme reads changes, or a flow re-saves the document).
    pub fn touch(&mut self, kind: Kind, index: u32, now: i64) {
        self.collection_mut(kind).set_modified(index, now);
    }

    /// Edits document `index` at `now`: a new `modified` time and a changed remark; from the
    /// second edit on, its lines change too (see [`edit_lines`]).
    pub fn modify(&mut self, kind: Kind, index: u32, now: i64) {
        let collection = self.collection_mut(kind);
        collection.entries[index as usize].version += 1;
        collection.set_modified(index, now);
    }

    /// Sets (`Some`) or removes (`None`) top-level `field` of document `index` from now on, without
    /// touching its `modified` time: a document that arrives broken, as real ones sometimes do.
    pub fn patch(&mut self, kind: Kind, index: u32, field: &str, value: Option<Value>) {
        self.collection_mut(kind).entries[index as usize]
            .patches
            .push((field.to_owned(), value));
    }

    /// Rejects and approves stock-out `index` again at `now`: a new `order_no`, same `stockout_id`.
    pub fn reapprove(&mut self, index: u32, now: i64) {
        self.stockouts.entries[index as usize].reapprovals += 1;
        self.modify(Kind::Stockout, index, now);
    }

    /// Commits a new document whose `modified` time is `backdate` seconds before `now`, visible from
    /// `now` on: what a slow transaction in WDT looks like to a poller. Returns its index.
    pub fn commit_late(&mut self, kind: Kind, backdate: i64, now: i64) -> u32 {
        let count = self.len(kind) as u64;
        // Built from an ordinary document (never the 300-line template), chosen deterministically.
        let template = count % 999;
        let modified = now - backdate;
        self.collection_mut(kind).push(Entry {
            modified,
            consign: modified,
            version: 0,
            reapprovals: 0,
            visible_from: now,
            template,
            patches: Vec::new(),
        })
    }

    /// Creates a new document of `kind` whose `modified` time is `now`, visible at once: an order
    /// placed or a stock-out approved while an integration runs. Built from an existing document as
    /// a late commit is (its own key and numbers). Returns its index.
    pub fn create(&mut self, kind: Kind, now: i64) -> u32 {
        self.commit_late(kind, 0, now)
    }

    /// Sets the remark the bundled schemes carry to the target to `note` at `now` (a new
    /// `modified` time): an order's 客服备注 `cs_remark` (Kingdee `remark`), the first line's
    /// `remark` of a stock-out (Yonyou `memo`). Unlike [`SourceData::modify`], every call changes
    /// what the target reads, so each one is a write a latency measurement can wait for.
    pub fn remark(&mut self, kind: Kind, index: u32, note: &str, now: i64) {
        let (field, value) = match kind {
            Kind::Order => ("cs_remark", Value::String(note.to_owned())),
            Kind::Stockout => {
                let mut doc = self.document(kind, index);
                let mut lines = doc["details_list"].take();
                if let Some(first) = lines.as_array_mut().and_then(|l| l.first_mut()) {
                    first["remark"] = Value::String(note.to_owned());
                }
                ("details_list", lines)
            }
        };
        // Replaces the field's earlier patch (the new value was built over it), so a document
        // edited for hours keeps one patch, not one per edit.
        let patches = &mut self.collection_mut(kind).entries[index as usize].patches;
        patches.retain(|(name, _)| name != field);
        patches.push((field.to_owned(), Some(value)));
        self.touch(kind, index, now);
    }

    /// The time (unix seconds) document `index` was last modified.
    pub fn modified(&self, kind: Kind, index: u32) -> i64 {
        self.collection(kind).entries[index as usize].modified
    }

    /// The current version of document `index` (0 as generated; each edit adds one).
    pub fn version(&self, kind: Kind, index: u32) -> u32 {
        self.collection(kind).entries[index as usize].version
    }

    /// Whether document `index` is visible to queries at `now`.
    pub fn is_visible(&self, kind: Kind, index: u32, now: i64) -> bool {
        self.collection(kind).entries[index as usize].visible_from <= now
    }
}

/// The line edits of a document's versions, cumulative: each edit changes the remark; the 2nd,
/// 6th... edit raises the last line's quantity by one; the 3rd, 7th... adds a line; the 4th, 8th...
/// removes the first line of a stock-out with more than one (a line taken off before shipping).
/// Orders lose no lines: 金蝶 may keep an entry a modify leaves out, and offers no way to delete one,
/// so a removed order line is a conflict a person settles (tested apart, not in every run).
fn edit_lines(kind: Kind, doc: &mut Value, version: u32) {
    let list = match kind {
        Kind::Order => "goods_list",
        Kind::Stockout => "details_list",
    };
    let Some(lines) = doc.get_mut(list).and_then(Value::as_array_mut) else {
        return;
    };
    for step in 1..=version {
        match step % 4 {
            2 => {
                if let Some(line) = lines.last_mut() {
                    let num = match &line["num"] {
                        Value::Number(n) => n.as_f64().unwrap_or(1.0),
                        Value::String(s) => s.trim().parse().unwrap_or(1.0),
                        _ => 1.0,
                    };
                    let text = format!("{}.0000", num as i64 + 1);
                    line["num"] = Value::String(text.clone());
                    if kind == Kind::Stockout {
                        line["goods_count"] = Value::String(text);
                    }
                }
            }
            3 => {
                if let Some(last) = lines.last().cloned() {
                    let mut line = last;
                    let rec = line["rec_id"].as_str().unwrap_or("0").to_owned();
                    line["rec_id"] = Value::String(format!("{rec}{step}"));
                    line["remark"] = Value::String(format!("第{step}次修改加的行"));
                    lines.push(line);
                }
            }
            0 if kind == Kind::Stockout && lines.len() > 1 => {
                lines.remove(0);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_ups_find_documents_by_every_number_they_carry() {
        let now = Timestamp::now().as_second();
        let mut data = SourceData::generate(3, 2_500, Timestamp::now());
        for index in [0u32, 17, 999, 1_234, 2_499] {
            let order = data.document(Kind::Order, index);
            for (field, value) in [
                ("trade_no", &order["trade_no"]),
                ("src_tid", &order["src_tids"]),
            ] {
                let found = data.lookup(Kind::Order, field, value.as_str().unwrap(), now);
                assert_eq!(found, vec![index], "{field} of order {index}");
            }
        }
        data.reapprove(42, now);
        let stockout = data.document(Kind::Stockout, 42);
        let number = stockout["order_no"].as_str().unwrap();
        assert!(number.ends_with("-1"));
        assert_eq!(
            data.lookup(Kind::Stockout, "order_no", number, now),
            vec![42]
        );
        let late = data.commit_late(Kind::Order, 60, now);
        let order = data.document(Kind::Order, late);
        assert_eq!(
            data.lookup(
                Kind::Order,
                "trade_no",
                order["trade_no"].as_str().unwrap(),
                now
            ),
            vec![late]
        );
        assert!(
            data.lookup(Kind::Order, "trade_no", "JY-none", now)
                .is_empty()
        );
    }
}
