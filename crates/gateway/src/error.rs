//! The gateway's one error type, and its one mapping to HTTP.
//!
//! Every error the browser, Odoo or an operator sees has a stable `code` and a sentence
//! that names the problem. Internal details (SQL, Klarna's raw answers, secrets) are
//! logged, never returned.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use klarna_client::ClientError;
use klarna_types::contract::ApiError;
use klarna_types::mapping::MappingError;
use klarna_types::payment::Refusal;

use crate::odoo::OdooError;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{field}: {reason}")]
    InvalidRequest { field: String, reason: String },
    #[error("no sale order matches this order reference and access token")]
    OrderNotFound,
    #[error("no checkout session {0:?}; start the checkout again")]
    SessionNotFound(String),
    #[error("no payment {0:?}")]
    PaymentNotFound(String),
    #[error("this session's payment is being authorized already")]
    AuthorizationInProgress,
    #[error("the authorization is unknown or expired at Klarna; authorize again")]
    AuthorizationExpired,
    #[error(
        "the order changed in Odoo after it was authorized; review the new total and pay again"
    )]
    CartChanged,
    #[error("the order cannot be paid with Klarna: {0}")]
    NotPayable(#[from] MappingError),
    #[error("{0}")]
    Refusal(#[from] Refusal),
    #[error("another operation on this payment is in progress; try again when it is done")]
    OperationInProgress,
    #[error("{0}")]
    Refused(String),
    #[error("missing or wrong admin token")]
    Unauthorized,
    #[error("Klarna: {0}")]
    Klarna(#[from] ClientError),
    #[error("Odoo: {0}")]
    Odoo(#[from] OdooError),
    #[error("storage: {0}")]
    Store(#[from] sqlx::Error),
    #[error("storage: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("configuration: {0}")]
    Config(String),
    /// A test stopped the work at a step, as a crash would.
    #[error("stopped at {0} (simulated crash)")]
    Crashed(&'static str),
}

impl GatewayError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidRequest {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::InvalidRequest { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            Self::OrderNotFound => (StatusCode::NOT_FOUND, "order_not_found"),
            Self::SessionNotFound(_) => (StatusCode::NOT_FOUND, "session_not_found"),
            Self::PaymentNotFound(_) => (StatusCode::NOT_FOUND, "payment_not_found"),
            Self::AuthorizationInProgress => (StatusCode::CONFLICT, "authorization_in_progress"),
            Self::AuthorizationExpired => (StatusCode::GONE, "authorization_expired"),
            Self::CartChanged => (StatusCode::CONFLICT, "cart_changed"),
            Self::NotPayable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "order_not_payable"),
            Self::Refusal(r) => (StatusCode::CONFLICT, refusal_code(r)),
            Self::OperationInProgress => (StatusCode::CONFLICT, "operation_in_progress"),
            Self::Refused(_) => (StatusCode::CONFLICT, "refused"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Klarna(e) if e.is_retryable() => {
                (StatusCode::SERVICE_UNAVAILABLE, "klarna_unavailable")
            }
            Self::Klarna(_) => (StatusCode::BAD_GATEWAY, "klarna_error"),
            Self::Odoo(_) => (StatusCode::BAD_GATEWAY, "odoo_unavailable"),
            Self::Store(_) | Self::Migrate(_) | Self::Config(_) | Self::Crashed(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }

    /// What the caller may read: no SQL, no Odoo internals, Klarna's code and
    /// correlation id but not its raw messages.
    pub fn public_message(&self) -> String {
        match self {
            Self::Klarna(e) => format!(
                "Klarna could not handle the request ({}{})",
                e.error_code.as_deref().unwrap_or(match e.kind {
                    klarna_client::ErrorKind::Timeout => "no answer in time",
                    klarna_client::ErrorKind::Unavailable => "unavailable",
                    _ => "no error code",
                }),
                e.correlation_id
                    .as_deref()
                    .map(|c| format!(", correlation id {c}"))
                    .unwrap_or_default()
            ),
            Self::Odoo(_) => "the shop's Odoo could not be read; try again shortly".into(),
            Self::Store(_) | Self::Migrate(_) | Self::Config(_) | Self::Crashed(_) => {
                "internal error".into()
            }
            other => other.to_string(),
        }
    }
}

fn refusal_code(r: &Refusal) -> &'static str {
    match r {
        Refusal::WrongCurrency { .. } => "wrong_currency",
        Refusal::NotPositive => "amount_not_positive",
        Refusal::WrongStatus(_) => "not_allowed_in_this_state",
        Refusal::FraudNotAccepted(_) => "fraud_decision_pending",
        Refusal::CaptureExceedsRemaining { .. } => "capture_exceeds_remaining",
        Refusal::RefundExceedsCaptured { .. } => "refund_exceeds_captured",
        Refusal::UnknownCapture(_) => "unknown_capture",
        Refusal::CancelAfterCapture => "cancel_after_capture",
        Refusal::ReleaseWithoutCapture => "release_without_capture",
        Refusal::NothingToRelease => "nothing_to_release",
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(code, "{self}");
        } else {
            tracing::info!(code, "{self}");
        }
        let field = match &self {
            Self::InvalidRequest { field, .. } => Some(field.clone()),
            _ => None,
        };
        let body = ApiError {
            code: code.to_owned(),
            message: self.public_message(),
            field,
        };
        (status, Json(body)).into_response()
    }
}
