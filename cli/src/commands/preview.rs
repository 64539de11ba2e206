//! `ferry preview`: maps a file of source documents and prints one target body per document.
//! A document that fails is reported with its line and key; the others still print.

use std::io::Write;
use std::path::{Path, PathBuf};

use ferry_common::Scheme;
use ferry_common::mapping::parse_document;
use minijinja::value::{Value, ValueKind};

use crate::context::{load_scheme, parse_var};
use crate::error::{Blame, CliError, EXIT_PROBLEMS};

/// One source document and the line of the file it starts on.
struct Located {
    line: usize,
    doc: Value,
}

/// Splits the file into documents: one JSON document, an API response (its document list, at the top
/// or under `response`), a JSON array, or JSON Lines. Lines that are not JSON are reported and skipped.
fn documents(
    scheme: &Scheme,
    file: &str,
    text: &str,
    err: &mut dyn Write,
) -> std::io::Result<(Vec<Located>, usize)> {
    if let Ok(whole) = parse_document(text) {
        let list_key = scheme.source_api.list_key.as_deref().unwrap_or("");
        let list = [
            whole.get_attr(list_key),
            whole
                .get_attr("response")
                .and_then(|r| r.get_attr(list_key)),
        ]
        .into_iter()
        .flatten()
        .find(|v| v.kind() == ValueKind::Seq);
        let docs: Vec<Value> = match (list, whole.kind()) {
            (Some(list), _) => list.try_iter().map(Iterator::collect).unwrap_or_default(),
            (None, ValueKind::Seq) => whole.try_iter().map(Iterator::collect).unwrap_or_default(),
            _ => vec![whole],
        };
        return Ok((
            docs.into_iter()
                .map(|doc| Located { line: 1, doc })
                .collect(),
            0,
        ));
    }
    let mut docs = Vec::new();
    let mut bad = 0;
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match scheme.mapper.parse(line) {
            Ok(doc) => docs.push(Located {
                line: index + 1,
                doc,
            }),
            Err(e) => {
                bad += 1;
                writeln!(err, "{file}:{}: not a JSON document: {e}", index + 1)?;
            }
        }
    }
    Ok((docs, bad))
}

/// Options of `ferry preview`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A scheme file, or the id of a bundled scheme (wdt-trades-to-kingdee, wdt-stockouts-to-yonyou).
    scheme: String,
    /// One source document (JSON), a source API response, or JSON Lines (one document per line).
    file: PathBuf,
    /// Print each body on one line even for a single document.
    #[arg(long)]
    compact: bool,
    /// A deployment variable the scheme reads, `NAME=VALUE` (repeatable); the process
    /// environment is read for the others.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    vars: Vec<(String, String)>,
}

/// Prints the body of every document in the file; exits 1 if any document failed.
pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<i32, CliError> {
    let lookup = |key: &str| {
        args.vars
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
            .or_else(|| std::env::var(key).ok())
    };
    let scheme = load_scheme(&args.scheme, &lookup)?;
    // A body built without a variable's value would not be the body sent.
    scheme.require_variables().user()?;
    preview(&scheme, &args.file, args.compact, out, err)
}

fn preview(
    scheme: &Scheme,
    path: &Path,
    compact: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, CliError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {file}: {e}"))
        .user()?;
    let (docs, mut failed) = documents(scheme, &file, &text, err)?;
    let pretty = docs.len() == 1 && !compact;
    let total = docs.len() + failed;
    for Located { line, doc } in &docs {
        if doc.kind() != ValueKind::Map {
            failed += 1;
            writeln!(
                err,
                "{file}:{line}: expected a JSON object (one document), found {}",
                doc.kind()
            )?;
            continue;
        }
        match scheme.mapper.map(doc) {
            Ok(body) if pretty => writeln!(out, "{body:#}")?,
            Ok(body) => writeln!(out, "{body}")?,
            Err(e) => {
                failed += 1;
                writeln!(err, "{file}:{line}: {e}")?;
            }
        }
    }
    if total != 1 || failed > 0 {
        let noun = if total == 1 { "document" } else { "documents" };
        writeln!(
            err,
            "preview: {total} {noun}, {} mapped, {failed} failed",
            total - failed
        )?;
    }
    Ok(if failed > 0 { EXIT_PROBLEMS } else { 0 })
}
