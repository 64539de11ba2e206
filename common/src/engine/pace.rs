//! Pacing to a target's rate limit: calls are spread evenly at the allowed rate (no bursts), so a
//! vendor's fixed per-minute window never sees more than its limit.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Pacing runs at this share of a declared limit: a margin for the jitter between our clock and the
/// vendor's counter, so a rate-limited run is never throttled.
pub const RATE_SHARE: f64 = 0.97;

/// One pacer per target account, shared by every scheme writing to it (they share the vendor's
/// limit).
#[derive(Debug)]
pub struct TargetPacers {
    share: f64,
    by_target: BTreeMap<&'static str, Arc<Pacer>>,
}

impl TargetPacers {
    /// Pacers running at `share` of each limit.
    pub fn new(share: f64) -> TargetPacers {
        TargetPacers {
            share,
            by_target: BTreeMap::new(),
        }
    }

    /// The pacer of `scheme`'s target: `limit` calls a minute if given (an account's contract),
    /// else the scheme's declared `rate_limit`; `None` when neither says.
    pub fn for_scheme(&mut self, scheme: &crate::Scheme, limit: Option<u32>) -> Option<Arc<Pacer>> {
        let per_minute = limit.or(scheme.push.rate_limit)?;
        let share = self.share;
        Some(
            self.by_target
                .entry(scheme.config.target.connector.value.name())
                .or_insert_with(|| Arc::new(Pacer::per_minute(per_minute, share)))
                .clone(),
        )
    }
}

/// Hands out evenly spaced call slots; clones of an `Arc<Pacer>` share one schedule.
///
/// Small enough to own: a single "next free slot" under a lock. Spacing without bursts (governor's
/// GCRA with a burst of one) is all a fixed-window vendor limit needs.
#[derive(Debug)]
pub struct Pacer {
    period: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    /// A pacer for `per_minute` calls a minute, run at `share` of it (a margin for clock and
    /// network jitter between Ferry and the vendor's counter).
    pub fn per_minute(per_minute: u32, share: f64) -> Pacer {
        let rate = (per_minute.max(1) as f64 * share.clamp(0.01, 1.0)) / 60.0;
        Pacer {
            period: Duration::from_secs_f64(1.0 / rate),
            next: Mutex::new(Instant::now()),
        }
    }

    /// The spacing between two calls.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Waits for the next slot if it comes before `end`; `false` (at once, no slot taken) if not.
    pub async fn wait_until(&self, end: Instant) -> bool {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let slot = (*next).max(Instant::now());
            if slot >= end {
                return false;
            }
            *next = slot + self.period;
            slot
        };
        tokio::time::sleep_until(slot).await;
        true
    }

    /// Waits for the next slot.
    pub async fn wait(&self) {
        // A year is "no end": any slot comes before it.
        self.wait_until(Instant::now() + Duration::from_secs(366 * 86_400))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_evenly_spaced() {
        let pacer = Pacer::per_minute(600, 1.0);
        assert_eq!(pacer.period(), Duration::from_millis(100));
        let start = Instant::now();
        for _ in 0..11 {
            pacer.wait().await;
        }
        // Eleven calls: the first at once, then ten periods.
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}
