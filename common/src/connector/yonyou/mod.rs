//! 用友BIP (Yonyou): data-centre discovery, the access token, and `singleSave` of a sales order with
//! its `resubmitCheckKey`.

mod client;
mod config;
pub mod sign;
mod target;
pub mod wire;

#[cfg(test)]
mod tests;

pub use client::YonyouClient;
pub use config::YonyouConfig;
pub use target::{TARGET, YonyouTarget};
