//! The poll Lambda: builds the deployment once per execution environment (AWS clients, schemes,
//! connectors) and hands each invocation to [`ferry_poll::handle`].

use ferry_common::aws::{Deployment, logging};
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let deployment = Deployment::for_lambda().await?;
    deployment.record_schemes("poll").await;
    let deployment = &deployment;
    lambda_runtime::run(service_fn(move |event| {
        ferry_poll::handle(deployment, event)
    }))
    .await
}
