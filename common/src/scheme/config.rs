//! The scheme file as written: serde types for one integration scheme (集成方案) in YAML.
//! Every struct refuses unknown keys; values that later checks point at keep their source location.

use std::fmt;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
pub use serde_saphyr::Spanned;

/// One integration scheme: a source API, a field mapping, and a target API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemeConfig {
    /// Stable identifier: lowercase letters, digits and `-`. Cursors and sync records are keyed on it,
    /// so it must never change once the scheme has run.
    pub id: Spanned<String>,
    /// A human name for status pages and logs.
    pub name: String,
    /// What the scheme is for, in a sentence or two.
    #[serde(default)]
    pub description: Option<String>,
    /// Where documents come from and how to page through them.
    pub source: SourceConfig,
    /// Where documents go and how each target field is computed.
    pub target: TargetConfig,
    /// Scheme variables (org ids, currency, transaction type), read as `vars.NAME` in expressions.
    #[serde(default)]
    pub variables: IndexMap<String, Spanned<VariableConfig>>,
    /// Value maps (shop → customer, spec_no → material, ...), called as `maps.NAME(value)`.
    #[serde(default)]
    pub value_maps: IndexMap<String, Spanned<ValueMapConfig>>,
}

/// Source connectors Ferry speaks.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SourceConnector {
    /// 旺店通 enterprise edition.
    Wdt,
}

/// How the WDT connector reaches the API.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// The Qimen gateway (企业奇门): parameters in the query string, uppercase TOP md5 sign.
    Qimen,
    /// The direct openapi2 endpoints: form body, length-prefixed lowercase md5 sign.
    Openapi2,
}

/// A target connector Ferry speaks: a name the connector registry (`connector::registry`) holds,
/// checked as the scheme is read, so a scheme never names a connector nobody can build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetConnector(&'static str);

impl<'de> Deserialize<'de> for TargetConnector {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match crate::connector::registry::target(&text) {
            Some(entry) => Ok(TargetConnector(entry.name)),
            None => Err(serde::de::Error::custom(format!(
                "unknown target connector `{text}`, expected one of {}",
                crate::connector::registry::target_names()
            ))),
        }
    }
}

impl SourceConnector {
    /// The connector's name in catalogs and messages.
    pub fn name(self) -> &'static str {
        match self {
            SourceConnector::Wdt => "wdt",
        }
    }
}

impl TargetConnector {
    /// The connector's name in catalogs and messages.
    pub fn name(self) -> &'static str {
        self.0
    }
}

/// The source side of a scheme.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The source connector (`wdt`).
    pub connector: Spanned<SourceConnector>,
    /// The query API, e.g. `wdt.trade.query`.
    pub api: Spanned<String>,
    /// `qimen` or `openapi2`.
    pub transport: Transport,
    /// Request parameters with their configured values (配置值): constants, or templates over
    /// `LAST_SYNC_TIME`, `CURRENT_TIME`, `PAGINATION_PAGE_SIZE` and `PAGINATION_START_PAGE`.
    #[serde(default)]
    pub params: IndexMap<String, Spanned<ConfiguredValue>>,
    /// Documents per page requested (the API's maximum is 100).
    #[serde(default)]
    pub page_size: Option<Spanned<u32>>,
    /// The field that identifies a document for ever (`trade_id`; `stockout_id` for stock-outs,
    /// never `order_no`, which changes when the order is approved again).
    pub key: Spanned<String>,
    /// The field that changes whenever the document does (`modified`).
    pub version: Spanned<String>,
    /// Request parameters a person may use to ask for one document again (`trade_no`, `src_tid`).
    #[serde(default)]
    pub lookup_keys: Vec<Spanned<String>>,
    /// How the poller cuts time into windows.
    pub window: WindowConfig,
}

/// Window rules for polling.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// The longest window one request covers; at most what the API allows (`60m`, `30d`).
    pub max_span: Spanned<String>,
    /// How far before the cursor each run starts again, to catch late commits (`10m`).
    pub lookback: Spanned<String>,
    /// How far behind now a window must end, so the source has settled (`2m`).
    pub settle_delay: Spanned<String>,
    /// Where the first run starts, Beijing time `YYYY-MM-DD HH:MM:SS`, unless the run gives one; a
    /// scheme that never ran with neither refuses to start rather than read only its lookback.
    #[serde(default)]
    pub start: Option<Spanned<String>>,
    /// How often `ferry run` and the schedule poll the scheme (`5m` unless given).
    #[serde(default)]
    pub interval: Option<Spanned<String>>,
}

