//! Ferry on AWS: the DynamoDB and SQS adapters of the engine's ports, connector credentials from
//! Secrets Manager, CloudWatch metrics in Embedded Metric Format, and [`Deployment`]: everything a
//! Lambda (or the CLI pointed at a deployment) builds once and reuses across invocations.

pub mod capacity;
pub mod dynamo;
pub mod logging;
pub mod metrics;
pub mod secrets;
pub mod sqs;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;

use crate::Scheme;
use crate::connector::endpoints_for;
use crate::connector::registry::TARGETS;
use crate::connector::wdt::WdtSource;
use crate::connector::{Clients, HttpSettings, RetrySettings};
use crate::engine::timing::{self, PushTiming, TimingSettings};
use crate::engine::{AnyTarget, Pacer, RATE_SHARE, TargetPacers};
use crate::scheme::scheme_position;

pub use capacity::{Meter, Usage};
pub use dynamo::DynamoStore;
pub use secrets::SecretCache;
pub use sqs::SqsQueue;

/// Why a deployment cannot start: its settings are wrong (a person fixes them and deploys), or AWS
/// refused or could not be reached (the next start may pass).
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// The environment, the scheme folder or a variable is wrong.
    #[error("{0}")]
    Config(String),
    /// Secrets Manager, SQS or DynamoDB refused or could not be reached.
    #[error("{0}")]
    Aws(String),
}

impl crate::error::Classified for DeploymentError {
    fn domain(&self) -> crate::Domain {
        match self {
            DeploymentError::Config(_) => crate::Domain::User,
            DeploymentError::Aws(_) => crate::Domain::External,
        }
    }

    fn retry_hint(&self) -> crate::RetryHint {
        match self {
            DeploymentError::Config(_) => crate::RetryHint::Never,
            DeploymentError::Aws(_) => crate::RetryHint::Later,
        }
    }
}

/// Where a deployment's parts are and how it is tuned; the Lambdas read it from their environment
/// (names below), the CLI from its configuration file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// The DynamoDB table (`FERRY_TABLE`).
    pub table: String,
    /// Each target connector's page queue URL (`FERRY_QUEUE_KINGDEE`, `FERRY_QUEUE_YONYOU`).
    pub queues: BTreeMap<String, String>,
    /// The Secrets Manager secret holding the connectors' JSON (`FERRY_SECRET_ID`).
    pub secret: String,
    /// The scheme folder the deployment runs (`FERRY_SCHEME_DIR`): on Lambda the schemes layer's
    /// `/opt/schemes`, built from the user's folder by `sam build` after `ferry check` passed; for
    /// the CLI, the same folder on the operator's machine.
    #[serde(default = "default_scheme_dir")]
    pub scheme_dir: std::path::PathBuf,
    /// Of the folder's schemes, those this deployment runs (`FERRY_SCHEMES`, comma-separated; all
    /// if empty).
    #[serde(default)]
    pub schemes: Vec<String>,
    /// Deployment variables the schemes read (`FERRY_VARIABLES`, `NAME=value,NAME=value`: the
    /// template's `Variables` parameter). A process environment variable of the same name wins;
    /// the credentials secret's `variables` are read for any still without a value.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// The push event source mappings' `MaximumConcurrency` (`FERRY_PUSH_CONCURRENCY`): each push
    /// instance paces its target at the target's limit divided by this, so all of them together
    /// stay under it.
    #[serde(default = "default_concurrency")]
    pub push_concurrency: u32,
    /// Calls a minute per target connector, overriding the schemes' `rate_limit`
    /// (`FERRY_RATE_LIMITS`, e.g. `kingdee=500,yonyou=300`): an account's contract may differ.
    #[serde(default)]
    pub rate_limits: BTreeMap<String, u32>,
    /// The poll function's name, for `ferry resync` on AWS (the CLI only).
    #[serde(default)]
    pub poll_function: Option<String>,
    /// Push timings (environment only).
    #[serde(skip)]
    pub tuning: Tuning,
}

