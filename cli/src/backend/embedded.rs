//! The operator commands' backend on the embedded default: the store, queues and connectors of a
//! `ferry run` configuration, and a re-fetch that polls in this process.

use ferry_common::embedded::Runtime;
use ferry_common::reconcile::{Reconciliation, Sides, compare};

use super::requeue::{Refetched, Requeue};
use crate::error::CliError;

/// The files each scheme was loaded from, by the version of their content.
pub(super) fn files(runtime: &Runtime) -> Vec<(String, String)> {
    runtime
        .schemes
        .iter()
        .map(|s| (s.scheme.id().to_owned(), s.scheme.version.clone()))
        .collect()
}

/// Fetches a window or documents again, in this process, and queues them.
pub(super) async fn requeue(
    runtime: &Runtime,
    scheme: &str,
    what: Requeue,
) -> Result<Refetched, CliError> {
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
    let report =
        report.map_err(|e| CliError::classified(&e).with_context(&format!("resync {scheme}")))?;
    Ok(Refetched {
        documents: report.documents,
        report: serde_json::to_value(&report).expect("serialisable"),
        not_found,
    })
}

/// Compares the scheme's source, records and target through this configuration's connectors.
pub(super) async fn reconcile(
    runtime: &Runtime,
    scheme: &str,
    range: ferry_common::engine::Window,
) -> Result<Reconciliation, CliError> {
    let run = &runtime.schemes[runtime.index_of(scheme)?];
    let sides = Sides {
        scheme: &run.scheme,
        source: &run.source,
        target: &run.target,
        pacer: run.pacer.as_deref(),
        store: &runtime.store,
    };
    compare(sides, range)
        .await
        .map_err(|e| CliError::classified(&e))
}
