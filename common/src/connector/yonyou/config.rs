//! What the Yonyou connector needs: where to discover the tenant's data centre, and the self-built
//! app's key and secret.

use serde::Deserialize;

use crate::connector::Secret;

/// Yonyou credentials and endpoint.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YonyouConfig {
    /// The data-centre discovery service's base URL.
    #[serde(default = "default_url")]
    pub url: String,
    /// The tenant id.
    pub tenant_id: String,
    /// The self-built app's key (`appKey`).
    pub app_key: String,
    /// The self-built app's secret: signs the token request.
    pub app_secret: Secret,
    /// How long Yonyou answers a repeated `resubmitCheckKey` with the first success (`1h` by the
    /// vendor's documentation). An unsure save younger than this is settled by repeating it with its
    /// key; an older one by finding the order by its code.
    #[serde(default = "default_resubmit_window")]
    pub resubmit_window: String,
}

fn default_resubmit_window() -> String {
    "1h".to_owned()
}

impl YonyouConfig {
    /// `resubmit_window` as a duration.
    pub fn resubmit_window(&self) -> Result<std::time::Duration, String> {
        crate::time::parse_duration(&self.resubmit_window)
            .ok()
            .and_then(|d| std::time::Duration::try_from(d).ok())
            .ok_or_else(|| {
                format!(
                    "yonyou.resubmit_window: '{}' is not a duration like 1h or 30m",
                    self.resubmit_window
                )
            })
    }
}

fn default_url() -> String {
    super::wire::DISCOVERY_URL.to_owned()
}
