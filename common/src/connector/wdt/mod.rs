//! 旺店通 (WDT) enterprise edition: the two query APIs over the Qimen gateway and over openapi2.

mod client;
mod config;
pub mod sign;
mod source;
pub mod wire;

#[cfg(test)]
mod tests;

pub use client::WdtClient;
pub use config::{Openapi2Config, QimenConfig, WdtConfig};
pub use source::WdtSource;
pub use wire::{QIMEN_URL, THROTTLED, WDT_TARGET_APP_KEY};
