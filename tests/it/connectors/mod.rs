//! The three clients against the sandbox: happy paths, every fault class mapped to its typed
//! outcome, token refresh, rate limits, wrong credentials refused as the real services refuse them,
//! and no secret in any log line.

mod kingdee;
mod secrets;
mod wdt;
mod yonyou;
