//! One error type for every Klarna call: what kind of failure (retryable or business),
//! and Klarna's own `error_code`, messages and correlation id when it sent them.
//! Nothing in it ever holds a credential, a token, or a request body.

use klarna_types::klarna::ErrorBody;
use reqwest::StatusCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401: the credentials are wrong or revoked.
    InvalidCredentials,
    /// The client refuses to send after an authentication failure (the lock-out guard).
    AuthLocked,
    /// 404: unknown or expired session, authorization token, order, capture or refund.
    NotFound,
    /// 403 `CAPTURE_NOT_ALLOWED`.
    CaptureNotAllowed,
    /// 403 `REFUND_NOT_ALLOWED`.
    RefundNotAllowed,
    /// 403 `CANCEL_NOT_ALLOWED`.
    CancelNotAllowed,
    /// 403 `REJECTED`: Klarna declined (an authorization, a risk check).
    Rejected,
    /// Any other 403 (`NOT_ALLOWED`, `INVALID_OPERATION`, `MERCHANT_INACTIVE`, ...).
    NotAllowed,
    /// 400/422: Klarna rejected the data; see [`ClientError::fields`].
    Validation,
    /// 409: the data differs from what was authorized, or a conflicting operation.
    Conflict,
    /// 429 after every retry.
    RateLimited,
    /// 5xx or no connection, after every retry.
    Unavailable,
    /// No answer in time, after every retry.
    Timeout,
    /// Klarna answered 2xx with a body we could not read.
    Decode,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.describe())]
pub struct ClientError {
    pub kind: ErrorKind,
    pub status: Option<u16>,
    pub error_code: Option<String>,
    pub messages: Vec<String>,
    pub correlation_id: Option<String>,
    /// Attempts made, the first included.
    pub attempts: u32,
}

impl ClientError {
    fn describe(&self) -> String {
        let what = match self.kind {
            ErrorKind::InvalidCredentials => "Klarna refused the API credentials",
            ErrorKind::AuthLocked => {
                "requests to Klarna are paused after an authentication failure"
            }
            ErrorKind::NotFound => "Klarna does not know it (or it expired)",
            ErrorKind::CaptureNotAllowed => "Klarna does not allow this capture",
            ErrorKind::RefundNotAllowed => "Klarna does not allow this refund",
            ErrorKind::CancelNotAllowed => "Klarna does not allow cancelling this order",
            ErrorKind::Rejected => "Klarna rejected it",
            ErrorKind::NotAllowed => "Klarna does not allow this operation",
            ErrorKind::Validation => "Klarna rejected the data",
            ErrorKind::Conflict => "Klarna reports a conflict",
            ErrorKind::RateLimited => "Klarna's rate limit was hit",
            ErrorKind::Unavailable => "Klarna is unavailable",
            ErrorKind::Timeout => "Klarna did not answer in time",
            ErrorKind::Decode => "Klarna's answer could not be read",
        };
        let mut out = what.to_owned();
        if let Some(s) = self.status {
            out.push_str(&format!(" (HTTP {s}"));
            if let Some(c) = &self.error_code {
                out.push_str(&format!(", {c}"));
            }
            out.push(')');
        }
        if !self.messages.is_empty() {
            out.push_str(": ");
            out.push_str(&self.messages.join("; "));
        }
        if let Some(c) = &self.correlation_id {
            out.push_str(&format!(" [correlation id {c}]"));
        }
        if self.attempts > 1 {
            out.push_str(&format!(" after {} attempts", self.attempts));
        }
        out
    }

