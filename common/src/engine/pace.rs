//! Pacing to a target's rate limit: calls are spread evenly at the allowed rate (no bursts), so a
//! vendor's fixed per-minute window never sees more than its limit.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

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

    /// Waits for the next slot.
    pub async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.period;
            slot
        };
        tokio::time::sleep_until(slot).await;
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
