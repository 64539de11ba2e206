//! Where the operator commands look and act: the embedded store of a `ferry run` configuration, or
//! a deployment on AWS (a configuration file with an `aws:` section), behind one set of calls.

use std::path::Path;

use ferry_common::engine::{
    Cursor, CursorStore, Event, HistoryLog, PageQueue, RecordQueries, RecordState, RecordStore,
    SyncRecord, Window,
};
use ferry_common::scheme::scheme_position;
use serde_json::Value;

use crate::reconcile::{self, Reconciliation, Sides};
use crate::runtime::{Runtime, Tally};

/// What to fetch again.
#[derive(Clone, Debug)]
pub enum Requeue {
    /// A window (the cursor stays).
    Window(Window),
    /// Documents by key or look-up value; `replay` pushes earlier failures again.
    Keys {
        /// Keys or look-up values.
        keys: Vec<String>,
        /// An operator's replay.
        replay: bool,
    },
}

/// What a re-fetch did: the poll report (as JSON), documents queued, values the source lacked.
pub struct Requeued {
    /// The poll's report.
    pub report: Value,
    /// Documents queued.
    pub documents: u64,
    /// Values the source had no document for.
    pub not_found: Vec<String>,
}

/// The operator commands' view of a deployment.
pub enum Backend {
    /// The embedded default.
    Local(Box<Runtime>),
    /// A deployment on AWS.
    #[cfg(feature = "aws")]
    Aws(Box<crate::aws::AwsBackend>),
}

/// Runs `$body` with `$s` bound to the backend's store.
macro_rules! with_store {
    ($backend:expr, $s:ident => $body:expr) => {
        match $backend {
            Backend::Local(runtime) => {
                let $s = &runtime.store;
                $body
            }
            #[cfg(feature = "aws")]
            Backend::Aws(aws) => {
                let $s = &aws.deployment.store;
                $body
            }
        }
    };
}

