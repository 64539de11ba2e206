//! Value-map entries kept in a data file beside the scheme (`entries_file:`), the way consultants
//! keep them in spreadsheets: CSV whose header row is `key,value`, or a YAML mapping. Every problem
//! (a bad row, an empty key or value, a key given twice) is reported as `file:line`.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use super::config::{Scalar, Spanned};
use super::diagnostic::Diagnostic;

/// What an entries file holds: its entries and where each key is, or every problem in it.
pub(crate) struct Entries {
    /// Source code → target code, in file order.
    pub(crate) entries: IndexMap<String, Scalar>,
    /// The file's bytes, for the scheme's version.
    pub(crate) bytes: Vec<u8>,
    /// Problems, each at its line (the entries are unusable when there is any).
    pub(crate) problems: Vec<Diagnostic>,
}

/// Reads `path`: `.csv` as CSV, anything else as YAML.
pub(crate) fn read(path: &Path) -> Entries {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            return Entries {
                entries: IndexMap::new(),
                bytes: Vec::new(),
                problems: vec![Diagnostic::error(
                    0,
                    0,
                    format!("cannot read the file: {e}"),
                )],
            };
        }
    };
    let is_csv = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
    let mut collected = Collected::default();
    if is_csv {
        read_csv(&bytes, &mut collected);
    } else {
        read_yaml(&bytes, &mut collected);
    }
    Entries {
        entries: collected.entries,
        bytes,
        problems: collected.problems,
    }
}

#[derive(Default)]
struct Collected {
    entries: IndexMap<String, Scalar>,
    lines: HashMap<String, u64>,
    problems: Vec<Diagnostic>,
}

impl Collected {
    fn add(&mut self, key: String, value: Scalar, line: u64, column: u64) {
        if key.is_empty() {
            self.problems
                .push(Diagnostic::error(line, column, "the key is empty".into()));
            return;
        }
        if value.to_text().trim().is_empty() {
            self.problems.push(Diagnostic::error(
                line,
                column,
                format!("key '{key}' has an empty value"),
            ));
            return;
        }
        if let Some(first) = self.lines.get(&key) {
            self.problems.push(Diagnostic::error(
                line,
                column,
                format!("duplicate key '{key}' (first at line {first})"),
            ));
            return;
        }
        self.lines.insert(key.clone(), line);
        self.entries.insert(key, value);
    }
}

fn read_csv(bytes: &[u8], collected: &mut Collected) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    match reader.headers() {
        Ok(header) if header.len() == 2 && &header[0] == "key" && &header[1] == "value" => {}
        Ok(header) => {
            collected.problems.push(Diagnostic::error(
                1,
                1,
                format!(
                    "the header row must be `key,value`, not `{}`",
                    header.iter().collect::<Vec<_>>().join(",")
                ),
            ));
            return;
        }
        Err(e) => {
            collected.problems.push(csv_problem(&e, 1));
            return;
        }
    }
    for record in reader.records() {
        match record {
            Ok(record) => {
                let line = record.position().map_or(0, csv::Position::line);
                if record.len() == 1 && record[0].is_empty() {
                    continue; // a blank line
                }
                if record.len() != 2 {
                    collected.problems.push(Diagnostic::error(
                        line,
                        1,
                        format!("a row is `key,value`: this one has {} fields", record.len()),
                    ));
                    continue;
                }
                collected.add(
                    record[0].to_owned(),
                    Scalar::Text(record[1].to_owned()),
                    line,
                    1,
                );
            }
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                collected.problems.push(csv_problem(&e, line));
            }
        }
    }
}

fn csv_problem(error: &csv::Error, line: u64) -> Diagnostic {
    let message = match error.kind() {
        csv::ErrorKind::Utf8 { .. } => {
            "the row is not UTF-8 text: save the sheet as \"CSV UTF-8\"".to_owned()
        }
        _ => format!("unreadable CSV: {error}"),
    };
    Diagnostic::error(line, 1, message)
}

/// The pairs of a YAML mapping in file order, each with its place, duplicates kept (to report them).
struct Pairs(Vec<(Spanned<String>, Spanned<Scalar>)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of source code: target code")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Pairs(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}

fn read_yaml(bytes: &[u8], collected: &mut Collected) {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            collected.problems.push(Diagnostic::error(
                0,
                0,
                format!("the file is not UTF-8 text: {e}"),
            ));
            return;
        }
    };
    match serde_saphyr::from_str::<Pairs>(text) {
        Ok(Pairs(pairs)) => {
            for (key, value) in pairs {
                let (line, column) = (key.referenced.line(), key.referenced.column());
                collected.add(key.value, value.value, line, column);
            }
        }
        Err(e) => collected.problems.push(Diagnostic::from_yaml(&e, text)),
    }
}
