//! What `ferry run` shows while it works, through the real binary: progress lines on a
//! terminal (a pseudo-terminal from util-linux `script`), JSON log lines when stderr is a pipe,
//! and nothing but errors with `--quiet`.

use std::process::{Command, Output};

use ferry_tests::{TempDir, sandbox_run_config, spawn_sandbox};

const FERRY: &str = env!("CARGO_BIN_EXE_ferry-bin");

/// A run configuration over a fresh sandbox of `orders` orders (and as many stock-outs).
async fn config(name: &str, orders: u64) -> (ferry_sandbox::Sandbox, TempDir, String) {
    let sandbox = spawn_sandbox(orders, |_| {}).await;
    let dir = TempDir::new(name);
    let config = sandbox_run_config(&sandbox, &dir.path().join("ferry.db"));
    let path = dir.write("ferry.yaml", &config);
    (sandbox, dir, path)
}

/// Runs `command` off the async runtime, which keeps serving the sandbox meanwhile.
async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_each_scheme_shows_its_progress_line() {
    let (_sandbox, _dir, config) = config("progress-tty", 40).await;
    // `script` runs the command on a pseudo-terminal and copies what it drew to stdout.
    let mut command = Command::new("script");
    command
        .args([
            "-qfec",
            &format!("{FERRY} run {config} --once"),
            "/dev/null",
        ])
        .env("TERM", "xterm-256color");
    let out = output(command).await;
    let drawn = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{drawn}");
    for scheme in ["wdt-trades-to-kingdee", "wdt-stockouts-to-yonyou"] {
        assert!(drawn.contains(scheme), "{drawn}");
    }
    // The lines move through the run: pages, pushes, and where each scheme ended.
    for step in ["window ", "pushed", "caught up to"] {
        assert!(drawn.contains(step), "'{step}' was never drawn: {drawn}");
    }
    // No JSON log lines on a terminal: they are for collectors.
    assert!(!drawn.contains("{\"timestamp\""), "{drawn}");
}

#[tokio::test(flavor = "multi_thread")]
async fn off_a_terminal_the_run_logs_json_lines() {
    let (_sandbox, _dir, config) = config("progress-json", 40).await;
    let mut command = Command::new(FERRY);
    command.args(["run", &config, "--once"]);
    let out = output(command).await;
    assert!(out.status.success(), "{out:?}");
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let said = |message: &str, scheme: &str| {
        events
            .iter()
            .any(|e| e["message"] == message && e["scheme"] == scheme)
    };
    for scheme in ["wdt-trades-to-kingdee", "wdt-stockouts-to-yonyou"] {
        assert!(said("page queued", scheme), "{events:?}");
        assert!(said("caught up", scheme), "{events:?}");
    }
    let caught_up = events
        .iter()
        .find(|e| e["message"] == "caught up" && e["scheme"] == "wdt-trades-to-kingdee")
        .unwrap();
    assert_eq!(caught_up["pushed"], 40, "{caught_up}");
    // The summaries still go to stdout, for people and scripts.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn quiet_prints_nothing_when_all_goes_well() {
    let (_sandbox, _dir, config) = config("progress-quiet", 20).await;
    let mut command = Command::new(FERRY);
    command.args(["run", &config, "--once", "--quiet"]);
    let out = output(command).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b""[..], &b""[..]),
        "{out:?}"
    );
}