/// Push timings of a deployment, and what its environment says of its queues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// How long a document claim holds (`FERRY_CLAIM_TTL`): longer than the push function's
    /// timeout, so only a crashed push's claim lapses.
    pub claim_ttl: Duration,
    /// The first redelivery delay after a retryable failure (`FERRY_RETRY_MIN`).
    pub retry_min: Duration,
    /// The longest redelivery delay (`FERRY_RETRY_MAX`, at most 15 minutes: SQS's longest
    /// message delay).
    pub retry_max: Duration,
    /// Rounds of retries a page's documents get by hand-back before the page's own deliveries
    /// count toward the queue's `maxReceiveCount` (`FERRY_RETRY_LIMIT`).
    pub retry_limit: u32,
    /// How long the connectors secret is cached before it is read again (`FERRY_SECRET_REFRESH`);
    /// a target refusing the credentials makes the next invocation read it at once.
    pub secret_refresh: Duration,
    /// How long a poller's lease holds between renewals (`FERRY_POLL_LEASE`): a crashed poll
    /// blocks its scheme this long at most.
    pub poll_lease: Duration,
    /// The push function's timeout (`FERRY_PUSH_TIMEOUT`, the template's `PushTimeout`): what the
    /// claim TTL, the queues' visibility and the page messages' size are checked and sized against.
    pub push_timeout: Duration,
    /// Where a scheme's first poll starts (`FERRY_START`, Beijing time, or `now`), when the scheme
    /// names no `window.start`; without either, a scheme's first poll refuses to guess.
    pub first_start: Option<jiff::Timestamp>,
    /// The page queues' visibility timeout as the template sets it (`FERRY_QUEUE_VISIBILITY`).
    /// With it and every queue's dead-letter queue (below), a function starts without asking SQS
    /// (a network round trip on every cold start) and checks the queues against these values on
    /// its first invocation instead.
    pub queue_visibility: Option<Duration>,
    /// Each target connector's dead-letter queue URL as the template sets it
    /// (`FERRY_DEAD_LETTER_KINGDEE`, `FERRY_DEAD_LETTER_YONYOU`).
    pub dead_letter_queues: BTreeMap<String, String>,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            claim_ttl: Duration::from_secs(300),
            retry_min: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            retry_limit: 300,
            push_timeout: Duration::from_secs(60),
            poll_lease: Duration::from_secs(60),
            secret_refresh: Duration::from_secs(300),
            first_start: None,
            queue_visibility: None,
            dead_letter_queues: BTreeMap::new(),
        }
    }
}

fn default_concurrency() -> u32 {
    2
}

fn default_scheme_dir() -> std::path::PathBuf {
    "/opt/schemes".into()
}

