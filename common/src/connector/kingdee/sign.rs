//! Kingdee API gateway 2.0 signing (docs/apis.md §2.2): `app_signature` for the token,
//! and `X-Api-Signature` over method, path, the query as the official Java SDK encodes it, nonce and
//! timestamp.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub use crate::connector::encode;

/// `X-Api-SignHeaders` as the official Java SDK (`apigwclient` jar) sends it. The gateway reads the
/// nonce line before the timestamp line whichever order the header names them in.
pub const SIGN_HEADERS: &str = "X-Api-Nonce,X-Api-TimeStamp";

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

/// A query key or value as the jar puts it in the string to sign: Java's `URLEncoder` first (space
/// becomes `+`, `*` stays, `~` becomes `%7E`: the form encoding reqwest also sends on the wire), then
/// the gateway encoder over that. It differs from a plain double encoding only for space (`%2B`),
/// `*` (`%2A`) and `~` (`%257E`).
pub fn jar_encode(text: &str) -> String {
    let form: String = url_form(text);
    encode(&form)
}

/// `application/x-www-form-urlencoded` encoding of one component, as Java's `URLEncoder` does it.
fn url_form(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// The string to sign: method, encoded path, the query sorted with keys and values encoded as the
/// jar does, the nonce and the timestamp, each line ending in `\n`.
pub fn string_to_sign(
    method: &str,
    path: &str,
    query: &[(String, String)],
    nonce: &str,
    timestamp: &str,
) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (jar_encode(k), jar_encode(v)))
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
