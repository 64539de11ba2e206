//! Where the operator commands look and act: the embedded store of a `ferry run` configuration
//! (`embedded.rs`), or a deployment on AWS (`aws.rs`, a configuration file with an `aws:` section),
//! behind one set of calls.

#[cfg(feature = "aws")]
mod aws;
mod embedded;
mod requeue;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_common::embedded::{Runtime, Tally};
use ferry_common::engine::{
    Cursor, CursorStore, Event, HistoryLog, PageQueue, RecordQueries, RecordState, RecordStore,
    SyncRecord, Window,
};
use ferry_common::reconcile::Reconciliation;
use ferry_common::scheme::scheme_position;
use serde_json::Value;

pub use self::requeue::{Refetched, Requeue};
use crate::context::{async_runtime, load_run};
use crate::error::{Blame, CliError};

/// How long a command waits for the queue to drain after queueing work.
const PATIENCE: Duration = Duration::from_secs(600);

/// The configuration and output options every operator command takes.
#[derive(Debug, clap::Args)]
pub struct BackendArgs {
    /// The `ferry run` configuration whose store, schemes and connectors to use, or a file with
    /// an `aws:` section naming a deployment.
    #[arg(long, short = 'c', default_value = "ferry.yaml")]
    pub config: PathBuf,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Loads the configuration (embedded store or AWS deployment) and runs `f` on it.
pub fn with_backend<F, Fut>(args: &BackendArgs, f: F) -> Result<i32, CliError>
where
    F: FnOnce(Backend) -> Fut,
    Fut: std::future::Future<Output = Result<i32, CliError>>,
{
    let backend = Backend::load(&args.config)?;
    async_runtime()?.block_on(f(backend))
}

/// The operator commands' view of a deployment.
pub enum Backend {
    /// The embedded default.
    Local(Box<Runtime>),
    /// A deployment on AWS.
    #[cfg(feature = "aws")]
    Aws(Box<aws::AwsBackend>),
}

/// Runs `$body` with `$s` bound to the backend's store and `$blame` to the domain of its errors:
/// the embedded store is this machine's, DynamoDB a service's.
macro_rules! with_store {
    ($backend:expr, $s:ident, $blame:ident => $body:expr) => {
        match $backend {
            Backend::Local(runtime) => {
                let $s = &runtime.store;
                let $blame = CliError::internal;
                $body
            }
            #[cfg(feature = "aws")]
            Backend::Aws(aws) => {
                let $s = &aws.deployment.store;
                let $blame = CliError::external;
                $body
            }
        }
    };
}

/// Runs `$body` with `$q` bound to the page queue of `$scheme` (and `$blame` as in `with_store`).
macro_rules! with_queue {
    ($backend:expr, $scheme:expr, $q:ident, $blame:ident => $body:expr) => {
        match $backend {
            Backend::Local(runtime) => {
                let $q = &runtime.schemes[runtime.index_of($scheme)?].queue;
                let $blame = CliError::internal;
                $body
            }
            #[cfg(feature = "aws")]
            Backend::Aws(aws) => {
                let $q = aws.deployment.scheme_queue($scheme).user()?;
                let $blame = CliError::external;
                $body
            }
        }
    };
}

impl Backend {
    /// Loads a configuration file: `aws:` names a deployment, anything else is a `ferry run`
    /// configuration of the embedded default.
    pub fn load(path: &Path) -> Result<Backend, CliError> {
        let content = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
            .user()?;
        let peek: Value = serde_saphyr::from_str(&content).unwrap_or(Value::Null);
        if peek.get("aws").is_none() {
            return load_run(path).map(|r| Backend::Local(Box::new(r)));
        }
        #[cfg(feature = "aws")]
        {
            aws::AwsBackend::load(path, &content).map(|b| Backend::Aws(Box::new(b)))
        }
        #[cfg(not(feature = "aws"))]
        Err(CliError::user(format!(
            "{} describes a deployment on AWS, but this ferry was built without AWS support: \
             build it with `cargo install --path cli --features aws`",
            path.display()
        )))
    }

