//! The fault mix: every way an integration fails at its edges — answers lost, tokens expired, pages
//! delivered twice, processes killed, documents changing while they are read — injected into the
//! sandbox and into the engine's own processes, followed by the proof that nothing was lost, written
//! twice or left stale. `ferry demo --faults` and the fault tests both run it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{Endpoint, Fault, Kind, Sandbox, SandboxConfig, Verification};
use ferry_common::connector::Clients;
use ferry_common::connector::HttpSettings;
use ferry_common::embedded::{EmbeddedQueue, Runtime, SchemePlan, Settings, Tally};
use ferry_common::engine::{PageQueue, RecordState, RecordStore};
use serde::Serialize;

/// One fault of the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Injury {
    /// HTTP 503 on about 10% of the calls to every service.
    ServerErrors,
    /// No answer within the client's timeout on 5% of the calls.
    Timeouts,
    /// Saves that land in the target and whose answer is lost: 2% cut mid-answer, 3% answered with
    /// HTTP 500, 502 or 504 after the commit.
    LostAnswers,
    /// Tokens expire mid-run (1% of the target calls).
    TokenExpiry,
    /// The services' throttling answers on 3% of the calls.
    Throttling,
    /// Every queued message is delivered twice.
    DuplicateDeliveries,
    /// A poller is killed in the middle of a window; another process takes over.
    PollerKilled,
    /// A pusher is killed after the target saved a bill and before the record was written.
    PusherKilled,
    /// 5% of the documents served are edited right after (they move while their window is paged).
    Drift,
    /// Documents committed late, with times inside the lookback.
    LateCommits,
    /// Stock-outs approved again under a new number.
    Reapproval,
    /// Documents edited after they were synced: remarks, quantities, lines added and removed.
    EditsAfterSync,
    /// 1% of the documents are refused by the target for good (a business rule).
    Refusals,
}

impl Injury {
    /// Every fault, in the order reports list them.
    pub const ALL: [Injury; 13] = [
        Injury::ServerErrors,
        Injury::Timeouts,
        Injury::LostAnswers,
        Injury::TokenExpiry,
        Injury::Throttling,
        Injury::DuplicateDeliveries,
        Injury::PollerKilled,
        Injury::PusherKilled,
        Injury::Drift,
        Injury::LateCommits,
        Injury::Reapproval,
        Injury::EditsAfterSync,
        Injury::Refusals,
    ];
}

/// The client's timeout under the mix: short, so a timeout costs a test a second, not thirty.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(1_000);

/// Adjusts a sandbox configuration for `injuries` (refusals and hangs are fixed at start).
pub fn sandbox_config(injuries: &[Injury], config: &mut SandboxConfig) {
    // Longer than the client waits: a real timeout, not an error page.
    config.hang = CLIENT_TIMEOUT + Duration::from_millis(500);
    if injuries.contains(&Injury::Refusals) {
        config.refuse_rate = 0.01;
    }
}

/// Short timings, so that redeliveries, lapsed claims and lapsed leases happen within seconds.
pub fn settings() -> Settings {
    Settings {
        max_receives: 30,
        visibility: Duration::from_secs(2),
        claim_ttl: Duration::from_secs(2),
        retry_min: Duration::from_millis(50),
        retry_max: Duration::from_millis(400),
        retry_limit: 1_000,
        poll_budget: Duration::from_secs(120),
        lease: Duration::from_secs(1),
        batch: 10,
    }
}

/// Counts of what the mix did to the engine and the source (the sandbox counts the HTTP faults).
#[derive(Clone, Debug, Default, Serialize)]
pub struct EngineFaults {
    /// Pollers killed mid-window.
    pub pollers_killed: u32,
    /// Pushers killed after a target write.
    pub pushers_killed: u32,
    /// Messages queued a second time.
    pub duplicate_messages: u64,
    /// Documents committed late.
    pub late_commits: u32,
    /// Documents edited after sync.
    pub edits_after_sync: u32,
    /// Stock-outs approved again.
    pub reapprovals: u32,
    /// Polls that failed (the source kept failing) and were resumed by the next round.
    pub failed_polls: u32,
    /// Dead letters put back by the operator's redrive.
    pub redriven: u64,
}

/// One fault the sandbox injected, and how often.
#[derive(Clone, Debug, Serialize)]
pub struct Injected {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// The fault.
    pub fault: Fault,
    /// How many times.
    pub count: u64,
}

