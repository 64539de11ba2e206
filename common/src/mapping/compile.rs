//! Compiling a scheme's mapping: resolves variables and value maps, compiles every configured value
//! once, and checks what each one reads (source fields, variables, maps, calcs) and what the target
//! API requires, reporting each problem at its place in the file.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};

use super::functions::{self, CompiledValueMap, ValueMaps};
use super::{
    Compiled, Eval, FieldGroup, FieldProgram, Fused, LinesProgram, Mapper, Program, Projection,
    Root, Scope, describe,
};
use crate::catalog::ApiCatalog;
use crate::scheme::config::{ConfiguredValue, Scalar, SchemeConfig, Spanned};
use crate::scheme::{Sink, is_identifier};

/// Reads an environment variable (the process environment, or a map in tests).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The variables a source request parameter may read.
const PARAM_VARIABLES: &[&str] = &[
    "LAST_SYNC_TIME",
    "CURRENT_TIME",
    "PAGINATION_PAGE_SIZE",
    "PAGINATION_START_PAGE",
];

/// MiniJinja's own global functions that make sense in a mapping.
const BUILTIN_FUNCTIONS: &[&str] = &["range", "dict", "namespace"];

/// Where a configured value sits, which decides what it may read.
#[derive(Clone, Copy)]
enum Place<'a> {
    /// A source request parameter.
    Param,
    /// A header field of the target body.
    Header,
    /// The filter of a line array reading `from`.
    Filter { from: &'a str },
    /// The n-th calc of a line array: it may read the calcs before it.
    Calc { from: &'a str, calcs: &'a [String] },
    /// A line field: it may read every calc.
    LineField { from: &'a str, calcs: &'a [String] },
}

/// What a compiled value reads.
#[derive(Default)]
struct Reads {
    line_or_calc: bool,
    lines: bool,
    document: bool,
    /// The document's top-level fields read (`doc.modified` → `modified`).
    doc_fields: Vec<String>,
    /// For general expressions: the source, to be fused with its neighbours.
    fusable: Option<String>,
}

fn at<T>(spanned: &Spanned<T>) -> (u64, u64) {
    (spanned.referenced.line(), spanned.referenced.column())
}

fn scalar_value(scalar: &Scalar) -> Value {
    match scalar {
        Scalar::Text(s) => Value::from(s.as_str()),
        Scalar::Int(i) => Value::from(*i),
        Scalar::Float(f) => Value::from(*f),
        Scalar::Bool(b) => Value::from(*b),
    }
}

/// `{{ expr }}` alone → `Some(expr)`; anything else → `None`.
fn single_expression(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") {
        return None;
    }
    Some(inner.trim_start_matches('-').trim_end_matches('-').trim())
}

fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// A field path: where it starts and the names after the dot.
type FieldPath = (Root, Box<[String]>);

/// `doc.a.b` → (Doc, [a, b]) when the expression is nothing but a field path.
fn plain_path(expr: &str) -> Option<FieldPath> {
    let mut segments = expr.split('.');
    let root = match segments.next()? {
        "doc" => Root::Doc,
        "line" => Root::Line,
        "calc" => Root::Calc,
        _ => return None,
    };
    let rest: Vec<String> = segments.map(str::to_owned).collect();
    (!rest.is_empty() && rest.iter().all(|s| is_identifier(s)))
        .then(|| (root, rest.into_boxed_slice()))
}

/// `maps.NAME(doc.a.b)` → (NAME, the path) when the expression is nothing but a look-up of a field.
fn map_lookup(expr: &str) -> Option<(&str, FieldPath)> {
    let call = expr.strip_prefix("maps.")?.strip_suffix(')')?;
    let (map, argument) = call.split_once('(')?;
    (is_identifier(map)).then_some(())?;
    Some((map, plain_path(argument.trim())?))
}

