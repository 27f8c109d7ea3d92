//! Klarna's answers, shared by every endpoint: [`KlarnaError`] in Klarna's error format,
//! [`Reply`] (a complete answer that idempotent replay can store and give again), and
//! [`new_id`] for Klarna-style identifiers.
//!
//! A leaf: it imports nothing from the rest of the sandbox, so the state, the endpoints
//! and the fault layer can all build on it without going round in a circle.

use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use klarna_types::klarna::ErrorBody;
use serde::Serialize;

/// A new opaque identifier in Klarna's style (a UUID).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

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