/// How one scheme came out of the mix.
#[derive(Clone, Debug, Serialize)]
pub struct SchemeProof {
    /// The scheme id.
    pub scheme: String,
    /// The targets against the source.
    pub verification: Verification,
    /// Pushes over the whole mix.
    pub push: Tally,
    /// Synced records.
    pub synced: u64,
    /// Failed records (each should be a document the target refused for good).
    pub failed: u64,
    /// Where the records disagree with the target or the failures with the refusals.
    pub problems: Vec<String>,
}

impl SchemeProof {
    /// Nothing lost, duplicated or stale, and the records agree.
    pub fn is_clean(&self) -> bool {
        self.verification.is_clean() && self.problems.is_empty()
    }
}

/// What the whole mix did and proved.
#[derive(Clone, Debug, Serialize)]
pub struct MixReport {
    /// The faults in the mix.
    pub injuries: Vec<Injury>,
    /// Rounds of poll and push it took.
    pub rounds: u32,
    /// HTTP faults the sandbox injected.
    pub injected: Vec<Injected>,
    /// Faults done to the engine and the source.
    pub engine: EngineFaults,
    /// Per scheme.
    pub schemes: Vec<SchemeProof>,
    /// Wall time.
    pub seconds: f64,
}

impl MixReport {
    /// Every scheme clean.
    pub fn is_clean(&self) -> bool {
        self.schemes.iter().all(SchemeProof::is_clean)
    }

    /// Faults injected in all, HTTP and engine.
    pub fn faults(&self) -> u64 {
        let e = &self.engine;
        self.injected.iter().map(|i| i.count).sum::<u64>()
            + u64::from(e.pollers_killed + e.pushers_killed)
            + e.duplicate_messages
            + u64::from(e.late_commits + e.edits_after_sync + e.reapprovals)
    }

    /// One line of figures per scheme, for logs and test output.
    pub fn summary(&self) -> String {
        let mut lines = vec![format!(
            "fault mix {:?}: {} faults injected ({} HTTP), {} rounds, {:.1} s; engine {:?}",
            self.injuries,
            self.faults(),
            self.injected.iter().map(|i| i.count).sum::<u64>(),
            self.rounds,
            self.seconds,
            self.engine
        )];
        for s in &self.schemes {
            let v = &s.verification;
            lines.push(format!(
                "  {}: {} documents, {} found, {} lost, {} duplicated, {} stale, {} refused (failed records {}), problems {:?}",
                s.scheme, v.expected, v.found, v.missing, v.duplicated, v.stale, v.refused, s.failed, s.problems
            ));
        }
        lines.join("\n")
    }
}

/// Runs the mix against a sandbox started with [`sandbox_config`].
pub struct Mix<'a> {
    /// The sandbox.
    pub sandbox: &'a Sandbox,
    /// The store file (each "process" of the mix opens it anew).
    pub store: PathBuf,
    /// Builds the schemes to run (called for every new process).
    pub plans: &'a dyn Fn() -> Vec<SchemePlan>,
    /// The faults.
    pub injuries: Vec<Injury>,
    /// Told of each step, for progress output.
    pub progress: &'a (dyn Fn(&str) + Sync),
}

