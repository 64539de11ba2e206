//! `ferry console`: the web console for a configuration's schemes (docs/console.md).

use std::io::Write;
use std::net::SocketAddr;

use crate::backend::{BackendArgs, with_backend};
use crate::error::CliError;
use crate::web::{self, Options};

/// Options of `ferry console`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    backend: BackendArgs,
    /// Where to listen. Loopback unless told otherwise; any other address needs --token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The access token a browser must bring once (`?token=`), kept in a cookie; required for a
    /// non-loopback address. FERRY_CONSOLE_TOKEN when not given here.
    #[arg(long)]
    token: Option<String>,
    /// Who the audit log names for actions taken in this console (the USER environment variable
    /// when not given).
    #[arg(long)]
    operator: Option<String>,
}

/// Serves the console until Ctrl-C or SIGTERM.
pub fn run(args: &Args, out: &mut dyn Write, _err: &mut dyn Write) -> Result<i32, CliError> {
    let token = args
        .token
        .clone()
        .or_else(|| std::env::var("FERRY_CONSOLE_TOKEN").ok())
        .filter(|t| !t.is_empty());
    // Refused before anything is opened: an exposed console without a token never starts.
    web::check_exposure(&args.listen, token.as_deref())?;
    let operator = args
        .operator
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "console".into());
    let options = Options {
        config: args.backend.config.clone(),
        listen: args.listen,
        token,
        operator,
    };
    with_backend(&args.backend, |backend| async move {
        web::serve(backend, options, out).await
    })
}