struct Checker<'a> {
    config: &'a SchemeConfig,
    source_api: Option<&'a ApiCatalog>,
    line_arrays: Vec<&'a str>,
    /// The source fields read so far.
    projection: RefCell<Projection>,
}

impl Checker<'_> {
    /// Checks the names an expression reads; reports unknown ones at `pos`.
    fn check_reads(
        &self,
        names: &HashSet<String>,
        place: Place<'_>,
        label: &str,
        pos: (u64, u64),
        sink: &mut Sink,
    ) -> Reads {
        let mut reads = Reads::default();
        let mut names: Vec<&String> = names.iter().collect();
        names.sort();
        for name in names {
            let (root, rest) = match name.split_once('.') {
                Some((root, rest)) => (root, Some(rest)),
                None => (name.as_str(), None),
            };
            let first = rest.map(|r| r.split('.').next().unwrap_or(r));
            let mut problem = None;
            match (root, place) {
                ("vars", _) => {
                    if let Some(var) = first.filter(|v| !self.config.variables.contains_key(*v)) {
                        problem = Some(format!("unknown variable vars.{var}"));
                    }
                }
                (_, Place::Param) if PARAM_VARIABLES.contains(&root) => {}
                (_, Place::Param) => {
                    problem = Some(format!(
                        "'{name}' cannot be used in a request parameter; use {} or vars.NAME",
                        PARAM_VARIABLES.join(", ")
                    ))
                }
                ("doc", _) => {
                    reads.document = true;
                    reads.doc_fields.extend(first.map(str::to_owned));
                    self.projection
                        .borrow_mut()
                        .keep(&first.into_iter().collect::<Vec<_>>());
                    if let (Some(field), Some(api)) = (first, self.source_api)
                        && !api.has_field(field)
                    {
                        problem = Some(format!(
                            "unknown source field doc.{field}: {} has no field '{field}'",
                            api.api
                        ));
                    }
                }
                (
                    "line",
                    Place::Filter { from }
                    | Place::Calc { from, .. }
                    | Place::LineField { from, .. },
                ) => {
                    reads.line_or_calc = true;
                    self.projection
                        .borrow_mut()
                        .keep_shallow(&[from])
                        .keep(&first.into_iter().collect::<Vec<_>>());
                    if let (Some(field), Some(api)) = (first, self.source_api) {
                        let path = format!("{from}.{field}");
                        if !api.has_field(&path) {
                            problem = Some(format!(
                                "unknown source field line.{field}: {} has no field '{path}'",
                                api.api
                            ));
                        }
                    }
                }
                ("calc", Place::Calc { calcs, .. } | Place::LineField { calcs, .. }) => {
                    reads.line_or_calc = true;
                    if let Some(calc) = first.filter(|c| !calcs.iter().any(|k| k == c)) {
                        problem = Some(match place {
                            Place::Calc { .. } => {
                                format!("calc.{calc} is not defined before this calc")
                            }
                            _ => format!("unknown calc.{calc}"),
                        });
                    }
                }
                ("maps", _) => {
                    if let Some(map) = first.filter(|m| !self.config.value_maps.contains_key(*m)) {
                        let known: Vec<&str> =
                            self.config.value_maps.keys().map(String::as_str).collect();
                        problem = Some(format!(
                            "unknown value map maps.{map}; defined: {}",
                            known.join(", ")
                        ));
                    }
                }
                ("lines", Place::Header) => {
                    reads.lines = true;
                    if let Some(array) = first.filter(|a| !self.line_arrays.contains(a)) {
                        problem = Some(format!("lines.{array} is not a line array of this target"));
                    }
                }
                (root, _)
                    if rest.is_none()
                        && (functions::FUNCTION_NAMES.contains(&root)
                            || BUILTIN_FUNCTIONS.contains(&root)) => {}
                ("line" | "calc", _) => {
                    problem = Some(format!("'{root}' is only available in line fields"))
                }
                ("lines", _) => problem = Some("'lines' is only available in header fields".into()),
                _ => {
                    problem = Some(format!(
                        "unknown name '{root}': use doc.FIELD, line.FIELD, calc.NAME, vars.NAME, maps.NAME(value) or a function ({})",
                        functions::FUNCTION_NAMES.join(", ")
                    ))
                }
            }
            if let Some(problem) = problem {
                sink.error(pos.0, pos.1, format!("{label}: {problem}"));
            }
        }
        reads
    }
}

