//! The three ERP connectors (WDT, Kingdee, Yonyou) and what they share: secrets that never print,
//! HTTP settings, the typed outcome of every call and the bounded retry loop.
//!
//! Each connector folder has the same file roles: `config.rs` (credentials and endpoints),
//! `sign.rs` (signatures, with the contract's test vectors in `tests.rs`), `wire.rs` (request and
//! answer shapes, and how an answer is classified), `client.rs` (the calls), and `target.rs` or
//! `source.rs` (the engine's port over the client; a target's also holds its entry in `registry`).

mod body;
mod clients;
mod encode;
mod http;
pub mod kingdee;
mod outcome;
pub mod registry;
mod retry;
mod secret;
mod token;
pub mod wdt;
pub mod yonyou;

pub use clients::{Clients, ConnectorsConfig};
pub use encode::encode;
pub use http::{HttpSettings, install_crypto_provider};
pub use outcome::{CallError, FailureClass, Saved};
pub use registry::{TargetEntry, endpoints_for, serves};
pub use retry::{RetrySettings, throttled_calls};
pub use secret::Secret;