/// Reads `NAME=value,NAME=value` (blank pairs skipped); `what` names the setting in errors.
fn pairs(text: &str, what: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for pair in text.split(',') {
        let pair = pair.trim();
        if pair.is_empty() {
            continue;
        }
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{what}: '{pair}' is not NAME=VALUE"))?;
        out.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(out)
}

impl DeploymentConfig {
    /// Reads the Lambda environment; an error names the missing variable.
    pub fn from_env() -> Result<DeploymentConfig, String> {
        DeploymentConfig::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `var` (the environment, or a test's map).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<DeploymentConfig, String> {
        let required = |name: &str| {
            var(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| format!("the environment variable {name} is not set"))
        };
        let mut queues = BTreeMap::new();
        let mut dead_letter_queues = BTreeMap::new();
        for connector in TARGETS {
            let upper = connector.name.to_uppercase();
            if let Some(url) = var(&format!("FERRY_QUEUE_{upper}")).filter(|v| !v.trim().is_empty())
            {
                queues.insert(connector.name.to_owned(), url);
            }
            if let Some(url) =
                var(&format!("FERRY_DEAD_LETTER_{upper}")).filter(|v| !v.trim().is_empty())
            {
                dead_letter_queues.insert(connector.name.to_owned(), url);
            }
        }
        let push_concurrency = match var("FERRY_PUSH_CONCURRENCY") {
            None => default_concurrency(),
            Some(text) => text.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                format!("FERRY_PUSH_CONCURRENCY: '{text}' is not a positive whole number")
            })?,
        };
        let duration = |name: &str, default: Duration| match var(name) {
            None => Ok(default),
            Some(text) => crate::time::parse_duration(&text)
                .ok()
                .and_then(|d| Duration::try_from(d).ok())
                .ok_or_else(|| format!("{name}: '{text}' is not a duration like 30s or 5m")),
        };
        let defaults = Tuning::default();
        let tuning = Tuning {
            claim_ttl: duration("FERRY_CLAIM_TTL", defaults.claim_ttl)?,
            retry_min: duration("FERRY_RETRY_MIN", defaults.retry_min)?,
            retry_max: duration("FERRY_RETRY_MAX", defaults.retry_max)?,
            retry_limit: match var("FERRY_RETRY_LIMIT").filter(|v| !v.trim().is_empty()) {
                None => defaults.retry_limit,
                Some(text) => text
                    .trim()
                    .parse()
                    .map_err(|_| format!("FERRY_RETRY_LIMIT: '{text}' is not a whole number"))?,
            },
            push_timeout: duration("FERRY_PUSH_TIMEOUT", defaults.push_timeout)?,
            poll_lease: duration("FERRY_POLL_LEASE", defaults.poll_lease)?,
            secret_refresh: duration("FERRY_SECRET_REFRESH", defaults.secret_refresh)?,
            queue_visibility: match var("FERRY_QUEUE_VISIBILITY").filter(|v| !v.trim().is_empty()) {
                None => None,
                // The template passes the queues' VisibilityTimeout property: whole seconds.
                Some(text) => Some(Duration::from_secs(text.trim().parse().map_err(|_| {
                    format!("FERRY_QUEUE_VISIBILITY: '{text}' is not a whole number of seconds")
                })?)),
            },
            dead_letter_queues,
            first_start: match var("FERRY_START").filter(|v| !v.trim().is_empty()) {
                None => None,
                // A new scheme starts where the environment starts: nothing older is read.
                Some(text) if text.trim() == "now" => Some(jiff::Timestamp::now()),
                Some(text) => Some(crate::time::from_beijing(
                    crate::time::parse_source_datetime(&text)
                        .map_err(|e| format!("FERRY_START: {e}"))?,
                )),
            },
        };
        let mut rate_limits = BTreeMap::new();
        for (name, limit) in pairs(
            &var("FERRY_RATE_LIMITS").unwrap_or_default(),
            "FERRY_RATE_LIMITS",
        )? {
            let limit = limit.parse().map_err(|_| {
                format!("FERRY_RATE_LIMITS: '{name}={limit}' is not CONNECTOR=CALLS_PER_MINUTE")
            })?;
            rate_limits.insert(name, limit);
        }
        Ok(DeploymentConfig {
            rate_limits,
            tuning,
            table: required("FERRY_TABLE")?,
            queues,
            secret: required("FERRY_SECRET_ID")?,
            scheme_dir: var("FERRY_SCHEME_DIR")
                .filter(|v| !v.trim().is_empty())
                .map_or_else(default_scheme_dir, Into::into),
            variables: pairs(
                &var("FERRY_VARIABLES").unwrap_or_default(),
                "FERRY_VARIABLES",
            )?
            .into_iter()
            .collect(),
            schemes: var("FERRY_SCHEMES")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            push_concurrency,
            poll_function: var("FERRY_POLL_FUNCTION").filter(|v| !v.is_empty()),
        })
    }
}

