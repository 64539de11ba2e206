//! A credential that cannot leak by accident: no `Display`, a redacted `Debug`, read only through
//! [`Secret::expose`] at the one place that signs with it.

use std::fmt;

use serde::Deserialize;

/// A password, app secret or token. `Debug` prints `Secret(***)`; there is no `Display`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself: only for computing a signature or filling a request.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the credential is empty (not configured).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}
