//! One error type for every Klarna call: what kind of failure, whether to retry, and
//! Klarna's own `error_code`, messages and correlation id when it sent them.

use klarna_types::klarna::ErrorBody;
use reqwest::StatusCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401: the credentials are wrong or revoked.
    InvalidCredentials,
    /// 403: Klarna refused the operation (`REJECTED`, `*_NOT_ALLOWED`, ...).
    Refused,
    /// 404: unknown or expired session, authorization token or order.
    NotFound,
    /// 400/409/422: Klarna rejected the data.
    Validation,
    /// 429: slow down.
    RateLimited,
    /// 5xx, timeouts, connection errors.
    Unavailable,
    /// Klarna answered 2xx with a body we could not read.
    Decode,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind:?} from Klarna{}: {}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(), describe(.error_code, .messages))]
pub struct ClientError {
    pub kind: ErrorKind,
    pub status: Option<u16>,
    pub error_code: Option<String>,
    pub messages: Vec<String>,
    pub correlation_id: Option<String>,
}

fn describe(code: &Option<String>, messages: &[String]) -> String {
    match (code, messages.is_empty()) {
        (Some(c), false) => format!("{c}: {}", messages.join("; ")),
        (Some(c), true) => c.clone(),
        (None, false) => messages.join("; "),
        (None, true) => "no details".into(),
    }
}

impl ClientError {
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::RateLimited | ErrorKind::Unavailable)
    }

    pub(crate) fn transport(e: &reqwest::Error) -> Self {
        // reqwest's Display can include the URL, which may hold an authorization token.
        let what = if e.is_timeout() {
            "request timed out"
        } else if e.is_connect() {
            "could not connect"
        } else {
            "transport error"
        };
        Self {
            kind: ErrorKind::Unavailable,
            status: None,
            error_code: None,
            messages: vec![what.to_owned()],
            correlation_id: None,
        }
    }

    pub(crate) fn decode(route: &str, e: &serde_json::Error) -> Self {
        Self {
            kind: ErrorKind::Decode,
            status: None,
            error_code: None,
            messages: vec![format!("unreadable answer from {route}: {e}")],
            correlation_id: None,
        }
    }

    pub(crate) fn from_status(status: StatusCode, body: Option<ErrorBody>) -> Self {
        let kind = match status.as_u16() {
            401 => ErrorKind::InvalidCredentials,
            403 => ErrorKind::Refused,
            404 => ErrorKind::NotFound,
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::Validation,
        };
        let body = body.unwrap_or(ErrorBody {
            error_code: String::new(),
            error_messages: Vec::new(),
            correlation_id: String::new(),
        });
        Self {
            kind,
            status: Some(status.as_u16()),
            error_code: Some(body.error_code).filter(|c| !c.is_empty()),
            messages: body.error_messages,
            correlation_id: Some(body.correlation_id).filter(|c| !c.is_empty()),
        }
    }
}
