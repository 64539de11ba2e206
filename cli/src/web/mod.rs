//! `ferry console`: the web console over the same backend as the operator commands (the embedded
//! store, or a deployment's table, queues and functions). Pages are rendered on the server with
//! MiniJinja (already Ferry's mapping engine: no second templating crate, no JavaScript build);
//! forms post actions, each confirmed first and written to the scheme's audit log.
//!
//! Safe by default: it listens on loopback unless told otherwise, and any other address needs an
//! access token; every action is a POST carrying the page's anti-forgery token, from this origin;
//! no connector setting is ever rendered (pages show records, histories and mapped bodies).

mod pages;
mod shell;
mod text;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use tokio::sync::RwLock;

pub use self::shell::Options;
use self::shell::{Console, access, templates};
use crate::backend::Backend;
use crate::error::CliError;

/// Refuses a listen address other than loopback without a token.
pub fn check_exposure(listen: &SocketAddr, token: Option<&str>) -> Result<(), CliError> {
    if listen.ip().is_loopback() || token.is_some_and(|t| !t.is_empty()) {
        return Ok(());
    }
    Err(CliError::user(format!(
        "--listen {listen} is reachable from other machines: give an access token with --token or \
         FERRY_CONSOLE_TOKEN, or listen on 127.0.0.1"
    )))
}

/// Serves the console until Ctrl-C or SIGTERM; says where on `out` first.
pub async fn serve(
    backend: Backend,
    options: Options,
    out: &mut dyn std::io::Write,
) -> Result<i32, CliError> {
    check_exposure(&options.listen, options.token.as_deref())?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| CliError::user(format!("cannot listen on {}: {e}", options.listen)))?;
    let address = listener.local_addr()?;
    let console = Arc::new(Console {
        backend: RwLock::new(Arc::new(backend)),
        address,
        csrf: shell::random_hex(),
        nonces: std::sync::Mutex::default(),
        templates: templates(),
        options,
    });
    let app = Router::new()
        .route("/", get(pages::overview))
        .route("/failures/{scheme}", get(pages::failures))
        .route("/doc", get(pages::find))
        .route("/doc/{scheme}/{key}", get(pages::document))
        .route("/actions/{scheme}", post(pages::action))
        .layer(middleware::from_fn_with_state(console.clone(), access))
        .with_state(console);
    writeln!(out, "Ferry console on http://{address}/ (Ctrl-C stops it)")?;
    out.flush()?;
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::context::wait_for_stop())
        .await
        .map_err(|e| CliError::internal(format!("the console stopped: {e}")))?;
    Ok(0)
}
