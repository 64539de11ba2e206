//! The schemes that ship with Ferry, compiled into every binary so the Lambdas need no files.

use crate::scheme::{Scheme, SchemeError};

/// (file name, YAML text) of every bundled scheme, from the repository's `schemes/` folder.
pub const SCHEMES: &[(&str, &str)] = &[
    ("schemes/wdt-trades-to-kingdee.yaml", include_str!("../../schemes/wdt-trades-to-kingdee.yaml")),
    ("schemes/wdt-stockouts-to-yonyou.yaml", include_str!("../../schemes/wdt-stockouts-to-yonyou.yaml")),
];

/// Loads and checks every bundled scheme, reading `env` variables from the process environment.
pub fn load_all() -> Result<Vec<Scheme>, SchemeError> {
    SCHEMES
        .iter()
        .map(|(name, text)| Scheme::load_str(name, text, &|key| std::env::var(key).ok()))
        .collect()
}
