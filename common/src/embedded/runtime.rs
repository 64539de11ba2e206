//! The embedded default's composition root (beside `aws::Deployment`): each scheme's poller and pusher over the SQLite store and queue,
//! run together until the scheme is caught up (`ferry demo`, `ferry run --once`) or on the schemes'
//! intervals (`ferry run`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{EmbeddedQueue, EmbeddedStore};
use crate::Scheme;
use crate::connector::endpoints_for;
use crate::connector::wdt::WdtSource;
use crate::engine::{
    AnyTarget, Backoff, DocumentOutcome, Next, Pacer, PageEvent, PageQueue, PollReport, Poller,
    Pusher, RATE_SHARE, RecordState, RecordStore, TargetPacers, blocked_by,
};
use crate::scheme::scheme_position;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::connector::Clients;
use crate::engine::{PollError, StoreError};
use crate::error::{Classified, Domain, RetryHint};

/// Why the embedded runtime stopped, and whose move it is.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The configuration is wrong: a start, a scheme without connector settings, a scheme this
    /// runtime does not run, a first run that names no start.
    #[error("{0}")]
    Config(String),
    /// The store file failed (the disk, a lock, a damaged file).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A poll failed (the source, the store, or its request).
    #[error("poll {scheme}: {error}")]
    Poll {
        /// The scheme polled.
        scheme: String,
        /// What failed (boxed: a call's error is large, and this one is rare).
        error: Box<PollError>,
    },
    /// The target refused Ferry's credentials: pushing stopped, nothing was marked failed.
    #[error("{0}")]
    Blocked(String),
    /// Messages were still queued when the patience ran out (a target slow or down).
    #[error("{0}")]
    Stalled(String),
}

impl Classified for RuntimeError {
    fn domain(&self) -> Domain {
        match self {
            // Refused credentials are the connector's settings: a person fixes them.
            RuntimeError::Config(_) | RuntimeError::Blocked(_) => Domain::User,
            RuntimeError::Store(e) => e.domain(),
            RuntimeError::Poll { error, .. } => error.domain(),
            RuntimeError::Stalled(_) => Domain::External,
        }
    }

    fn retry_hint(&self) -> RetryHint {
        match self {
            RuntimeError::Config(_) | RuntimeError::Blocked(_) => RetryHint::Never,
            RuntimeError::Store(e) => e.retry_hint(),
            RuntimeError::Poll { error, .. } => error.retry_hint(),
            RuntimeError::Stalled(_) => RetryHint::Later,
        }
    }
}

/// Queue and retry tuning of the embedded default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// Deliveries of a message before it goes to the dead-letter queue.
    pub max_receives: u32,
    /// How long a received message stays hidden (longer than a batch can take).
    pub visibility: String,
    /// How long a document claim holds before another pusher may retake it.
    pub claim_ttl: String,
    /// The first redelivery delay after a retryable failure (doubling, with jitter).
    pub retry_min: String,
    /// The longest redelivery delay.
    pub retry_max: String,
    /// Rounds of retries a message's documents get (each after the backoff) before the message's
    /// own deliveries count toward `max_receives` and the dead-letter queue.
    pub retry_limit: u32,
    /// How long one poll may run before it stops cleanly and resumes next time.
    pub poll_budget: String,
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            max_receives: 5,
            visibility: "5m".into(),
            claim_ttl: "3m".into(),
            retry_min: "1s".into(),
            retry_max: "60s".into(),
            retry_limit: 300,
            poll_budget: "10m".into(),
        }
    }
}

/// Timings of the queue and retries.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Deliveries before dead-lettering.
    pub max_receives: u32,
    /// Visibility timeout of a received message.
    pub visibility: Duration,
    /// Claim lifetime.
    pub claim_ttl: Duration,
    /// First redelivery delay.
    pub retry_min: Duration,
    /// Longest redelivery delay.
    pub retry_max: Duration,
    /// Rounds of retries a message's documents get before its own deliveries count toward the
    /// dead-letter queue.
    pub retry_limit: u32,
    /// Time budget of one poll.
    pub poll_budget: Duration,
    /// How long a poller's lease holds between renewals.
    pub lease: Duration,
    /// Messages received per push batch (SQS's maximum is 10).
    pub batch: usize,
}

