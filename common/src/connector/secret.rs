//! A credential that cannot leak by accident: no `Display`, a redacted `Debug`, read only through
//! [`Secret::expose`] at the one place that signs with it.

use std::fmt;

use serde::Deserialize;

/// A password, app secret or token. `Debug` prints `Secret(***)`; there is no `Display`.
///
/// In configuration files a secret is written either as the value itself or as `{ env: NAME }`,
/// which reads the environment variable `NAME` when the file is loaded (so the file can be
/// committed without the credential).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

#[derive(Deserialize)]
#[serde(untagged)]
enum SecretSource {
    Value(String),
    Env { env: String },
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match SecretSource::deserialize(deserializer) {
            Ok(SecretSource::Value(value)) => Ok(Secret(value)),
            Ok(SecretSource::Env { env }) => match std::env::var(&env) {
                Ok(value) if !value.is_empty() => Ok(Secret(value)),
                _ => Err(serde::de::Error::custom(format!(
                    "the environment variable {env} (named for a secret) is not set"
                ))),
            },
            Err(_) => Err(serde::de::Error::custom(
                "a secret is a string, or { env: VARIABLE } to read it from the environment",
            )),
        }
    }
}

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
