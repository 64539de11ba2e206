//! What the engine's unit tests share: a fresh embedded store and a bundled scheme.

use crate::Scheme;
use crate::embedded::EmbeddedStore;

/// A fresh embedded store in a directory of this process and test.
pub(crate) fn store(name: &str) -> EmbeddedStore {
    let dir = std::env::temp_dir().join(format!("ferry-engine-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    EmbeddedStore::open(&dir.join("ferry.db")).unwrap()
}

/// The bundled orders-to-Kingdee scheme.
pub(crate) fn trades_scheme() -> Scheme {
    // The engine's tests need the variables set, not any particular value.
    crate::bundled::load_all(&|_| Some("TEST".into()))
        .unwrap()
        .into_iter()
        .find(|s| s.id() == "wdt-trades-to-kingdee")
        .unwrap()
}
