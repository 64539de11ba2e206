//! `ferry preview`: maps a file of source documents and prints one target body per document.
//! A document that fails is reported with its line and key; the others still print.

use std::io::Write;
use std::path::Path;

use ferry_common::Scheme;
use ferry_common::mapping::parse_document;
use minijinja::value::{Value, ValueKind};

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

/// Prints the body of every document in `path`; returns 1 if any document failed.
pub fn run(
    scheme: &Scheme,
    path: &Path,
    compact: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<i32> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot read {file}: {e}")))?;
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
            Ok(body) if pretty => writeln!(out, "{}", serde_json::to_string_pretty(&body)?)?,
            Ok(body) => writeln!(out, "{}", serde_json::to_string(&body)?)?,
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
    Ok(if failed > 0 { 1 } else { 0 })
}