/// A scheme with its connectors, ready to poll or push.
pub struct SchemeParts {
    /// The scheme.
    pub scheme: Arc<Scheme>,
    /// Its source.
    pub source: WdtSource,
    /// Its target.
    pub target: AnyTarget,
    /// Paces this instance's target calls (the target's limit shared among push instances).
    pub pacer: Option<Arc<Pacer>>,
    /// Its page queue.
    pub queue: SqsQueue,
}

/// The connectors built from one version of the credentials secret.
pub struct Connected {
    /// The secret version they were built from.
    pub version: String,
    /// Every scheme, in configuration order.
    pub schemes: Vec<SchemeParts>,
}

impl Connected {
    /// The scheme with id `id`, or an error naming those the deployment runs.
    pub fn scheme(&self, id: &str) -> Result<&SchemeParts, String> {
        let ids = self.schemes.iter().map(|s| s.scheme.id());
        Ok(&self.schemes[scheme_position(ids, id, "this deployment")?])
    }
}

/// Everything built once per execution environment: AWS clients, the store, the queues, the
/// checked schemes; the connectors are rebuilt only when the credentials secret changes.
pub struct Deployment {
    /// Where things are.
    pub config: DeploymentConfig,
    /// Cursors, records and history.
    pub store: DynamoStore,
    /// The checked schemes.
    schemes: Vec<Arc<Scheme>>,
    queues: BTreeMap<String, SqsQueue>,
    secrets: SecretCache,
    connected: tokio::sync::Mutex<Option<Arc<Connected>>>,
    http: HttpSettings,
    /// What the store, the queues and the secret used (capacity units, requests, reads).
    meter: Meter,
    sqs: aws_sdk_sqs::Client,
    /// Target connectors whose queue settings came from the environment, not from SQS: checked
    /// against SQS by [`Deployment::after_start`].
    unverified: Vec<String>,
    started: tokio::sync::Mutex<Started>,
}

/// What [`Deployment::after_start`] has done.
#[derive(Default)]
struct Started {
    /// The schemes were recorded (or the attempt failed and was logged).
    recorded: bool,
    /// The queues' check: passed, or the settings mistake it found (a failure to reach SQS is
    /// not kept: the next invocation checks again).
    verdict: Option<Result<(), String>>,
}

