//! Integration schemes: loading a scheme file, checking it against the API catalogs, and the
//! checked `Scheme` the engine runs. Problems come back as `file:line:col: message` diagnostics.

pub mod config;
mod diagnostic;

use std::collections::HashSet;
use std::path::Path;

use jiff::SignedDuration;
use jiff::civil::DateTime;

use crate::catalog::{self, ApiCatalog};
use crate::error::{Classified, Domain, RetryHint};
use crate::mapping::{EnvLookup, Mapper};
pub use config::{SchemeConfig, Spanned};
pub use diagnostic::{Diagnostic, Severity, Sink};

/// Reads scheme `env` variables from the process environment.
pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// The checked window rules of a scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowRules {
    /// The longest window one request covers.
    pub max_span: SignedDuration,
    /// How far before the cursor each run starts again.
    pub lookback: SignedDuration,
    /// How far behind now a window must end.
    pub settle_delay: SignedDuration,
    /// Where the first run starts (Beijing time), if configured.
    pub start: Option<DateTime>,
    /// How often the scheme is polled.
    pub interval: SignedDuration,
}

/// The checked push rules of a scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushRules {
    /// What a change after sync does.
    pub on_change: config::OnChange,
    /// Target calls per minute, if limited.
    pub rate_limit: Option<u32>,
    /// Documents pushed at once.
    pub concurrency: usize,
}

/// A scheme that passed every check, with its mapping compiled.
pub struct Scheme {
    /// The file it came from, as given.
    pub file: String,
    /// The file as written.
    pub config: SchemeConfig,
    /// What the source API answers.
    pub source_api: &'static ApiCatalog,
    /// What the target API takes.
    pub target_api: &'static ApiCatalog,
    /// The window rules.
    pub window: WindowRules,
    /// The push rules.
    pub push: PushRules,
    /// The compiled mapping.
    pub mapper: Mapper,
    /// Warnings found while checking (the scheme runs regardless).
    pub warnings: Vec<Diagnostic>,
}

impl std::fmt::Debug for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheme")
            .field("id", &self.id())
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl Scheme {
    /// The scheme's stable id.
    pub fn id(&self) -> &str {
        &self.config.id.value
    }

    /// Loads and checks a scheme file, reading `env` variables from the process environment.
    pub fn load_file(path: &Path) -> Result<Scheme, SchemeError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SchemeError {
            file: name.clone(),
            diagnostics: vec![Diagnostic::error(
                0,
                0,
                format!("cannot read the file: {e}"),
            )],
        })?;
        Scheme::load_str(&name, &text, &process_env)
    }

    /// Loads and checks a scheme from text; `file` names it in diagnostics.
    pub fn load_str(file: &str, text: &str, env: EnvLookup<'_>) -> Result<Scheme, SchemeError> {
        let config: SchemeConfig = serde_saphyr::from_str(text).map_err(|e| SchemeError {
            file: file.to_owned(),
            diagnostics: vec![Diagnostic::from_yaml(&e, text)],
        })?;
        let mut sink = Sink::default();
        let source_api = check_source(&config, &mut sink);
        let target_api = check_target(&config, &mut sink);
        let window = check_window(&config, source_api, &mut sink);
        let push = check_push(&config, &mut sink);
        check_identity(&config, &mut sink);
        let mapper = Mapper::compile(&config, source_api, target_api, env, &mut sink);
        let (errors, warnings) = sink.finish();
        match (errors.is_empty(), source_api, target_api, window, mapper) {
            (true, Some(source_api), Some(target_api), Some(window), Some(mapper)) => Ok(Scheme {
                file: file.to_owned(),
                config,
                source_api,
                target_api,
                window,
                push,
                mapper,
                warnings,
            }),
            _ => {
                let mut diagnostics = errors;
                diagnostics.extend(warnings);
                diagnostics.sort_by_key(|d| (d.line, d.column));
                Err(SchemeError {
                    file: file.to_owned(),
                    diagnostics,
                })
            }
        }
    }
}

