//! Integration schemes: loading a scheme file, checking it against the API catalogs, and the
//! checked `Scheme` the engine runs. Problems come back as `file:line:col: message` diagnostics.

pub mod config;
mod diagnostic;
mod entries;
mod folder;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use jiff::SignedDuration;
use jiff::civil::DateTime;

use crate::catalog::{self, ApiCatalog, Catalog};
use crate::error::{Classified, Domain, RetryHint};
use crate::mapping::{EnvLookup, Mapper};
pub use config::{SchemeConfig, Spanned};
pub use diagnostic::{Diagnostic, Severity, Sink};
pub use folder::{FolderError, load_folder, load_in_folder};

/// Reads scheme `env` variables from the process environment.
pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// What schemes are checked against and where their variables' values come from.
#[derive(Clone, Copy)]
pub struct Loader<'a> {
    /// The APIs known (the built-in ones, plus a scheme folder's `catalog/`).
    pub catalog: &'a Catalog,
    /// A deployment variable's value by name (`None`: not set here).
    pub vars: EnvLookup<'a>,
}

impl Loader<'static> {
    /// The built-in catalog and the process environment.
    pub fn process() -> Loader<'static> {
        Loader {
            catalog: Catalog::builtin(),
            vars: &process_env,
        }
    }
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
    /// The version of its files: the first 12 hex digits of a SHA-256 over the scheme file and
    /// every entries file it reads, so a deployment can say which files it runs.
    pub version: String,
    /// The files it was built from: the scheme file, then its entries files.
    pub files: Vec<String>,
    /// Variables that have no value here (a run refuses to start; `ferry check` warns).
    pub missing_variables: Vec<(String, String)>,
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

    /// Refuses to run while a variable has no value, naming each and where to set it.
    pub fn require_variables(&self) -> Result<(), String> {
        if self.missing_variables.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = self
            .missing_variables
            .iter()
            .map(|(name, key)| format!("'{name}' ({key})"))
            .collect();
        Err(format!(
            "scheme {} cannot start: variable {} has no value; set it in the environment, the run \
             configuration's `variables`, the template's Variables parameter or the secret's `variables`",
            self.id(),
            names.join(", ")
        ))
    }

    /// The scheme's target description (every checked scheme's target has one).
    pub fn target_spec(&self) -> &'static crate::catalog::TargetSpec {
        self.target_api
            .target
            .as_ref()
            .expect("check_target refuses a target API without a description")
    }

    /// Loads and checks a scheme file against the built-in catalog, reading `env` variables from
    /// the process environment.
    pub fn load_file(path: &Path) -> Result<Scheme, SchemeError> {
        Scheme::load_file_with(path, &Loader::process())
    }

    /// Loads and checks a scheme file with `loader`'s catalog and variables; its entries files are
    /// read relative to it.
    pub fn load_file_with(path: &Path, loader: &Loader<'_>) -> Result<Scheme, SchemeError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SchemeError {
            file: name.clone(),
            diagnostics: vec![Diagnostic::error(
                0,
                0,
                format!("cannot read the file: {e}"),
            )],
        })?;
        Scheme::load_with(&name, &text, loader)
    }

    /// Loads and checks a scheme from text against the built-in catalog; `file` names it in
    /// diagnostics, and entries files are read relative to it.
    pub fn load_str(file: &str, text: &str, env: EnvLookup<'_>) -> Result<Scheme, SchemeError> {
        Scheme::load_with(
            file,
            text,
            &Loader {
                catalog: Catalog::builtin(),
                vars: env,
            },
        )
    }

    /// Loads and checks a scheme from text with `loader`'s catalog and variables.
    pub fn load_with(file: &str, text: &str, loader: &Loader<'_>) -> Result<Scheme, SchemeError> {
        let mut config: SchemeConfig = serde_saphyr::from_str(text).map_err(|e| SchemeError {
            file: file.to_owned(),
            diagnostics: vec![Diagnostic::from_yaml(&e, text)],
        })?;
        let mut sink = Sink::default();
        let base = Path::new(file).parent().unwrap_or(Path::new(""));
        let mut versioned = vec![(file.to_owned(), text.as_bytes().to_vec())];
        read_entries_files(&mut config, base, &mut versioned, &mut sink);
        let source_api = check_source(&config, loader.catalog, &mut sink);
        let target_api = check_target(&config, loader.catalog, &mut sink);
        let window = check_window(&config, source_api, &mut sink);
        let push = check_push(&config, &mut sink);
        check_identity(&config, &mut sink);
        let missing_variables = missing_variables(&config, loader.vars, &mut sink);
        let mapper = Mapper::compile(&config, source_api, target_api, loader.vars, &mut sink);
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
                version: version_of(&versioned),
                files: versioned.into_iter().map(|(name, _)| name).collect(),
                missing_variables,
            }),
            _ => {
                let mut diagnostics = errors;
                diagnostics.extend(warnings);
                diagnostics.sort_by(Diagnostic::file_order);
                Err(SchemeError {
                    file: file.to_owned(),
                    diagnostics,
                })
            }
        }
    }
}