impl Deployment {
    /// Loads and checks the scheme folder and builds the AWS clients. A scheme whose variables
    /// have no value (in the environment, `FERRY_VARIABLES` or the secret's `variables`) stops
    /// the deployment here, named: a run never starts on a guess.
    pub async fn new(
        sdk: &SdkConfig,
        config: DeploymentConfig,
    ) -> Result<Deployment, DeploymentError> {
        let meter = Meter::new();
        let secrets = SecretCache::new(
            aws_sdk_secretsmanager::Client::new(sdk),
            config.secret.clone(),
            config.tuning.secret_refresh,
        )
        .with_meter(meter.clone());
        let deployed = |key: &str| {
            std::env::var(key)
                .ok()
                .or_else(|| config.variables.get(key).cloned())
        };
        let load = |vars: crate::mapping::EnvLookup<'_>| {
            crate::scheme::load_folder(&config.scheme_dir, vars).map_err(|e| {
                DeploymentError::Config(format!(
                    "the scheme folder {} cannot run:\n{e}",
                    config.scheme_dir.display()
                ))
            })
        };
        let mut schemes = load(&deployed)?;
        if !config.schemes.is_empty() {
            for id in &config.schemes {
                if !schemes.iter().any(|s| s.id() == id) {
                    let known: Vec<&str> = schemes.iter().map(|s| s.id()).collect();
                    return Err(DeploymentError::Config(format!(
                        "FERRY_SCHEMES names '{id}', which is not in {} ({})",
                        config.scheme_dir.display(),
                        known.join(", ")
                    )));
                }
            }
            schemes.retain(|s| config.schemes.iter().any(|id| id == s.id()));
        }
        if schemes.iter().any(|s| !s.missing_variables.is_empty()) {
            // Only now is the secret read at start: its `variables` may hold the rest.
            let (_, connectors) = secrets.get().await?;
            let with_secret =
                |key: &str| deployed(key).or_else(|| connectors.variables.get(key).cloned());
            let mut reloaded = load(&with_secret)?;
            reloaded.retain(|s| schemes.iter().any(|kept| kept.id() == s.id()));
            schemes = reloaded;
        }
        for scheme in &schemes {
            scheme
                .require_variables()
                .map_err(DeploymentError::Config)?;
        }
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let mut queues = BTreeMap::new();
        let mut unverified = Vec::new();
        for scheme in &schemes {
            let connector = scheme.config.target.connector.value.name();
            if queues.contains_key(connector) {
                continue;
            }
            let url = config.queues.get(connector).ok_or_else(|| {
                DeploymentError::Config(format!(
                    "scheme {} writes to {connector}, but FERRY_QUEUE_{} is not set",
                    scheme.id(),
                    connector.to_uppercase()
                ))
            })?;
            let tuning = &config.tuning;
            let queue = match (
                tuning.queue_visibility,
                tuning.dead_letter_queues.get(connector),
            ) {
                // The template's own values: no call at start; checked on the first invocation.
                (Some(visibility), Some(dead_letters)) => {
                    unverified.push(connector.to_owned());
                    SqsQueue::new(sqs.clone(), url.clone(), Some(dead_letters.clone()))
                        .with_visibility(visibility)
                }
                _ => SqsQueue::discover(sqs.clone(), url.clone())
                    .await
                    .map_err(|e| DeploymentError::Aws(e.to_string()))?,
            };
            queues.insert(connector.to_owned(), queue.with_meter(meter.clone()));
        }
        Ok(Deployment {
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table.clone())
                .with_meter(meter.clone()),
            meter,
            sqs,
            unverified,
            started: tokio::sync::Mutex::default(),
            secrets,
            http: HttpSettings {
                retry: RetrySettings {
                    max_attempts: 3,
                    ..RetrySettings::default()
                },
                ..HttpSettings::default()
            },
            config,
            schemes: schemes.into_iter().map(Arc::new).collect(),
            queues,
            connected: tokio::sync::Mutex::new(None),
        })
    }

    /// The same deployment with other HTTP settings for the connectors (tests: short timeouts).
    pub fn with_http(mut self, http: HttpSettings) -> Deployment {
        self.http = http;
        self
    }

    /// What a Lambda builds once per execution environment: the configuration from its
    /// environment, the deployment over the SDK's default configuration, and the timing checks.
    /// An error is logged with its domain (a settings mistake is not an outage) and returned, so
    /// the function's init fails naming it. With the template's environment nothing here calls
    /// AWS (a cold start waits for none of it); what must still be checked or recorded is done
    /// by [`Deployment::after_start`], beside the first invocation.
    pub async fn for_lambda() -> Result<Deployment, DeploymentError> {
        let start = async {
            let config = DeploymentConfig::from_env().map_err(DeploymentError::Config)?;
            let deployment = Deployment::new(&sdk_config().await, config).await?;
            // Settings that cannot work together stop the function at start, each problem named.
            deployment.check_timing().map_err(DeploymentError::Config)?;
            Ok(deployment)
        };
        start
            .await
            .inspect_err(|e| logging::error("the function cannot start", e))
    }

    /// Checks the timing settings the functions run with against each other and the queues
    /// (claim TTL, visibility, retry delays, rate limits per push instance): the Lambdas refuse
    /// to start on an error, naming each problem. The operator CLI does not need them.
    pub fn check_timing(&self) -> Result<(), String> {
        let problems = timing::check(&timing_settings(&self.config, &self.schemes, &self.queues));
        if problems.is_empty() {
            return Ok(());
        }
        Err(format!(
            "the deployment's timing settings cannot work together:\n- {}",
            problems.join("\n- ")
        ))
    }

    /// One push instance's timing against scheme `id`'s target.
    pub fn push_timing(&self, scheme: &Scheme) -> PushTiming {
        push_timing(&self.config, scheme)
    }

    /// The most documents a page message of `scheme` carries: about what one push invocation
    /// can write at its target's pace, so that a message is one invocation's work.
    pub fn message_documents(&self, scheme: &Scheme) -> usize {
        self.push_timing(scheme).documents_per_invocation().max(1)
    }

    /// The checked schemes this deployment runs, in folder order.
    pub fn schemes(&self) -> &[Arc<Scheme>] {
        &self.schemes
    }

    /// What the store, the queues and the credentials secret used so far (snapshots subtract:
    /// [`Usage::since`]).
    pub fn usage(&self) -> Usage {
        self.meter.snapshot()
    }

    /// What a function's start leaves to its first invocation, run beside it (each function's
    /// `main` joins it with the invocation): records which schemes `function` runs, and checks
    /// the queue settings taken from the environment against SQS's own (visibility timeout,
    /// dead-letter queue). A mismatch is a settings mistake: this invocation and every later one
    /// fail naming it, as a failed start would. SQS out of reach is logged and checked again next
    /// time; the work needs neither.
    pub async fn after_start(&self, function: &str) -> Result<(), DeploymentError> {
        let mut started = self.started.lock().await;
        if let Some(verdict) = &started.verdict {
            return verdict.clone().map_err(DeploymentError::Config);
        }
        let recorded = started.recorded;
        let (_, checked) = tokio::join!(
            async {
                if !recorded {
                    self.record_schemes(function).await;
                }
            },
            self.verify_queues()
        );
        started.recorded = true;
        match checked {
            Ok(()) => {
                started.verdict = Some(Ok(()));
                Ok(())
            }
            Err(DeploymentError::Config(problem)) => {
                let e = DeploymentError::Config(problem.clone());
                logging::error("the function cannot run", &e);
                started.verdict = Some(Err(problem));
                Err(e)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the queue settings could not be checked; again next time");
                Ok(())
            }
        }
    }

    /// Compares the queue settings taken from the environment with what SQS says of the queues.
    async fn verify_queues(&self) -> Result<(), DeploymentError> {
        let checks = self.unverified.iter().map(|connector| async move {
            let queue = &self.queues[connector];
            self.meter.sqs("GetQueueAttributes", 0);
            self.meter.sqs("GetQueueUrl", 0);
            let (visibility, dead_letters) = SqsQueue::attributes(&self.sqs, queue.url())
                .await
                .map_err(|e| DeploymentError::Aws(e.to_string()))?;
            let mut problems = Vec::new();
            if visibility != queue.visibility() {
                problems.push(format!(
                    "the {connector} queue's visibility timeout is {}, but FERRY_QUEUE_VISIBILITY says {}",
                    seconds(visibility),
                    seconds(queue.visibility()),
                ));
            }
            if dead_letters.as_deref() != queue.dead_letter_url() {
                problems.push(format!(
                    "the {connector} queue's dead-letter queue is {}, but FERRY_DEAD_LETTER_{} says {}",
                    dead_letters.as_deref().unwrap_or("none"),
                    connector.to_uppercase(),
                    queue.dead_letter_url().unwrap_or("none"),
                ));
            }
            Ok::<_, DeploymentError>(problems)
        });
        let mut problems = Vec::new();
        for found in futures_util::future::join_all(checks).await {
            problems.extend(found?);
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(DeploymentError::Config(format!(
            "the queues are not as the environment says (deploy the template again):\n- {}",
            problems.join("\n- ")
        )))
    }

    /// Logs and records in the table which schemes (and which version of their files) `function`
    /// runs, so `ferry status` can show what the deployment runs. A failure to record is logged,
    /// not fatal: the function can run without it.
    pub async fn record_schemes(&self, function: &str) {
        let now = jiff::Timestamp::now();
        let deployed: Vec<dynamo::DeployedScheme> = self
            .schemes
            .iter()
            .map(|scheme| {
                tracing::info!(
                    function,
                    scheme = scheme.id(),
                    version = %scheme.version,
                    "{}",
                    crate::bundled::describe(scheme)
                );
                dynamo::DeployedScheme {
                    scheme: scheme.id().to_owned(),
                    function: function.to_owned(),
                    version: scheme.version.clone(),
                    files: scheme
                        .files
                        .iter()
                        .map(|f| relative_to(f, &self.config.scheme_dir))
                        .collect(),
                    loaded_at: now,
                }
            })
            .collect();
        if let Err(e) = self.store.record_deployed(&deployed).await {
            tracing::warn!(error = %e, "could not record the deployed schemes");
        }
    }

    /// The ids of the schemes this deployment runs.
    pub fn scheme_ids(&self) -> Vec<&str> {
        self.schemes.iter().map(|s| s.id()).collect()
    }

    /// The page queue of a target connector.
    pub fn queue(&self, connector: &str) -> Option<&SqsQueue> {
        self.queues.get(connector)
    }

    /// The page queue scheme `id` sends to (its target's).
    pub fn scheme_queue(&self, id: &str) -> Result<&SqsQueue, String> {
        let ids = self.schemes.iter().map(|s| s.id());
        let scheme = &self.schemes[scheme_position(ids, id, "this deployment")?];
        let connector = scheme.config.target.connector.value.name();
        self.queue(connector)
            .ok_or_else(|| format!("the deployment has no queue for {connector}"))
    }

    /// Every page queue, by target connector.
    pub fn queues(&self) -> &BTreeMap<String, SqsQueue> {
        &self.queues
    }

    /// Makes the next [`Deployment::connected`] read the credentials secret again (a target refused
    /// them: a rotation may have put new ones in place).
    pub async fn forget_credentials(&self) {
        self.secrets.forget().await;
    }

    /// The connectors, built from the credentials secret on first use and rebuilt when a fresh
    /// read (every few minutes) finds a new version of it.
    pub async fn connected(&self) -> Result<Arc<Connected>, DeploymentError> {
        let mut current = self.connected.lock().await;
        let (version, connectors) = self.secrets.get().await?;
        if let Some(connected) = current.as_ref()
            && connected.version == version
        {
            return Ok(connected.clone());
        }
        // The secret's connector settings are the deployment's: a wrong one is a settings mistake.
        let clients =
            Clients::with_http(&connectors, self.http.clone()).map_err(DeploymentError::Config)?;
        let fresh = Arc::new(
            self.assemble(version, &clients)
                .map_err(DeploymentError::Config)?,
        );
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    fn assemble(&self, version: String, clients: &Clients) -> Result<Connected, String> {
        // Each push instance gets its share of the account's limit.
        let mut pacers = TargetPacers::new(instance_share(&self.config));
        let mut parts = Vec::new();
        for scheme in &self.schemes {
            let (source, target) = endpoints_for(scheme, clients, "the credentials secret")?;
            let connector = scheme.config.target.connector.value;
            let pacer = pacers.for_scheme(scheme, rate_limit(&self.config, scheme));
            parts.push(SchemeParts {
                source,
                target,
                pacer,
                queue: self.queues[connector.name()].clone(),
                scheme: scheme.clone(),
            });
        }
        Ok(Connected {
            version,
            schemes: parts,
        })
    }
}

/// A visibility timeout as text.
fn seconds(visibility: Option<Duration>) -> String {
    visibility.map_or_else(|| "unknown".into(), |v| format!("{}s", v.as_secs()))
}

/// `file` relative to the scheme folder (`shops.csv`, not `/opt/schemes/shops.csv`).
fn relative_to(file: &str, dir: &std::path::Path) -> String {
    std::path::Path::new(file)
        .strip_prefix(dir)
        .map_or_else(|_| file.to_owned(), |p| p.display().to_string())
}

/// The rate limit (calls a minute) of `scheme`'s target in this deployment: the contract's
/// override, else the scheme's own.
fn rate_limit(config: &DeploymentConfig, scheme: &Scheme) -> Option<u32> {
    let connector = scheme.config.target.connector.value.name();
    config
        .rate_limits
        .get(connector)
        .copied()
        .or(scheme.push.rate_limit)
}

/// The share of a target's limit one push instance paces at.
fn instance_share(config: &DeploymentConfig) -> f64 {
    RATE_SHARE / f64::from(config.push_concurrency.max(1))
}

/// One push instance's timing against `scheme`'s target: its call spacing is the pacer's own.
fn push_timing(config: &DeploymentConfig, scheme: &Scheme) -> PushTiming {
    PushTiming {
        timeout: config.tuning.push_timeout,
        period: rate_limit(config, scheme)
            .map(|limit| Pacer::per_minute(limit, instance_share(config)).period()),
    }
}

fn timing_settings(
    config: &DeploymentConfig,
    schemes: &[Arc<Scheme>],
    queues: &BTreeMap<String, SqsQueue>,
) -> TimingSettings {
    let mut targets: Vec<(String, u32, u32, PushTiming)> = Vec::new();
    for scheme in schemes {
        let connector = scheme.config.target.connector.value.name();
        if let Some(limit) = rate_limit(config, scheme)
            && !targets.iter().any(|(c, ..)| c == connector)
        {
            targets.push((
                connector.to_owned(),
                limit,
                config.push_concurrency,
                push_timing(config, scheme),
            ));
        }
    }
    TimingSettings {
        push_timeout: config.tuning.push_timeout,
        claim_ttl: config.tuning.claim_ttl,
        retry_max: config.tuning.retry_max,
        visibility: queues
            .iter()
            .filter_map(|(c, q)| Some((c.clone(), q.visibility()?)))
            .collect(),
        targets,
    }
}

/// The AWS configuration of the environment (region, credentials, `AWS_ENDPOINT_URL` for an
/// emulator), with the SDK's standard retries.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(extra: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let mut all: BTreeMap<String, String> = [
            ("FERRY_TABLE", "t"),
            ("FERRY_SECRET_ID", "s"),
            ("FERRY_QUEUE_KINGDEE", "https://sqs/k"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        all.retain(|_, v| !v.is_empty());
        move |name| all.get(name).cloned()
    }

    /// The template's queue settings reach the deployment, so a start needs no SQS call; without
    /// them the queues are discovered as before.
    #[test]
    fn queue_settings_come_from_the_environment() {
        let config = DeploymentConfig::from_vars(vars(&[
            ("FERRY_QUEUE_VISIBILITY", "360"),
            ("FERRY_DEAD_LETTER_KINGDEE", "https://sqs/k-dlq"),
        ]))
        .unwrap();
        assert_eq!(
            config.tuning.queue_visibility,
            Some(Duration::from_secs(360))
        );
        assert_eq!(
            config.tuning.dead_letter_queues,
            BTreeMap::from([("kingdee".to_owned(), "https://sqs/k-dlq".to_owned())])
        );
        let plain = DeploymentConfig::from_vars(vars(&[])).unwrap();
        assert_eq!(plain.tuning.queue_visibility, None);
        assert!(plain.tuning.dead_letter_queues.is_empty());
        let wrong = DeploymentConfig::from_vars(vars(&[("FERRY_QUEUE_VISIBILITY", "6m")]));
        assert_eq!(
            wrong.unwrap_err(),
            "FERRY_QUEUE_VISIBILITY: '6m' is not a whole number of seconds"
        );
    }
}
