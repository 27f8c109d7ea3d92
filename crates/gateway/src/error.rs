//! The gateway's one error type, and its one mapping to HTTP.
//!
//! Every error the browser or an operator sees has a stable `code` and a sentence that
//! names the problem. Internal details (SQL, Klarna's raw answers, secrets) are logged,
//! never returned.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use klarna_client::ClientError;
use klarna_types::contract::ApiError;
use klarna_types::mapping::MappingError;

use crate::odoo::OdooError;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{field}: {reason}")]
    InvalidRequest { field: String, reason: String },
    #[error("no sale order matches this order reference and access token")]
    OrderNotFound,
    #[error("no checkout session {0:?}; start the checkout again")]
    SessionNotFound(String),
    #[error("this session's payment is being authorized already")]
    AuthorizationInProgress,
    #[error("the authorization is unknown or expired at Klarna; authorize again")]
    AuthorizationExpired,
    #[error("the order cannot be paid with Klarna: {0}")]
    NotPayable(#[from] MappingError),
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
}

impl GatewayError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidRequest {
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::InvalidRequest { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
            Self::OrderNotFound => (StatusCode::NOT_FOUND, "order_not_found"),
            Self::SessionNotFound(_) => (StatusCode::NOT_FOUND, "session_not_found"),
            Self::AuthorizationInProgress => (StatusCode::CONFLICT, "authorization_in_progress"),
            Self::AuthorizationExpired => (StatusCode::GONE, "authorization_expired"),
            Self::NotPayable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "order_not_payable"),
            Self::Klarna(e) if e.is_retryable() => {
                (StatusCode::SERVICE_UNAVAILABLE, "klarna_unavailable")
            }
            Self::Klarna(_) => (StatusCode::BAD_GATEWAY, "klarna_error"),
            Self::Odoo(_) => (StatusCode::BAD_GATEWAY, "odoo_unavailable"),
            Self::Store(_) | Self::Migrate(_) | Self::Config(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }

    /// What the caller may read: no SQL, no Odoo internals, Klarna's code and
    /// correlation id but not its raw messages.
    fn public_message(&self) -> String {
        match self {
            Self::Klarna(e) => format!(
                "Klarna could not handle the request ({}{})",
                e.error_code.as_deref().unwrap_or("no error code"),
                e.correlation_id
                    .as_deref()
                    .map(|c| format!(", correlation id {c}"))
                    .unwrap_or_default()
            ),
            Self::Odoo(_) => "the shop's Odoo could not be read; try again shortly".into(),
            Self::Store(_) | Self::Migrate(_) | Self::Config(_) => "internal error".into(),
            other => other.to_string(),
        }
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
