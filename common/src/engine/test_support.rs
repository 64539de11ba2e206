//! What the engine's unit tests share: the bundled schemes (one of them with another change
//! policy), over the in-memory adapters of `crate::memory`.

use crate::Scheme;

/// The variables every bundled scheme needs: the engine's tests need them set, not any particular
/// value.
fn vars(_: &str) -> Option<String> {
    Some("TEST".into())
}

/// The bundled scheme `id`.
fn bundled(id: &str) -> Scheme {
    crate::bundled::load_all(&vars)
        .unwrap()
        .into_iter()
        .find(|s| s.id() == id)
        .unwrap()
}

/// The bundled orders-to-Kingdee scheme.
pub(crate) fn trades_scheme() -> Scheme {
    bundled("wdt-trades-to-kingdee")
}

/// The bundled stock-outs-to-Yonyou scheme (a target with an idempotency key).
pub(crate) fn stockouts_scheme() -> Scheme {
    bundled("wdt-stockouts-to-yonyou")
}

/// The bundled orders-to-Kingdee scheme with `on_change: conflict`: a change after sync is left
/// for a person instead of updating the bill.
pub(crate) fn trades_scheme_on_change_conflict() -> Scheme {
    let (file, text) = crate::bundled::SCHEMES
        .iter()
        .find(|(file, _)| file.ends_with("wdt-trades-to-kingdee.yaml"))
        .unwrap();
    let policy = "on_change: update";
    assert!(text.contains(policy), "the bundled scheme names its policy");
    let text = text.replacen(policy, "on_change: conflict", 1);
    Scheme::load_str(file, &text, &vars).unwrap()
}
