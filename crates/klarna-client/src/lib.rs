//! The gateway's only way to talk to Klarna: a typed async client for the Payments API.
//!
//! Every request has a timeout, names this integration in its `User-Agent`, and is logged
//! with method, path, status and duration only — never credentials, tokens or personal
//! data.

mod error;

use std::time::{Duration, Instant};

use base64::Engine;
use klarna_types::klarna::{ErrorBody, OrderBody, OrderCreated, SessionCreated};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::{ClientError, ErrorKind};

const USER_AGENT: &str = concat!(
    "klarna-odoo-gateway/",
    env!("CARGO_PKG_VERSION"),
    " (Odoo; Rust)"
);

/// Klarna API credentials. `Debug` never prints the password.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `https://api.playground.klarna.com`, a regional host, or the sandbox's URL.
    pub base_url: String,
    pub credentials: Credentials,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

impl Config {
    pub fn new(base_url: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            base_url: base_url.into(),
            credentials,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
        }
    }
}

#[derive(Debug, Clone)]
pub struct KlarnaClient {
    http: reqwest::Client,
    base_url: String,
    authorization: String,
}

impl KlarnaClient {
    pub fn new(config: Config) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| ClientError::transport(&e))?;
        let pair = format!(
            "{}:{}",
            config.credentials.username, config.credentials.password
        );
        let authorization = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        );
        Ok(Self {
            http,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            authorization,
        })
    }

    /// `POST /payments/v1/sessions`
    pub async fn create_session(&self, body: &OrderBody) -> Result<SessionCreated, ClientError> {
        self.send(
            Method::POST,
            "/payments/v1/sessions",
            "/payments/v1/sessions",
            Some(body),
        )
        .await
    }

    /// `POST /payments/v1/authorizations/{authorization_token}/order`
    pub async fn create_order(
        &self,
        authorization_token: &str,
        body: &OrderBody,
    ) -> Result<OrderCreated, ClientError> {
        let path = format!("/payments/v1/authorizations/{authorization_token}/order");
        // The token is a credential: the log shows the route, not the token.
        self.send(
            Method::POST,
            &path,
            "/payments/v1/authorizations/{token}/order",
            Some(body),
        )
        .await
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        route: &'static str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let started = Instant::now();
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_url))
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        let result = request.send().await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(%method, route, elapsed_ms = started.elapsed().as_millis() as u64, "klarna request failed: {}", ClientError::transport(&e));
                return Err(ClientError::transport(&e));
            }
        };
        let status = response.status();
        let correlation_id = response
            .headers()
            .get("klarna-correlation-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        tracing::info!(
            %method,
            route,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            correlation_id = correlation_id.as_deref().unwrap_or(""),
            "klarna request"
        );
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::transport(&e))?;
        if status.is_success() {
            let bytes = if bytes.is_empty() && status == StatusCode::NO_CONTENT {
                &b"null"[..]
            } else {
                &bytes[..]
            };
            serde_json::from_slice(bytes).map_err(|e| ClientError::decode(route, &e))
        } else {
            let body: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
            Err(ClientError::from_status(status, body))
        }
    }
}
