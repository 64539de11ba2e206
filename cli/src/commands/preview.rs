//! `ferry preview`: maps a file of source documents and prints one target body per document.
//! A document that fails is reported with its line and key; the others still print.

use std::io::Write;
use std::path::{Path, PathBuf};

use ferry_common::Scheme;
use ferry_common::mapping::parse_document;
use minijinja::value::{Value, ValueKind};

use crate::context::{load_scheme, parse_var};
use crate::error::{Blame, CliError, EXIT_PROBLEMS};

/// The documents of a file that is one JSON value: one document, an API response (its document
/// list, at the top or under `response`) or a JSON array.
fn listed(scheme: &Scheme, whole: Value) -> Vec<Value> {
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
    match (list, whole.kind()) {
        (Some(list), _) => list.try_iter().map(Iterator::collect).unwrap_or_default(),
        (None, ValueKind::Seq) => whole.try_iter().map(Iterator::collect).unwrap_or_default(),
        _ => vec![whole],
    }
}

/// Where the bodies go and what became of the documents so far.
struct Printer<'a> {
    scheme: &'a Scheme,
    file: &'a str,
    /// Buffered: a file of JSON Lines prints one body per line, and an unbuffered standard output
    /// would make each line a system call of its own.
    out: std::io::BufWriter<&'a mut dyn Write>,
    err: &'a mut dyn Write,
    total: usize,
    failed: usize,
}

impl Printer<'_> {
    /// Maps one parsed document (found on `line`) and prints its body, or says why it failed.
    fn map(&mut self, line: usize, doc: &Value, pretty: bool) -> std::io::Result<()> {
        self.total += 1;
        let file = self.file;
        if doc.kind() != ValueKind::Map {
            self.failed += 1;
            return writeln!(
                self.err,
                "{file}:{line}: expected a JSON object (one document), found {}",
                doc.kind()
            );
        }
        match self.scheme.mapper.map(doc) {
            Ok(body) if pretty => writeln!(self.out, "{body:#}"),
            Ok(body) => {
                serde_json::to_writer(&mut self.out, &body)?;
                self.out.write_all(b"\n")
            }
            Err(e) => {
                self.failed += 1;
                writeln!(self.err, "{file}:{line}: {e}")
            }
        }
    }

    /// A line of JSON Lines that is not a JSON document.
    fn unreadable(&mut self, line: usize, e: &serde_json::Error) -> std::io::Result<()> {
        self.total += 1;
        self.failed += 1;
        writeln!(self.err, "{}:{line}: not a JSON document: {e}", self.file)
    }
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
    let mut printer = Printer {
        scheme,
        file: &file,
        out: std::io::BufWriter::with_capacity(1 << 16, out),
        err,
        total: 0,
        failed: 0,
    };
    if let Ok(whole) = parse_document(&text) {
        let docs = listed(scheme, whole);
        let pretty = docs.len() == 1 && !compact;
        for doc in &docs {
            printer.map(1, doc, pretty)?;
        }
    } else {
        // JSON Lines, each mapped and printed as it is read: no list of parsed documents is kept.
        // (A file of one line parses whole, above.)
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match scheme.mapper.parse(line) {
                Ok(doc) => printer.map(index + 1, &doc, false)?,
                Err(e) => printer.unreadable(index + 1, &e)?,
            }
        }
    }
    printer.out.flush()?;
    let Printer {
        total, failed, err, ..
    } = printer;
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
