//! Diagnostics: one problem in a scheme file, located by line and column.

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The scheme cannot run.
    Error,
    /// The scheme runs, but probably not as meant.
    Warning,
}

/// One problem at a place in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// 1-based line; 0 when the problem concerns the whole file.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
    /// What is wrong, naming the field.
    pub message: String,
    /// The file it is in, when not the scheme file itself (a value map's entries file).
    pub file: Option<String>,
}

impl Diagnostic {
    /// An error at a place.
    pub fn error(line: u64, column: u64, message: String) -> Self {
        Diagnostic {
            severity: Severity::Error,
            line,
            column,
            message,
            file: None,
        }
    }

    /// Converts a YAML or schema error from the parser, keeping its location; `text` is the file,
    /// quoted when the parser's message does not show the offending value.
    pub(crate) fn from_yaml(error: &serde_saphyr::Error, text: &str) -> Self {
        let (line, column) = error
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let message = error.without_snippet().to_string();
        // The parser appends its own "at line L column C"; the prefix already says where.
        let message = match message.rfind(" at line ") {
            Some(cut) => message.get(..cut).unwrap_or_default().to_owned(),
            None => message,
        };
        let message = match message.strip_prefix("invalid ") {
            // The parser says only "invalid u32": show what it found there.
            Some(kind) if !kind.contains(' ') => {
                let found = text
                    .lines()
                    .nth(line.saturating_sub(1) as usize)
                    .map(|l| {
                        l.chars()
                            .skip(column.saturating_sub(1) as usize)
                            .collect::<String>()
                    })
                    .map(|rest| {
                        rest.split(" #")
                            .next()
                            .unwrap_or_default()
                            .trim()
                            .to_owned()
                    })
                    .unwrap_or_default();
                let expected = match kind {
                    "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number",
                    "i8" | "i16" | "i32" | "i64" => "an integer",
                    "f32" | "f64" => "a number",
                    "bool" => "true or false",
                    other => other,
                };
                format!("expected {expected}, found `{found}`")
            }
            _ => message,
        };
        Diagnostic::error(line, column, message)
    }

    /// The order diagnostics are shown in: the scheme file's first, then each other file's, each
    /// by line and column.
    pub fn file_order(a: &Diagnostic, b: &Diagnostic) -> std::cmp::Ordering {
        (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column))
    }

    /// `file:line:col: message`, with `warning: ` before a warning's message.
    pub fn display(&self, file: &str) -> String {
        let file = self.file.as_deref().unwrap_or(file);
        let tag = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        format!(
            "{file}:{}:{}: {tag}{}",
            self.line, self.column, self.message
        )
    }
}

/// Collects diagnostics while a scheme is checked.
#[derive(Default, Debug)]
pub struct Sink {
    items: Vec<Diagnostic>,
}

impl Sink {
    /// Records an error.
    pub fn error(&mut self, line: u64, column: u64, message: String) {
        self.items.push(Diagnostic::error(line, column, message));
    }

    /// Records a warning.
    pub fn warning(&mut self, line: u64, column: u64, message: String) {
        self.items.push(Diagnostic {
            severity: Severity::Warning,
            line,
            column,
            message,
            file: None,
        });
    }

    /// Records a problem found in another file than the scheme's (`file:line`).
    pub fn push_in(&mut self, file: &str, mut diagnostic: Diagnostic) {
        diagnostic.file = Some(file.to_owned());
        self.items.push(diagnostic);
    }

    /// How many errors so far.
    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Splits into (errors, warnings), each in file order.
    pub fn finish(mut self) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
        self.items.sort_by(Diagnostic::file_order);
        self.items
            .into_iter()
            .partition(|d| d.severity == Severity::Error)
    }
}
