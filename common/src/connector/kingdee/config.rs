//! What the Kingdee connector needs: the gateway, the developer app (signs every request) and the
//! tenant's authorisation (fetches the app-token).

use serde::Deserialize;

use crate::connector::Secret;

/// Kingdee credentials and endpoint.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KingdeeConfig {
    /// The API gateway's base URL.
    #[serde(default = "default_url")]
    pub url: String,
    /// The developer app's client id (`X-Api-ClientID`).
    pub client_id: String,
    /// The developer app's client secret: signs every request.
    pub client_secret: Secret,
    /// The tenant's app key (from the authorisation).
    pub app_key: String,
    /// The tenant's app secret: signs the token request (`app_signature`).
    pub app_secret: Secret,
    /// The tenant's domain (`X-GW-Router-Addr`).
    pub domain: String,
    /// The tenant's authorisation of the app (`outerInstanceId`). The tenant's `app_secret`
    /// rotates every 24 hours; with this set, Ferry pulls the current one (`push_app_authorize`)
    /// when the old one is refused, instead of stopping until a person updates `app_secret`.
    #[serde(default)]
    pub outer_instance_id: Option<String>,
}

fn default_url() -> String {
    super::wire::GATEWAY_URL.to_owned()
}
