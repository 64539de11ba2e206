//! URL encoding as the gateways sign it: every byte but the RFC 3986 unreserved characters
//! (`A-Z a-z 0-9 - _ . ~`) becomes `%XX` in uppercase hex (`/` → `%2F`, `=` → `%3D`).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// URL-encodes `text` once.
pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, ENCODE).to_string()
}