/// A configured value awaiting compilation.
struct Slot<'a> {
    label: String,
    value: &'a Spanned<ConfiguredValue>,
}

impl Mapper {
    /// Compiles `config`'s mapping, reporting every problem to `sink`; `None` if any was an error.
    pub(crate) fn compile(
        config: &SchemeConfig,
        source_api: Option<&ApiCatalog>,
        target_api: Option<&ApiCatalog>,
        env_lookup: EnvLookup<'_>,
        sink: &mut Sink,
    ) -> Option<Mapper> {
        let errors_before = sink.error_count();
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::None);
        // A missing field, or a field of a missing object, is simply undefined: optional target
        // fields are then left out, and required ones report that they are empty.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        functions::register(&mut env);
        env.add_global(
            "vars",
            Value::from_pairs(resolve_variables(config, env_lookup)),
        );
        let maps = std::sync::Arc::new(compile_value_maps(config));
        env.add_global("maps", Value::from_dyn_object(maps.clone()));

        let target = &config.target;
        let checker = Checker {
            config,
            source_api,
            line_arrays: target.lines.keys().map(String::as_str).collect(),
            projection: RefCell::new(Projection::default()),
        };
        check_target_fields(config, source_api, target_api, sink);

        // Text with embedded expressions becomes a named template: it must be in the environment
        // before anything borrows it.
        let mut slots: Vec<Slot<'_>> = Vec::new();
        for (name, value) in &config.source.params {
            slots.push(Slot {
                label: format!("source.params.{name}"),
                value,
            });
        }
        for (name, value) in &target.fields.value {
            slots.push(Slot {
                label: format!("target field {name}"),
                value,
            });
        }
        for (array, lines) in &target.lines {
            for (name, value) in &lines.value.calc {
                slots.push(Slot {
                    label: format!("target field {array}[].(calc {name})"),
                    value,
                });
            }
            for (name, value) in &lines.value.fields.value {
                slots.push(Slot {
                    label: format!("target field {array}[].{name}"),
                    value,
                });
            }
        }
        for slot in &slots {
            if let Scalar::Text(text) = &slot.value.value
                && is_template(text)
                && single_expression(text).is_none()
                && let Err(e) = env.add_template_owned(slot.label.clone(), text.clone())
            {
                let (line, col) = at(slot.value);
                sink.error(line, col, format!("{}: {}", slot.label, describe(&e)));
            }
        }