/// The target side of a scheme.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// The target connector, a name in the connector registry (`kingdee`, `yonyou`).
    pub connector: Spanned<TargetConnector>,
    /// The save API, e.g. `jdy/sal/sal_order_save`.
    pub api: Spanned<String>,
    /// Header fields: target field → configured value. Keys with `!` are flat literal JSON keys.
    pub fields: Spanned<IndexMap<String, Spanned<ConfiguredValue>>>,
    /// Target arrays built from source arrays, e.g. `material_entity` from `goods_list`.
    #[serde(default)]
    pub lines: IndexMap<String, Spanned<LinesConfig>>,
    /// What to do when a document already in the target changes at the source: `update` the target's
    /// bill (the default) or record a `conflict` for a person to settle.
    #[serde(default)]
    pub on_change: OnChange,
    /// Target calls per minute Ferry may make (the API's published limit); pushes are paced to it.
    #[serde(default)]
    pub rate_limit: Option<Spanned<u32>>,
    /// Documents pushed at once (8 unless given).
    #[serde(default)]
    pub concurrency: Option<Spanned<u32>>,
}

/// The policy for a source document that changed after it reached the target.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnChange {
    /// Save the new content over the target's bill (by its id).
    #[default]
    Update,
    /// Leave the target alone and record a conflict with both versions' hashes.
    Conflict,
}

/// A target array built from a source array, one target line per kept source line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinesConfig {
    /// The source array, e.g. `goods_list`.
    pub from: Spanned<String>,
    /// An expression over `line` and `doc`; lines for which it is false are left out.
    #[serde(default)]
    pub filter: Option<Spanned<String>>,
    /// Values computed once per line, in order, and read as `calc.NAME` by later ones and by fields.
    #[serde(default)]
    pub calc: IndexMap<String, Spanned<ConfiguredValue>>,
    /// Line fields: target field → configured value over `line`, `calc`, `doc` and `vars`.
    pub fields: Spanned<IndexMap<String, Spanned<ConfiguredValue>>>,
}

/// A scheme variable: a value in the file, or read from the environment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableConfig {
    /// The value, when it lives in the file.
    #[serde(default)]
    pub value: Option<Scalar>,
    /// The deployment variable to read it from: the process environment, a run configuration's
    /// `variables`, the template's `Variables` parameter or the credentials secret's `variables`.
    /// A run stops at start while it has no value.
    #[serde(default)]
    pub env: Option<String>,
    /// The value when `env` is not set (leave it out for anything customer-specific).
    #[serde(default)]
    pub default: Option<Scalar>,
    /// What the variable means, for the next consultant.
    #[serde(default)]
    pub description: Option<String>,
}

/// What a value map does with a value it has no entry for.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UnmappedPolicy {
    /// Send the source code unchanged (both targets accept codes as ids).
    Passthrough,
    /// Fail the document, naming the value and the map.
    Fail,
}

/// A value map: source code → target code.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueMapConfig {
    /// `passthrough` or `fail`.
    pub unmapped: UnmappedPolicy,
    /// Source code → target code.
    #[serde(default)]
    pub entries: IndexMap<String, Scalar>,
    /// More entries from a data file, relative to the scheme file: CSV whose header row is
    /// `key,value` (as a spreadsheet saves it, UTF-8), or a YAML mapping. A key may be given once.
    #[serde(default)]
    pub entries_file: Option<Spanned<String>>,
    /// What the map translates, for the next consultant.
    #[serde(default)]
    pub description: Option<String>,
}

/// A YAML scalar as written in the file.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    /// A string: a constant, or a template when it contains `{{`.
    Text(String),
    /// An integer.
    Int(i64),
    /// A number with a fraction (prefer quoted decimals for money).
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
}

impl Scalar {
    /// The scalar as text, as a value map key or a request parameter.
    pub fn to_text(&self) -> String {
        match self {
            Scalar::Text(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// A configured value (配置值) of a field or parameter: a constant, or a template when it contains `{{`.
pub type ConfiguredValue = Scalar;

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Text(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                i64::try_from(v)
                    .map(Scalar::Int)
                    .map_err(|_| E::custom("integer too large"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}
