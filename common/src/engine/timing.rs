//! How a push invocation spends its time against its target's rate limit, and which settings
//! cannot work together: the numbers the push function's deadline, the page messages' size and the
//! start-up checks all come from.

use std::time::Duration;

use tokio::time::Instant;

use super::push::{Deadline, MAX_HAND_BACK_DELAY};

/// The most target calls one document needs: settling an earlier write, reading the bill's lines
/// and the write itself.
pub const CALLS_PER_DOCUMENT: u32 = 3;

/// One push instance's time budget against one target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushTiming {
    /// The push function's timeout.
    pub timeout: Duration,
    /// The spacing of this instance's calls to the target (its share of the rate limit); `None`
    /// when the target has no limit.
    pub period: Option<Duration>,
}

impl PushTiming {
    /// The time after the last target call: the last history chunk, the hand-backs and the
    /// metrics (documents are only started if they end before the calls do). A twentieth of the
    /// timeout (3 s of 60 s), and at least 500 ms: a few store requests and up to 256 KiB of
    /// hand-backs, whatever the timeout.
    pub fn flush(&self) -> Duration {
        (self.timeout / 20).max(Duration::from_millis(500))
    }

    /// The time between the last document's start and the end of calls: its calls' turns at the
    /// pacer and a typical answer (a thirtieth of the timeout: 2 s of 60 s).
    pub fn start_reserve(&self) -> Duration {
        self.period.unwrap_or_default() * CALLS_PER_DOCUMENT + self.timeout / 30
    }

    /// The deadline of an invocation that must end at `end`.
    pub fn deadline(&self, end: Instant) -> Deadline {
        let calls_end = end.checked_sub(self.flush()).unwrap_or(end);
        Deadline {
            calls_end,
            starts_end: calls_end
                .checked_sub(self.start_reserve())
                .unwrap_or(calls_end),
        }
    }

    /// Documents one invocation can write at the target's pace (one call each): what a page
    /// message should hold at most, so that one message is about one invocation's work.
    pub fn documents_per_invocation(&self) -> usize {
        let working = self
            .timeout
            .saturating_sub(self.flush())
            .saturating_sub(self.start_reserve());
        match self.period {
            None => usize::MAX,
            Some(period) if period.is_zero() => usize::MAX,
            Some(period) => (working.as_secs_f64() / period.as_secs_f64()) as usize,
        }
    }
}

/// The timing settings of a push deployment, as checked at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimingSettings {
    /// The push function's timeout.
    pub push_timeout: Duration,
    /// How long a document claim holds.
    pub claim_ttl: Duration,
    /// The longest redelivery delay.
    pub retry_max: Duration,
    /// Each target queue's visibility timeout, by target connector.
    pub visibility: Vec<(String, Duration)>,
    /// Each target's push timing, by target connector, with its rate limit (calls a minute) and
    /// the number of push instances sharing it.
    pub targets: Vec<(String, u32, u32, PushTiming)>,
}

/// Every problem with `settings`, each saying what to change; empty when they work together.
pub fn check(settings: &TimingSettings) -> Vec<String> {
    let mut problems = Vec::new();
    let timeout = settings.push_timeout;
    let margin = timeout / 10;
    if settings.claim_ttl <= timeout + margin {
        problems.push(format!(
            "the claim TTL ({:?}) must be longer than the push function's timeout ({:?}) plus a \
             tenth ({:?}): a claim that lapses while its invocation still writes lets a second \
             pusher write the same document",
            settings.claim_ttl,
            timeout,
            timeout + margin
        ));
    }
    for (target, visibility) in &settings.visibility {
        if *visibility < timeout * 6 {
            problems.push(format!(
                "the {target} queue's visibility timeout ({visibility:?}) is under six times the \
                 push function's timeout ({:?}), AWS's guidance for an SQS event source: a batch \
                 still being pushed would be delivered again",
                timeout * 6
            ));
        }
    }
    if settings.retry_max > MAX_HAND_BACK_DELAY {
        problems.push(format!(
            "the longest retry delay ({:?}) is over SQS's longest message delay ({:?})",
            settings.retry_max, MAX_HAND_BACK_DELAY
        ));
    }
    for (target, limit, instances, timing) in &settings.targets {
        if timing.documents_per_invocation() == 0 {
            problems.push(format!(
                "{instances} push instances share {target}'s {limit} calls a minute: each gets a \
                 call every {:?}, so not one document fits in the push function's {:?} timeout \
                 (after its reserve); lower the push concurrency or raise the timeout",
                timing.period.unwrap_or_default(),
                timing.timeout
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yonyou(timeout: u64, instances: u32) -> PushTiming {
        PushTiming {
            timeout: Duration::from_secs(timeout),
            period: Some(Duration::from_secs_f64(
                60.0 / (60.0 * 0.97 / f64::from(instances)),
            )),
        }
    }

    #[test]
    fn a_yonyou_instance_pushes_about_twenty_documents_a_minute_of_timeout() {
        // 60 a minute shared by two instances: a call every 2.06 s; 60 s less 3 s of flush and
        // 8.2 s of reserve leaves room for 23 documents.
        let timing = yonyou(60, 2);
        assert_eq!(timing.flush(), Duration::from_secs(3));
        assert_eq!(timing.documents_per_invocation(), 23);
        let end = Instant::now() + Duration::from_secs(60);
        let deadline = timing.deadline(end);
        assert!(deadline.starts_end < deadline.calls_end && deadline.calls_end < end);
    }

    #[test]
    fn settings_that_cannot_work_together_are_named() {
        let good = TimingSettings {
            push_timeout: Duration::from_secs(60),
            claim_ttl: Duration::from_secs(300),
            retry_max: Duration::from_secs(300),
            visibility: vec![("yonyou".into(), Duration::from_secs(360))],
            targets: vec![("yonyou".into(), 60, 2, yonyou(60, 2))],
        };
        assert!(check(&good).is_empty(), "{:?}", check(&good));
        let bad = TimingSettings {
            claim_ttl: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            visibility: vec![("yonyou".into(), Duration::from_secs(30))],
            targets: vec![("yonyou".into(), 60, 100, yonyou(60, 100))],
            ..good
        };
        let problems = check(&bad);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].contains("claim TTL (60s)"));
        assert!(problems[1].contains("yonyou queue's visibility timeout (30s)"));
        assert!(problems[2].contains("longest retry delay"));
        assert!(problems[3].contains("100 push instances share yonyou's 60 calls a minute"));
    }
}
