//! The WDT source: one page of a query API over one transport, for the poller.

use super::WdtClient;
use crate::connector::CallError;
use crate::engine::{Page, SourceApi};
use crate::scheme::config::Transport;

/// A WDT query API over one transport.
#[derive(Clone, Debug)]
pub struct WdtSource {
    /// The client.
    pub client: WdtClient,
    /// Qimen or openapi2.
    pub transport: Transport,
    /// The query API.
    pub api: String,
}

impl SourceApi for WdtSource {
    async fn query(&self, params: &[(String, String)]) -> Result<Page, CallError> {
        self.client
            .query_page(self.transport, &self.api, params)
            .await
    }
}
