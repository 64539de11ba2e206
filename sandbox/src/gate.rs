//! What every sandbox service checks before the business logic: per-minute rate limits and the
//! tokens it has handed out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A fixed-window counter per service, as the vendors' "N calls a minute" limits behave.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    window: Duration,
    counters: Mutex<HashMap<&'static str, (Instant, u32)>>,
    refused: Mutex<HashMap<&'static str, u64>>,
}

impl RateLimiter {
    pub fn new(window: Duration) -> Self {
        RateLimiter {
            window,
            counters: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one call to `what`; `Err(wait)` if it is over `limit` in the current window.
    pub fn admit(&self, what: &'static str, limit: u32) -> Result<(), Duration> {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (start, count) = counters.entry(what).or_insert((now, 0));
        if now.duration_since(*start) >= self.window {
            *start = now;
            *count = 0;
        }
        if *count >= limit {
            *self
                .refused
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(what)
                .or_default() += 1;
            return Err(self.window.saturating_sub(now.duration_since(*start)));
        }
        *count += 1;
        Ok(())
    }
}

impl RateLimiter {
    /// Calls to `what` refused for being over the limit.
    pub fn refused(&self, what: &str) -> u64 {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(what)
            .copied()
            .unwrap_or(0)
    }
}

/// Tokens a service issued and when each expires.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    issued: Mutex<HashMap<String, Instant>>,
}

impl Tokens {
    /// Issues a new token valid for `lifetime`; `shape` makes it look like the vendor's.
    pub fn issue(&self, lifetime: Duration, shape: fn(&mut fastrand::Rng) -> String) -> String {
        let mut rng = fastrand::Rng::new();
        let token = shape(&mut rng);
        self.issued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.clone(), Instant::now() + lifetime);
        token
    }

    /// Whether `token` was issued and has not expired.
    pub fn valid(&self, token: &str) -> bool {
        self.issued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .is_some_and(|until| Instant::now() < *until)
    }

    /// Every token issued and not yet expired by a fault.
    pub fn all(&self) -> Vec<String> {
        self.issued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Expires every token (the token-expiry fault).
    pub fn expire_all(&self) {
        self.issued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
