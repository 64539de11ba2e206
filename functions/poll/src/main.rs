//! The poll Lambda: builds the deployment once per execution environment (AWS clients, schemes,
//! connectors) and hands each invocation to [`ferry_poll::handle`].

use ferry_common::aws::{Deployment, DeploymentConfig, logging, sdk_config};
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let config = DeploymentConfig::from_env()?;
    let deployment = Deployment::new(&sdk_config().await, config).await?;
    // Settings that cannot work together stop the function at start, each problem named.
    deployment.check_timing()?;
    deployment.record_schemes("poll").await;
    let deployment = &deployment;
    lambda_runtime::run(service_fn(move |event| {
        ferry_poll::handle(deployment, event)
    }))
    .await
}
