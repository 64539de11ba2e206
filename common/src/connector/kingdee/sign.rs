//! Kingdee API gateway 2.0 signing (shared/specs/erp-apis.md §2.1): `app_signature` for the token,
//! and `X-Api-Signature` over method, path, double-encoded query, nonce and timestamp.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub use crate::connector::encode;

/// Base64 of the lowercase hex of HMAC-SHA256(key, message): the shape of both Kingdee signatures.
fn base64_hex_hmac(key: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(message.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    STANDARD.encode(hex)
}

/// `app_signature` of the token request: Base64(hex(HMAC-SHA256(app_secret, app_key))).
pub fn app_signature(app_key: &str, app_secret: &str) -> String {
    base64_hex_hmac(app_secret, app_key)
}

/// The string to sign: method, encoded path, the query sorted with keys and values encoded twice,
/// the nonce and the timestamp, each line ending in `\n`.
pub fn string_to_sign(
    method: &str,
    path: &str,
    query: &[(String, String)],
    nonce: &str,
    timestamp: &str,
) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (encode(&encode(k)), encode(&encode(v))))
        .collect();
    pairs.sort();
    let query: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{}\n{}\n{}\nx-api-nonce:{nonce}\nx-api-timestamp:{timestamp}\n",
        method.to_ascii_uppercase(),
        encode(path),
        query.join("&")
    )
}

/// `X-Api-Signature`: Base64(hex(HMAC-SHA256(client_secret, string to sign))).
pub fn signature(client_secret: &str, string_to_sign: &str) -> String {
    base64_hex_hmac(client_secret, string_to_sign)
}
