//! WDT's two signatures: the Qimen gateway's TOP md5 (uppercase) and openapi2's length-prefixed md5
//! (lowercase, lengths in characters). Both take every parameter but `sign`, sorted by key.

use md5::{Digest, Md5};

/// The Qimen (TOP md5) signature: empty keys and values dropped, sorted by key (byte order),
/// `key+value` concatenated, wrapped as `secret + concat + secret`, md5, uppercase hex.
pub fn qimen(params: &[(String, String)], secret: &str) -> String {
    let mut sorted: Vec<&(String, String)> = params
        .iter()
        .filter(|(key, value)| key != "sign" && !key.is_empty() && !value.is_empty())
        .collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut hasher = Md5::new();
    hasher.update(secret.as_bytes());
    for (key, value) in sorted {
        hasher.update(key.as_bytes());
        hasher.update(value.as_bytes());
    }
    hasher.update(secret.as_bytes());
    hex(&hasher.finalize(), true)
}

/// The string openapi2 signs (before the secret is appended): `LL-key:VVVV-value` per parameter,
/// sorted by key, joined by `;`. Lengths count characters, as WDT's official SDK does.
pub fn openapi2_string(params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> =
        params.iter().filter(|(key, _)| key != "sign").collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let parts: Vec<String> = sorted
        .into_iter()
        .map(|(key, value)| {
            format!(
                "{:02}-{key}:{:04}-{value}",
                key.chars().count(),
                value.chars().count()
            )
        })
        .collect();
    parts.join(";")
}

/// The openapi2 signature: md5 of the signed string followed by the secret, lowercase hex.
pub fn openapi2(params: &[(String, String)], secret: &str) -> String {
    let mut hasher = Md5::new();
    hasher.update(openapi2_string(params).as_bytes());
    hasher.update(secret.as_bytes());
    hex(&hasher.finalize(), false)
}

fn hex(bytes: &[u8], upper: bool) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        if upper {
            let _ = write!(out, "{byte:02X}");
        } else {
            let _ = write!(out, "{byte:02x}");
        }
    }
    out
}
