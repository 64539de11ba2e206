//! The signatures the three services check, written from the contract (docs/apis.md)
//! and not shared with Ferry's clients: a client that signs differently from the real service is
//! refused here too.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::Sha256;

/// RFC 3986 unreserved characters stay; everything else becomes `%XX`.
const GATEWAY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn gateway_encode(text: &str) -> String {
    utf8_percent_encode(text, GATEWAY_SET).to_string()
}

fn hex(bytes: &[u8], upper: bool) -> String {
    bytes
        .iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

/// The Qimen (TOP) signature of `params` (every parameter of the query and the form, `sign` left
/// out) with `method`: `md5` wraps the sorted `key+value` concatenation in the secret; `hmac` and
/// `hmac-sha256` key an HMAC with it. Uppercase hex. `None` for a method TOP does not know.
pub(crate) fn qimen(params: &[(String, String)], secret: &str, method: &str) -> Option<String> {
    let mut sorted: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, v)| k != "sign" && !k.is_empty() && !v.is_empty())
        .collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let concat: String = sorted.iter().map(|(k, v)| format!("{k}{v}")).collect();
    Some(match method {
        "md5" => hex(&Md5::digest(format!("{secret}{concat}{secret}")), true),
        "hmac" => {
            let mut mac =
                Hmac::<Md5>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
            mac.update(concat.as_bytes());
            hex(&mac.finalize().into_bytes(), true)
        }
        "hmac-sha256" => {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
            mac.update(concat.as_bytes());
            hex(&mac.finalize().into_bytes(), true)
        }
        _ => return None,
    })
}

/// WDT openapi2: `LL-key:VVVV-value` per parameter (lengths in characters), sorted, joined by
/// `;`, the secret appended, md5, lowercase hex.
pub(crate) fn openapi2(params: &[(String, String)], secret: &str) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "sign").collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let text: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("{:02}-{k}:{:04}-{v}", k.chars().count(), v.chars().count()))
        .collect();
    hex(&Md5::digest(format!("{}{secret}", text.join(";"))), false)
}

fn base64_hex_hmac_sha256(key: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(message.as_bytes());
    STANDARD.encode(hex(&mac.finalize().into_bytes(), false))
}

/// Kingdee's `app_signature`: Base64 of the hex HMAC-SHA256 of the app key, keyed by the secret.
pub(crate) fn kingdee_app_signature(app_key: &str, app_secret: &str) -> String {
    base64_hex_hmac_sha256(app_secret, app_key)
}

/// How the official jar puts a query component into the string to sign: Java's `URLEncoder`
/// (letters, digits and `.-*_` stay, a space becomes `+`, every other byte of the UTF-8 `%XX`), then
/// the gateway's encoder over that (RFC 3986 unreserved characters stay).
fn jar_component(text: &str) -> String {
    let mut java = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                java.push(byte as char)
            }
            b' ' => java.push('+'),
            other => java.push_str(&format!("%{other:02X}")),
        }
    }
    gateway_encode(&java)
}

/// Kingdee's gateway string to sign: the method, the path encoded, the query's keys and values
/// decoded from the wire (`application/x-www-form-urlencoded`: `+` is a space) and encoded as the
/// official jar encodes them, sorted, then the nonce line and the timestamp line. A client that
/// signs another encoding than the jar's is refused, however it put the query on the wire.
pub(crate) fn kingdee_string_to_sign(
    method: &str,
    path: &str,
    raw_query: &str,
    nonce: &str,
    timestamp: &str,
) -> String {
    let decode = |part: &str| {
        percent_encoding::percent_decode_str(&part.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (jar_component(&decode(k)), jar_component(&decode(v)))
        })
        .collect();
    pairs.sort();
    let query: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{method}\n{}\n{}\nx-api-nonce:{nonce}\nx-api-timestamp:{timestamp}\n",
        gateway_encode(path),
        query.join("&")
    )
}

/// Kingdee's `X-Api-Signature`.
pub(crate) fn kingdee_signature(client_secret: &str, string_to_sign: &str) -> String {
    base64_hex_hmac_sha256(client_secret, string_to_sign)
}

/// Yonyou's token signature, not yet URL-encoded: Base64 of the raw HMAC-SHA256 digest of
/// `appKey<key>timestamp<ms>`.
pub(crate) fn yonyou_signature(app_key: &str, timestamp: &str, app_secret: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("appKey{app_key}timestamp{timestamp}").as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_contracts_vectors() {
        let qimen_params = pairs(&[
            ("app_key", "12345678"),
            ("end_time", "2024-01-01 11:59:59"),
            ("format", "json"),
            ("method", "wdt.trade.query"),
            ("page_no", "0"),
            ("page_size", "100"),
            ("sid", "test2"),
            ("sign_method", "md5"),
            ("start_time", "2024-01-01 11:00:00"),
            ("target_app_key", "21363512"),
            ("timestamp", "2024-01-01 12:00:00"),
            ("v", "2.0"),
        ]);
        assert_eq!(
            qimen(&qimen_params, "testsecret", "md5").unwrap(),
            "3B80CD88F27E4F22BE7A6A19FDEEE677"
        );
        assert!(qimen(&qimen_params, "testsecret", "sha1").is_none());
        let openapi2_params = pairs(&[
            ("appkey", "test2-xx"),
            ("page_no", "0"),
            ("end_time", "2016-08-01 13:00:00"),
            ("start_time", "2016-08-01 12:00:00"),
            ("page_size", "40"),
            ("sid", "test2"),
            ("timestamp", "1470042310"),
        ]);
        assert_eq!(
            openapi2(&openapi2_params, "12345"),
            "ad4e6fe037ea6e3ba4768317be9d1309"
        );
        assert_eq!(
            kingdee_app_signature("abc", "abc123"),
            "ZDljMTI3NGIyNTE1MTRkYzlkNjc1MDNhYjUzMzgzNWMyY2M4YTdjMzdmNmM3YTVlNDkxMTkzNjdiOTFjNzUyZQ=="
        );
        // The token request of the contract's vector, as the jar puts it on the wire.
        let text = kingdee_string_to_sign(
            "GET",
            "/jdyconnector/app_management/kingdee_auth_token",
            "app_signature=MzZlYTk0ODk4MWZlNjdiODNmNWU4YzViNzYxNGM5MTFlOGJkN2NjMzk0MTJkZGNhZGM0NzZhN2YxZDJmOTlkZA%3D%3D&app_key=bVZgAZOv1",
            "4427456950",
            "1670305063559",
        );
        assert_eq!(
            kingdee_signature("f2adcfef73369bfc4e1384677d38a0ff", &text),
            "OTFiZTliNDFiMjNkYTI3YzVhNzg4MDI4ZGU3MWY1ZTA5ZTk1NjVlNGM1YTI1ZjIxY2Y5YTA3ZGY2OGI1MGQ1MQ=="
        );
        // The jar's encodings of a space, `*` and `~`, however the query was put on the wire.
        for wire in ["a=a+b&b=x*y&c=a%7Eb", "a=a%20b&b=x%2Ay&c=a~b"] {
            let text = kingdee_string_to_sign("GET", "/p", wire, "1", "2");
            assert!(text.contains("a=a%2Bb&b=x%2Ay&c=a%257Eb"), "{text}");
        }
        assert_eq!(
            yonyou_signature(
                "41832a3d2df94989b500da6a22268747",
                "1568098531823",
                "testsecret"
            ),
            "1TKdFM6bxn501/hAsnjN54BJ80g/cR31DgoPRbW3Btk="
        );
    }
}
