//! 旺店通 (WDT) enterprise edition: the two query APIs over the Qimen gateway and over openapi2.

mod client;
mod config;
pub mod sign;
pub mod wire;

#[cfg(test)]
mod tests;

pub use client::{Page, WdtClient};
pub use config::{Openapi2Config, QimenConfig, WdtConfig};
pub use wire::{QIMEN_URL, THROTTLED, WDT_TARGET_APP_KEY};
