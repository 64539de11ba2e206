//! 金蝶云星辰 (Kingdee jdy) V1: the API gateway 2.0 signature, the cached app-token, saving a sales
//! order and looking one up by its bill number.

mod client;
mod config;
pub mod sign;
mod target;
pub mod wire;

#[cfg(test)]
mod tests;

pub use client::KingdeeClient;
pub use config::KingdeeConfig;
pub use target::{KingdeeTarget, TARGET};
pub use wire::Detail;
