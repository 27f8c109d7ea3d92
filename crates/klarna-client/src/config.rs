//! Where the client talks to and as whom: regions and environments, the three ways to
//! authenticate, timeouts and the retry budget.

use std::time::Duration;

use crate::retry::RetryPolicy;

/// A string that never prints and is wiped when dropped: passwords, API keys, client
/// secrets, bearer tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(zeroize::Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(zeroize::Zeroizing::new(value.into()))
    }
    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// Looks up Basic credentials (username, password) at the moment a request needs them —
/// for callers that keep them sealed rather than in memory.
pub type CredentialSource = std::sync::Arc<dyn Fn() -> Option<(String, Secret)> + Send + Sync>;

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Self::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
            Self::Dynamic(_) => f.write_str("Dynamic(<looked up per request>)"),
            Self::OAuth2 {
                token_url,
                client_id,
                ..
            } => write!(f, "OAuth2({token_url}, {client_id}, <redacted>)"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// Europe (and the default).
    Eu,
    /// North America: US, CA, MX.
    Na,
    /// Oceania: AU, NZ.
    Oc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Live,
    Playground,
}

/// Klarna's API host for a region and environment.
pub fn base_url(region: Region, environment: Environment) -> &'static str {
    match (region, environment) {
        (Region::Eu, Environment::Live) => "https://api.klarna.com",
        (Region::Na, Environment::Live) => "https://api-na.klarna.com",
        (Region::Oc, Environment::Live) => "https://api-oc.klarna.com",
        (Region::Eu, Environment::Playground) => "https://api.playground.klarna.com",
        (Region::Na, Environment::Playground) => "https://api-na.playground.klarna.com",
        (Region::Oc, Environment::Playground) => "https://api-oc.playground.klarna.com",
    }
}

/// How requests prove who they are.
#[derive(Clone)]
pub enum Auth {
    /// Klarna's classic API credentials: HTTP Basic `username:password`.
    Basic { username: String, password: Secret },
    /// Klarna's newer API key (`klarna_test_api_…`), sent as `Authorization: Basic <key>`.
    ApiKey(Secret),
    /// HTTP Basic with credentials fetched for each request and dropped right after.
    Dynamic(CredentialSource),
    /// For deployments that put a token-issuing proxy in front of Klarna (not a Klarna
    /// feature): OAuth2 client credentials; the bearer token is cached and refreshed
    /// ahead of expiry by one request however many callers wait.
    OAuth2 {
        token_url: String,
        client_id: String,
        client_secret: Secret,
        scope: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The API host: [`base_url`], or the sandbox's URL in tests and demos.
    pub base_url: String,
    pub auth: Auth,
    /// Total time for one attempt (connect, send, receive).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    /// After a 401 the client sends nothing with these credentials for this long.
    pub auth_cooldown: Duration,
    /// The merchant's Odoo version, named in the `User-Agent` when known.
    pub odoo_version: Option<String>,
}

impl Config {
    pub fn new(base_url: impl Into<String>, auth: Auth) -> Self {
        Self {
            base_url: base_url.into(),
            auth,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            retry: RetryPolicy::default(),
            auth_cooldown: Duration::from_secs(5 * 60),
            odoo_version: None,
        }
    }

    /// Basic credentials, the common case.
    pub fn basic(base_url: impl Into<String>, username: &str, password: &str) -> Self {
        Self::new(
            base_url,
            Auth::Basic {
                username: username.to_owned(),
                password: Secret::new(password),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let auth = Auth::Basic {
            username: "merchant".into(),
            password: Secret::new("hunter2"),
        };
        assert!(!format!("{auth:?}").contains("hunter2"));
        assert_eq!(
            base_url(Region::Na, Environment::Playground),
            "https://api-na.playground.klarna.com"
        );
    }
}