impl Settings {
    /// Reads the tuning of a configuration file.
    pub fn from_config(config: &PushConfig) -> Result<Settings, String> {
        let duration = |name: &str, text: &str| {
            crate::time::parse_duration(text)
                .ok()
                .and_then(|d| Duration::try_from(d).ok())
                .ok_or_else(|| format!("push.{name}: '{text}' is not a duration like 30s or 5m"))
        };
        Ok(Settings {
            max_receives: config.max_receives.max(1),
            visibility: duration("visibility", &config.visibility)?,
            claim_ttl: duration("claim_ttl", &config.claim_ttl)?,
            retry_min: duration("retry_min", &config.retry_min)?,
            retry_max: duration("retry_max", &config.retry_max)?,
            retry_limit: config.retry_limit,
            poll_budget: duration("poll_budget", &config.poll_budget)?,
            lease: Duration::from_secs(60),
            batch: 10,
        })
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from_config(&PushConfig::default()).expect("defaults are valid")
    }
}

/// One scheme, ready to run.
pub struct SchemeRuntime {
    /// The scheme.
    pub scheme: Scheme,
    /// Where its documents come from.
    pub source: WdtSource,
    /// Where they go.
    pub target: AnyTarget,
    /// Paces calls to the target to its account's share of the limit.
    pub pacer: Option<Arc<Pacer>>,
    /// Its page queue.
    pub queue: EmbeddedQueue,
    start: Option<Timestamp>,
}

/// Every scheme of one `ferry run` or `ferry demo`, over one store.
pub struct Runtime {
    /// The store.
    pub store: EmbeddedStore,
    /// The schemes, in configuration order.
    pub schemes: Vec<SchemeRuntime>,
    settings: Settings,
    holder: String,
}

/// A scheme to add: the checked scheme, and where its first run starts if not the scheme's own.
pub struct SchemePlan {
    /// The scheme.
    pub scheme: Scheme,
    /// First-run start (Beijing time text).
    pub start: Option<String>,
}

impl Runtime {
    /// Checks where each scheme that never ran starts: its plan's start or its `window.start`.
    /// One with neither is refused, naming what to set; with `from_now` it starts now instead
    /// (returned as (id, start in Beijing time) so the run can say so).
    pub async fn settle_first_starts(
        &mut self,
        from_now: bool,
    ) -> Result<Vec<(String, String)>, RuntimeError> {
        let mut started_now = Vec::new();
        let mut refused = Vec::new();
        for run in &mut self.schemes {
            if run.start.is_some() || run.scheme.window.start.is_some() {
                continue;
            }
            let id = run.scheme.id().to_owned();
            let cursor = crate::engine::CursorStore::cursor(&self.store, &id).await?;
            if cursor.position.is_some() {
                continue;
            }
            if from_now {
                let now = Timestamp::now();
                run.start = Some(now);
                started_now.push((id, crate::time::format_source(crate::time::to_beijing(now))));
            } else {
                refused.push(id);
            }
        }
        if refused.is_empty() {
            return Ok(started_now);
        }
        Err(RuntimeError::Config(format!(
            "{} never ran and {} no start, so {} would read only the last lookback and \
             miss older documents: set `start` (Beijing time) for {} in the run configuration or \
             `window.start` in the scheme, or pass --from-now to read only what changes from now on",
            refused.join(", "),
            if refused.len() == 1 { "names" } else { "name" },
            if refused.len() == 1 {
                "its first run"
            } else {
                "their first runs"
            },
            if refused.len() == 1 { "it" } else { "them" },
        )))
    }

    /// Opens the store and prepares each scheme with its connectors; `rate_limits` override the
    /// schemes' declared limits per target connector.
    pub fn new(
        store_path: &Path,
        plans: Vec<SchemePlan>,
        clients: &Clients,
        rate_limits: &std::collections::HashMap<String, u32>,
        settings: Settings,
    ) -> Result<Runtime, RuntimeError> {
        let store = EmbeddedStore::open(store_path)?;
        let mut pacers = TargetPacers::new(RATE_SHARE);
        let mut schemes = Vec::new();
        for plan in plans {
            let scheme = plan.scheme;
            let id = scheme.id().to_owned();
            let (source, target) =
                endpoints_for(&scheme, clients, "connectors").map_err(RuntimeError::Config)?;
            let connector = scheme.config.target.connector.value;
            let pacer = pacers.for_scheme(&scheme, rate_limits.get(connector.name()).copied());
            let start = match &plan.start {
                Some(text) => Some(crate::time::from_beijing(
                    crate::time::parse_source_datetime(text)
                        .map_err(|e| RuntimeError::Config(format!("start of scheme {id}: {e}")))?,
                )),
                None => None,
            };
            schemes.push(SchemeRuntime {
                source,
                target,
                pacer,
                queue: store.queue(&id, settings.max_receives),
                start,
                scheme,
            });
        }
        Ok(Runtime {
            store,
            schemes,
            settings,
            holder: format!("ferry-{}-{:08x}", std::process::id(), fastrand::u32(..)),
        })
    }

