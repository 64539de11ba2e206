//! What the CLI's test binaries share: a standalone `ferry sandbox` child process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// A running `ferry sandbox`, killed even when an assertion fails.
pub struct Running(std::process::Child);

impl Running {
    /// Whether the process is still running.
    #[allow(
        dead_code,
        reason = "each test binary compiles this module; not all of them ask"
    )]
    pub fn is_running(&mut self) -> bool {
        self.0
            .try_wait()
            .expect("the child can be polled")
            .is_none()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `ferry sandbox --json` with `args` and reads its first line: URLs, credentials and data.
pub fn spawn_sandbox(args: &[&str]) -> (Running, serde_json::Value) {
    let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["sandbox", "--json"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("ferry runs");
    let mut running = Running(child);
    let mut first = String::new();
    BufReader::new(running.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let info = serde_json::from_str(&first).expect("the first line is JSON");
    (running, info)
}
