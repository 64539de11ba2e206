//! `ferry run`'s configuration file: the schemes to run, each connector's endpoint and credentials
//! (secrets inline or `{ env: NAME }`), the store's location and the push tuning.

use std::collections::HashMap;
use std::path::PathBuf;

pub use ferry_common::connector::ConnectorsConfig;
pub use ferry_common::embedded::PushConfig;
use serde::Deserialize;

/// A whole `ferry run` configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The embedded store's SQLite file (created if missing); relative paths are from the file.
    pub store: PathBuf,
    /// The schemes to run: a scheme file, a folder of them (with its value-map files and
    /// `catalog/`), a bundled scheme's id, or `{ scheme: ..., start: ... }`.
    pub schemes: Vec<SchemeEntry>,
    /// Deployment variables the schemes read (`FERRY_KINGDEE_PROJECT: XM-01`); a variable of the
    /// process environment with the same name wins.
    #[serde(default)]
    pub variables: std::collections::BTreeMap<String, String>,
    /// Each connector's endpoint and credentials.
    pub connectors: ConnectorsConfig,
    /// Calls per minute per target connector (`kingdee: 500`), overriding the schemes' `rate_limit`
    /// (an account's contract may differ from the published limit).
    #[serde(default)]
    pub rate_limits: HashMap<String, u32>,
    /// Queue and retry tuning.
    #[serde(default)]
    pub push: PushConfig,
}

/// One scheme to run.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SchemeEntry {
    /// A file or folder path, or a bundled id.
    Name(String),
    /// A scheme (or folder of schemes) with a first-run start point.
    Detailed {
        /// A file or folder path, or a bundled id.
        scheme: String,
        /// Where the first run starts, Beijing time (overrides the scheme's `window.start`); a
        /// scheme that never ran needs one of the two, or `ferry run --from-now`.
        #[serde(default)]
        start: Option<String>,
    },
}

impl SchemeEntry {
    /// The file path or bundled id.
    pub fn name(&self) -> &str {
        match self {
            SchemeEntry::Name(name) | SchemeEntry::Detailed { scheme: name, .. } => name,
        }
    }

    /// The first-run start, if given.
    pub fn start(&self) -> Option<&str> {
        match self {
            SchemeEntry::Name(_) => None,
            SchemeEntry::Detailed { start, .. } => start.as_deref(),
        }
    }
}
