//! The push Lambda: builds the deployment once per execution environment (AWS clients, schemes,
//! connectors) and hands each invocation to [`ferry_push::handle`].

use ferry_common::aws::{Deployment, DeploymentConfig, logging, sdk_config};
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = DeploymentConfig::from_env()?;
    let deployment = match Deployment::new(&sdk_config().await, config).await {
        Ok(deployment) => deployment,
        Err(e) => {
            // Logged with its domain: a settings mistake (user) is not an outage (external).
            logging::error("the deployment cannot start", &e);
            return Err(e.into());
        }
    };
    // Settings that cannot work together stop the function at start, each problem named.
    deployment.check_timing()?;
    deployment.record_schemes("push").await;
    let deployment = &deployment;
    lambda_runtime::run(service_fn(move |event| {
        ferry_push::handle(deployment, event)
    }))
    .await
}
