//! What commands share to get going: the async runtime, a scheme by path or bundled id, a run
//! configuration made into a runtime, and the signal that stops a long-running command.

use std::path::Path;

use ferry_common::connector::Clients;
use ferry_common::embedded::{Runtime, SchemePlan, Settings};
use ferry_common::{Scheme, SchemeError, bundled};

use crate::config::RunConfig;
use crate::error::{Blame, CliError};

/// The multi-threaded tokio runtime the commands run on.
pub fn async_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::internal(format!("cannot start the async runtime: {e}")))
}

/// Reads `NAME=VALUE`.
pub fn parse_var(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(name, _)| !name.trim().is_empty())
        .map(|(name, value)| (name.trim().to_owned(), value.to_owned()))
        .ok_or_else(|| format!("'{text}' is not NAME=VALUE"))
}

/// A scheme file path, or the id of a bundled scheme, with `vars` for its variables.
pub fn load_scheme(
    name: &str,
    vars: ferry_common::mapping::EnvLookup<'_>,
) -> Result<Scheme, SchemeError> {
    let path = Path::new(name);
    if path.exists() || name.ends_with(".yaml") || name.ends_with(".yml") {
        return ferry_common::scheme::load_in_folder(path, vars);
    }
    for (file, text) in bundled::SCHEMES {
        let scheme = Scheme::load_str(file, text, vars)?;
        if scheme.id() == name {
            return Ok(scheme);
        }
    }
    let known: Vec<&str> = bundled::SCHEMES
        .iter()
        .map(|(file, _)| {
            file.trim_start_matches("schemes/")
                .trim_end_matches(".yaml")
        })
        .collect();
    Err(SchemeError {
        file: name.to_owned(),
        diagnostics: vec![ferry_common::Diagnostic::error(
            0,
            0,
            format!(
                "no such file, and no bundled scheme has this id (bundled: {})",
                known.join(", ")
            ),
        )],
    })
}

/// Loads a run configuration and prepares its runtime.
pub fn load_run(path: &Path) -> Result<Runtime, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
        .user()?;
    let config: RunConfig = serde_saphyr::from_str(&text)
        .map_err(|e| format!("{}: {e}", path.display()))
        .user()?;
    let base = path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_owned()
        } else {
            base.join(p)
        }
    };
    // The process environment first, then the file's variables, then the connectors'.
    let vars = |key: &str| {
        std::env::var(key)
            .ok()
            .or_else(|| config.variables.get(key).cloned())
            .or_else(|| config.connectors.variables.get(key).cloned())
    };
    let mut plans = Vec::new();
    for entry in &config.schemes {
        let name = entry.name();
        let relative = base.join(name);
        let schemes = if relative.is_dir() {
            ferry_common::scheme::load_folder(&relative, &vars).user()?
        } else if relative.exists() {
            vec![load_scheme(&relative.display().to_string(), &vars)?]
        } else {
            vec![load_scheme(name, &vars)?]
        };
        for scheme in schemes {
            scheme.require_variables().user()?;
            plans.push(SchemePlan {
                scheme,
                start: entry.start().map(str::to_owned),
            });
        }
    }
    let settings = Settings::from_config(&config.push).user()?;
    let clients = Clients::new(&config.connectors).user()?;
    Runtime::new(
        &resolve(&config.store),
        plans,
        &clients,
        &config.rate_limits,
        settings,
    )
    .map_err(CliError::from)
}

/// Resolves on Ctrl-C or SIGTERM (how a service manager stops a process).
pub async fn wait_for_stop() {
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