        let compiled = Compiled::new(env, |env| {
            let compile = |label: &str,
                           value: &Spanned<ConfiguredValue>,
                           place: Place<'_>,
                           sink: &mut Sink| {
                compile_value(env, &checker, label, value, place, sink)
            };
            let params = config
                .source
                .params
                .iter()
                .filter_map(|(name, value)| {
                    let (eval, _) =
                        compile(&format!("source.params.{name}"), value, Place::Param, sink)?;
                    Some((name.clone(), eval))
                })
                .collect();
            let mut header_reads_lines = false;
            let mut version_only = Vec::new();
            let version_field = config.source.version.value.as_str();
            let header = target
                .fields
                .value
                .iter()
                .filter_map(|(name, value)| {
                    let (eval, reads) =
                        compile(&format!("target field {name}"), value, Place::Header, sink)?;
                    header_reads_lines |= reads.lines;
                    // A field that reads nothing of the document but its version changes with
                    // every edit and says nothing new: the change check leaves it out.
                    if !reads.doc_fields.is_empty()
                        && !reads.lines
                        && reads.doc_fields.iter().all(|f| f == version_field)
                    {
                        version_only.push(name.clone());
                    }
                    let field = FieldProgram {
                        name: name.clone(),
                        eval,
                        required: target_api.is_some_and(|api| api.requires(name)),
                        per_document: false,
                    };
                    Some((field, reads.fusable))
                })
                .collect();
            let header = fuse(env, header);
            let lines = target
                .lines
                .iter()
                .map(|(array, spanned)| {
                    let lines = &spanned.value;
                    let from = lines.from.value.as_str();
                    let filter = lines.filter.as_ref().and_then(|f| {
                        let value = Spanned {
                            value: Scalar::Text(format!("{{{{ {} }}}}", f.value)),
                            referenced: f.referenced,
                            defined: f.defined,
                        };
                        compile(
                            &format!("target field {array}[] filter"),
                            &value,
                            Place::Filter { from },
                            sink,
                        )
                    });
                    let (filter, filter_source) = match filter {
                        Some((eval, reads)) => (Some(eval), reads.fusable),
                        None => (None, None),
                    };
                    let calc_names: Vec<String> = lines.calc.keys().cloned().collect();
                    let calc = lines
                        .calc
                        .iter()
                        .enumerate()
                        .filter_map(|(i, (name, value))| {
                            let place = Place::Calc {
                                from,
                                calcs: &calc_names[..i],
                            };
                            let (eval, _) = compile(
                                &format!("target field {array}[].(calc {name})"),
                                value,
                                place,
                                sink,
                            )?;
                            Some((name.clone(), eval))
                        })
                        .collect();
                    let fields = lines
                        .fields
                        .value
                        .iter()
                        .filter_map(|(name, value)| {
                            let place = Place::LineField {
                                from,
                                calcs: &calc_names,
                            };
                            let (eval, reads) = compile(
                                &format!("target field {array}[].{name}"),
                                value,
                                place,
                                sink,
                            )?;
                            let per_document = !reads.line_or_calc;
                            let field = FieldProgram {
                                name: name.clone(),
                                eval,
                                required: target_api
                                    .is_some_and(|api| api.requires(&format!("{array}.{name}"))),
                                per_document,
                            };
                            // Per-document fields are evaluated once, apart: they stay out of the fused list.
                            Some((field, reads.fusable.filter(|_| !per_document)))
                        })
                        .collect();
                    let fields = fuse(env, fields);
                    // Calcs run between the filter and the fields, so with calcs the two stay apart.
                    let filtered_fields = match (&filter_source, &fields.fused) {
                        (Some(filter), Some(fused)) if lines.calc.is_empty() => env
                            .compile_expression_owned(format!(
                                "{} if ({filter}) else none",
                                fused.source
                            ))
                            .ok(),
                        _ => None,
                    };
                    LinesProgram {
                        name: array.clone(),
                        from: from.to_owned(),
                        filter,
                        filtered_fields,
                        calc,
                        fields,
                        required: target_api.is_some_and(|api| api.requires(array)),
                    }
                })
                .collect();
            Program {
                header,
                lines,
                params,
                header_reads_lines,
                version_only,
            }
        });
        let mut projection = checker.projection.into_inner();
        projection.keep(&[config.source.key.value.as_str()]);
        projection.keep(&[config.source.version.value.as_str()]);
        for field in &config.source.lookup_keys {
            projection.keep(&[field.value.as_str()]);
        }
        for lines in target.lines.values() {
            projection.keep_shallow(&[lines.value.from.value.as_str()]);
        }
        (sink.error_count() == errors_before).then(|| Mapper {
            compiled,
            maps,
            key_field: config.source.key.value.clone(),
            version_field: config.source.version.value.clone(),
            lookup_fields: config
                .source
                .lookup_keys
                .iter()
                .map(|k| k.value.clone())
                .collect(),
            envelope: target_api.and_then(|api| api.envelope.clone()),
            projection,
        })
    }
}