    /// Transient: worth trying again later (rate limits, outages, timeouts).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::RateLimited | ErrorKind::Unavailable | ErrorKind::Timeout
        )
    }

    /// The field paths Klarna named in a validation error ("Bad value: order_lines[0].tax_rate").
    pub fn fields(&self) -> Vec<String> {
        self.messages
            .iter()
            .filter_map(|m| {
                let rest = m
                    .strip_prefix("Bad value: ")
                    .or_else(|| m.strip_prefix("Invalid value: "))
                    .or_else(|| m.strip_prefix("Missing value: "))?;
                rest.split([' ', '(']).next().map(str::to_owned)
            })
            .filter(|f| !f.is_empty())
            .collect()
    }

    fn bare(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            error_code: None,
            messages: vec![message.into()],
            correlation_id: None,
            attempts: 1,
        }
    }

    pub(crate) fn transport(e: &reqwest::Error, route: &str, attempts: u32) -> Self {
        // reqwest's own message can hold the URL, and the URL an authorization token.
        let (kind, what) = if e.is_timeout() {
            (ErrorKind::Timeout, "no answer in time")
        } else if e.is_connect() {
            (ErrorKind::Unavailable, "could not connect")
        } else {
            (ErrorKind::Unavailable, "the connection broke")
        };
        Self {
            attempts,
            ..Self::bare(kind, format!("{route}: {what}"))
        }
    }

    pub(crate) fn decode(route: &str, what: &str) -> Self {
        Self::bare(ErrorKind::Decode, format!("{route}: {what}"))
    }

    pub(crate) fn credentials(status: u16, message: &str) -> Self {
        Self {
            status: Some(status),
            ..Self::bare(ErrorKind::InvalidCredentials, message)
        }
    }

    pub(crate) fn locked(seconds_left: u64) -> Self {
        Self::bare(
            ErrorKind::AuthLocked,
            format!(
                "the last attempt failed authentication; no request is sent for {seconds_left} s \
                 (or until the credentials are replaced), so the merchant account is not locked"
            ),
        )
    }

    pub(crate) fn from_status(status: StatusCode, body: Option<ErrorBody>, attempts: u32) -> Self {
        let body = body.unwrap_or_default();
        let code = Some(body.error_code.clone()).filter(|c| !c.is_empty());
        let kind = match (status.as_u16(), code.as_deref()) {
            (401, _) => ErrorKind::InvalidCredentials,
            (403, Some("CAPTURE_NOT_ALLOWED")) => ErrorKind::CaptureNotAllowed,
            (403, Some("REFUND_NOT_ALLOWED")) => ErrorKind::RefundNotAllowed,
            (403, Some("CANCEL_NOT_ALLOWED")) => ErrorKind::CancelNotAllowed,
            (403, Some("REJECTED")) => ErrorKind::Rejected,
            (403, _) => ErrorKind::NotAllowed,
            (404, _) => ErrorKind::NotFound,
            (409, _) => ErrorKind::Conflict,
            (429, _) => ErrorKind::RateLimited,
            (500..=599, _) => ErrorKind::Unavailable,
            _ => ErrorKind::Validation,
        };
        Self {
            kind,
            status: Some(status.as_u16()),
            error_code: code,
            messages: body.messages(),
            correlation_id: Some(body.correlation_id).filter(|c| !c.is_empty()),
            attempts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn klarna_codes_map_to_kinds_and_fields_are_extracted() {
        let body = |code: &str, msgs: &[&str]| ErrorBody {
            error_code: code.into(),
            error_messages: msgs.iter().map(|m| (*m).to_owned()).collect(),
            correlation_id: "c-1".into(),
            ..ErrorBody::default()
        };
        let e = ClientError::from_status(
            StatusCode::FORBIDDEN,
            Some(body("CAPTURE_NOT_ALLOWED", &[])),
            1,
        );
        assert_eq!(e.kind, ErrorKind::CaptureNotAllowed);
        assert!(!e.is_retryable());
        let e = ClientError::from_status(
            StatusCode::BAD_REQUEST,
            Some(body(
                "BAD_VALUE",
                &["Bad value: order_lines[0].tax_rate", "Bad value: locale"],
            )),
            1,
        );
        assert_eq!(e.kind, ErrorKind::Validation);
        assert_eq!(e.fields(), ["order_lines[0].tax_rate", "locale"]);
        assert!(e.to_string().contains("correlation id c-1"));
        let e = ClientError::from_status(StatusCode::SERVICE_UNAVAILABLE, None, 4);
        assert!(e.is_retryable());
        assert!(e.to_string().contains("after 4 attempts"));
    }
}
