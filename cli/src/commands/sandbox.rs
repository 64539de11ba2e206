//! `ferry sandbox`: the local stand-ins of WDT, Kingdee and Yonyou, standalone, until Ctrl-C or SIGTERM.

use std::io::Write;

use ferry_sandbox::{RateLimits, Sandbox, SandboxConfig};

use crate::context::{async_runtime, wait_for_stop};
use crate::error::{Blame, CliError};

/// Options of `ferry sandbox`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the URLs and credentials as one JSON object on the first line.
    #[arg(long)]
    json: bool,
    /// Orders in the data set (and as many stock-outs), 10 to 1,000,000.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(10..=1_000_000))]
    orders: u64,
    /// Seed of the data set.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Enforce the vendors' real per-minute limits (WDT 60, Kingdee 500, Yonyou 60) instead of
    /// limits sized for demos.
    #[arg(long)]
    real_limits: bool,
    /// Fraction of the documents a WDT query serves that are edited right after (page drift).
    #[arg(long, default_value_t = 0.0)]
    drift: f64,
    /// The answers to the questions the vendors' documents leave open, as JSON, for example
    /// '{"kingdee_left_out": "kept", "wdt_later_total": "minus_one"}' (docs/sandbox.md lists them).
    #[arg(long, value_parser = parse_unknowns)]
    unknowns: Option<ferry_sandbox::Unknowns>,
}

fn parse_unknowns(text: &str) -> Result<ferry_sandbox::Unknowns, String> {
    serde_json::from_str(text).map_err(|e| format!("--unknowns: {e}"))
}

/// Starts the sandbox and serves until stopped.
pub fn run(args: &Args, out: &mut dyn Write, _err: &mut dyn Write) -> Result<i32, CliError> {
    let runtime = async_runtime()?;
    runtime.block_on(async {
        let config = SandboxConfig {
            seed: args.seed,
            documents: args.orders,
            drift_rate: args.drift.clamp(0.0, 1.0),
            limits: if args.real_limits {
                RateLimits::real()
            } else {
                RateLimits::demo()
            },
            unknowns: args.unknowns.unwrap_or_default(),
            ..SandboxConfig::default()
        };
        let sandbox = Sandbox::start(config)
            .await
            .map_err(|e| format!("cannot start the sandbox on 127.0.0.1: {e}"))
            .internal()?;
        print(&sandbox, args.json, out)?;
        wait_for_stop().await;
        Ok(0)
    })
}

fn print(sandbox: &Sandbox, json: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let description = sandbox.describe();
    if json {
        writeln!(out, "{description}")?;
    } else {
        writeln!(
            out,
            "Ferry sandbox: test services on 127.0.0.1 (Ctrl-C stops them)"
        )?;
        for (service, fields) in description.as_object().into_iter().flatten() {
            writeln!(out, "\n{service}")?;
            for (name, value) in fields.as_object().into_iter().flatten() {
                let value = value
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| value.to_string());
                writeln!(out, "  {name:<18} {value}")?;
            }
        }
    }
    out.flush()
}
