//! The mapping engine: compiles a scheme's configured values (MiniJinja expressions) once, then turns
//! each source document into the exact body the target API takes, envelope included.
//!
//! Configured values come in four shapes, classified at compile time so that evaluation per document
//! does as little as possible: constants (and expressions over scheme variables only, folded once),
//! plain field paths such as `{{ doc.trade_no }}` (read straight from the document), general
//! expressions, and text with embedded `{{ }}` (rendered as a template). Line fields that read only
//! the header are evaluated once per document, not once per line.

mod compile;
pub mod functions;
mod projection;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Object, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Expression};
use serde_json::Map;

use crate::error::{Classified, Domain, RetryHint};
pub use compile::EnvLookup;
pub use projection::Projection;

/// Where a plain field path starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Root {
    Doc,
    Line,
    Calc,
}

/// One compiled configured value.
enum Eval<'env> {
    /// Known at compile time.
    Const(Value),
    /// `root.a.b`: read without the expression machinery.
    Path(Root, Box<[String]>),
    /// A general expression.
    Expr(Expression<'env, 'static>),
    /// Text with embedded expressions, stored in the environment under this name.
    Template(String),
    /// `maps.NAME(root.a.b)`: a value-map look-up of a field, done without the expression machinery.
    MapLookup {
        map: String,
        root: Root,
        path: Box<[String]>,
    },
}

/// One target field.
struct FieldProgram<'env> {
    /// The target key, e.g. `orderDetailPrices!natSum`.
    name: String,
    eval: Eval<'env>,
    /// The target API requires it: an empty result fails the document.
    required: bool,
    /// Line fields only: reads nothing of the line, so it is computed once per document.
    per_document: bool,
}

/// Fields evaluated together. Their general expressions are also compiled into one list expression
/// (`[(e1), (e2), ...]`) so the VM runs once for all of them; only when that fails are they run one
/// by one, to say which field failed.
struct FieldGroup<'env> {
    fields: Vec<FieldProgram<'env>>,
    fused: Option<Fused<'env>>,
}

/// The fused expression of a group and the fields (by index) whose values it lists, in order.
struct Fused<'env> {
    expr: Expression<'env, 'static>,
    /// The fused source, `[(e1), (e2), ...]`.
    source: String,
    members: Vec<usize>,
}

/// One target array built from a source array.
struct LinesProgram<'env> {
    name: String,
    from: String,
    filter: Option<Eval<'env>>,
    /// `[(e1), ...] if (filter) else none`: the filter and the fused fields in one run of the VM. A list
    /// means the line is kept, anything else that it is left out. Only for arrays without calcs.
    filtered_fields: Option<Expression<'env, 'static>>,
    calc: Vec<(String, Eval<'env>)>,
    fields: FieldGroup<'env>,
    required: bool,
}

/// Everything compiled from one scheme, borrowing the environment that owns the functions.
struct Program<'env> {
    header: FieldGroup<'env>,
    lines: Vec<LinesProgram<'env>>,
    params: Vec<(String, Eval<'env>)>,
    /// Header fields read `lines.NAME`, so the built lines are exposed to them.
    header_reads_lines: bool,
    /// Header fields that read no document field but its version (`doc.modified`).
    version_only: Vec<String>,
}

self_cell::self_cell!(
    struct Compiled {
        owner: Environment<'static>,
        #[covariant]
        dependent: Program,
    }
);

/// A scheme's compiled mapping. Cheap to share: evaluation takes `&self`.
pub struct Mapper {
    compiled: Compiled,
    /// The value maps (also the `maps` global of the environment).
    maps: Arc<functions::ValueMaps>,
    key_field: String,
    version_field: String,
    lookup_fields: Vec<String>,
    envelope: Option<String>,
    projection: Projection,
}

impl fmt::Debug for Mapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapper")
            .field("key_field", &self.key_field)
            .finish_non_exhaustive()
    }
}