/// Where scheme `id` stands among `ids`, or an error naming the schemes `owner` runs ("this
/// configuration", "this deployment"): what every command and handler answers for a mistyped id.
pub fn scheme_position<'a>(
    ids: impl Iterator<Item = &'a str> + Clone,
    id: &str,
    owner: &str,
) -> Result<usize, String> {
    ids.clone().position(|known| known == id).ok_or_else(|| {
        format!(
            "unknown scheme '{id}': {owner} runs {}",
            ids.collect::<Vec<_>>().join(", ")
        )
    })
}

/// A scheme file that cannot run, with every problem found in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeError {
    /// The file, as given.
    pub file: String,
    /// Every problem, errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl std::fmt::Display for SchemeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", d.display(&self.file))?;
        }
        Ok(())
    }
}

impl std::error::Error for SchemeError {}

impl Classified for SchemeError {
    fn domain(&self) -> Domain {
        Domain::User
    }
    fn retry_hint(&self) -> RetryHint {
        RetryHint::Never
    }
}

fn at<T>(spanned: &Spanned<T>) -> (u64, u64) {
    (spanned.referenced.line(), spanned.referenced.column())
}

fn check_identity(config: &SchemeConfig, sink: &mut Sink) {
    let id = &config.id.value;
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.starts_with('-');
    if !valid {
        let (line, col) = at(&config.id);
        sink.error(
            line,
            col,
            format!(
                "id '{id}' must be 1 to 64 lowercase letters, digits or '-', not starting with '-'"
            ),
        );
    }
    for (name, var) in &config.variables {
        let (line, col) = at(var);
        if !is_identifier(name) {
            sink.error(
                line,
                col,
                format!("variable name '{name}' must be a plain identifier (letters, digits, '_')"),
            );
        }
        let v = &var.value;
        match (&v.value, &v.env, &v.default) {
            (Some(_), None, None) | (None, Some(_), _) => {}
            (None, None, _) => sink.error(
                line,
                col,
                format!("variable '{name}' needs a `value` or an `env`"),
            ),
            (Some(_), Some(_), _) => sink.error(
                line,
                col,
                format!("variable '{name}' has both `value` and `env`: keep one"),
            ),
            (Some(_), None, Some(_)) => sink.error(
                line,
                col,
                format!("variable '{name}' has a `default` without `env`"),
            ),
        }
    }
    for (name, map) in &config.value_maps {
        if !is_identifier(name) {
            let (line, col) = at(map);
            sink.error(
                line,
                col,
                format!(
                    "value map name '{name}' must be a plain identifier (letters, digits, '_')"
                ),
            );
        }
    }
}

/// Whether `name` can be written after a dot in an expression.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_source(config: &SchemeConfig, sink: &mut Sink) -> Option<&'static ApiCatalog> {
    let source = &config.source;
    let connector = source.connector.value.name();
    let Some(api) = catalog::find(connector, &source.api.value) else {
        let (line, col) = at(&source.api);
        sink.error(
            line,
            col,
            format!(
                "unknown {connector} API '{}'; known: {}",
                source.api.value,
                catalog::apis_of(connector).join(", ")
            ),
        );
        return None;
    };
    for (name, field) in [("key", &source.key), ("version", &source.version)] {
        if !api.has_field(&field.value) || field.value.contains('.') {
            let (line, col) = at(field);
            sink.error(
                line,
                col,
                format!(
                    "{name} '{}' is not a top-level field of {}",
                    field.value, api.api
                ),
            );
        }
    }
    for field in &source.lookup_keys {
        if !api.request_params.contains_key(&field.value) {
            let (line, col) = at(field);
            sink.error(
                line,
                col,
                format!(
                    "lookup key '{}' is not a request parameter of {}",
                    field.value, api.api
                ),
            );
        }
    }
    if let Some(size) = &source.page_size
        && !(1..=100).contains(&size.value)
    {
        let (line, col) = at(size);
        sink.error(
            line,
            col,
            format!("page_size {} is out of range 1..=100", size.value),
        );
    }
    let mut seen = HashSet::new();
    for (name, value) in &source.params {
        let (line, col) = at(value);
        if !api.request_params.contains_key(name) {
            sink.error(
                line,
                col,
                format!("'{name}' is not a request parameter of {}", api.api),
            );
        }
        seen.insert(name.as_str());
    }
    // A stock-out filtered by status is read by ship time unless `is_by_modified=1` (erp-apis.md §1.3):
    // edits made after shipping would then never be seen again.
    if api.api == "wdt.stockout.order.query.trade"
        && source.version.value == "modified"
        && source
            .params
            .get("is_by_modified")
            .is_none_or(|v| v.value.to_text() != "1")
    {
        let (line, col) = at(&source.api);
        sink.warning(
            line,
            col,
            "without is_by_modified: 1 this API filters on the ship time, so edits after shipping are missed".into(),
        );
    }
    Some(api)
}