    /// The runtime's timings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn backoff(&self) -> Backoff {
        Backoff {
            min: self.settings.retry_min,
            max: self.settings.retry_max,
            limit: self.settings.retry_limit,
        }
    }

    /// Documents claimed by a run that stopped without finishing them (or by another run on this
    /// store): how many, and how long until the last of those claims lapses. Nothing can push
    /// them before; `ferry run` says so rather than waiting in silence.
    pub async fn stopped_claims(&self) -> Result<(u64, Duration), RuntimeError> {
        let now = Timestamp::now();
        let (mut count, mut longest) = (0, Duration::ZERO);
        for run in &self.schemes {
            let claimed = self
                .store
                .list(run.scheme.id(), Some(RecordState::InProgress), usize::MAX)
                .await?;
            for record in claimed {
                if let Some(until) = record.claim_until.filter(|t| *t > now) {
                    count += 1;
                    let left = Duration::try_from(until.duration_since(now)).unwrap_or_default();
                    longest = longest.max(left);
                }
            }
        }
        Ok((count, longest))
    }

    /// One poll of scheme `index`, queueing what it finds.
    pub async fn poll(
        &self,
        index: usize,
        on_page: &(dyn Fn(&PageEvent) + Send + Sync),
    ) -> Result<PollReport, RuntimeError> {
        let run = &self.schemes[index];
        self.poller(run, on_page)
            .run(Timestamp::now())
            .await
            .map_err(|error| RuntimeError::Poll {
                scheme: run.scheme.id().to_owned(),
                error: Box::new(error),
            })
    }

    /// The poller of `run` (also for on-demand re-syncs).
    pub fn poller<'a>(
        &'a self,
        run: &'a SchemeRuntime,
        on_page: &'a (dyn Fn(&PageEvent) + Send + Sync),
    ) -> Poller<'a, EmbeddedStore, EmbeddedStore, EmbeddedQueue, WdtSource> {
        Poller {
            scheme: &run.scheme,
            source: &run.source,
            cursors: &self.store,
            records: &self.store,
            queue: &run.queue,
            holder: self.holder.clone(),
            deadline: tokio::time::Instant::now() + self.settings.poll_budget,
            lease: self.settings.lease,
            reserve: Duration::from_secs(2),
            first_start: run.start,
            on_page,
            replay: false,
            // Embedded pushes have no deadline: messages hold as many documents as fit.
            message_documents: usize::MAX,
        }
    }

    /// Pushes one batch from scheme `index`'s queue; `false` if the queue had nothing visible.
    pub async fn push_batch(
        &self,
        index: usize,
        tally: &mut Tally,
        on_document: &(dyn Fn(&DocumentOutcome) + Send + Sync),
    ) -> Result<bool, RuntimeError> {
        let run = &self.schemes[index];
        let deliveries = run
            .queue
            .receive(self.settings.batch, self.settings.visibility)
            .await?;
        if deliveries.is_empty() {
            return Ok(false);
        }
        let pusher = Pusher {
            scheme: &run.scheme,
            target: &run.target,
            records: &self.store,
            pacer: run.pacer.clone(),
            claim_ttl: self.settings.claim_ttl,
            deadline: None,
            backoff: self.backoff(),
        };
        let results = pusher.push_batch(&deliveries).await;
        let blocked = blocked_by(&results).map(str::to_owned);
        for result in &results {
            for outcome in &result.documents {
                tally.add(outcome);
                on_document(outcome);
            }
            match &result.next {
                Next::Done => run.queue.delete(&result.receipt).await,
                Next::HandBack { body, delay, .. } => {
                    tally.redeliveries += 1;
                    run.queue
                        .hand_back(&result.receipt, body.clone(), *delay)
                        .await
                }
                Next::Redeliver(delay) => {
                    tally.redeliveries += 1;
                    run.queue.retry_after(&result.receipt, *delay).await
                }
            }?;
        }
        if let Some(reason) = blocked {
            // Every document would be refused the same way: stop pushing this target, loudly.
            return Err(RuntimeError::Blocked(format!(
                "{}: stopped pushing: {reason}. No document was marked failed; once the \
                 connector's settings are fixed, the next run pushes what is waiting.",
                run.scheme.id()
            )));
        }
        Ok(true)
    }

    /// Pushes scheme `index` until its queue is empty (dead letters aside), waiting out redelivery
    /// delays and messages a dead process still holds; gives up after `patience`.
    pub async fn drain(
        &self,
        index: usize,
        tally: &mut Tally,
        patience: Duration,
    ) -> Result<(), RuntimeError> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if self.push_batch(index, tally, &|_| {}).await? {
                continue;
            }
            let depth = self.depth(index).await?;
            if depth == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(RuntimeError::Stalled(format!(
                    "{depth} messages of {} still queued after {patience:?}",
                    self.schemes[index].scheme.id()
                )));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Messages of scheme `index` waiting or in flight.
    async fn depth(&self, index: usize) -> Result<u64, RuntimeError> {
        Ok(self.schemes[index].queue.depth().await?)
    }

    /// The index of the scheme with id `id`, or an error naming the ones this runtime has.
    pub fn index_of(&self, id: &str) -> Result<usize, RuntimeError> {
        scheme_position(
            self.schemes.iter().map(|s| s.scheme.id()),
            id,
            "this configuration",
        )
        .map_err(RuntimeError::Config)
    }

    /// Polls scheme `index` once and pushes until its queue is empty (dead letters aside); poll
    /// and push run side by side, as the Lambdas do.
    pub async fn sync_once(
        &self,
        index: usize,
        on_page: &(dyn Fn(&PageEvent) + Send + Sync),
        on_document: &(dyn Fn(&DocumentOutcome) + Send + Sync),
    ) -> Result<SchemeSummary, RuntimeError> {
        let polling = AtomicBool::new(true);
        let poll = async {
            let report = self.poll(index, on_page).await;
            polling.store(false, Ordering::SeqCst);
            report
        };
        let push = async {
            let mut tally = Tally::default();
            loop {
                let still_polling = polling.load(Ordering::SeqCst);
                if self.push_batch(index, &mut tally, on_document).await? {
                    continue;
                }
                let depth = self.depth(index).await?;
                if !still_polling && depth == 0 {
                    return Ok::<_, RuntimeError>(tally);
                }
                tokio::time::sleep(Duration::from_millis(if depth == 0 { 20 } else { 100 })).await;
            }
        };
        let (report, tally) = tokio::join!(poll, push);
        let tally = tally?;
        let report = report?;
        let run = &self.schemes[index];
        let dead_letters = run.queue.dead_letters().await?.len() as u64;
        Ok(SchemeSummary {
            scheme: run.scheme.id().to_owned(),
            poll: report,
            push: tally,
            dead_letters,
        })
    }
}

