//! Sandbox-only: the lock-out after repeated failed logins. Klarna's documentation warns
//! that too many failed logins lock a merchant's credentials for a while; the client
//! guards against that, and this gives its guard something to be tested against.
//!
//! The whole rule lives here: which failures count, when the merchant is locked and for
//! how long, and that a locked merchant is refused even with the right credentials. It
//! takes the time as an argument, so its tests need no clock.

use std::time::{Duration, SystemTime};

use axum::http::StatusCode;

use crate::reply::KlarnaError;

/// Failed logins within this window count towards the lock-out.
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
/// How long a lock-out lasts; a failed attempt while locked starts it again.
pub const LOCKED_FOR: Duration = Duration::from_secs(15 * 60);

/// The failed logins seen, and whether they locked the merchant.
#[derive(Debug, Default)]
pub struct Lockout {
    /// Failures within [`WINDOW`] of the latest.
    recent: Vec<SystemTime>,
    total: u64,
    locked_until: Option<SystemTime>,
}

impl Lockout {
    /// Counts a failed login at `now`. `limit` failures within [`WINDOW`] lock the
    /// merchant for [`LOCKED_FOR`]; a `limit` of 0 never locks.
    pub fn record_failure(&mut self, now: SystemTime, limit: u32) {
        self.recent
            .retain(|t| now.duration_since(*t).unwrap_or_default() < WINDOW);
        self.recent.push(now);
        self.total += 1;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if limit > 0 && self.recent.len() >= limit {
            self.locked_until = Some(now + LOCKED_FOR);
        }
    }

    pub fn is_locked(&self, now: SystemTime) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }

    /// Every failed login so far (for tests of the client's guard).
    pub fn failures_total(&self) -> u64 {
        self.total
    }

    /// Decides a login whose credentials were checked: a locked merchant is refused even
    /// with the right credentials, and that attempt counts as a failure too.
    pub fn admit(
        &mut self,
        now: SystemTime,
        limit: u32,
        credentials_ok: bool,
    ) -> Result<(), KlarnaError> {
        if self.is_locked(now) {
            self.record_failure(now, limit);
            return Err(KlarnaError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "Too many failed logins: the merchant is locked (sandbox-only rule)",
            ));
        }
        if credentials_ok {
            return Ok(());
        }
        self.record_failure(now, limit);
        Err(KlarnaError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Missing or invalid credentials",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    fn at(seconds: u64) -> SystemTime {
        T0 + Duration::from_secs(1_000_000 + seconds)
    }

    #[test]
    fn the_limit_within_the_window_locks_and_the_lock_ends() {
        let mut lockout = Lockout::default();
        lockout.record_failure(at(0), 3);
        lockout.record_failure(at(1), 3);
        assert!(!lockout.is_locked(at(2)));
        lockout.record_failure(at(2), 3);
        assert!(lockout.is_locked(at(3)));
        assert!(!lockout.is_locked(at(2) + LOCKED_FOR));
        assert_eq!(lockout.failures_total(), 3);
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let mut lockout = Lockout::default();
        lockout.record_failure(at(0), 2);
        lockout.record_failure(at(0) + WINDOW, 2);
        assert!(!lockout.is_locked(at(0) + WINDOW));
        assert_eq!(lockout.failures_total(), 2);
    }

    #[test]
    fn a_limit_of_zero_never_locks() {
        let mut lockout = Lockout::default();
        for s in 0..100 {
            lockout.record_failure(at(s), 0);
        }
        assert!(!lockout.is_locked(at(100)));
    }

    #[test]
    fn a_locked_merchant_is_refused_with_the_right_credentials_and_it_counts() {
        let mut lockout = Lockout::default();
        assert!(lockout.admit(at(0), 1, true).is_ok());
        let wrong = lockout
            .admit(at(1), 1, false)
            .expect_err("wrong credentials");
        assert_eq!(wrong.messages, ["Missing or invalid credentials"]);
        let locked = lockout.admit(at(2), 1, true).expect_err("locked");
        assert_eq!(locked.status, StatusCode::UNAUTHORIZED);
        assert!(locked.messages[0].contains("locked"));
        assert_eq!(lockout.failures_total(), 2);
        // The refused attempt started the lock again.
        assert!(lockout.is_locked(at(1) + LOCKED_FOR));
        assert!(lockout.admit(at(2) + LOCKED_FOR, 1, true).is_ok());
    }
}
