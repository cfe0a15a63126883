//! When to try a failing host again, and when a failure is news.
//!
//! Temporary failures (connection refused, timeouts, "max connections") back off
//! exponentially from `--retry-min`, doubling per consecutive failure, capped at
//! `--retry-max`. Permanent ones (wrong password, unknown module, bad key) wait the cap
//! straight away: they need a human, but rpush keeps trying at the cap so that a fixed
//! configuration on the far side is picked up without a restart.
//!
//! "Once per change of state": a failure is logged loudly only when it differs from the
//! previous one (another class or another message); repeats are quiet until the host
//! recovers or fails differently.
//!
//! Pure: the caller passes `now`, so tests use made-up instants and never sleep. No
//! jitter: rpush pushes to a handful of hosts, not thousands of clients to one server.

use std::time::{Duration, Instant};

/// How bad a failed run was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Try again soon, with backoff.
    Temporary,
    /// Needs a human; retried at the cap.
    Permanent,
}

/// The backoff policy from `--retry-min` and `--retry-max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after the `failures`-th consecutive failure (1 = the first).
    pub fn delay(&self, failures: u32, class: Class) -> Duration {
        match class {
            Class::Permanent => self.max,
            Class::Temporary => {
                let doublings = failures.saturating_sub(1).min(31);
                self.min.saturating_mul(1u32 << doublings).min(self.max)
            }
        }
    }
}

/// One host's retry bookkeeping.
#[derive(Debug, Clone, Default)]
pub struct RetryState {
    /// Consecutive failures since the last success.
    pub failures: u32,
    /// No run before this instant.
    pub not_before: Option<Instant>,
    last: Option<(Class, String)>,
}

/// What a recorded failure means for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub delay: Duration,
    /// True when this failure differs from the previous one (log it loudly).
    pub news: bool,
}

impl RetryState {
    /// Records a failure at `now` and schedules the next attempt.
    pub fn fail(&mut self, policy: &Backoff, now: Instant, class: Class, message: &str) -> Failure {
        self.failures = self.failures.saturating_add(1);
        let delay = policy.delay(self.failures, class);
        self.not_before = Some(now + delay);
        let news = self.last.as_ref().is_none_or(|(c, m)| *c != class || m != message);
        self.last = Some((class, message.to_string()));
        Failure { delay, news }
    }

    /// Records a success; returns how many failures it ends (0 if none).
    pub fn succeed(&mut self) -> u32 {
        let n = self.failures;
        *self = RetryState::default();
        n
    }

    /// The class of the last failure, if the host is failing.
    pub fn last_class(&self) -> Option<Class> {
        self.last.as_ref().map(|(c, _)| *c)
    }

    /// Ends the wait: the next run may start at once (the host is reachable again).
    pub fn cut(&mut self) {
        self.not_before = None;
    }

    /// Whether a run may start at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| now >= t)
    }

    /// How long until a run may start (zero when ready).
    pub fn wait(&self, now: Instant) -> Duration {
        self.not_before
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn temporary_failures_double_up_to_the_cap() {
        let b = Backoff { min: S(1), max: S(60) };
        let got: Vec<u64> = (1..=9).map(|n| b.delay(n, Class::Temporary).as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.delay(u32::MAX, Class::Temporary), S(60));
        assert_eq!(b.delay(1, Class::Permanent), S(60));
        let ms = Backoff {
            min: Duration::from_millis(200),
            max: Duration::from_millis(500),
        };
        assert_eq!(ms.delay(2, Class::Temporary), Duration::from_millis(400));
        assert_eq!(ms.delay(3, Class::Temporary), Duration::from_millis(500));
    }

    #[test]
    fn schedule_follows_an_injected_clock() {
        let b = Backoff { min: S(1), max: S(8) };
        let t0 = Instant::now();
        let mut r = RetryState::default();
        assert!(r.ready(t0));
        let f = r.fail(&b, t0, Class::Temporary, "connection refused");
        assert_eq!(
            f,
            Failure {
                delay: S(1),
                news: true
            }
        );
        assert!(!r.ready(t0 + Duration::from_millis(999)));
        assert!(r.ready(t0 + S(1)));
        assert_eq!(r.wait(t0), S(1));
        let t1 = t0 + S(1);
        let f = r.fail(&b, t1, Class::Temporary, "connection refused");
        assert_eq!(
            f,
            Failure {
                delay: S(2),
                news: false
            }
        );
        assert!(!r.ready(t1 + S(1)));
        assert!(r.ready(t1 + S(2)));
        // A different failure is news again; a permanent one waits the cap.
        let f = r.fail(&b, t1 + S(2), Class::Permanent, "auth failed");
        assert_eq!(
            f,
            Failure {
                delay: S(8),
                news: true
            }
        );
        assert_eq!(r.succeed(), 3);
        assert!(r.ready(t1));
        assert_eq!(r.failures, 0);
        // After a success, the same failure as before is news once more.
        assert!(r.fail(&b, t1, Class::Permanent, "auth failed").news);
    }
}
