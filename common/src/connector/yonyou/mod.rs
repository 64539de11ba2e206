//! 用友BIP (Yonyou): data-centre discovery, the access token, and `singleSave` of a sales order with
//! its `resubmitCheckKey`.

mod client;
mod config;
pub mod sign;
pub mod wire;

#[cfg(test)]
mod tests;

pub use client::YonyouClient;
pub use config::YonyouConfig;
