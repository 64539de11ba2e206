//! Shared harness for Ferry's integration tests: paths, scheme loading that ignores the caller's
//! environment, an in-process `ferry` runner, and a field-by-field JSON comparison.

pub mod aws;
pub mod contract;
pub mod lambda;

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
    Scheme::load_str(
        &format!("schemes/{stem}.yaml"),
        &text,
        &ferry_sandbox::demo_variable,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Loads scheme text (a broken copy, say) named `file`, with every `env` variable unset.
pub fn load(file: &str, text: &str) -> Result<Scheme, ferry_common::SchemeError> {
    Scheme::load_str(file, text, &ferry_sandbox::demo_variable)
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

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
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

/// Client settings for tests: short timeouts and quick retries, so a faulted call costs milliseconds.
pub fn quick_http() -> ferry_common::connector::HttpSettings {
    ferry_common::connector::HttpSettings {
        timeout: std::time::Duration::from_millis(800),
        connect_timeout: std::time::Duration::from_millis(800),
        retry: ferry_common::connector::RetrySettings {
            max_attempts: 4,
            min_backoff: std::time::Duration::from_millis(5),
            max_backoff: std::time::Duration::from_millis(50),
            max_wait: std::time::Duration::from_secs(3),
        },
    }
}

/// Starts a sandbox with `documents` orders (and as many stock-outs) and otherwise default settings
/// changed by `adjust`.
pub async fn spawn_sandbox(
    documents: u64,
    adjust: impl FnOnce(&mut ferry_sandbox::SandboxConfig),
) -> ferry_sandbox::Sandbox {
    capture_logs();
    let mut config = ferry_sandbox::SandboxConfig {
        documents,
        ..Default::default()
    };
    adjust(&mut config);
    ferry_sandbox::Sandbox::start(config)
        .await
        .expect("the sandbox starts on 127.0.0.1")
}

/// Every log line written by any test in this process, at the most verbose level.
#[derive(Clone, Default)]
pub struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    /// What was logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once) a TRACE-level subscriber that writes every test's logs into one buffer, and
/// returns the buffer: the secrets test greps it.
pub fn capture_logs() -> LogBuffer {
    static LOGS: std::sync::OnceLock<LogBuffer> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    })
    .clone()
}

/// An event payload of `tests/events` (real event shapes the handlers are fed).
pub fn event(name: &str) -> serde_json::Value {
    let path = workspace().join("tests/events").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// A `ferry run` configuration for `sandbox` with its store at `store`: both bundled schemes from
/// the sandbox's first document, secrets inline (a test's temporary file, never committed).
pub fn sandbox_run_config(sandbox: &ferry_sandbox::Sandbox, store: &Path) -> String {
    let start = sandbox.source(|s| s.first_time());
    // The connectors section is the credentials secret's JSON (JSON is YAML): one description of
    // the sandbox's connectors for the embedded default and for AWS.
    format!(
        r#"store: "{store}"
schemes:
  - {{ scheme: wdt-trades-to-kingdee, start: "{start}" }}
  - {{ scheme: wdt-stockouts-to-yonyou, start: "{start}" }}
connectors: {connectors}
rate_limits: {{ kingdee: 50000, yonyou: 50000 }}
push: {{ visibility: 2s, claim_ttl: 2s, retry_min: 50ms, retry_max: 400ms, max_receives: 30 }}
"#,
        store = store.display(),
        connectors = aws::connectors_secret(sandbox),
    )
}

/// [`ferry`] from async code: the command builds its own runtime, so it runs on a blocking thread.
pub async fn ferry_async(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ferry(&refs)
    })
    .await
    .expect("ferry ran")
}

/// Asserts that no line of any text holds one of `sandbox`'s secrets, a token it issued, or one of
/// `extra`; each text is named for the failure message. Returns how many values were looked for.
pub fn assert_no_secrets(
    sandbox: &ferry_sandbox::Sandbox,
    extra: &[&str],
    texts: &[(&str, &str)],
) -> usize {
    let mut secrets: Vec<String> = sandbox
        .credentials()
        .secrets()
        .into_iter()
        .chain(extra.iter().copied())
        .map(str::to_owned)
        .collect();
    secrets.extend(sandbox.issued_tokens());
    for (what, text) in texts {
        for (n, line) in text.lines().enumerate() {
            for secret in &secrets {
                assert!(
                    !line.contains(secret.as_str()),
                    "a secret leaked into {what}, line {n}: {line}"
                );
            }
        }
    }
    secrets.len()
}
