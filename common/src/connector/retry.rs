//! Bounded retries inside a client: exponential backoff with full jitter (the `retry-policies`
//! crate decides), never shorter than the service's `Retry-After`, and never for a write whose
//! outcome is ambiguous unless that write is idempotent.

use std::future::Future;
use std::time::{Duration, SystemTime};

use retry_policies::policies::ExponentialBackoff;
use retry_policies::{Jitter, RetryDecision, RetryPolicy};

use super::outcome::{CallError, FailureClass};

/// How hard a client tries before handing a failure back to the engine.
#[derive(Clone, Debug)]
pub struct RetrySettings {
    /// Attempts in all, the first included (1 = no retries).
    pub max_attempts: u32,
    /// The backoff before the first retry (before jitter).
    pub min_backoff: Duration,
    /// The longest backoff between two attempts.
    pub max_backoff: Duration,
    /// A service asking to wait longer than this (`Retry-After`, a rate-limit window) gets the
    /// failure handed back to the engine, which reschedules the work instead of holding a worker.
    pub max_wait: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 4,
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            max_wait: Duration::from_secs(30),
        }
    }
}

impl RetrySettings {
    /// One attempt, no retries: the engine's own redelivery does the retrying.
    pub fn none() -> Self {
        RetrySettings {
            max_attempts: 1,
            ..RetrySettings::default()
        }
    }

    fn policy(&self) -> ExponentialBackoff {
        ExponentialBackoff::builder()
            .retry_bounds(self.min_backoff, self.max_backoff.max(self.min_backoff))
            .jitter(Jitter::Full)
            .build_with_max_retries(self.max_attempts.saturating_sub(1))
    }

    /// Runs `attempt` until it succeeds, fails for good, or the attempts are spent. `idempotent`
    /// says whether an ambiguous outcome may be repeated (a read, or a write with an idempotency key).
    pub(crate) async fn run<T, F, Fut>(
        &self,
        idempotent: bool,
        mut attempt: F,
    ) -> Result<T, CallError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let policy = self.policy();
        let started = SystemTime::now();
        let mut past_retries = 0;
        loop {
            let error = match attempt(past_retries).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            if error.retry_after.is_some() {
                count_throttled(error.service);
            }
            let repeatable = match error.class {
                FailureClass::Retryable => true,
                FailureClass::Ambiguous => idempotent,
                FailureClass::Permanent | FailureClass::Credentials => false,
            };
            if !repeatable {
                return Err(error);
            }
            let backoff = match policy.should_retry(started, past_retries) {
                RetryDecision::Retry { execute_after } => execute_after
                    .duration_since(SystemTime::now())
                    .unwrap_or_default(),
                RetryDecision::DoNotRetry => return Err(error),
            };
            let wait = match error.retry_after {
                Some(asked) if asked > self.max_wait => return Err(error),
                Some(asked) => asked.max(backoff),
                None => backoff,
            };
            tracing::info!(
                service = error.service,
                operation = %error.operation,
                code = error.code.as_deref().unwrap_or(""),
                attempt = past_retries + 1,
                wait_ms = wait.as_millis() as u64,
                "retrying after {}",
                error.message
            );
            tokio::time::sleep(wait).await;
            past_retries += 1;
        }
    }
}

/// Calls each service refused asking for a wait (throttling), in this process so far.
static THROTTLED: std::sync::Mutex<Vec<(&'static str, u64)>> = std::sync::Mutex::new(Vec::new());

fn count_throttled(service: &'static str) {
    let mut counts = THROTTLED.lock().unwrap_or_else(|p| p.into_inner());
    match counts.iter_mut().find(|(s, _)| *s == service) {
        Some((_, n)) => *n += 1,
        None => counts.push((service, 1)),
    }
}

/// Calls `service` (`wdt`, `kingdee`, `yonyou`) refused for throttling in this process so far: a
/// metric takes the difference over a batch.
pub fn throttled_calls(service: &str) -> u64 {
    let counts = THROTTLED.lock().unwrap_or_else(|p| p.into_inner());
    counts
        .iter()
        .find(|(s, _)| *s == service)
        .map_or(0, |(_, n)| *n)
}
