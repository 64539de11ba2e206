//! The connector registry: every target connector Ferry speaks, as data (its name in schemes and
//! catalogs, the catalog families its client serves) plus the code that builds its target from a
//! scheme. Schemes, `ferry check`, the runtimes and the deployment read it; adding a connector adds
//! one entry here (docs/connectors.md, "Adding a connector", lists the rest).

use super::wdt::WdtSource;
use super::{Clients, kingdee, yonyou};
use crate::Scheme;
use crate::catalog::{ApiCatalog, TargetSpec};
use crate::engine::AnyTarget;

/// A target connector: what a scheme's `target.connector` names.
pub struct TargetEntry {
    /// The name schemes and catalog files use (`kingdee`).
    pub name: &'static str,
    /// What people call the system, for messages (`scheme X writes to Kingdee, but ...`).
    pub title: &'static str,
    /// The catalog families its client serves, as (`target.protocol`, `target.update`): an API of
    /// one of these needs a catalog file only.
    pub families: &'static [(&'static str, &'static str)],
    /// Its target for an API of one of its families, from the configured clients.
    pub build: fn(&Clients, &'static TargetSpec) -> Result<AnyTarget, TargetSettingsMissing>,
}

/// The configured connectors hold no settings for the target a scheme writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetSettingsMissing;

/// Every target connector, in the order messages list them.
pub const TARGETS: &[TargetEntry] = &[kingdee::TARGET, yonyou::TARGET];

/// The entry named `name`.
pub fn target(name: &str) -> Option<&'static TargetEntry> {
    TARGETS.iter().find(|entry| entry.name == name)
}

/// The registered target connectors' names, for messages: `kingdee, yonyou`.
pub fn target_names() -> String {
    TARGETS
        .iter()
        .map(|entry| entry.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a registered client serves target API `api`, or why not.
pub fn serves(api: &ApiCatalog) -> Result<(), String> {
    let Some(spec) = &api.target else {
        return Err(format!(
            "the catalog describes no `target:` for {} {} (its save path, number field and look-up), so no client can write to it",
            api.connector, api.api
        ));
    };
    let Some(entry) = target(&api.connector) else {
        return Err(format!(
            "no target connector is named {}; Ferry writes to {}",
            api.connector,
            target_names()
        ));
    };
    if entry
        .families
        .iter()
        .any(|(protocol, update)| *protocol == spec.protocol && *update == spec.update)
    {
        return Ok(());
    }
    let served: Vec<String> = entry
        .families
        .iter()
        .map(|(p, u)| format!("protocol {p} with {u} updates"))
        .collect();
    Err(format!(
        "no client serves {} {} (protocol {} with {} updates); the {} client serves {}",
        api.connector,
        api.api,
        spec.protocol,
        spec.update,
        api.connector,
        if served.is_empty() {
            "nothing".to_owned()
        } else {
            served.join(", ")
        }
    ))
}

/// The source and target of `scheme` from configured `clients`; `origin` says where connector
/// settings come from, for the error when one is missing (`connectors`, `the credentials secret`).
pub fn endpoints_for(
    scheme: &Scheme,
    clients: &Clients,
    origin: &str,
) -> Result<(WdtSource, AnyTarget), String> {
    let id = scheme.id();
    let missing =
        |what: &str, name: &str| format!("scheme {id} {what}, but {origin} has no {name} settings");
    let client = clients
        .wdt
        .clone()
        .ok_or_else(|| missing("reads WDT", "wdt"))?;
    let name = scheme.config.target.connector.value.name();
    let entry = target(name).ok_or_else(|| {
        format!(
            "scheme {id} writes to {name}, which no registered connector is ({})",
            target_names()
        )
    })?;
    let target = (entry.build)(clients, scheme.target_spec())
        .map_err(|TargetSettingsMissing| missing(&format!("writes to {}", entry.title), name))?;
    let source = WdtSource {
        client,
        transport: scheme.config.source.transport,
        api: scheme.config.source.api.value.clone(),
    };
    Ok((source, target))
}
