//! What the WDT connector needs to know: the seller account and each transport's endpoint and keys.

use serde::Deserialize;

use crate::connector::Secret;

/// WDT credentials and endpoints.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WdtConfig {
    /// The WDT seller account (`sid`, 卖家账号).
    pub sid: String,
    /// The Qimen gateway (企业奇门); needed by schemes with `transport: qimen`.
    #[serde(default)]
    pub qimen: Option<QimenConfig>,
    /// The direct openapi2 endpoints; needed by schemes with `transport: openapi2`.
    #[serde(default)]
    pub openapi2: Option<Openapi2Config>,
}

/// Qimen gateway access.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QimenConfig {
    /// The gateway's router URL; the public one unless a sandbox is used.
    #[serde(default = "default_qimen_url")]
    pub url: String,
    /// The caller's Qimen app key.
    pub app_key: String,
    /// The caller's Qimen app secret (signs every request).
    pub app_secret: Secret,
    /// WDT's app on Qimen; public callers use `21363512`.
    #[serde(default = "default_target_app_key")]
    pub target_app_key: String,
}

/// Direct openapi2 access.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Openapi2Config {
    /// The base URL the `*.php` endpoints sit under, ending in `/`.
    #[serde(default = "default_openapi2_url")]
    pub url: String,
    /// The WDT app key (`appkey`).
    pub appkey: String,
    /// The WDT app secret (signs every request).
    pub appsecret: Secret,
}

fn default_qimen_url() -> String {
    super::wire::QIMEN_URL.to_owned()
}

fn default_target_app_key() -> String {
    super::wire::WDT_TARGET_APP_KEY.to_owned()
}

fn default_openapi2_url() -> String {
    super::wire::OPENAPI2_URL.to_owned()
}
