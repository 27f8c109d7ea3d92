//! What every Klarna endpoint of the sandbox shares: Klarna's error format, merchant
//! authentication (Basic, API key, and the sandbox-only OAuth2 bearer), the sandbox-only
//! lock-out, and answers that can be stored for idempotent replay.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::extract::rejection::JsonRejection;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use klarna_types::klarna::ErrorBody;
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::state::{Sandbox, new_id};

/// Failed logins within this window count towards the sandbox-only lock-out.
pub const LOCKOUT_WINDOW: Duration = Duration::from_secs(10 * 60);
pub const LOCKOUT_FOR: Duration = Duration::from_secs(15 * 60);

/// An error in Klarna's format: `{error_code, error_messages, correlation_id}`.
#[derive(Debug, Clone)]
pub struct KlarnaError {
    pub status: StatusCode,
    pub code: &'static str,
    pub messages: Vec<String>,
}

impl KlarnaError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            messages: vec![message.into()],
        }
    }

    pub fn bad_value(messages: Vec<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "BAD_VALUE",
            messages,
        }
    }
}

impl IntoResponse for KlarnaError {
    fn into_response(self) -> Response {
        Reply::error(&self).into_response()
    }
}

impl From<JsonRejection> for KlarnaError {
    fn from(rejection: JsonRejection) -> Self {
        Self::bad_value(vec![format!("Bad value: {}", rejection.body_text())])
    }
}

/// A complete answer: what a handler returns and what idempotent replay stores.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
}

impl Reply {
    pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Some(serde_json::to_vec(value).unwrap_or_default()),
        }
    }

    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn error(e: &KlarnaError) -> Self {
        let correlation_id = new_id();
        Self::json(
            e.status,
            &ErrorBody {
                error_code: e.code.to_owned(),
                error_messages: e.messages.clone(),
                correlation_id: correlation_id.clone(),
                ..ErrorBody::default()
            },
        )
        .header("klarna-correlation-id", correlation_id)
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
        if !headers.contains_key("klarna-correlation-id")
            && let Ok(v) = HeaderValue::from_str(&new_id())
        {
            headers.insert("klarna-correlation-id", v);
        }
        match self.body {
            Some(body) => {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                (self.status, headers, body).into_response()
            }
            None => (self.status, headers).into_response(),
        }
    }
}

/// A request authenticated as the sandbox's merchant: HTTP Basic `username:password`,
/// `Basic <api key>`, or (sandbox-only) `Bearer <token from /oauth2/token>`.
pub struct MerchantAuth;

fn unauthorized() -> KlarnaError {
    KlarnaError::new(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "Missing or invalid credentials",
    )
}

fn eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl FromRequestParts<Arc<Sandbox>> for MerchantAuth {
    type Rejection = KlarnaError;

    async fn from_request_parts(
        parts: &mut Parts,
        sandbox: &Arc<Sandbox>,
    ) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let cfg = &sandbox.config;
        let ok = if let Some(token) = value.strip_prefix("Bearer ") {
            sandbox.bearer_valid(token.trim())
        } else if let Some(encoded) = value.strip_prefix("Basic ") {
            let encoded = encoded.trim();
            let api_key = !cfg.api_key.is_empty() && eq(encoded, &cfg.api_key);
            let basic = STANDARD
                .decode(encoded)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .is_some_and(|pair| eq(&pair, &format!("{}:{}", cfg.username, cfg.password)));
            api_key || basic
        } else {
            false
        };
        // Sandbox-only: a merchant that failed too often is locked out for a while, even
        // with the right credentials — the behaviour the client's guard protects from.
        if sandbox.locked_out() {
            sandbox.note_auth_failure();
            return Err(KlarnaError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "Too many failed logins: the merchant is locked (sandbox-only rule)",
            ));
        }
        if ok {
            Ok(Self)
        } else {
            sandbox.note_auth_failure();
            Err(unauthorized())
        }
    }
}

/// The JSON body of a Klarna request, with Klarna's `BAD_VALUE` when it is not valid.
pub struct KlarnaJson<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for KlarnaJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = KlarnaError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| Self(v))
            .map_err(KlarnaError::from)
    }
}
