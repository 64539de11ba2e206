//! Shared harness for Ferry's integration tests: paths, scheme loading that ignores the caller's
//! environment, an in-process `ferry` runner, and a field-by-field JSON comparison.

use std::path::{Path, PathBuf};

use ferry_common::Scheme;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// A file under `tests/golden/`.
pub fn golden(path: &str) -> PathBuf {
    workspace().join("tests/golden").join(path)
}

/// Loads a bundled scheme by file stem with every `env` variable unset, so tests see the defaults.
pub fn scheme(stem: &str) -> Scheme {
    let path = workspace().join("schemes").join(format!("{stem}.yaml"));
    let text = std::fs::read_to_string(&path).expect("bundled scheme exists");
    Scheme::load_str(&format!("schemes/{stem}.yaml"), &text, &|_| None)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Loads scheme text (a broken copy, say) named `file`, with every `env` variable unset.
pub fn load(file: &str, text: &str) -> Result<Scheme, ferry_common::SchemeError> {
    Scheme::load_str(file, text, &|_| None)
}

/// A bundled sample document (`samples/NAME`) as JSON.
pub fn sample(name: &str) -> serde_json::Value {
    let text =
        std::fs::read_to_string(workspace().join("samples").join(name)).expect("sample exists");
    serde_json::from_str(&text).expect("samples are JSON")
}

/// A fresh directory for one test, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/ferry-NAME-PID`.
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("ferry-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    /// Writes `contents` to `name` inside; returns its path as text.
    pub fn write(&self, name: &str, contents: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one `ferry` run printed.
#[derive(Debug)]
pub struct Output {
    /// The exit status.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `ferry ARGS...` in-process, from the workspace root (relative paths as in the README).
pub fn ferry(args: &[&str]) -> Output {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let mut argv = vec!["ferry".to_owned()];
    argv.extend(args.iter().map(|a| {
        let path = workspace().join(a);
        if !a.starts_with('-') && path.exists() {
            path.display().to_string()
        } else {
            (*a).to_owned()
        }
    }));
    let code = ferry_cli::run(argv, &mut stdout, &mut stderr);
    Output {
        code,
        stdout: String::from_utf8(stdout).expect("utf-8"),
        stderr: String::from_utf8(stderr)
            .expect("utf-8")
            .replace(&format!("{}/", workspace().display()), ""),
    }
}

/// Every difference between two JSON values, one line per differing path.
pub fn json_diff(expected: &serde_json::Value, actual: &serde_json::Value) -> Vec<String> {
    fn walk(
        path: &str,
        expected: &serde_json::Value,
        actual: &serde_json::Value,
        out: &mut Vec<String>,
    ) {
        use serde_json::Value::{Array, Object};
        match (expected, actual) {
            (Object(e), Object(a)) => {
                for (key, value) in e {
                    match a.get(key) {
                        Some(other) => walk(&format!("{path}.{key}"), value, other, out),
                        None => out.push(format!("{path}.{key}: missing (expected {value})")),
                    }
                }
                for key in a.keys().filter(|k| !e.contains_key(*k)) {
                    out.push(format!("{path}.{key}: unexpected {}", a[key]));
                }
            }
            (Array(e), Array(a)) => {
                if e.len() != a.len() {
                    out.push(format!("{path}: {} items, expected {}", a.len(), e.len()));
                }
                for (i, (x, y)) in e.iter().zip(a).enumerate() {
                    walk(&format!("{path}[{i}]"), x, y, out);
                }
            }
            (e, a) if e != a => out.push(format!("{path}: {a}, expected {e}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("$", expected, actual, &mut out);
    out
}