impl Mix<'_> {
    fn has(&self, injury: Injury) -> bool {
        self.injuries.contains(&injury)
    }

    /// A new process over the store: its own clients, its own lease-holder id.
    pub fn process(&self) -> Result<Runtime, String> {
        let clients = Clients::with_http(
            &self.sandbox.connectors(),
            HttpSettings {
                timeout: CLIENT_TIMEOUT,
                ..Clients::http()
            },
        )?;
        Runtime::new(
            &self.store,
            (self.plans)(),
            &clients,
            &self.sandbox.rate_limits(),
            settings(),
        )
        .map_err(|e| e.to_string())
    }

    fn set_rates(&self) {
        let faults = self.sandbox.faults();
        let saves = [Endpoint::KingdeeSave, Endpoint::YonyouSave];
        let calls = [
            Endpoint::WdtQuery,
            Endpoint::KingdeeSave,
            Endpoint::KingdeeLookup,
            Endpoint::YonyouSave,
            Endpoint::YonyouLookup,
        ];
        for endpoint in calls {
            if self.has(Injury::ServerErrors) {
                faults.set_rate(endpoint, Fault::ServerError, 0.10);
            }
            if self.has(Injury::Timeouts) {
                faults.set_rate(endpoint, Fault::Timeout, 0.05);
            }
            if self.has(Injury::Throttling) {
                faults.set_rate(endpoint, Fault::Throttle, 0.03);
            }
        }
        for endpoint in saves {
            if self.has(Injury::LostAnswers) {
                faults.set_rate(endpoint, Fault::CommitThenLost, 0.02);
                faults.set_rate(endpoint, Fault::CommitThen5xx, 0.03);
            }
            if self.has(Injury::TokenExpiry) {
                faults.set_rate(endpoint, Fault::TokenExpiry, 0.01);
            }
        }
        if self.has(Injury::Drift) {
            self.sandbox.set_drift_rate(0.05);
        }
    }

    /// Runs the mix to the end and checks the outcome.
    pub async fn run(&self) -> Result<MixReport, String> {
        let started = Instant::now();
        self.set_rates();
        let mut engine = EngineFaults::default();
        let schemes = (self.plans)().len();
        let mut tallies = vec![Tally::default(); schemes];
        let mut rounds = 0;
        // Two rounds under every fault, the source changing in between.
        for round in 0..2 {
            rounds += 1;
            (self.progress)(&format!("round {rounds}: poll and push under faults"));
            for (index, tally) in tallies.iter_mut().enumerate() {
                self.faulted_round(index, round == 0, &mut engine, tally)
                    .await?;
            }
            if round == 0 {
                self.change_the_source(&mut engine);
            }
        }
        // The source stops changing; the faults go on. Rounds until everything is settled.
        self.sandbox.set_drift_rate(0.0);
        let mut settled = false;
        while !settled && rounds < 20 {
            rounds += 1;
            (self.progress)(&format!("round {rounds}: catching up"));
            settled = true;
            let runtime = self.process()?;
            for (index, tally) in tallies.iter_mut().enumerate() {
                let done = match runtime.poll(index, &|_| {}).await {
                    Ok(report) => report.stop == ferry_common::engine::Stop::Done,
                    Err(e) => {
                        tracing::warn!(error = %e, "poll failed; the next round resumes");
                        engine.failed_polls += 1;
                        false
                    }
                };
                drain(&runtime, index, tally).await?;
                let queue = &runtime.schemes[index].queue;
                let dead = queue.dead_letters().await.map_err(|e| e.to_string())?;
                if !dead.is_empty() {
                    // What an operator does: `ferry replay SCHEME --dead-letters`.
                    engine.redriven += queue.redrive().await.map_err(|e| e.to_string())?;
                    settled = false;
                }
                let open = open_records(&runtime, index).await?;
                settled &= done && open == 0;
            }
        }
        let runtime = self.process()?;
        let mut proofs = Vec::new();
        for (index, run) in runtime.schemes.iter().enumerate() {
            let verification = self.sandbox.verify(&run.scheme);
            let (synced, failed, problems) =
                check_records(&runtime, index, self.sandbox, &verification).await?;
            proofs.push(SchemeProof {
                scheme: run.scheme.id().to_owned(),
                verification,
                push: tallies[index].clone(),
                synced,
                failed,
                problems,
            });
        }
        Ok(MixReport {
            injuries: self.injuries.clone(),
            rounds,
            injected: self
                .sandbox
                .faults()
                .injected()
                .into_iter()
                .map(|(endpoint, fault, count)| Injected {
                    endpoint,
                    fault,
                    count,
                })
                .collect(),
            engine,
            schemes: proofs,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// One poll and push of scheme `index` with the engine-side faults: a poller killed mid-window,
    /// every message queued twice, a pusher killed after a target write.
    async fn faulted_round(
        &self,
        index: usize,
        first: bool,
        engine: &mut EngineFaults,
        tally: &mut Tally,
    ) -> Result<(), String> {
        let mut runtime = self.process()?;
        if first && self.has(Injury::PollerKilled) {
            let pages = AtomicU32::new(0);
            let count = |_: &ferry_common::engine::PageEvent| {
                pages.fetch_add(1, Ordering::SeqCst);
            };
            let killed = tokio::select! {
                _ = runtime.poll(index, &count) => false,
                _ = until(|| pages.load(Ordering::SeqCst) >= 2) => true,
            };
            if killed {
                engine.pollers_killed += 1;
                // The dead poller's lease lapses; a new process takes the scheme over.
                tokio::time::sleep(runtime.settings().lease + Duration::from_millis(100)).await;
                runtime = self.process()?;
            }
        }
        if let Err(e) = runtime.poll(index, &|_| {}).await {
            tracing::warn!(error = %e, "poll failed; the next round resumes");
            engine.failed_polls += 1;
        }
        if self.has(Injury::DuplicateDeliveries) {
            engine.duplicate_messages += duplicate(&runtime.schemes[index].queue).await?;
        }
        if first && self.has(Injury::PusherKilled) {
            let connector = runtime.schemes[index].scheme.config.target.connector.value;
            let endpoint = play_of(connector.name())?.save;
            let faults = self.sandbox.faults();
            let before = faults.count(Fault::CommitThenHang);
            faults.script(endpoint, [Fault::CommitThenHang]);
            let hung = || faults.count(Fault::CommitThenHang) > before;
            let killed = tokio::select! {
                r = drain(&runtime, index, tally) => { r?; false }
                _ = async { until(hung).await; tokio::time::sleep(Duration::from_millis(50)).await } => true,
            };
            if killed {
                engine.pushers_killed += 1;
                // Its claims and its messages' visibility lapse; a new process carries on.
                let settings = runtime.settings();
                tokio::time::sleep(
                    settings.claim_ttl.max(settings.visibility) + Duration::from_millis(100),
                )
                .await;
                runtime = self.process()?;
            }
        }
        drain(&runtime, index, tally).await
    }

    /// Between the faulted rounds: late commits, edits of synced documents, re-approvals.
    fn change_the_source(&self, engine: &mut EngineFaults) {
        let now = jiff::Timestamp::now().as_second();
        self.sandbox.source(|s| {
            for kind in [Kind::Order, Kind::Stockout] {
                let count = s.len(kind) as u32;
                if self.has(Injury::LateCommits) {
                    for _ in 0..3 {
                        s.commit_late(kind, 240, now);
                        engine.late_commits += 1;
                    }
                }
                if self.has(Injury::EditsAfterSync) {
                    // One to four edits each: a remark, a quantity, a line added, a stock-out line
                    // removed (source::edit_lines), so updates address lines every way.
                    for (i, edits) in [(3, 2), (count / 3, 3), (count / 2, 4), (count - 5, 1)] {
                        for _ in 0..edits {
                            s.modify(kind, i, now);
                        }
                        engine.edits_after_sync += 1;
                    }
                }
            }
            if self.has(Injury::Reapproval) {
                let count = s.len(Kind::Stockout) as u32;
                for i in [7, count / 4] {
                    s.reapprove(i, now);
                    engine.reapprovals += 1;
                }
            }
        });
    }
}

/// Waits until `done` holds.
async fn until(done: impl Fn() -> bool) {
    while !done() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Pushes scheme `index` until its queue is empty.
async fn drain(runtime: &Runtime, index: usize, tally: &mut Tally) -> Result<(), String> {
    runtime
        .drain(index, tally, Duration::from_secs(300))
        .await
        .map_err(|e| e.to_string())
}

/// Sends every waiting message again: the at-least-once delivery of a real queue.
async fn duplicate(queue: &EmbeddedQueue) -> Result<u64, String> {
    let mut held = Vec::new();
    loop {
        let batch = queue
            .receive(10, Duration::from_secs(60))
            .await
            .map_err(|e| e.to_string())?;
        if batch.is_empty() {
            break;
        }
        held.extend(batch);
    }
    let copies = held.len() as u64;
    queue
        .send(held.iter().map(|d| d.body.clone()).collect())
        .await
        .map_err(|e| e.to_string())?;
    for delivery in &held {
        queue
            .retry_after(&delivery.receipt, Duration::ZERO)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(copies)
}

/// Records still claimed or waiting for a retry.
async fn open_records(runtime: &Runtime, index: usize) -> Result<usize, String> {
    let scheme = runtime.schemes[index].scheme.id();
    let mut open = 0;
    for state in [RecordState::InProgress, RecordState::Retrying] {
        open += runtime
            .store
            .list(scheme, Some(state), usize::MAX)
            .await
            .map_err(|e| e.to_string())?
            .len();
    }
    Ok(open)
}

/// Checks the sync records against the target: every synced record names a bill the target holds
/// with the record's number; nothing is left claimed or waiting; as many synced records as documents
/// found; every failed record is a document the target refused for good, with the target's reason,
/// or one that cannot be mapped or queued. Returns (synced, failed, problems).
pub async fn check_records(
    runtime: &Runtime,
    index: usize,
    sandbox: &Sandbox,
    verification: &Verification,
) -> Result<(u64, u64, Vec<String>), String> {
    let run = &runtime.schemes[index];
    let scheme = run.scheme.id();
    // The document number Ferry sends (Kingdee `billno`, Yonyou `code`; Yonyou numbers its orders
    // itself as well, which is not what the records keep).
    let service = run.scheme.config.target.connector.value.name();
    let field = run.scheme.target_spec().number.as_str();
    let bills = (play_of(service)?.bills)(sandbox);
    let numbers: HashMap<String, String> = bills
        .into_iter()
        .map(|b| (b.id, b.body[field].as_str().unwrap_or_default().to_owned()))
        .collect();
    let refusals: BTreeMap<String, String> = sandbox
        .receptions()
        .into_iter()
        .filter(|r| r.service == service && r.for_good)
        .map(|r| {
            let body = r.body.get("data").unwrap_or(&r.body);
            let number = body[field].as_str().unwrap_or_default().to_owned();
            (number, r.outcome)
        })
        .collect();
    let records = runtime
        .store
        .list(scheme, None, usize::MAX)
        .await
        .map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    let (mut synced, mut failed) = (0, 0);
    for record in &records {
        let key = &record.key;
        match record.state {
            RecordState::Synced => {
                synced += 1;
                match record.target_id.as_ref().and_then(|id| numbers.get(id)) {
                    Some(number) if *number == record.number => {}
                    Some(number) => problems.push(format!(
                        "{key}: record says bill {}, the target's bill is {number}",
                        record.number
                    )),
                    None => problems.push(format!(
                        "{key}: target id {:?} is not in the target",
                        record.target_id
                    )),
                }
                if record.unsure.is_some() {
                    problems.push(format!("{key}: synced with an unsettled write"));
                }
            }
            RecordState::Failed => {
                failed += 1;
                let error = record.last_error.as_deref().unwrap_or_default();
                let refusal = refusals.get(&record.number);
                let explained = match refusal {
                    Some(message) => error.contains(message.as_str()),
                    // Not a refusal: a mapping or size failure, which the verification counts.
                    None => !error.is_empty() && record.number.is_empty(),
                };
                if !explained {
                    problems.push(format!(
                        "{key}: failed with '{error}', which is no refusal of the target's"
                    ));
                }
            }
            other => problems.push(format!("{key}: left {}", other.as_str())),
        }
    }
    if problems.len() > 20 {
        let more = problems.len() - 20;
        problems.truncate(20);
        problems.push(format!("and {more} more"));
    }
    if synced != verification.found {
        problems.push(format!(
            "{synced} synced records, {} documents found in the target",
            verification.found
        ));
    }
    let unsyncable = verification.refused + verification.unmappable + verification.oversize;
    if failed != unsyncable {
        problems.push(format!(
            "{failed} failed records, {unsyncable} documents refused, unmappable or too large"
        ));
    }
    if verification.found + unsyncable != verification.expected {
        problems.push(format!(
            "{} expected, {} found + {unsyncable} unsyncable",
            verification.expected, verification.found
        ));
    }
    Ok((synced, failed, problems))
}

/// The bundled schemes, settling at once (a demo or test cannot wait out settle delays), starting
/// at the sandbox's first document.
pub fn bundled_plans(sandbox: &Sandbox) -> Result<Vec<SchemePlan>, String> {
    let start = sandbox.source(|s| s.first_time());
    ferry_common::bundled::SCHEMES
        .iter()
        .map(|(file, text)| {
            let text = text
                .replace("settle_delay: 1m", "settle_delay: 0s")
                .replace("settle_delay: 2m", "settle_delay: 0s");
            let scheme = ferry_common::Scheme::load_str(file, &text, &crate::demo_variable)
                .map_err(|e| e.to_string())?;
            Ok(SchemePlan {
                scheme,
                start: Some(start.clone()),
            })
        })
        .collect()
}

/// What the sandbox plays of `connector`.
fn play_of(connector: &str) -> Result<&'static crate::TargetPlay, String> {
    crate::target_play(connector).ok_or_else(|| format!("the sandbox plays no {connector} target"))
}
