//! The three ERP connectors (WDT, Kingdee, Yonyou) and what they share: secrets that never print,
//! HTTP settings, the typed outcome of every call and the bounded retry loop.
//!
//! Each connector folder has the same file roles: `config.rs` (credentials and endpoints),
//! `sign.rs` (signatures, with the contract's test vectors in `tests.rs`), `wire.rs` (request and
//! answer shapes, and how an answer is classified) and `client.rs` (the calls).

mod clients;
mod encode;
mod http;
pub mod kingdee;
mod outcome;
mod retry;
mod secret;
mod token;
pub mod wdt;
pub mod yonyou;

pub use clients::{Clients, ConnectorsConfig};
pub use encode::encode;
pub use http::{HttpSettings, install_crypto_provider};
pub use outcome::{CallError, FailureClass, Saved};
pub use retry::{RetrySettings, throttled_calls};
pub use secret::Secret;

/// The target API families Ferry's clients speak, as (connector, `target.protocol`,
/// `target.update`) of a catalog description: an API of one of these families needs a catalog
/// file only; any other is refused by `ferry check`.
pub const TARGET_FAMILIES: &[(&str, &str, &str)] = &[
    ("kingdee", "kingdee-gateway", "entry-ids"),
    ("yonyou", "yonyou-openapi", "line-status"),
];

/// Whether a client serves target API `api`, or why not.
pub fn serves(api: &crate::catalog::ApiCatalog) -> Result<(), String> {
    let Some(spec) = &api.target else {
        return Err(format!(
            "the catalog describes no `target:` for {} {} (its save path, number field and look-up), so no client can write to it",
            api.connector, api.api
        ));
    };
    if TARGET_FAMILIES
        .iter()
        .any(|(c, p, u)| *c == api.connector && *p == spec.protocol && *u == spec.update)
    {
        return Ok(());
    }
    let served: Vec<String> = TARGET_FAMILIES
        .iter()
        .filter(|(c, ..)| *c == api.connector)
        .map(|(_, p, u)| format!("protocol {p} with {u} updates"))
        .collect();
    Err(format!(
        "no client serves {} {} (protocol {} with {} updates); the {} client serves {}",
        api.connector,
        api.api,
        spec.protocol,
        spec.update,
        api.connector,
        if served.is_empty() {
            "nothing".to_owned()
        } else {
            served.join(", ")
        }
    ))
}