/// Groups fields, fusing the general expressions among them (`fusable` holds their sources) into one
/// list expression when there are at least two.
fn fuse<'env>(
    env: &'env Environment<'static>,
    fields: Vec<(FieldProgram<'env>, Option<String>)>,
) -> FieldGroup<'env> {
    let members: Vec<usize> = fields
        .iter()
        .enumerate()
        .filter(|(_, (_, s))| s.is_some())
        .map(|(i, _)| i)
        .collect();
    let sources: Vec<String> = fields
        .iter()
        .filter_map(|(_, s)| s.as_ref().map(|s| format!("({s})")))
        .collect();
    let source = format!("[{}]", sources.join(", "));
    let fused = (members.len() >= 2)
        .then(|| env.compile_expression_owned(source.clone()).ok())
        .flatten()
        .map(|expr| Fused {
            expr,
            source,
            members,
        });
    FieldGroup {
        fields: fields.into_iter().map(|(field, _)| field).collect(),
        fused,
    }
}

/// Compiles one configured value and checks what it reads.
fn compile_value<'env>(
    env: &'env Environment<'static>,
    checker: &Checker<'_>,
    label: &str,
    value: &Spanned<ConfiguredValue>,
    place: Place<'_>,
    sink: &mut Sink,
) -> Option<(Eval<'env>, Reads)> {
    let pos = at(value);
    let text = match &value.value {
        Scalar::Text(text) if is_template(text) => text,
        other => return Some((Eval::Const(scalar_value(other)), Reads::default())),
    };
    let Some(source) = single_expression(text) else {
        // A template registered beforehand (or refused there, already reported).
        let template = env.get_template(label).ok()?;
        let reads = checker.check_reads(
            &template.undeclared_variables(true),
            place,
            label,
            pos,
            sink,
        );
        return Some((Eval::Template(label.to_owned()), reads));
    };
    let expr = match env.compile_expression_owned(source.to_owned()) {
        Ok(expr) => expr,
        Err(e) => {
            let mut message = format!("{label}: {} in `{source}`", describe(&e));
            // The iPaaS writes `{{LAST_SYNC_TIME datetime}}`; Ferry's expressions are plain names.
            let words: Vec<&str> = source.split_whitespace().collect();
            if words.len() == 2 && PARAM_VARIABLES.contains(&words[0]) {
                message.push_str(&format!(
                    " (write {{{{ {} }}}}: the time format is fixed)",
                    words[0]
                ));
            }
            sink.error(pos.0, pos.1, message);
            return None;
        }
    };
    let names = expr.undeclared_variables(true);
    let errors_before = sink.error_count();
    let reads = checker.check_reads(&names, place, label, pos, sink);
    if sink.error_count() > errors_before {
        return None;
    }
    if let Some((root, path)) = plain_path(source) {
        return Some((Eval::Path(root, path), reads));
    }
    if let Some((map, (root, path))) = map_lookup(source) {
        return Some((
            Eval::MapLookup {
                map: map.to_owned(),
                root,
                path,
            },
            reads,
        ));
    }
    let reads_input =
        reads.document || reads.line_or_calc || reads.lines || matches!(place, Place::Param);
    // Evaluating against an empty scope folds constants and finds misspelt filters and tests,
    // which MiniJinja only resolves at run time.
    let probe = expr.eval(Value::from_object(Scope::default()));
    match probe {
        Ok(value) if !reads_input => Some((Eval::Const(value), reads)),
        Err(e)
            if !reads_input
                || matches!(
                    e.kind(),
                    ErrorKind::UnknownFilter | ErrorKind::UnknownTest | ErrorKind::UnknownFunction
                ) =>
        {
            sink.error(
                pos.0,
                pos.1,
                format!("{label}: {} in `{source}`", describe(&e)),
            );
            None
        }
        _ => Some((
            Eval::Expr(expr),
            Reads {
                fusable: Some(source.to_owned()),
                ..reads
            },
        )),
    }
}

