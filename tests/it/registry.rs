//! The connector registry kept honest: every registered target connector has an API described in
//! the catalog that its client serves, a shipped scheme, a queue in the SAM template, a row in
//! docs/connectors.md, a sandbox that plays it, and its scheme synced end to end through the
//! client, the queue and the sandbox. docs/connectors.md's "Adding a connector" lists these steps; a
//! connector registered without one of them fails here.

use ferry_common::catalog::Catalog;
use ferry_common::connector::registry::{TARGETS, serves};
use ferry_tests::workspace;

use crate::pipeline::Pipeline;

#[tokio::test(flavor = "multi_thread")]
async fn every_registered_target_connector_is_described_shipped_deployed_played_and_synced() {
    let catalog = Catalog::builtin();
    let template = std::fs::read_to_string(workspace().join("template.yaml")).unwrap();
    let docs = std::fs::read_to_string(workspace().join("docs/connectors.md")).unwrap();
    let schemes = ferry_common::bundled::load_all(&ferry_sandbox::demo_variable).unwrap();
    let p = Pipeline::spawn("registry", 60, |_| {}).await;
    let limits = p.sandbox.rate_limits();
    for entry in TARGETS {
        let name = entry.name;
        let served: Vec<&str> = catalog
            .apis_of(name)
            .into_iter()
            .filter(|api| catalog.find(name, api).is_some_and(|c| serves(c).is_ok()))
            .collect();
        assert!(
            !served.is_empty(),
            "{name}: no catalog API its client serves"
        );
        assert!(
            schemes
                .iter()
                .any(|s| s.config.target.connector.value.name() == name),
            "{name}: no shipped scheme writes to it"
        );
        let queue = format!("FERRY_QUEUE_{}", name.to_uppercase());
        assert!(
            template.contains(&queue),
            "{name}: template.yaml sets no {queue}"
        );
        assert!(
            docs.contains(&format!("| {name} |")),
            "{name}: docs/connectors.md has no row for it"
        );
        assert!(
            ferry_sandbox::target_play(name).is_some(),
            "{name}: the sandbox does not play it"
        );
        assert!(limits.contains_key(name), "{name}: no sandbox rate limit");
    }
    // End to end: every shipped scheme, so every registered connector, synced exactly once.
    let runtime = p.runtime();
    p.sync(&runtime).await;
    p.assert_synced(&runtime).await;
    for entry in TARGETS {
        let found: u64 = runtime
            .schemes
            .iter()
            .filter(|run| run.scheme.config.target.connector.value.name() == entry.name)
            .map(|run| p.sandbox.verify(&run.scheme).found)
            .sum();
        assert!(found > 0, "{}: nothing reached the sandbox", entry.name);
    }
}
