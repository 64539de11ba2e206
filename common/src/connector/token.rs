//! A cached access token (Kingdee's app-token, Yonyou's access_token): fetched once, shared by every
//! call until it expires or the service rejects it, then fetched again exactly once per rejection.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::{CallError, FailureClass, Secret};

/// What one authorised attempt ended with.
pub(crate) enum Attempt<T> {
    /// The call went through (or failed for a reason other than the token).
    Done(T),
    /// The service said the token is invalid or expired; the message is the service's.
    TokenRejected(String),
}

/// The token and when to stop using it.
#[derive(Default)]
pub(crate) struct TokenCache {
    slot: Mutex<Option<(Secret, Instant)>>,
}

impl TokenCache {
    /// The cached token, or a new one from `fetch` (which answers the token and its lifetime).
    /// The lock is held while fetching, so concurrent callers wait for one fetch instead of each
    /// spending the token endpoint's small rate limit.
    async fn get<F, Fut>(&self, fetch: F) -> Result<Secret, CallError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Secret, Duration), CallError>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some((token, until)) = slot.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = fetch().await?;
        // Renew a little early so a token never expires in flight.
        let margin = (lifetime / 10).min(Duration::from_secs(300));
        *slot = Some((token.clone(), Instant::now() + lifetime - margin));
        Ok(token)
    }

    /// Forgets `stale`, unless another caller already replaced it.
    async fn invalidate(&self, stale: &Secret) {
        let mut slot = self.slot.lock().await;
        if slot.as_ref().is_some_and(|(token, _)| token == stale) {
            *slot = None;
        }
    }

    /// Runs `attempt` with a token; if the service rejects the token, fetches a new one and tries
    /// once more. A freshly fetched token rejected too means the credentials themselves are refused.
    pub(crate) async fn authorized<T, F, Fut, A, AFut>(
        &self,
        fetch: F,
        attempt: A,
        service: &'static str,
        operation: &str,
    ) -> Result<T, CallError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(Secret, Duration), CallError>>,
        A: Fn(Secret) -> AFut,
        AFut: Future<Output = Result<Attempt<T>, CallError>>,
    {
        let token = self.get(&fetch).await?;
        let message = match attempt(token.clone()).await? {
            Attempt::Done(value) => return Ok(value),
            Attempt::TokenRejected(message) => message,
        };
        tracing::info!(
            service,
            operation,
            "token rejected ({message}); fetching a new one"
        );
        self.invalidate(&token).await;
        let token = self.get(&fetch).await?;
        match attempt(token.clone()).await? {
            Attempt::Done(value) => Ok(value),
            Attempt::TokenRejected(message) => {
                self.invalidate(&token).await;
                Err(CallError::new(
                    FailureClass::Credentials,
                    service,
                    operation,
                    None,
                    format!("a freshly fetched token was rejected too: {message}"),
                ))
            }
        }
    }
}