/// Runs `$body` with `$q` bound to the page queue of `$scheme`.
macro_rules! with_queue {
    ($backend:expr, $scheme:expr, $q:ident => $body:expr) => {
        match $backend {
            Backend::Local(runtime) => {
                let $q = &runtime.schemes[runtime.index_of($scheme)?].queue;
                $body
            }
            #[cfg(feature = "aws")]
            Backend::Aws(aws) => {
                let $q = aws.deployment.scheme_queue($scheme)?;
                $body
            }
        }
    };
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Backend {
    /// Loads a configuration file: `aws:` names a deployment, anything else is a `ferry run`
    /// configuration of the embedded default.
    pub fn load(path: &Path) -> Result<Backend, String> {
        let content = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let peek: Value = serde_saphyr::from_str(&content).unwrap_or(Value::Null);
        if peek.get("aws").is_none() {
            return crate::run::load(path).map(|r| Backend::Local(Box::new(r)));
        }
        #[cfg(feature = "aws")]
        {
            crate::aws::AwsBackend::load(path, &content).map(|b| Backend::Aws(Box::new(b)))
        }
        #[cfg(not(feature = "aws"))]
        Err(format!(
            "{} describes a deployment on AWS, but this ferry was built without AWS support: \
             build it with `cargo install --path cli --features aws`",
            path.display()
        ))
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
    /// the operator's folder (`poll 1a2b… push 1a2b… (folder 3c4d…)` when they differ). Schemes a
    /// deployment's functions run that the folder lacks are listed too.
    pub async fn files(&self) -> Result<Vec<(String, String)>, String> {
        match self {
            Backend::Local(runtime) => Ok(runtime
                .schemes
                .iter()
                .map(|s| (s.scheme.id().to_owned(), s.scheme.version.clone()))
                .collect()),
            #[cfg(feature = "aws")]
            Backend::Aws(aws) => {
                let deployed = aws.deployment.store.deployed().await.map_err(text)?;
                let local: Vec<(String, String)> = aws
                    .deployment
                    .schemes()
                    .iter()
                    .map(|s| (s.id().to_owned(), s.version.clone()))
                    .collect();
                let mut out = Vec::new();
                let mut ids: Vec<&str> = local.iter().map(|(id, _)| id.as_str()).collect();
                for d in &deployed {
                    if !ids.contains(&d.scheme.as_str()) {
                        ids.push(&d.scheme);
                    }
                }
                for id in ids {
                    let by_function: Vec<(&str, &str)> = deployed
                        .iter()
                        .filter(|d| d.scheme == id)
                        .map(|d| (d.function.as_str(), d.version.as_str()))
                        .collect();
                    let folder = local.iter().find(|(l, _)| l == id).map(|(_, v)| v.as_str());
                    let agreed = by_function
                        .first()
                        .map(|(_, v)| *v)
                        .filter(|v| by_function.iter().all(|(_, w)| w == v));
                    let text = match (agreed, folder) {
                        (Some(v), Some(f)) if v == f => v.to_owned(),
                        (None, Some(f)) if by_function.is_empty() => {
                            format!("not deployed ({f} here)")
                        }
                        (_, folder) => {
                            let mut parts: Vec<String> = by_function
                                .iter()
                                .map(|(function, v)| format!("{function} {v}"))
                                .collect();
                            parts.push(match folder {
                                Some(f) => format!("(folder {f})"),
                                None => "(not in the folder)".to_owned(),
                            });
                            parts.join(" ")
                        }
                    };
                    out.push((id.to_owned(), text));
                }
                Ok(out)
            }
        }
    }

    /// `id` if the deployment runs that scheme, or an error naming the ones it runs.
    pub fn scheme(&self, id: &str) -> Result<String, String> {
        let ids = self.scheme_ids();
        scheme_position(ids.iter().map(String::as_str), id, "this configuration")?;
        Ok(id.to_owned())
    }

    /// Compares the scheme's source, records and target over `range` (`ferry reconcile`), through
    /// the backend's own connectors and store.
    pub async fn reconcile(&self, scheme: &str, range: Window) -> Result<Reconciliation, String> {
        match self {
            Backend::Local(runtime) => {
                let run = &runtime.schemes[runtime.index_of(scheme)?];
                let sides = Sides {
                    scheme: &run.scheme,
                    source: &run.source,
                    target: &run.target,
                    pacer: run.pacer.as_deref(),
                    store: &runtime.store,
                };
                reconcile::compare(sides, range).await
            }
            #[cfg(feature = "aws")]
            Backend::Aws(aws) => {
                let connected = aws.deployment.connected().await?;
                let parts = connected.scheme(scheme)?;
                let sides = Sides {
                    scheme: &parts.scheme,
                    source: &parts.source,
                    target: &parts.target,
                    pacer: parts.pacer.as_deref(),
                    store: &aws.deployment.store,
                };
                reconcile::compare(sides, range).await
            }
        }
    }

    /// The scheme's cursor.
    pub async fn cursor(&self, scheme: &str) -> Result<Cursor, String> {
        with_store!(self, s => s.cursor(scheme).await.map_err(text))
    }

    /// Records per state.
    pub async fn counts(&self, scheme: &str) -> Result<Vec<(RecordState, u64)>, String> {
        with_store!(self, s => s.counts(scheme).await.map_err(text))
    }

    /// The latest records in `state`, newest first.
    pub async fn recent(
        &self,
        scheme: &str,
        state: RecordState,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, String> {
        with_store!(self, s => s.recent(scheme, state, limit).await.map_err(text))
    }

    /// Records in `state` (or all), oldest change first.
    pub async fn list(
        &self,
        scheme: &str,
        state: Option<RecordState>,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, String> {
        with_store!(self, s => s.list(scheme, state, limit).await.map_err(text))
    }

    /// The record of `key`.
    pub async fn record(&self, scheme: &str, key: &str) -> Result<Option<SyncRecord>, String> {
        with_store!(self, s => s.record(scheme, key).await.map_err(text))
    }

    /// Records by target number or look-up value.
    pub async fn find_by_number(
        &self,
        scheme: &str,
        text_: &str,
    ) -> Result<Vec<SyncRecord>, String> {
        with_store!(self, s => s.find_by_number(scheme, text_).await.map_err(text))
    }

    /// A document's history, oldest first.
    pub async fn history(
        &self,
        scheme: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<Event>, String> {
        with_store!(self, s => s.history(scheme, key, limit).await.map_err(text))
    }

    /// Messages of the scheme's queue waiting or in flight (on AWS the queue is the target's,
    /// shared by its schemes), and dead letters.
    pub async fn queue_figures(&self, scheme: &str) -> Result<(u64, u64), String> {
        with_queue!(self, scheme, q => Ok((
            q.depth().await.map_err(text)?,
            q.dead_letter_count().await.map_err(text)?,
        )))
    }

    /// Puts the scheme's dead letters back on its queue.
    pub async fn redrive(&self, scheme: &str) -> Result<u64, String> {
        with_queue!(self, scheme, q => q.redrive().await.map_err(text))
    }

    /// Fetches a window or documents again and queues them: in this process on the embedded
    /// default, by invoking the poll function on AWS.
    pub async fn requeue(&self, scheme: &str, what: Requeue) -> Result<Requeued, String> {
        match self {
            Backend::Local(runtime) => {
                let run = &runtime.schemes[runtime.index_of(scheme)?];
                let mut poller = runtime.poller(run, &|_| {});
                let (report, not_found) = match what {
                    Requeue::Window(window) => (poller.resync_window(window).await, Vec::new()),
                    Requeue::Keys { keys, replay } => {
                        poller.replay = replay;
                        match poller.resync_keys(&keys).await {
                            Ok((report, missing)) => (Ok(report), missing),
                            Err(e) => (Err(e), Vec::new()),
                        }
                    }
                };
                let report = report.map_err(|e| format!("resync {scheme}: {e}"))?;
                Ok(Requeued {
                    documents: report.documents,
                    report: serde_json::to_value(&report).expect("serialisable"),
                    not_found,
                })
            }
            #[cfg(feature = "aws")]
            Backend::Aws(aws) => aws.requeue(scheme, what).await,
        }
    }

    /// Pushes what was queued, when this process is the pusher (the embedded default); on AWS the
    /// push function does it. `true` if pushed here.
    pub async fn drain(&self, scheme: &str, tally: &mut Tally) -> Result<bool, String> {
        match self {
            Backend::Local(runtime) => {
                runtime
                    .drain(runtime.index_of(scheme)?, tally, super::ops::PATIENCE)
                    .await?;
                Ok(true)
            }
            #[cfg(feature = "aws")]
            Backend::Aws(_) => Ok(false),
        }
    }
}
