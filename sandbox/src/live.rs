//! Live mode: the WDT account changing while an integration runs. At a set rate, orders and
//! stock-outs are created or edited with `modified` = now, each change stamped with the wall-clock
//! instant it was made and a remark no other change carries; [`latencies`] pairs each change with
//! the first target reception holding it. `tests/benches/latency.rs` measures with it how long an
//! edit in WDT takes to reach Kingdee or Yonyou.
//!
//! Every change writes the remark the bundled schemes map (an order's `cs_remark` → Kingdee
//! `remark`, a stock-out's first line's `remark` → Yonyou `memo`): an edit the target cannot see is
//! rightly never pushed, so it could never be paired.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::source::Kind;
use crate::targets::Reception;
use crate::{Sandbox, State, lock};

/// What a live run changes, and how fast.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// Changes per second, every kind together, evenly spaced.
    pub rate: f64,
    /// Fraction of the changes that create a document; the others edit one this run created whose
    /// latest change a target already holds (a new document when there is none yet).
    pub new_share: f64,
    /// The document lists changed, one drawn at random per change.
    pub kinds: Vec<Kind>,
    /// Seed of the draws (kind, new or edit, which document).
    pub seed: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            rate: 1.0,
            new_share: 0.5,
            kinds: vec![Kind::Order, Kind::Stockout],
            seed: 1,
        }
    }
}

/// One change made to the source.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// The document list.
    pub kind: Kind,
    /// The document's key (`trade_id`, `stockout_id`).
    pub key: String,
    /// Its number (`trade_no`, `order_no`): the bill number the bundled schemes give it.
    pub number: String,
    /// The remark this change wrote; no other change writes the same one.
    pub mark: String,
    /// A new document (otherwise an edit of one this run created).
    pub created: bool,
    /// The document's `modified` time after the change, unix seconds.
    pub modified: i64,
    /// When the change was made.
    pub at: Timestamp,
}

/// A change and when its content reached the target.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// The change.
    pub change: Change,
    /// When the target first received a save holding this change or a later one of the same
    /// document; `None` if it never did.
    pub received: Option<Timestamp>,
    /// The save that carried it held a later change of the document (this one was superseded
    /// before it was pushed, so it never travelled on its own: correct, and counted apart).
    pub by_later: bool,
}

impl Latency {
    /// Seconds from the change to the receipt, if received.
    pub fn seconds(&self) -> Option<f64> {
        let received = self.received?;
        Some(received.duration_since(self.change.at).as_secs_f64())
    }
}

/// A running live mode; [`Live::stop`] ends it. Dropping it stops the changes too.
#[derive(Debug)]
pub struct Live {
    changes: Arc<Mutex<Vec<Change>>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Live {
    /// The changes made so far.
    pub fn changes(&self) -> Vec<Change> {
        lock(&self.changes).clone()
    }

    /// Stops changing the source; returns every change made.
    pub async fn stop(mut self) -> Vec<Change> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        self.changes()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sandbox {
    /// Starts changing the source at `config.rate` until [`Live::stop`]. Must be called inside a
    /// tokio runtime.
    pub fn live(&self, config: LiveConfig) -> Live {
        let changes = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = oneshot::channel();
        let state = self.state.clone();
        let log = changes.clone();
        let task = tokio::spawn(async move {
            let period = Duration::from_secs_f64(1.0 / config.rate.max(1e-3));
            let mut ticker = tokio::time::interval(period);
            // A late tick (a busy machine) shifts the schedule rather than bursting to catch up:
            // the rate is what was asked on average, and a burst would look like a load spike.
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut editor = Editor {
                rng: fastrand::Rng::with_seed(config.seed),
                ..Editor::default()
            };
            loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    _ = ticker.tick() => {}
                }
                let drawn = editor.rng.usize(0..config.kinds.len().max(1));
                let Some(&kind) = config.kinds.get(drawn) else {
                    return;
                };
                editor.arrivals(&state);
                let change = editor.change(&state, kind, config.new_share);
                lock(&log).push(change);
            }
        });
        Live {
            changes,
            stop: Some(stop),
            task,
        }
    }
}

/// A document of one list: kind and index.
type Document = (Kind, u32);

/// What a live run knows of its documents.
#[derive(Default)]
struct Editor {
    rng: fastrand::Rng,
    /// Changes made.
    seq: u64,
    /// The remark of each document's latest change not yet seen at a target.
    pending: HashMap<String, Document>,
    /// Documents whose latest change a target holds: the ones an edit picks from, so each edit
    /// starts from a synced bill and none lands on a change still on its way (that would restart
    /// the document's settle delay and measure the two together).
    settled: HashMap<Kind, Vec<u32>>,
    /// Receptions read so far.
    seen: usize,
}

impl Editor {
    /// Reads the targets' new receptions: a document whose latest remark arrived is settled.
    fn arrivals(&mut self, state: &State) {
        let receptions = lock(&state.receptions);
        for reception in receptions.iter().skip(self.seen) {
            if reception.outcome != "created" && reception.outcome != "updated" {
                continue;
            }
            strings(&reception.body, &mut |text| {
                if let Some((kind, index)) = self.pending.remove(text) {
                    self.settled.entry(kind).or_default().push(index);
                }
            });
        }
        self.seen = receptions.len();
    }

