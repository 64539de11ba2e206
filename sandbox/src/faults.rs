//! Fault injection, by rate (seeded, so a run repeats) or by script (the next requests to an
//! endpoint get these faults, in order), with a count of every fault injected.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

/// An endpoint of the sandbox that faults can be aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// WDT queries, both transports.
    WdtQuery,
    /// Kingdee's app-token endpoint.
    KingdeeToken,
    /// Kingdee `sal_order_save`.
    KingdeeSave,
    /// Kingdee's sales-order detail and list (look-ups by number or id).
    KingdeeLookup,
    /// Kingdee's `push_app_authorize` (the tenant's authorisation pulled again).
    KingdeeAuthorize,
    /// Yonyou's data-centre discovery.
    YonyouDiscovery,
    /// Yonyou's access-token endpoint.
    YonyouToken,
    /// Yonyou `singleSave`.
    YonyouSave,
    /// Yonyou's `voucherorder/detail` and `voucherorder/list` (look-ups by id or code).
    YonyouLookup,
}

/// What can go wrong with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// HTTP 503 with an HTML page; nothing applied.
    ServerError,
    /// No answer for the sandbox's `hang` time (longer than any client waits); nothing applied.
    Timeout,
    /// The answer comes after the sandbox's `slow` delay, otherwise normal.
    Slow,
    /// The service's throttling answer; nothing applied.
    Throttle,
    /// Every token of the service expires just before this request.
    TokenExpiry,
    /// HTTP 200 with a truncated JSON body; nothing applied.
    Malformed,
    /// HTTP 200 with a body that is not JSON (`非法token` on Yonyou, an HTML page elsewhere).
    NotJson,
    /// The request is applied, then the connection is cut mid-answer.
    CommitThenLost,
    /// The request is applied, then the gateway answers HTTP 500, 502 or 504 with a body of its
    /// own: what a service behind a proxy does when it times out after committing.
    CommitThen5xx,
    /// The request is applied, then no answer comes for the sandbox's `hang` time: the moment a
    /// caller killed after the target's write and before its own bookkeeping would be stuck in.
    CommitThenHang,
}

#[derive(Debug)]
struct State {
    rates: HashMap<Endpoint, Vec<(Fault, f64)>>,
    script: HashMap<Endpoint, VecDeque<Fault>>,
    injected: BTreeMap<(Endpoint, Fault), u64>,
    rng: fastrand::Rng,
    /// When tokens were last expired by a fault: a real token expires once in its lifetime, so
    /// the fault fires at most once every 250 ms (a fresh token is never expired as soon as issued).
    last_expiry: Option<std::time::Instant>,
}

/// The sandbox's fault plan.
#[derive(Debug)]
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    pub(crate) fn new(seed: u64) -> Self {
        Faults {
            state: Mutex::new(State {
                rates: HashMap::new(),
                script: HashMap::new(),
                injected: BTreeMap::new(),
                rng: fastrand::Rng::with_seed(seed ^ 0xFA17),
                last_expiry: None,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Injects `fault` into a fraction `rate` (0 to 1) of the requests to `endpoint`.
    pub fn set_rate(&self, endpoint: Endpoint, fault: Fault, rate: f64) {
        let mut state = self.state();
        let rates = state.rates.entry(endpoint).or_default();
        rates.retain(|(f, _)| *f != fault);
        if rate > 0.0 {
            rates.push((fault, rate.min(1.0)));
        }
    }

    /// The next requests to `endpoint` get `faults`, one each, in order (before any rate applies).
    pub fn script(&self, endpoint: Endpoint, faults: impl IntoIterator<Item = Fault>) {
        self.state()
            .script
            .entry(endpoint)
            .or_default()
            .extend(faults);
    }

    /// Removes every rate and script (the counts stay).
    pub fn clear(&self) {
        let mut state = self.state();
        state.rates.clear();
        state.script.clear();
    }

    /// How many times each fault was injected, per endpoint.
    pub fn injected(&self) -> Vec<(Endpoint, Fault, u64)> {
        self.state()
            .injected
            .iter()
            .map(|(&(e, f), &n)| (e, f, n))
            .collect()
    }

    /// How many times `fault` was injected, on every endpoint.
    pub fn count(&self, fault: Fault) -> u64 {
        self.state()
            .injected
            .iter()
            .filter(|((_, f), _)| *f == fault)
            .map(|(_, n)| n)
            .sum()
    }

    /// The fault for the next request to `endpoint`, if any.
    pub(crate) fn draw(&self, endpoint: Endpoint) -> Option<Fault> {
        let mut state = self.state();
        let scripted = state
            .script
            .get_mut(&endpoint)
            .and_then(VecDeque::pop_front);
        let fault = scripted.or_else(|| {
            let roll = state.rng.f64();
            let mut sum = 0.0;
            state
                .rates
                .get(&endpoint)?
                .iter()
                .find_map(|&(fault, rate)| {
                    sum += rate;
                    (roll < sum).then_some(fault)
                })
        })?;
        if fault == Fault::TokenExpiry {
            let now = std::time::Instant::now();
            if state
                .last_expiry
                .is_some_and(|at| now.duration_since(at) < std::time::Duration::from_millis(250))
            {
                return None;
            }
            state.last_expiry = Some(now);
        }
        *state.injected.entry((endpoint, fault)).or_default() += 1;
        Some(fault)
    }
}