fn check_target(config: &SchemeConfig, sink: &mut Sink) -> Option<&'static ApiCatalog> {
    let target = &config.target;
    let connector = target.connector.value.name();
    let api = catalog::find(connector, &target.api.value);
    if api.is_none() {
        let (line, col) = at(&target.api);
        sink.error(
            line,
            col,
            format!(
                "unknown {connector} API '{}'; known: {}",
                target.api.value,
                catalog::apis_of(connector).join(", ")
            ),
        );
    }
    api
}

fn check_window(
    config: &SchemeConfig,
    api: Option<&ApiCatalog>,
    sink: &mut Sink,
) -> Option<WindowRules> {
    let window = &config.source.window;
    let mut duration =
        |field: &str, value: &Spanned<String>| match crate::time::parse_duration(&value.value) {
            Ok(d) => Some(d),
            Err(e) => {
                let (line, col) = at(value);
                sink.error(line, col, format!("window.{field}: {e}"));
                None
            }
        };
    let max_span = duration("max_span", &window.max_span);
    let lookback = duration("lookback", &window.lookback);
    let settle_delay = duration("settle_delay", &window.settle_delay);
    let interval = match &window.interval {
        Some(text) => duration("interval", text),
        None => Some(SignedDuration::from_mins(5)),
    };
    if let (Some(span), Some(limit)) = (max_span, api.and_then(|a| a.max_window.as_deref())) {
        let limit_duration = crate::time::parse_duration(limit).expect("catalog windows are valid");
        let (line, col) = at(&window.max_span);
        if span > limit_duration {
            sink.error(
                line,
                col,
                format!(
                    "window.max_span {} exceeds the {limit} that {} allows",
                    window.max_span.value, config.source.api.value
                ),
            );
        } else if span.is_zero() {
            sink.error(line, col, "window.max_span must be longer than zero".into());
        }
    }
    let start = match &window.start {
        None => None,
        Some(text) => match crate::time::parse_source_datetime(&text.value) {
            Ok(t) => Some(t),
            Err(e) => {
                let (line, col) = at(text);
                sink.error(line, col, format!("window.start: {e}"));
                return None;
            }
        },
    };
    Some(WindowRules {
        max_span: max_span?,
        lookback: lookback?,
        settle_delay: settle_delay?,
        start,
        interval: interval?,
    })
}

fn check_push(config: &SchemeConfig, sink: &mut Sink) -> PushRules {
    let target = &config.target;
    if let Some(rate) = &target.rate_limit
        && rate.value == 0
    {
        let (line, col) = at(rate);
        sink.error(
            line,
            col,
            "rate_limit must be at least 1 call a minute".into(),
        );
    }
    if let Some(n) = &target.concurrency
        && !(1..=64).contains(&n.value)
    {
        let (line, col) = at(n);
        sink.error(
            line,
            col,
            format!("concurrency {} is out of range 1..=64", n.value),
        );
    }
    PushRules {
        on_change: target.on_change,
        rate_limit: target.rate_limit.as_ref().map(|r| r.value),
        concurrency: target.concurrency.as_ref().map_or(8, |n| n.value as usize),
    }
}
