//! The retry decision, as a pure function of what happened, how often, for how long, and
//! a jitter draw — so it is tested without a network (`../shared/STYLE.md`, its
//! arlyon/async-stripe entry).

use std::time::Duration;

use reqwest::header::HeaderMap;

/// How many attempts, how long between them, and how long in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The first backoff; each next one doubles.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// No retry starts after this much time since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(30),
        }
    }
}

/// Whether a call may be sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Reads, and writes that carry an idempotency key: retry every transient failure.
    Safe,
    /// Writes Klarna cannot deduplicate (placing an order from an authorization): retry
    /// only what was certainly not processed — refused connections and 429.
    NotProcessedOnly,
}

/// What went wrong with one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Klarna answered with this status.
    Status {
        status: u16,
        /// From `Retry-After` (seconds) or `X-Ratelimit-Reset` (seconds).
        wait: Option<Duration>,
    },
    /// No connection could be made: the request was not sent.
    Connect,
    /// Sent, but no (complete) answer in time or the connection broke.
    Timeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Retry(Duration),
    Stop,
}

/// Whether a failure is transient at all.
pub fn transient(failure: Failure) -> bool {
    match failure {
        Failure::Status { status, .. } => status == 429 || (500..=599).contains(&status),
        Failure::Connect | Failure::Timeout => true,
    }
}

/// Decides whether attempt number `attempt` (1 for the first) that failed with `failure`,
/// `elapsed` after the first attempt started, is retried and after how long. `jitter` is
/// a draw from [0, 1): the wait is between half and all of the exponential backoff.
pub fn decide(
    failure: Failure,
    replay: Replay,
    attempt: u32,
    elapsed: Duration,
    policy: &RetryPolicy,
    jitter: f64,
) -> Decision {
    if !transient(failure) || attempt >= policy.max_attempts {
        return Decision::Stop;
    }
    let processed_maybe = match failure {
        Failure::Status { status, .. } => status != 429,
        Failure::Timeout => true,
        Failure::Connect => false,
    };
    if replay == Replay::NotProcessedOnly && processed_maybe {
        return Decision::Stop;
    }
    let delay = match failure {
        // Klarna said when: that, not our guess.
        Failure::Status {
            wait: Some(wait), ..
        } => wait,
        _ => {
            let exp = policy
                .base_delay
                .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
                .min(policy.max_delay);
            let jitter = jitter.clamp(0.0, 1.0);
            exp / 2 + exp.mul_f64(jitter / 2.0)
        }
    };
    if elapsed.saturating_add(delay) > policy.max_elapsed {
        Decision::Stop
    } else {
        Decision::Retry(delay)
    }
}

/// `Retry-After: <seconds>` or Klarna's `X-Ratelimit-Reset: <seconds>`.
pub fn wait_hint(headers: &HeaderMap) -> Option<Duration> {
    ["retry-after", "x-ratelimit-reset"]
        .iter()
        .find_map(|name| {
            headers
                .get(*name)?
                .to_str()
                .ok()?
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_elapsed: Duration::from_secs(10),
        }
    }

    fn status(status: u16) -> Failure {
        Failure::Status { status, wait: None }
    }

    #[test]
    fn transient_failures_back_off_exponentially_within_jitter_bounds() {
        let p = policy();
        for (attempt, full) in [(1, 100), (2, 200), (3, 400)] {
            let low = decide(status(503), Replay::Safe, attempt, Duration::ZERO, &p, 0.0);
            let high = decide(
                status(503),
                Replay::Safe,
                attempt,
                Duration::ZERO,
                &p,
                0.999_999,
            );
            assert_eq!(low, Decision::Retry(Duration::from_millis(full / 2)));
            let Decision::Retry(h) = high else {
                panic!("retry")
            };
            assert!(h <= Duration::from_millis(full) && h > Duration::from_millis(full * 99 / 100));
        }
        // The attempt budget ends it.
        assert_eq!(
            decide(status(503), Replay::Safe, 4, Duration::ZERO, &p, 0.5),
            Decision::Stop
        );
    }

    #[test]
    fn delays_are_capped_and_the_time_budget_ends_retries() {
        let p = RetryPolicy {
            max_attempts: 20,
            ..policy()
        };
        assert_eq!(
            decide(
                Failure::Timeout,
                Replay::Safe,
                10,
                Duration::ZERO,
                &p,
                0.999_999_9
            ),
            Decision::Retry(
                Duration::from_millis(1000) / 2
                    + Duration::from_millis(1000).mul_f64(0.999_999_9 / 2.0)
            )
        );
        assert_eq!(
            decide(
                Failure::Timeout,
                Replay::Safe,
                2,
                Duration::from_millis(9_950),
                &p,
                0.0
            ),
            Decision::Stop
        );
    }

    #[test]
    fn business_errors_are_never_retried() {
        for s in [400, 401, 403, 404, 409, 422] {
            assert_eq!(
                decide(status(s), Replay::Safe, 1, Duration::ZERO, &policy(), 0.5),
                Decision::Stop,
                "{s}"
            );
        }
    }

    #[test]
    fn rate_limits_wait_as_long_as_klarna_says() {
        let f = Failure::Status {
            status: 429,
            wait: Some(Duration::from_secs(2)),
        };
        assert_eq!(
            decide(f, Replay::Safe, 1, Duration::ZERO, &policy(), 0.3),
            Decision::Retry(Duration::from_secs(2))
        );
        // ... unless that is beyond the budget.
        let f = Failure::Status {
            status: 429,
            wait: Some(Duration::from_secs(60)),
        };
        assert_eq!(
            decide(f, Replay::Safe, 1, Duration::ZERO, &policy(), 0.3),
            Decision::Stop
        );
    }

    #[test]
    fn writes_klarna_cannot_deduplicate_retry_only_what_was_not_processed() {
        let p = policy();
        assert!(matches!(
            decide(
                Failure::Connect,
                Replay::NotProcessedOnly,
                1,
                Duration::ZERO,
                &p,
                0.0
            ),
            Decision::Retry(_)
        ));
        assert!(matches!(
            decide(
                status(429),
                Replay::NotProcessedOnly,
                1,
                Duration::ZERO,
                &p,
                0.0
            ),
            Decision::Retry(_)
        ));
        assert_eq!(
            decide(
                Failure::Timeout,
                Replay::NotProcessedOnly,
                1,
                Duration::ZERO,
                &p,
                0.0
            ),
            Decision::Stop
        );
        assert_eq!(
            decide(
                status(503),
                Replay::NotProcessedOnly,
                1,
                Duration::ZERO,
                &p,
                0.0
            ),
            Decision::Stop
        );
    }

    #[test]
    fn wait_hints_come_from_retry_after_or_the_ratelimit_reset() {
        let mut h = HeaderMap::new();
        assert_eq!(wait_hint(&h), None);
        h.insert("x-ratelimit-reset", "1".parse().expect("header"));
        assert_eq!(wait_hint(&h), Some(Duration::from_secs(1)));
        h.insert("retry-after", "3".parse().expect("header"));
        assert_eq!(wait_hint(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after", "soon".parse().expect("header"));
        assert_eq!(
            wait_hint(&h),
            Some(Duration::from_secs(1)),
            "falls back to the reset"
        );
    }
}