/// Resolves scheme variables from the file and the environment.
fn resolve_variables(config: &SchemeConfig, env_lookup: EnvLookup<'_>) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (name, var) in &config.variables {
        let v = &var.value;
        let value = match (&v.value, &v.env) {
            (Some(value), _) => scalar_value(value),
            (None, Some(key)) => match (env_lookup(key), &v.default) {
                (Some(found), _) => Value::from(found),
                (None, Some(default)) => scalar_value(default),
                // Warned about, and refused at a run's start (`Scheme::require_variables`).
                (None, None) => continue,
            },
            (None, None) => continue, // reported by the identity checks
        };
        out.push((name.clone(), value));
    }
    out
}

fn compile_value_maps(config: &SchemeConfig) -> ValueMaps {
    let maps = config
        .value_maps
        .iter()
        .map(|(name, map)| {
            let entries: HashMap<String, Value> = map
                .value
                .entries
                .iter()
                .map(|(k, v)| (k.clone(), scalar_value(v)))
                .collect();
            (
                name.clone(),
                CompiledValueMap {
                    entries,
                    unmapped: map.value.unmapped,
                },
            )
        })
        .collect();
    ValueMaps { maps }
}

/// Checks target field names against the target API: required ones mapped, unknown ones flagged.
fn check_target_fields(
    config: &SchemeConfig,
    source_api: Option<&ApiCatalog>,
    target_api: Option<&ApiCatalog>,
    sink: &mut Sink,
) {
    let target = &config.target;
    if let Some(api) = source_api {
        for (array, lines) in &target.lines {
            let from = &lines.value.from;
            if !api.is_array(&from.value) {
                let (line, col) = at(from);
                sink.error(
                    line,
                    col,
                    format!(
                        "target field {array}[]: from '{}' is not an array of {}",
                        from.value, api.api
                    ),
                );
            }
        }
    }
    let Some(api) = target_api else { return };
    let (fields_line, fields_col) = at(&target.fields);
    for (name, value) in &target.fields.value {
        if !api.has_field(name) {
            let (line, col) = at(value);
            sink.warning(
                line,
                col,
                format!("target field {name} is not a known field of {}", api.api),
            );
        } else if api.is_array(name) {
            let (line, col) = at(value);
            sink.error(
                line,
                col,
                format!("target field {name} is an array: map it under target.lines"),
            );
        }
    }
    for (array, lines) in &target.lines {
        if !api.is_array(array) {
            let (line, col) = at(lines);
            sink.error(
                line,
                col,
                format!("target field {array} is not an array of {}", api.api),
            );
        }
        for (name, value) in &lines.value.fields.value {
            if !api.has_field(&format!("{array}.{name}")) {
                let (line, col) = at(value);
                sink.warning(
                    line,
                    col,
                    format!(
                        "target field {array}[].{name} is not a known field of {}",
                        api.api
                    ),
                );
            }
        }
    }
    for required in &api.required {
        let missing = match required.split_once('.') {
            None => {
                !target.fields.value.contains_key(required) && !target.lines.contains_key(required)
            }
            Some((array, field)) => target
                .lines
                .get(array)
                .is_some_and(|l| !l.value.fields.value.contains_key(field)),
        };
        if missing {
            let (line, col) = match required
                .split_once('.')
                .and_then(|(a, _)| target.lines.get(a))
            {
                Some(lines) => at(&lines.value.fields),
                None => (fields_line, fields_col),
            };
            let shown = match required.split_once('.') {
                Some((array, field)) => format!("{array}[].{field}"),
                None => required.clone(),
            };
            sink.error(
                line,
                col,
                format!(
                    "target field {shown} is required by {} but not mapped",
                    api.api
                ),
            );
        }
    }
}
