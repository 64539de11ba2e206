//! API catalogs: what each source API answers and what each target API takes, as data files kept
//! beside this module (one YAML file per API, from shared/seeds/ and shared/specs/erp-apis.md).
//! `ferry check` verifies schemes against them; the mapper reads the target's envelope and required fields.

use std::sync::OnceLock;

use indexmap::IndexMap;
use serde::Deserialize;

/// Whether an API is read from (source) or written to (target).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A query API that Ferry polls.
    Source,
    /// A save API that Ferry pushes to.
    Target,
}

/// The JSON type of one field.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// A scalar (WDT and the seeds type every scalar as a string).
    String,
    /// An array of objects; its fields are listed as `array.field`.
    Array,
}

/// One field of an API's documents.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldInfo {
    /// Scalar or array.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// The vendor's name for it (Chinese).
    pub title: String,
}

/// Everything Ferry knows about one API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiCatalog {
    /// Connector name: `wdt`, `kingdee` or `yonyou`.
    pub connector: String,
    /// The API's method or path as the vendor names it.
    pub api: String,
    /// The vendor's title.
    pub title: String,
    /// Source or target.
    pub role: Role,
    /// Source only: the key of the document list in a response.
    #[serde(default)]
    pub list_key: Option<String>,
    /// Source only: the longest time window one request may ask for.
    #[serde(default)]
    pub max_window: Option<String>,
    /// Target only: the key the body is wrapped in (`data` for Yonyou).
    #[serde(default)]
    pub envelope: Option<String>,
    /// Target only: the body field (inside the envelope) that carries an idempotency key. Ferry
    /// sets it on every write, from the write's own content, so a retry repeats the first success
    /// and a later update is never mistaken for it; a scheme does not map it.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Target only: dotted paths (`lines.field` for line fields) the API requires.
    #[serde(default)]
    pub required: Vec<String>,
    /// Source only: the request parameters the API accepts.
    #[serde(default)]
    pub request_params: IndexMap<String, String>,
    /// Every field of a document, nested ones as `array.field`.
    pub fields: IndexMap<String, FieldInfo>,
}

impl ApiCatalog {
    /// Whether `path` (dotted, `goods_list.spec_no` for a line field) is a field of this API.
    pub fn has_field(&self, path: &str) -> bool {
        self.fields.contains_key(path)
    }

    /// Whether `path` names an array of objects.
    pub fn is_array(&self, path: &str) -> bool {
        self.fields
            .get(path)
            .is_some_and(|f| f.kind == FieldType::Array)
    }

    /// Whether the API requires `path`.
    pub fn requires(&self, path: &str) -> bool {
        self.required.iter().any(|r| r == path)
    }
}

const FILES: &[(&str, &str)] = &[
    ("wdt.trade.query.yaml", include_str!("wdt.trade.query.yaml")),
    (
        "wdt.stockout.order.query.trade.yaml",
        include_str!("wdt.stockout.order.query.trade.yaml"),
    ),
    (
        "kingdee.sal_order_save.yaml",
        include_str!("kingdee.sal_order_save.yaml"),
    ),
    (
        "yonyou.singleSave.yaml",
        include_str!("yonyou.singleSave.yaml"),
    ),
];

/// Every API Ferry knows.
pub fn all() -> &'static [ApiCatalog] {
    static CATALOGS: OnceLock<Vec<ApiCatalog>> = OnceLock::new();
    CATALOGS.get_or_init(|| {
        FILES
            .iter()
            .map(|(name, text)| {
                serde_saphyr::from_str(text)
                    .unwrap_or_else(|e| panic!("built-in catalog {name} is invalid: {e}"))
            })
            .collect()
    })
}

/// The catalog of `api` on `connector`, if Ferry knows it.
pub fn find(connector: &str, api: &str) -> Option<&'static ApiCatalog> {
    all()
        .iter()
        .find(|c| c.connector == connector && c.api == api)
}

/// The APIs known for a connector, for "did you mean" messages.
pub fn apis_of(connector: &str) -> Vec<&'static str> {
    all()
        .iter()
        .filter(|c| c.connector == connector)
        .map(|c| c.api.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_catalogs_load_and_cover_the_seed_apis() {
        let trades = find("wdt", "wdt.trade.query").unwrap();
        assert_eq!(trades.role, Role::Source);
        assert!(trades.has_field("goods_list.spec_no"));
        assert!(trades.is_array("goods_list"));
        assert!(trades.request_params.contains_key("start_time"));
        let stockouts = find("wdt", "wdt.stockout.order.query.trade").unwrap();
        assert!(stockouts.has_field("details_list.position_list.position_no"));
        assert!(stockouts.request_params.contains_key("is_by_modified"));
        let yonyou = find("yonyou", "/yonbip/sd/voucherorder/singleSave").unwrap();
        assert_eq!(yonyou.envelope.as_deref(), Some("data"));
        assert!(yonyou.requires("orderDetails.orderDetailPrices!natSum"));
        for required in &yonyou.required {
            assert!(
                yonyou.has_field(required),
                "required {required} is not a listed field"
            );
        }
        let kingdee = find("kingdee", "jdy/sal/sal_order_save").unwrap();
        assert!(kingdee.requires("billdate"));
        assert_eq!(apis_of("wdt").len(), 2);
    }
}