    /// Whether this is the embedded default (its files can be read again at will).
    pub fn is_local(&self) -> bool {
        matches!(self, Backend::Local(_))
    }

    /// The ids of the schemes, in configuration order.
    pub fn scheme_ids(&self) -> Vec<String> {
        match self {
            Backend::Local(runtime) => runtime
                .schemes
                .iter()
                .map(|s| s.scheme.id().to_owned())
                .collect(),
            #[cfg(feature = "aws")]
            Backend::Aws(aws) => aws
                .deployment
                .scheme_ids()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        }
    }

    /// Which version of its files each scheme runs (`Scheme::version`), by id: the loaded files
    /// on the embedded default; on AWS what each function recorded at its start, compared with
    /// the operator's folder.
    pub async fn files(&self) -> Result<Vec<(String, String)>, CliError> {
        match self {
            Backend::Local(runtime) => Ok(embedded::files(runtime)),
            #[cfg(feature = "aws")]
            Backend::Aws(aws) => aws.files().await,
        }
    }

    /// The scheme `id` as loaded (its mapping, its target's rate limit), or an error naming the
    /// ones this configuration runs.
    pub fn scheme_def(&self, id: &str) -> Result<&ferry_common::Scheme, CliError> {
        match self {
            Backend::Local(runtime) => Ok(&runtime.schemes[runtime.index_of(id)?].scheme),
            #[cfg(feature = "aws")]
            Backend::Aws(aws) => {
                let schemes = aws.deployment.schemes();
                let at = scheme_position(schemes.iter().map(|s| s.id()), id, "this configuration")
                    .user()?;
                Ok(&schemes[at])
            }
        }
    }

    /// The source's documents whose look-up value is `value` (for a document page's preview).
    pub async fn source_documents(
        &self,
        scheme: &str,
        value: &str,
    ) -> Result<Vec<Value>, CliError> {
        let found = match self {
            Backend::Local(runtime) => {
                let run = &runtime.schemes[runtime.index_of(scheme)?];
                ferry_common::engine::lookup(&run.scheme, &run.source, value).await
            }
            #[cfg(feature = "aws")]
            Backend::Aws(aws) => {
                let connected = aws
                    .deployment
                    .connected()
                    .await
                    .map_err(|e| CliError::classified(&e))?;
                let parts = connected.scheme(scheme).user()?;
                ferry_common::engine::lookup(&parts.scheme, &parts.source, value).await
            }
        };
        found
            .map(|(_, documents)| documents)
            .map_err(|e| CliError::classified(&e))
    }

    /// `id` if the deployment runs that scheme, or an error naming the ones it runs.
    pub fn scheme(&self, id: &str) -> Result<String, CliError> {
        let ids = self.scheme_ids();
        scheme_position(ids.iter().map(String::as_str), id, "this configuration").user()?;
        Ok(id.to_owned())
    }

    /// Compares the scheme's source, records and target over `range` (`ferry reconcile`), through
    /// the backend's own connectors and store.
    pub async fn reconcile(&self, scheme: &str, range: Window) -> Result<Reconciliation, CliError> {
        match self {
            Backend::Local(runtime) => embedded::reconcile(runtime, scheme, range).await,
            #[cfg(feature = "aws")]
            Backend::Aws(aws) => aws.reconcile(scheme, range).await,
        }
    }

    /// The scheme's cursor.
    pub async fn cursor(&self, scheme: &str) -> Result<Cursor, CliError> {
        with_store!(self, s, blame => s.cursor(scheme).await.map_err(blame))
    }

    /// Records per state.
    pub async fn counts(&self, scheme: &str) -> Result<Vec<(RecordState, u64)>, CliError> {
        with_store!(self, s, blame => s.counts(scheme).await.map_err(blame))
    }