    /// Makes one change of `kind`: a new document, or an edit of a settled one.
    fn change(&mut self, state: &State, kind: Kind, new_share: f64) -> Change {
        let mut source = lock(&state.source);
        // Stamped under the lock: no query can see the change before its instant.
        let at = Timestamp::now();
        let now = at.as_second();
        let settled = self.settled.entry(kind).or_default();
        let edit = (!settled.is_empty() && self.rng.f64() >= new_share)
            .then(|| settled.swap_remove(self.rng.usize(0..settled.len())));
        let index = edit.unwrap_or_else(|| source.create(kind, now));
        self.seq += 1;
        let mark = format!(
            "{}#{:07}",
            if edit.is_some() { "改" } else { "新" },
            self.seq
        );
        source.remark(kind, index, &mark, now);
        self.pending.insert(mark.clone(), (kind, index));
        let number_field = match kind {
            Kind::Order => "trade_no",
            Kind::Stockout => "order_no",
        };
        let number = match &source.document(kind, index)[number_field] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Change {
            kind,
            key: source.key(kind, index),
            number,
            mark,
            created: edit.is_none(),
            modified: now,
            at,
        }
    }
}

/// Pairs each change with the first save the targets applied (`created` or `updated`) that holds
/// its remark, or the remark of a later change of the same document (the newer content includes
/// it). Receptions are read in the order received.
pub fn latencies(changes: &[Change], receptions: &[Reception]) -> Vec<Latency> {
    let by_mark: HashMap<&str, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.mark.as_str(), i))
        .collect();
    // Each document's changes in the order made.
    let mut by_document: HashMap<(Kind, &str), Vec<usize>> = HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        by_document
            .entry((c.kind, c.key.as_str()))
            .or_default()
            .push(i);
    }
    let mut out: Vec<Latency> = changes
        .iter()
        .map(|change| Latency {
            change: change.clone(),
            received: None,
            by_later: false,
        })
        .collect();
    for reception in receptions {
        // A repeat was answered with an earlier save's result; a refusal holds nothing.
        if reception.outcome != "created" && reception.outcome != "updated" {
            continue;
        }
        let mut carried = Vec::new();
        strings(&reception.body, &mut |text| {
            if let Some(&i) = by_mark.get(text) {
                carried.push(i);
            }
        });
        for i in carried {
            let change = &changes[i];
            for &earlier in &by_document[&(change.kind, change.key.as_str())] {
                let latency = &mut out[earlier];
                if latency.received.is_none() {
                    latency.received = Some(reception.at);
                    latency.by_later = earlier != i;
                }
                if earlier == i {
                    break;
                }
            }
        }
    }
    out
}

/// Calls `f` with every string in `value`.
fn strings(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|v| strings(v, f)),
        Value::Object(map) => map.values().for_each(|v| strings(v, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceData;

    fn reception(body: Value, outcome: &str, at: Timestamp) -> Reception {
        Reception {
            service: "kingdee",
            body,
            outcome: outcome.into(),
            id: None,
            answer_lost: false,
            for_good: false,
            at,
        }
    }

    #[test]
    fn created_and_edited_documents_carry_their_remark_and_a_new_modified_time() {
        let now = Timestamp::now().as_second();
        let mut data = SourceData::generate(5, 20, Timestamp::now());
        for kind in [Kind::Order, Kind::Stockout] {
            let index = data.create(kind, now);
            assert!(data.is_visible(kind, index, now));
            assert_eq!(data.modified(kind, index), now);
            data.remark(kind, index, "新#1", now);
            data.remark(kind, index, "改#2", now + 5);
            assert_eq!(data.modified(kind, index), now + 5);
            let doc = data.document(kind, index);
            let remark = match kind {
                Kind::Order => &doc["cs_remark"],
                Kind::Stockout => &doc["details_list"][0]["remark"],
            };
            assert_eq!(remark, "改#2");
            // The window query finds it at its new time only.
            let at = |t| data.window(kind, crate::TimeField::Modified, t, t, now + 5);
            assert!(at(now + 5).contains(&index));
            assert!(!at(now).contains(&index));
        }
    }

    #[test]
    fn each_change_pairs_with_the_first_save_holding_it_or_a_later_one() {
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let secs = |s: i64| t0 + jiff::SignedDuration::from_secs(s);
        let change = |key: &str, mark: &str, at: i64| Change {
            kind: Kind::Order,
            key: key.into(),
            number: format!("JY{key}"),
            mark: mark.into(),
            created: mark.starts_with('新'),
            modified: secs(at).as_second(),
            at: secs(at),
        };
        let changes = vec![
            change("1", "新#1", 0),
            change("2", "新#2", 1),
            change("1", "改#3", 2),
            change("1", "改#4", 3),
            change("2", "改#5", 4),
        ];
        let receptions = vec![
            reception(serde_json::json!({"remark": "新#1"}), "created", secs(10)),
            // Refused: holds nothing.
            reception(
                serde_json::json!({"remark": "新#2"}),
                "单据编号重复",
                secs(11),
            ),
            reception(
                serde_json::json!({"lines": [{"memo": "新#2"}]}),
                "created",
                secs(12),
            ),
            // #3 was superseded by #4 before it was pushed.
            reception(serde_json::json!({"remark": "改#4"}), "updated", secs(20)),
            reception(serde_json::json!({"remark": "改#4"}), "updated", secs(30)),
        ];
        let pairs = latencies(&changes, &receptions);
        let seconds: Vec<Option<f64>> = pairs.iter().map(Latency::seconds).collect();
        assert_eq!(
            seconds,
            [Some(10.0), Some(11.0), Some(18.0), Some(17.0), None]
        );
        let later: Vec<bool> = pairs.iter().map(|p| p.by_later).collect();
        assert_eq!(later, [false, false, true, false, false]);
    }
}
