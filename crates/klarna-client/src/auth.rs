//! Authentication: the header each request carries, the OAuth2 token cache, and the
//! lock-out guard.
//!
//! The guard is our own protection, not a documented Klarna rule: after a 401 the client
//! sends nothing with those credentials for a cool-down, and never lets more than three
//! authentication failures happen within ten minutes — a wrong password must not lock a
//! merchant's account by hammering it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::{Auth, Secret};
use crate::error::ClientError;

pub const MAX_FAILURES: usize = 3;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(10 * 60);
/// An OAuth2 token is refreshed this long before it expires.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(60);

/// Counts authentication failures and says when sending is allowed again.
#[derive(Debug)]
pub struct AuthGuard {
    failures: VecDeque<Instant>,
    blocked_until: Option<Instant>,
    cooldown: Duration,
}

impl AuthGuard {
    pub fn new(cooldown: Duration) -> Self {
        Self {
            failures: VecDeque::new(),
            blocked_until: None,
            cooldown,
        }
    }

    /// `Err(until)` while no request may be sent.
    pub fn check(&self, now: Instant) -> Result<(), Instant> {
        match self.blocked_until {
            Some(until) if until > now => Err(until),
            _ => Ok(()),
        }
    }

    pub fn record_failure(&mut self, now: Instant) {
        while self
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= FAILURE_WINDOW)
        {
            self.failures.pop_front();
        }
        self.failures.push_back(now);
        let mut until = now + self.cooldown;
        if self.failures.len() >= MAX_FAILURES {
            // The next attempt only once the oldest failure has left the window.
            if let Some(oldest) = self.failures.front() {
                until = until.max(*oldest + FAILURE_WINDOW);
            }
        }
        self.blocked_until = Some(until);
    }

    /// New credentials: a fresh start.
    pub fn reset(&mut self) {
        self.failures.clear();
        self.blocked_until = None;
    }
}

/// A cached OAuth2 bearer token.
struct Token {
    value: Secret,
    expires: Instant,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default = "default_expiry")]
    expires_in: u64,
}

fn default_expiry() -> u64 {
    3600
}

/// Produces the `Authorization` header for each request.
pub struct Authenticator {
    auth: Auth,
    token: Mutex<Option<Token>>,
    refreshes: std::sync::atomic::AtomicU64,
}

impl Authenticator {
    pub fn new(auth: Auth) -> Self {
        Self {
            auth,
            token: Mutex::new(None),
            refreshes: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many times an OAuth2 token was fetched (for tests and metrics).
    pub fn token_refreshes(&self) -> u64 {
        self.refreshes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The header value for the next request, fetching a token if one is needed. Only one
    /// caller fetches; the others wait on the lock and then use its token.
    pub async fn header(&self, http: &reqwest::Client) -> Result<Secret, ClientError> {
        match &self.auth {
            Auth::Basic { username, password } => Ok(Secret::new(format!(
                "Basic {}",
                STANDARD.encode(
                    zeroize::Zeroizing::new(format!("{username}:{}", password.expose())).as_bytes()
                )
            ))),
            Auth::ApiKey(key) => Ok(Secret::new(format!("Basic {}", key.expose()))),
            Auth::Dynamic(source) => {
                let (username, password) = source().ok_or_else(|| {
                    ClientError::credentials(401, "no Klarna credentials are configured")
                })?;
                Ok(Secret::new(format!(
                    "Basic {}",
                    STANDARD.encode(
                        zeroize::Zeroizing::new(format!("{username}:{}", password.expose()))
                            .as_bytes()
                    )
                )))
            }
            Auth::OAuth2 {
                token_url,
                client_id,
                client_secret,
                scope,
            } => {
                let mut slot = self.token.lock().await;
                if let Some(t) = slot.as_ref()
                    && t.expires > Instant::now() + REFRESH_AHEAD
                {
                    return Ok(Secret::new(format!("Bearer {}", t.value.expose())));
                }
                self.refreshes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut form = vec![
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", client_secret.expose()),
                ];
                if let Some(scope) = scope {
                    form.push(("scope", scope.as_str()));
                }
                let response = http
                    .post(token_url)
                    .form(&form)
                    .send()
                    .await
                    .map_err(|e| ClientError::transport(&e, "token", 1))?;
                let status = response.status();
                if status.as_u16() == 401 || status.as_u16() == 400 {
                    return Err(ClientError::credentials(
                        status.as_u16(),
                        "the token endpoint refused the client credentials",
                    ));
                }
                if !status.is_success() {
                    return Err(ClientError::from_status(status, None, 1));
                }
                let answer: TokenAnswer = response
                    .json()
                    .await
                    .map_err(|_| ClientError::decode("token", "not an OAuth2 token answer"))?;
                let value = Secret::new(answer.access_token);
                let header = Secret::new(format!("Bearer {}", value.expose()));
                *slot = Some(Token {
                    value,
                    expires: Instant::now() + Duration::from_secs(answer.expires_in),
                });
                Ok(header)
            }
        }
    }

    /// Forgets the cached token (after Klarna refused it).
    pub async fn invalidate(&self) {
        *self.token.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_three_failures_in_ten_minutes() {
        let start = Instant::now();
        let mut guard = AuthGuard::new(Duration::from_secs(60));
        let mut failures = Vec::new();
        let mut t = start;
        // Try every 10 seconds for an hour; fail whenever the guard lets us send.
        while t < start + Duration::from_secs(3600) {
            if guard.check(t).is_ok() {
                guard.record_failure(t);
                failures.push(t);
            }
            t += Duration::from_secs(10);
        }
        for (i, first) in failures.iter().enumerate() {
            let in_window = failures[i..]
                .iter()
                .take_while(|f| f.duration_since(*first) < FAILURE_WINDOW)
                .count();
            assert!(
                in_window <= MAX_FAILURES,
                "{in_window} failures within 10 minutes"
            );
        }
        assert!(
            failures.len() >= 3,
            "the guard still lets a later attempt through"
        );
    }

    #[test]
    fn a_failure_blocks_for_the_cooldown_and_reset_lifts_it() {
        let now = Instant::now();
        let mut guard = AuthGuard::new(Duration::from_secs(300));
        guard.record_failure(now);
        assert_eq!(
            guard.check(now + Duration::from_secs(299)),
            Err(now + Duration::from_secs(300))
        );
        assert_eq!(guard.check(now + Duration::from_secs(300)), Ok(()));
        guard.record_failure(now);
        guard.reset();
        assert_eq!(guard.check(now), Ok(()));
    }
}
