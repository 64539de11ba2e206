//! The schemes that ship with Ferry, compiled into the CLI so `ferry demo` and `ferry run` can name
//! them by id. A deployment on AWS runs a scheme folder instead (`FERRY_SCHEME_DIR`).

use crate::scheme::{Scheme, SchemeError};

/// (file name, YAML text) of every bundled scheme, from the repository's `schemes/` folder.
pub const SCHEMES: &[(&str, &str)] = &[
    (
        "schemes/wdt-trades-to-kingdee.yaml",
        include_str!("../../schemes/wdt-trades-to-kingdee.yaml"),
    ),
    (
        "schemes/wdt-stockouts-to-yonyou.yaml",
        include_str!("../../schemes/wdt-stockouts-to-yonyou.yaml"),
    ),
];

/// Loads and checks every bundled scheme, with `vars` for their variables.
pub fn load_all(vars: crate::mapping::EnvLookup<'_>) -> Result<Vec<Scheme>, SchemeError> {
    SCHEMES
        .iter()
        .map(|(name, text)| Scheme::load_str(name, text, vars))
        .collect()
}

/// One line describing a loaded scheme, for start-up logs.
pub fn describe(scheme: &Scheme) -> String {
    format!(
        "scheme {} ({}): {} {} via {:?} -> {} {}, windows of at most {}, files version {}",
        scheme.id(),
        scheme.config.name,
        scheme.source_api.connector,
        scheme.source_api.api,
        scheme.config.source.transport,
        scheme.target_api.connector,
        scheme.target_api.api,
        scheme.config.source.window.max_span.value,
        scheme.version,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_scheme_loads_with_a_unique_id() {
        let schemes = load_all(&|_| Some("X".into())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(schemes.len(), SCHEMES.len());
        let mut ids: Vec<&str> = schemes.iter().map(|s| s.id()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids, ["wdt-stockouts-to-yonyou", "wdt-trades-to-kingdee"]);
        assert_eq!(
            describe(&schemes[0]),
            "scheme wdt-trades-to-kingdee (旺店通订单 → 金蝶云星辰销售订单): wdt wdt.trade.query via Qimen \
             -> kingdee jdy/sal/sal_order_save, windows of at most 60m, files version "
                .to_owned()
                + &schemes[0].version
        );
    }
}