/// The variables a source request parameter may use, for one page of one window.
#[derive(Clone, Debug)]
pub struct PageRequest {
    /// Window start, Beijing time `YYYY-MM-DD HH:MM:SS` (`{{ LAST_SYNC_TIME }}`).
    pub window_start: String,
    /// Window end, inclusive (`{{ CURRENT_TIME }}`).
    pub window_end: String,
    /// Documents per page (`{{ PAGINATION_PAGE_SIZE }}`).
    pub page_size: u32,
    /// The 0-based page (`{{ PAGINATION_START_PAGE }}`).
    pub page_no: u32,
}

/// The values in scope while one field is evaluated.
#[derive(Clone, Debug, Default)]
struct Scope {
    doc: Value,
    line: Value,
    calc: Value,
    lines: Value,
}

impl Object for Scope {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let value = match key {
            "doc" => &self.doc,
            "line" => &self.line,
            "calc" => &self.calc,
            "lines" => &self.lines,
            // Anything else (vars, maps, functions) comes from the environment's globals.
            _ => return None,
        };
        (!value.is_undefined()).then(|| value.clone())
    }
}

/// Why one field of one document could not be mapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The target field, e.g. `material_entity[2].qty` (lines counted from 0).
    pub path: String,
    /// What went wrong.
    pub reason: String,
}

/// A document that could not be mapped, with every failed field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentError {
    /// The source key field and its value, e.g. `trade_id=1001` (`<missing>` if absent).
    pub key: String,
    /// Every field that failed.
    pub fields: Vec<FieldError>,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "document {}: ", self.key)?;
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "field {}: {}", field.path, field.reason)?;
        }
        Ok(())
    }
}

impl std::error::Error for DocumentError {}

impl Classified for DocumentError {
    fn domain(&self) -> Domain {
        Domain::User
    }
    fn retry_hint(&self) -> RetryHint {
        RetryHint::Never
    }
}

/// Parses one whole source document (JSON text) into the values expressions read.
pub fn parse_document(text: &str) -> Result<Value, serde_json::Error> {
    Projection::everything().parse(text)
}

/// A top-level field of a document as text; `None` when absent or null.
fn field_text(doc: &Value, field: &str) -> Option<String> {
    let value = doc.get_attr(field).ok()?;
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => None,
        _ => Some(functions::text_of(&value)),
    }
}

/// A MiniJinja error as one readable sentence, without the engine's location suffix.
fn describe(error: &Error) -> String {
    match (error.kind(), error.detail()) {
        (ErrorKind::InvalidOperation, Some(detail)) => detail.to_owned(),
        (kind, Some(detail)) => format!("{kind}: {detail}"),
        (kind, None) => kind.to_string(),
    }
}

/// Converts an expression result to JSON; `None` means "no value" (the field is left out).
fn to_json(value: &Value) -> Result<Option<serde_json::Value>, String> {
    Ok(Some(match value.kind() {
        ValueKind::Undefined | ValueKind::None => return Ok(None),
        ValueKind::Bool => serde_json::Value::Bool(value.is_true()),
        ValueKind::String => {
            serde_json::Value::String(value.as_str().unwrap_or_default().to_owned())
        }
        ValueKind::Number => match value.as_i64() {
            Some(i) => serde_json::Value::from(i),
            None => {
                let f = f64::try_from(value.clone()).map_err(|e| describe(&e))?;
                serde_json::Number::from_f64(f)
                    .map(serde_json::Value::Number)
                    .ok_or_else(|| format!("{value} is not a finite number"))?
            }
        },
        _ => serde_json::to_value(value).map_err(|e| e.to_string())?,
    }))
}

fn is_empty(value: &serde_json::Value) -> bool {
    matches!(value, serde_json::Value::String(s) if s.trim().is_empty())
}

/// Reads `root.a.b` from the scope; a missing step gives undefined.
fn read_path(scope: &Scope, root: Root, path: &[String]) -> Result<Value, Error> {
    let mut value = match root {
        Root::Doc => scope.doc.clone(),
        Root::Line => scope.line.clone(),
        Root::Calc => scope.calc.clone(),
    };
    for segment in path {
        if value.is_undefined() || value.is_none() {
            return Ok(Value::UNDEFINED);
        }
        value = value.get_attr(segment)?;
    }
    Ok(value)
}

/// Where field failures go, and how a field's name becomes its path in the body.
struct Failures<'a> {
    prefix: &'a dyn Fn(&str) -> String,
    errors: &'a mut Vec<FieldError>,
}

