//! The Yonyou token signature (docs/apis.md §3): URL-encoded Base64 of the raw
//! HMAC-SHA256 digest of `appKey<key>timestamp<ms>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub use crate::connector::encode;

/// Base64 of HMAC-SHA256(app_secret, "appKey" + app_key + "timestamp" + timestamp), not yet encoded.
pub fn raw_signature(app_key: &str, timestamp_ms: &str, app_secret: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("appKey{app_key}timestamp{timestamp_ms}").as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The `signature` parameter as it goes on the URL: the raw signature URL-encoded once.
pub fn signature(app_key: &str, timestamp_ms: &str, app_secret: &str) -> String {
    encode(&raw_signature(app_key, timestamp_ms, app_secret))
}