    /// The latest records in `state`, newest first.
    pub async fn recent(
        &self,
        scheme: &str,
        state: RecordState,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, CliError> {
        with_store!(self, s, blame => s.recent(scheme, state, limit).await.map_err(blame))
    }

    /// Records in `state` (or all), oldest change first.
    pub async fn list(
        &self,
        scheme: &str,
        state: Option<RecordState>,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, CliError> {
        with_store!(self, s, blame => s.list(scheme, state, limit).await.map_err(blame))
    }

    /// The record of `key`.
    pub async fn record(&self, scheme: &str, key: &str) -> Result<Option<SyncRecord>, CliError> {
        with_store!(self, s, blame => s.record(scheme, key).await.map_err(blame))
    }

    /// Records by target number or look-up value.
    pub async fn find_by_number(
        &self,
        scheme: &str,
        text: &str,
    ) -> Result<Vec<SyncRecord>, CliError> {
        with_store!(self, s, blame => s.find_by_number(scheme, text).await.map_err(blame))
    }

    /// The record of `key` in `scheme`: by document key first, then by number or look-up value.
    pub async fn find_record(
        &self,
        scheme: &str,
        key: &str,
    ) -> Result<Option<SyncRecord>, CliError> {
        if let Some(record) = self.record(scheme, key).await? {
            return Ok(Some(record));
        }
        let mut found = self.find_by_number(scheme, key).await?;
        Ok(match found.len() {
            0 => None,
            1 => found.pop(),
            _ => {
                let keys: Vec<&str> = found.iter().map(|r| r.key.as_str()).collect();
                return Err(CliError::user(format!(
                    "'{key}' names {} documents of {scheme} ({}); give one of their keys",
                    found.len(),
                    keys.join(", ")
                )));
            }
        })
    }

    /// A document's history, oldest first.
    pub async fn history(
        &self,
        scheme: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<Event>, CliError> {
        with_store!(self, s, blame => s.history(scheme, key, limit).await.map_err(blame))
    }

    /// Appends events to documents' histories (the audit log is one).
    pub async fn append(&self, events: Vec<Event>) -> Result<(), CliError> {
        with_store!(self, s, blame => s.append(events).await.map_err(blame))
    }

    /// Messages of the scheme's queue waiting or in flight (on AWS the queue is the target's,
    /// shared by its schemes), and dead letters.
    pub async fn queue_figures(&self, scheme: &str) -> Result<(u64, u64), CliError> {
        with_queue!(self, scheme, q, blame => Ok((
            q.depth().await.map_err(blame)?,
            q.dead_letter_count().await.map_err(blame)?,
        )))
    }

    /// Puts the scheme's dead letters back on its queue.
    pub async fn redrive(&self, scheme: &str) -> Result<u64, CliError> {
        with_queue!(self, scheme, q, blame => q.redrive().await.map_err(blame))
    }

    /// Fetches a window or documents again and queues them: in this process on the embedded
    /// default, by invoking the poll function on AWS.
    pub async fn requeue(&self, scheme: &str, what: Requeue) -> Result<Refetched, CliError> {
        match self {
            Backend::Local(runtime) => embedded::requeue(runtime, scheme, what).await,
            #[cfg(feature = "aws")]
            Backend::Aws(aws) => aws.requeue(scheme, what).await,
        }
    }

    /// Pushes what was queued, when this process is the pusher (the embedded default); on AWS the
    /// push function does it. `true` if pushed here.
    pub async fn drain(&self, scheme: &str, tally: &mut Tally) -> Result<bool, CliError> {
        match self {
            Backend::Local(runtime) => {
                runtime
                    .drain(runtime.index_of(scheme)?, tally, PATIENCE)
                    .await?;
                Ok(true)
            }
            #[cfg(feature = "aws")]
            Backend::Aws(_) => Ok(false),
        }
    }
}
