//! A credential problem is not a document problem: `ferry run` with a wrong target secret stops
//! pushing to that target, exits non-zero naming the connector and what to fix, and marks nothing
//! failed; with the secret fixed, the next run pushes everything, no replay needed.

use ferry_common::embedded::EmbeddedStore;
use ferry_common::engine::{RecordState, RecordStore};
use ferry_sandbox::Sandbox;
use ferry_tests::{TempDir, ferry_async, sandbox_run_config, scheme, spawn_sandbox};

/// Records of `scheme_id` in `state`.
async fn count(store: &EmbeddedStore, scheme_id: &str, state: RecordState) -> usize {
    store
        .list(scheme_id, Some(state), usize::MAX)
        .await
        .unwrap()
        .len()
}

/// Runs `ferry run --once` with `wrong` in place of the secret `secret`, then with the right one.
async fn wrong_then_right(sandbox: &Sandbox, name: &str, secret: &str, expect: &[&str]) {
    let dir = TempDir::new(&format!("credentials-{name}"));
    let store_path = dir.path().join("ferry.db");
    let right = sandbox_run_config(sandbox, &store_path);
    assert!(right.contains(secret));
    let config = dir.write("ferry.yaml", &right.replace(secret, "not-the-secret"));
    let run = ferry_async(&["run", &config, "--once"]).await;
    // Refused credentials are the connector's settings: the user's move, not a retry's.
    assert_eq!(run.code, ferry_cli::error::EXIT_USER, "{run:?}");
    let said = format!("{}{}", run.stdout, run.stderr);
    for text in expect {
        assert!(said.contains(text), "{name}: '{text}' not in {said}");
    }
    assert!(said.contains("No document was marked failed"), "{said}");
    assert!(
        !said.contains("not-the-secret"),
        "the secret is never printed"
    );
    let store = EmbeddedStore::open(&store_path).unwrap();
    for id in ["wdt-trades-to-kingdee", "wdt-stockouts-to-yonyou"] {
        assert_eq!(
            count(&store, id, RecordState::Failed).await,
            0,
            "{name}: {id}"
        );
    }
    // The other target was not held up.
    let (blocked, free) = if name == "kingdee" {
        ("wdt-trades-to-kingdee", "wdt-stockouts-to-yonyou")
    } else {
        ("wdt-stockouts-to-yonyou", "wdt-trades-to-kingdee")
    };
    assert_eq!(
        count(&store, blocked, RecordState::Synced).await,
        0,
        "{name}"
    );
    assert!(sandbox.verify(&scheme(free)).found > 0, "{name}");
    drop(store);

    // Fixed: the next run pushes what waited, with no replay.
    let config = dir.write("ferry.yaml", &right);
    let run = ferry_async(&["run", &config, "--once"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    for id in ["wdt-trades-to-kingdee", "wdt-stockouts-to-yonyou"] {
        let v = sandbox.verify(&scheme(id));
        assert!(v.is_clean() && v.found == v.expected, "{name}: {id}: {v:?}");
    }
    let store = EmbeddedStore::open(&store_path).unwrap();
    for id in ["wdt-trades-to-kingdee", "wdt-stockouts-to-yonyou"] {
        assert_eq!(
            count(&store, id, RecordState::Failed).await,
            0,
            "{name}: {id}"
        );
        assert_eq!(
            count(&store, id, RecordState::Retrying).await,
            0,
            "{name}: {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_kingdee_secret_fails_no_document_and_the_fixed_run_pushes_everything() {
    let sandbox = spawn_sandbox(40, |_| {}).await;
    let secret = sandbox.credentials().kingdee_client_secret.clone();
    wrong_then_right(
        &sandbox,
        "kingdee",
        &secret,
        &["wdt-trades-to-kingdee", "kingdee", "kingdee.client_secret"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_yonyou_secret_fails_no_document_and_the_fixed_run_pushes_everything() {
    let sandbox = spawn_sandbox(40, |_| {}).await;
    let secret = sandbox.credentials().yonyou_app_secret.clone();
    wrong_then_right(
        &sandbox,
        "yonyou",
        &secret,
        &["wdt-stockouts-to-yonyou", "yonyou", "yonyou.app_secret"],
    )
    .await;
}
