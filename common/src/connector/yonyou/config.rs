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
}

fn default_url() -> String {
    super::wire::DISCOVERY_URL.to_owned()
}
