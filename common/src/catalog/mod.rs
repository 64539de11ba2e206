//! API catalogs: what each source API answers and what each target API takes, as data files (one
//! YAML file per API). The built-in ones are kept beside this module; a scheme folder's `catalog/`
//! adds more, so a further API of a family Ferry speaks is a data file. `ferry check` verifies
//! schemes against them; the mapper reads a target's envelope and required fields, and the target
//! connectors read its [`TargetSpec`]: where to save, how to find a bill, how an update is addressed.

use std::path::Path;
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
    /// Target only: how the connector's client writes and finds this API's bills.
    #[serde(default)]
    pub target: Option<TargetSpec>,
}

/// How a target API writes and finds bills: what a connector's client needs beyond the fields.
/// `protocol` and `update` name behaviour a client implements; the other values are data, so a
/// further save API of a family a client serves needs a catalog file only.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// The client family that speaks this API (`kingdee-gateway`, `yonyou-openapi`).
    pub protocol: String,
    /// How an update addresses an existing bill's lines: `entry-ids` (the header `id`, each
    /// existing line with its id, a new line without one) or `line-status` (every line marked
    /// `Update`, `Insert` or `Delete`).
    pub update: String,
    /// The save's HTTP path (create, and modify when the bill is named).
    pub save: String,
    /// The body field (inside the envelope) holding the bill number a person searches for.
    pub number: String,
    /// The body's line list.
    pub lines: String,
    /// The path answering one bill with its line ids, by number or id.
    pub detail: String,
    /// The path listing bills by exact number, telling "none" from a failure.
    pub list: String,
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
    (
        "kingdee.v2.sal_order.yaml",
        include_str!("kingdee.v2.sal_order.yaml"),
    ),
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

/// A set of API descriptions: the built-in ones, plus those of a scheme folder's `catalog/`.
#[derive(Clone, Debug)]
pub struct Catalog {
    apis: Vec<&'static ApiCatalog>,
}

impl Catalog {
    /// The APIs built into Ferry.
    pub fn builtin() -> &'static Catalog {
        static BUILTIN: OnceLock<Catalog> = OnceLock::new();
        BUILTIN.get_or_init(|| Catalog {
            apis: FILES
                .iter()
                .map(|(name, text)| {
                    let api: ApiCatalog = serde_saphyr::from_str(text)
                        .unwrap_or_else(|e| panic!("built-in catalog {name} is invalid: {e}"));
                    &*Box::leak(Box::new(api))
                })
                .collect(),
        })
    }

    /// The built-in APIs plus every `*.yaml` file in `dir` (a scheme folder's `catalog/`); a file
    /// describing an API already known replaces it. An unreadable or invalid file is an error
    /// naming it, with the line. The descriptions live as long as the process (a process loads its
    /// schemes once).
    pub fn with_folder(dir: &Path) -> Result<Catalog, String> {
        let mut catalog = Catalog::builtin().clone();
        for path in yaml_files(dir)? {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("{}: cannot read the file: {e}", path.display()))?;
            let api: ApiCatalog = serde_saphyr::from_str(&text).map_err(|e| {
                let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
                format!(
                    "{}:{line}:{column}: {}",
                    path.display(),
                    e.without_snippet()
                )
            })?;
            let api: &'static ApiCatalog = Box::leak(Box::new(api));
            catalog
                .apis
                .retain(|known| !(known.connector == api.connector && known.api == api.api));
            catalog.apis.push(api);
        }
        Ok(catalog)
    }

    /// The description of `api` on `connector`, if known.
    pub fn find(&self, connector: &str, api: &str) -> Option<&'static ApiCatalog> {
        self.apis
            .iter()
            .copied()
            .find(|c| c.connector == connector && c.api == api)
    }

    /// The APIs known for a connector, for "did you mean" messages.
    pub fn apis_of(&self, connector: &str) -> Vec<&'static str> {
        self.apis
            .iter()
            .filter(|c| c.connector == connector)
            .map(|c| c.api.as_str())
            .collect()
    }
}

/// The `*.yaml` and `*.yml` files directly in `dir`, sorted by name; none when `dir` is missing.
pub fn yaml_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{}: cannot list it: {e}", dir.display()))?;
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_file()
                && path
                    .extension()
                    .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The built-in description of `api` on `connector`, if Ferry knows it.
pub fn find(connector: &str, api: &str) -> Option<&'static ApiCatalog> {
    Catalog::builtin().find(connector, api)
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
        assert_eq!(Catalog::builtin().apis_of("wdt").len(), 2);
        let v2 = find("kingdee", "jdy/v2/scm/sal_order").unwrap();
        let spec = v2.target.as_ref().unwrap();
        assert_eq!(
            (spec.save.as_str(), spec.number.as_str()),
            ("/jdy/v2/scm/sal_order", "bill_no")
        );
        for target in [kingdee, yonyou, v2] {
            let spec = target.target.as_ref().unwrap();
            assert!(target.is_array(&spec.lines), "{}: lines", target.api);
            assert!(target.has_field(&spec.number), "{}: number", target.api);
        }
    }
}