/// Counts of push outcomes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Tally {
    /// Bills created.
    pub created: u64,
    /// Bills updated (changed after sync, or found again after a lost answer).
    pub updated: u64,
    /// Skipped: that content is in the target already.
    pub unchanged: u64,
    /// Skipped: a newer version was handled already.
    pub superseded: u64,
    /// Failed for good.
    pub failed: u64,
    /// Conflicts recorded.
    pub conflicts: u64,
    /// Documents held back because the target refused Ferry's credentials.
    pub blocked: u64,
    /// Document attempts that will be retried.
    pub retried: u64,
    /// Messages put back for redelivery.
    pub redeliveries: u64,
    /// The first failures' reasons: key → reason.
    pub failures: BTreeMap<String, String>,
}

impl Tally {
    /// Counts one outcome.
    pub fn add(&mut self, outcome: &DocumentOutcome) {
        match outcome {
            DocumentOutcome::Pushed { created: true, .. } => self.created += 1,
            DocumentOutcome::Pushed { created: false, .. } => self.updated += 1,
            DocumentOutcome::Unchanged { .. } => self.unchanged += 1,
            DocumentOutcome::Superseded { .. } => self.superseded += 1,
            DocumentOutcome::Failed { key, reason } => {
                self.failed += 1;
                if self.failures.len() < 20 {
                    self.failures.insert(key.clone(), reason.clone());
                }
            }
            DocumentOutcome::Conflict { .. } => self.conflicts += 1,
            DocumentOutcome::Blocked { .. } => self.blocked += 1,
            DocumentOutcome::Retry { .. } => self.retried += 1,
        }
    }

    /// Documents written to the target.
    pub fn pushed(&self) -> u64 {
        self.created + self.updated
    }
}

/// What one catch-up of one scheme did.
#[derive(Clone, Debug, Serialize)]
pub struct SchemeSummary {
    /// The scheme id.
    pub scheme: String,
    /// The poll.
    pub poll: PollReport,
    /// The pushes.
    pub push: Tally,
    /// Messages in the dead-letter queue afterwards.
    pub dead_letters: u64,
}