impl Failures<'_> {
    fn push(&mut self, name: &str, reason: String) {
        self.errors.push(FieldError {
            path: (self.prefix)(name),
            reason,
        });
    }
}

/// Stores one field's result in `out`, or records why it failed. Empty values are left out,
/// unless the target requires the field.
fn record(
    field: &FieldProgram<'_>,
    value: Result<Value, Error>,
    out: &mut Map<String, serde_json::Value>,
    failures: &mut Failures<'_>,
) {
    match value.map_err(|e| describe(&e)).and_then(|v| to_json(&v)) {
        Ok(Some(value)) if !(field.required && is_empty(&value)) => {
            out.insert(field.name.clone(), value);
        }
        Ok(_) if field.required => failures.push(
            &field.name,
            "required by the target API, but the value is empty (is its source field missing?)"
                .into(),
        ),
        Ok(_) => {}
        Err(reason) => failures.push(&field.name, reason),
    }
}

impl Mapper {
    fn program(&self) -> &Program<'_> {
        self.compiled.borrow_dependent()
    }

    fn env(&self) -> &Environment<'static> {
        self.compiled.borrow_owner()
    }

    /// Parses a source document, keeping only the fields this mapping reads (much faster than
    /// `parse_document` on wide documents; the result maps identically).
    pub fn parse(&self, text: &str) -> Result<Value, serde_json::Error> {
        self.projection.parse(text)
    }

    /// The source fields this mapping reads.
    pub fn projection(&self) -> &Projection {
        &self.projection
    }

    /// The source field whose value identifies a document.
    pub fn key_field(&self) -> &str {
        &self.key_field
    }

    /// The document's stable key, as text, if it has one.
    pub fn document_key(&self, doc: &Value) -> Option<String> {
        field_text(doc, &self.key_field)
    }

    /// The document's version (the scheme's `version` field, `modified`), as text, if it has one.
    /// The projection keeps it, so documents parsed with [`Mapper::parse`] carry it.
    pub fn document_version(&self, doc: &Value) -> Option<String> {
        field_text(doc, &self.version_field)
    }

    /// The first of the scheme's `lookup_keys` the document has a value for (the projection keeps
    /// them): the value a re-fetch of this one document asks the source for.
    pub fn document_lookup(&self, doc: &Value) -> Option<String> {
        self.lookup_fields
            .iter()
            .find_map(|field| field_text(doc, field))
    }

    fn key_label(&self, doc: &Value) -> String {
        format!(
            "{}={}",
            self.key_field,
            self.document_key(doc).as_deref().unwrap_or("<missing>")
        )
    }

    fn eval(
        &self,
        eval: &Eval<'_>,
        scope: &Scope,
        scope_value: &mut Option<Value>,
    ) -> Result<Value, Error> {
        match eval {
            Eval::Const(value) => Ok(value.clone()),
            Eval::Path(root, path) => read_path(scope, *root, path),
            Eval::MapLookup { map, root, path } => {
                self.maps.lookup(map, &read_path(scope, *root, path)?)
            }
            Eval::Expr(expr) => {
                let ctx = scope_value.get_or_insert_with(|| Value::from_object(scope.clone()));
                expr.eval(ctx.clone())
            }
            Eval::Template(name) => {
                let ctx = scope_value.get_or_insert_with(|| Value::from_object(scope.clone()));
                self.env()
                    .get_template(name)?
                    .render(ctx.clone())
                    .map(Value::from)
            }
        }
    }

    /// Evaluates a group's fields into `out`, recording failures under `prefix`. With `shared`,
    /// fields computed once per document are copied from it instead of being evaluated again.
    fn eval_group(
        &self,
        group: &FieldGroup<'_>,
        scope: &Scope,
        shared: Option<&Map<String, serde_json::Value>>,
        precomputed: Option<Value>,
        out: &mut Map<String, serde_json::Value>,
        failures: &mut Failures<'_>,
    ) {
        let mut scope_value = None;
        let mut fused_values: Vec<Option<Value>> = Vec::new();
        if let Some(fused) = &group.fused {
            let list = precomputed.map(Ok).unwrap_or_else(|| {
                let ctx = scope_value
                    .get_or_insert_with(|| Value::from_object(scope.clone()))
                    .clone();
                fused.expr.eval(ctx)
            });
            if let Ok(list) = list {
                fused_values.resize(group.fields.len(), None);
                for (position, &index) in fused.members.iter().enumerate() {
                    fused_values[index] = list.get_item_by_index(position).ok();
                }
            }
        }
        for (index, field) in group.fields.iter().enumerate() {
            if let (true, Some(shared)) = (field.per_document, shared) {
                if let Some(value) = shared.get(&field.name) {
                    out.insert(field.name.clone(), value.clone());
                }
                continue;
            }
            let value = match fused_values.get_mut(index).and_then(Option::take) {
                Some(value) => Ok(value),
                None => self.eval(&field.eval, scope, &mut scope_value),
            };
            record(field, value, out, failures);
        }
    }

    /// The header fields derived from the document's version alone: they change with every edit,
    /// so the change check leaves them out.
    pub fn version_only_fields(&self) -> &[String] {
        &self.program().version_only
    }

    /// The header fields of a mapped body: inside its envelope (`data` for Yonyou), if any.
    pub fn header<'a>(
        &self,
        body: &'a serde_json::Value,
    ) -> Option<&'a Map<String, serde_json::Value>> {
        match &self.envelope {
            Some(envelope) => body.get(envelope),
            None => Some(body),
        }
        .and_then(serde_json::Value::as_object)
    }

    /// [`Mapper::header`], to change.
    pub fn header_mut<'a>(
        &self,
        body: &'a mut serde_json::Value,
    ) -> Option<&'a mut Map<String, serde_json::Value>> {
        match &self.envelope {
            Some(envelope) => body.get_mut(envelope),
            None => Some(body),
        }
        .and_then(serde_json::Value::as_object_mut)
    }

    /// Maps one source document to the request body of the target API (envelope included).
    pub fn map(&self, doc: &Value) -> Result<serde_json::Value, DocumentError> {
        let program = self.program();
        let mut errors = Vec::new();
        let mut built_lines = Map::new();
        for lines in &program.lines {
            let built = self.map_lines(lines, doc, &mut errors);
            built_lines.insert(lines.name.clone(), serde_json::Value::Array(built));
        }
        let scope = Scope {
            doc: doc.clone(),
            lines: if program.header_reads_lines {
                Value::from(minijinja::value::Serde(&built_lines))
            } else {
                Value::UNDEFINED
            },
            ..Scope::default()
        };
        let mut body = Map::with_capacity(program.header.fields.len() + built_lines.len());
        let mut failures = Failures {
            prefix: &|name| name.to_owned(),
            errors: &mut errors,
        };
        self.eval_group(
            &program.header,
            &scope,
            None,
            None,
            &mut body,
            &mut failures,
        );
        body.extend(built_lines);
        if !errors.is_empty() {
            return Err(DocumentError {
                key: self.key_label(doc),
                fields: errors,
            });
        }
        let body = serde_json::Value::Object(body);
        Ok(match &self.envelope {
            Some(key) => serde_json::json!({ key: body }),
            None => body,
        })
    }

    fn map_lines(
        &self,
        lines: &LinesProgram<'_>,
        doc: &Value,
        errors: &mut Vec<FieldError>,
    ) -> Vec<serde_json::Value> {
        let source = doc.get_attr(&lines.from).unwrap_or(Value::UNDEFINED);
        let items: Vec<Value> = match source.kind() {
            ValueKind::Undefined | ValueKind::None => Vec::new(),
            ValueKind::Seq | ValueKind::Iterable => {
                source.try_iter().map(Iterator::collect).unwrap_or_default()
            }
            kind => {
                errors.push(FieldError {
                    path: lines.name.clone(),
                    reason: format!("source field {} should be a list, found {kind}", lines.from),
                });
                return Vec::new();
            }
        };

        // Fields that read only the header: once per document.
        let header_scope = Scope {
            doc: doc.clone(),
            ..Scope::default()
        };
        let mut shared = Map::new();
        let shared_errors_at = errors.len();
        let shared_path = |name: &str| format!("{}[*].{name}", lines.name);
        let mut failures = Failures {
            prefix: &shared_path,
            errors,
        };
        for field in lines.fields.fields.iter().filter(|f| f.per_document) {
            record(
                field,
                self.eval(&field.eval, &header_scope, &mut None),
                &mut shared,
                &mut failures,
            );
        }
        let shared_failed = errors.len() > shared_errors_at;

        let mut built = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let path = |name: &str| format!("{}[{index}].{name}", lines.name);
            let mut scope = Scope {
                doc: doc.clone(),
                line: item,
                ..Scope::default()
            };
            let mut precomputed = None;
            let fast = lines
                .filtered_fields
                .as_ref()
                .map(|expr| expr.eval(Value::from_object(scope.clone())));
            match fast {
                Some(Ok(list)) if list.kind() == ValueKind::Seq => precomputed = Some(list),
                Some(Ok(_)) => continue,
                // Failed: run the filter and the fields one by one below, to say which one failed.
                Some(Err(_)) | None => {
                    if let Some(filter) = &lines.filter {
                        match self.eval(filter, &scope, &mut None) {
                            Ok(keep) if !keep.is_true() => continue,
                            Ok(_) => {}
                            Err(e) => {
                                errors.push(FieldError {
                                    path: format!("{}[{index}] (filter)", lines.name),
                                    reason: describe(&e),
                                });
                                continue;
                            }
                        }
                    }
                }
            }
            if !lines.calc.is_empty() {
                let mut calc: Vec<(Value, Value)> = Vec::with_capacity(lines.calc.len());
                for (name, eval) in &lines.calc {
                    scope.calc = Value::from_pairs(calc.iter().cloned());
                    match self.eval(eval, &scope, &mut None) {
                        Ok(value) => calc.push((Value::from(name.as_str()), value)),
                        Err(e) => {
                            errors.push(FieldError {
                                path: path(&format!("(calc {name})")),
                                reason: describe(&e),
                            });
                            calc.push((Value::from(name.as_str()), Value::UNDEFINED));
                        }
                    }
                }
                scope.calc = Value::from_pairs(calc);
            }
            let mut out = Map::with_capacity(lines.fields.fields.len());
            let mut failures = Failures {
                prefix: &path,
                errors,
            };
            self.eval_group(
                &lines.fields,
                &scope,
                Some(&shared),
                precomputed,
                &mut out,
                &mut failures,
            );
            if !shared_failed {
                built.push(serde_json::Value::Object(out));
            }
        }
        if built.is_empty() && lines.required && errors.is_empty() {
            errors.push(FieldError {
                path: lines.name.clone(),
                reason: format!(
                    "required by the target API, but no line of {} was kept",
                    lines.from
                ),
            });
        }
        built
    }

    /// The request parameters of one page, rendered from the scheme's configured values.
    pub fn render_params(&self, page: &PageRequest) -> Result<Vec<(String, String)>, FieldError> {
        let ctx = Value::from_pairs([
            ("LAST_SYNC_TIME", Value::from(page.window_start.as_str())),
            ("CURRENT_TIME", Value::from(page.window_end.as_str())),
            ("PAGINATION_PAGE_SIZE", Value::from(page.page_size)),
            ("PAGINATION_START_PAGE", Value::from(page.page_no)),
        ]);
        let mut out = Vec::with_capacity(self.program().params.len());
        for (name, eval) in &self.program().params {
            let value = match eval {
                Eval::Const(v) => Ok(v.clone()),
                Eval::Expr(expr) => expr.eval(ctx.clone()),
                Eval::Template(t) => self
                    .env()
                    .get_template(t)
                    .and_then(|t| t.render(ctx.clone()))
                    .map(Value::from),
                Eval::Path(..) | Eval::MapLookup { .. } => {
                    unreachable!("parameters never read documents")
                }
            }
            .map_err(|e| FieldError {
                path: format!("source.params.{name}"),
                reason: describe(&e),
            })?;
            if value.is_undefined() || value.is_none() {
                continue;
            }
            out.push((name.clone(), functions::text_of(&value)));
        }
        Ok(out)
    }
}