/// Reads every value map's `entries_file` (relative to `base`) into its entries, each problem
/// reported at its line in that file, and notes each file for the scheme's version.
fn read_entries_files(
    config: &mut SchemeConfig,
    base: &Path,
    versioned: &mut Vec<(String, Vec<u8>)>,
    sink: &mut Sink,
) {
    for (name, map) in config.value_maps.iter_mut() {
        let Some(file) = map.value.entries_file.clone() else {
            continue;
        };
        let path: PathBuf = base.join(&file.value);
        let shown = path.display().to_string();
        let read = entries::read(&path);
        if read.problems.iter().any(|d| d.line == 0) {
            // The file itself is unreadable: say so where the scheme names it.
            let (line, col) = at(&file);
            for problem in &read.problems {
                sink.error(
                    line,
                    col,
                    format!("value map '{name}': {shown}: {}", problem.message),
                );
            }
            continue;
        }
        for problem in read.problems {
            sink.push_in(&shown, problem);
        }
        for (key, value) in read.entries {
            if map.value.entries.contains_key(&key) {
                let (line, col) = at(&file);
                sink.error(
                    line,
                    col,
                    format!("value map '{name}': key '{key}' is both in `entries` and in {shown}"),
                );
                continue;
            }
            map.value.entries.insert(key, value);
        }
        versioned.push((shown, read.bytes));
    }
}

/// The variables read from the deployment that have no value here, as (name, deployment
/// variable), each warned about: `ferry check` runs where the deployment's values are not.
fn missing_variables(
    config: &SchemeConfig,
    vars: EnvLookup<'_>,
    sink: &mut Sink,
) -> Vec<(String, String)> {
    let mut missing = Vec::new();
    for (name, var) in &config.variables {
        let v = &var.value;
        if let (None, Some(key), None) = (&v.value, &v.env, &v.default)
            && vars(key).is_none()
        {
            let (line, col) = at(var);
            sink.warning(
                line,
                col,
                format!("variable '{name}': {key} has no value here; a run stops at start until the deployment sets it"),
            );
            missing.push((name.clone(), key.clone()));
        }
    }
    missing
}

fn version_of(files: &[(String, Vec<u8>)]) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for (index, (_, bytes)) in files.iter().enumerate() {
        // The scheme file, then each entries file, by content: where the folder sits does not
        // change the version.
        hash.update((index as u64).to_le_bytes());
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    let digest = hash.finalize();
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
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

fn check_source(
    config: &SchemeConfig,
    catalog: &Catalog,
    sink: &mut Sink,
) -> Option<&'static ApiCatalog> {
    let source = &config.source;
    let connector = source.connector.value.name();
    let Some(api) = catalog.find(connector, &source.api.value) else {
        let (line, col) = at(&source.api);
        sink.error(
            line,
            col,
            format!(
                "unknown {connector} API '{}'; known: {}",
                source.api.value,
                catalog.apis_of(connector).join(", ")
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
    // A stock-out filtered by status is read by ship time unless `is_by_modified=1` (docs/apis.md §1.3):
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

fn check_target(
    config: &SchemeConfig,
    catalog: &Catalog,
    sink: &mut Sink,
) -> Option<&'static ApiCatalog> {
    let target = &config.target;
    let connector = target.connector.value.name();
    let (line, col) = at(&target.api);
    let Some(api) = catalog.find(connector, &target.api.value) else {
        sink.error(
            line,
            col,
            format!(
                "unknown {connector} API '{}'; known: {}",
                target.api.value,
                catalog.apis_of(connector).join(", ")
            ),
        );
        return None;
    };
    if api.role != catalog::Role::Target {
        sink.error(
            line,
            col,
            format!("{} is a source API, not a target", api.api),
        );
        return None;
    }
    if let Err(why) = crate::connector::registry::serves(api) {
        sink.error(line, col, why);
        return None;
    }
    Some(api)
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
