//! The push Lambda: builds the deployment once per execution environment (AWS clients, schemes,
//! connectors) and hands each invocation to [`ferry_push::handle`].

use ferry_common::aws::{Deployment, logging};
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    logging::init();
    let deployment = Deployment::for_lambda().await?;
    let deployment = &deployment;
    lambda_runtime::run(service_fn(move |event| async move {
        // What the start left undone (recording the schemes, checking the queues) runs beside
        // the first invocation, so a cold start waits for no AWS call.
        let (started, answer) = tokio::join!(
            deployment.after_start("push"),
            ferry_push::handle(deployment, event)
        );
        started?;
        answer
    }))
    .await
}
