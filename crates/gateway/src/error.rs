//! The gateway's one error type, its one mapping to HTTP, and the JSON extractor whose
//! rejection is that same error.
//!
//! Every error the browser, Odoo, Klarna's webhooks or an operator sees has a stable
//! `code` and a sentence that names the problem. Internal details (SQL, Klarna's raw
//! answers, secrets) are logged, never returned. Handlers return `Result<_, GatewayError>`;
//! the webhook routes' refusals ([`Rejection`]) and the front door's go through the same
//! [`GatewayError::parts`], and the admin API's idempotent replay stores exactly what it
//! produced.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use klarna_client::ClientError;
use klarna_types::contract::{ApiError, ErrorCode, PaymentFigures};
use klarna_types::mapping::MappingError;
use klarna_types::payment::Refusal;
use serde::de::DeserializeOwned;

use crate::json_error;
use crate::odoo::OdooError;
use crate::webhook_verify::Rejection;

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
    /// Anything else looked up by the caller's id that is not there (a job, an event).
    #[error("no {what}")]
    NotFound { what: String },
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
    /// A refund's `capture_operation_id` that names no succeeded capture of the payment.
    #[error("capture_operation_id: {0}")]
    UnknownCaptureOperation(String),
    #[error("another operation on this payment is in progress; try again when it is done")]
    OperationInProgress,
    #[error("{0}")]
    Refused(String),
    /// A saved Klarna that Klarna will not charge (cancelled, suspended).
    #[error("{0}")]
    TokenNotChargeable(String),
    #[error("missing or wrong admin token")]
    Unauthorized,
    /// An Odoo-signed admin request refused, and why (nothing secret is in the reason).
    #[error("Odoo signature refused: {0}")]
    SignatureRefused(&'static str),
    /// The payment is not what the caller believed (`expected_captured`,
    /// `expected_refunded`); nothing was done.
    #[error(
        "the payment changed: {differs}; nothing was done — bring your records in line and ask again if it is still needed"
    )]
    StateChanged {
        differs: String,
        payment: Box<PaymentFigures>,
    },
    /// Another request with the same `Idempotency-Key` is being worked on.
    #[error("a request with this Idempotency-Key is in progress; ask again shortly")]
    InProgress,
    /// A webhook or callback that failed verification.
    #[error("{0}")]
    Webhook(#[from] Rejection),
    #[error("too many requests from this address; slow down")]
    RateLimited { retry_after: Duration },
    #[error("this page's origin is not a configured storefront (allowed_origins)")]
    OriginNotAllowed,
    #[error("this address may not post webhooks")]
    AddressNotAllowed,
    #[error("this address is blocked after repeated verification failures")]
    Blocked,
    #[error("the gateway is at its limit of connections or requests in flight; try again shortly")]
    Overloaded,
    #[error("the request body did not arrive within {} s", .0.as_secs())]
    BodyTimeout(Duration),
    #[error("Klarna: {0}")]
    Klarna(#[from] ClientError),
    #[error("Odoo: {0}")]
    Odoo(#[from] OdooError),
    #[error("storage: {0}")]
    Store(#[from] sqlx::Error),
    #[error("storage: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A value we wrote ourselves could not be read or written as JSON.
    #[error("encoding: {0}")]
    Encoding(#[from] serde_json::Error),
    /// A stored record that breaks what we always write (an unknown currency, a state
    /// name no version wrote).
    #[error("stored data: {0}")]
    Corrupt(String),
    #[error("configuration: {0}")]
    Config(String),
    /// A bug: a task that panicked, a state that cannot be.
    #[error("internal: {0}")]
    Internal(String),
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

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    pub fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            Self::InvalidRequest { .. } => (StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest),
            Self::OrderNotFound => (StatusCode::NOT_FOUND, ErrorCode::OrderNotFound),
            Self::SessionNotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::SessionNotFound),
            Self::PaymentNotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::PaymentNotFound),
            Self::NotFound { .. } => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            Self::AuthorizationInProgress => {
                (StatusCode::CONFLICT, ErrorCode::AuthorizationInProgress)
            }
            Self::AuthorizationExpired => (StatusCode::GONE, ErrorCode::AuthorizationExpired),
            Self::CartChanged => (StatusCode::CONFLICT, ErrorCode::CartChanged),
            Self::NotPayable(_) => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::OrderNotPayable),
            Self::UnknownCaptureOperation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::UnknownCaptureOperation,
            ),
            Self::Refusal(r) => (StatusCode::CONFLICT, refusal_code(r)),
            Self::OperationInProgress => (StatusCode::CONFLICT, ErrorCode::OperationInProgress),
            Self::Refused(_) => (StatusCode::CONFLICT, ErrorCode::Refused),
            Self::TokenNotChargeable(_) => (StatusCode::CONFLICT, ErrorCode::TokenNotChargeable),
            Self::Unauthorized | Self::SignatureRefused(_) => {
                (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized)
            }
            Self::InProgress => (StatusCode::CONFLICT, ErrorCode::InProgress),
            Self::StateChanged { .. } => (StatusCode::CONFLICT, ErrorCode::StateChanged),
            Self::Webhook(r) => rejection_status_and_code(r),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited),
            Self::OriginNotAllowed => (StatusCode::FORBIDDEN, ErrorCode::OriginNotAllowed),
            Self::AddressNotAllowed => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            Self::Blocked => (StatusCode::FORBIDDEN, ErrorCode::Blocked),
            Self::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Overloaded),
            Self::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, ErrorCode::BodyTimeout),
            Self::Klarna(e) if e.is_retryable() => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::KlarnaUnavailable,
            ),
            Self::Klarna(_) => (StatusCode::BAD_GATEWAY, ErrorCode::KlarnaError),
            Self::Odoo(_) => (StatusCode::BAD_GATEWAY, ErrorCode::OdooUnavailable),
            Self::Store(_)
            | Self::Migrate(_)
            | Self::Encoding(_)
            | Self::Corrupt(_)
            | Self::Config(_)
            | Self::Internal(_)
            | Self::Crashed(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
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
            // A refused callback's URL carries a secret: say nothing about it.
            Self::Webhook(Rejection::BadToken) => "no such route".into(),
            // Whatever the one mapping calls internal says nothing more.
            other if other.status_and_code().1 == ErrorCode::Internal => "internal error".into(),
            other => other.to_string(),
        }
    }

    /// The status and the body a caller gets: the one mapping. Logs the error (server
    /// errors at error level, with the internal detail the caller does not see).
    pub fn parts(&self) -> (StatusCode, ApiError) {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(code = code.as_str(), "{self}");
        } else {
            tracing::info!(code = code.as_str(), "{}", self.public_message());
        }
        let field = match self {
            Self::InvalidRequest { field, .. } => Some(field.clone()),
            Self::UnknownCaptureOperation(_) => Some("capture_operation_id".to_owned()),
            // The first rule the order breaks — the market (`purchase_country`,
            // `purchase_currency`, `locale`) is checked first — so that the widget can say
            // why without reading the message; all of them are in the message.
            Self::NotPayable(e) => e.violations().first().map(|v| v.field.clone()),
            _ => None,
        };
        let mut body = ApiError::new(code, self.public_message(), field);
        if let Self::StateChanged { payment, .. } = self {
            body.payment = Some((**payment).clone());
        }
        if let Self::NotPayable(m) = self {
            body.fields = m.violations().into_iter().map(|v| v.field).collect();
        }
        (status, body)
    }
}

fn refusal_code(r: &Refusal) -> ErrorCode {
    match r {
        Refusal::WrongCurrency { .. } => ErrorCode::WrongCurrency,
        Refusal::NotPositive => ErrorCode::AmountNotPositive,
        Refusal::WrongStatus(_) => ErrorCode::NotAllowedInThisState,
        Refusal::FraudNotAccepted(_) => ErrorCode::FraudDecisionPending,
        Refusal::CaptureExceedsRemaining { .. } => ErrorCode::CaptureExceedsRemaining,
        Refusal::RefundExceedsCaptured { .. } => ErrorCode::RefundExceedsCaptured,
        Refusal::UnknownCapture(_) => ErrorCode::UnknownCapture,
        Refusal::CancelAfterCapture => ErrorCode::CancelAfterCapture,
        Refusal::ReleaseWithoutCapture => ErrorCode::ReleaseWithoutCapture,
        Refusal::NothingToRelease => ErrorCode::NothingToRelease,
        Refusal::AmountBelowCaptured { .. } => ErrorCode::AmountBelowCaptured,
    }
}

/// Klarna's guidance is 400 for a signature that does not match; Klarna retries anything
/// but 2xx, so a refused event is never silently lost if it was genuine. A wrong callback
/// token is a plain 404: the route does not exist for whoever does not know it.
fn rejection_status_and_code(r: &Rejection) -> (StatusCode, ErrorCode) {
    match r {
        Rejection::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge),
        Rejection::ContentType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::ContentType),
        Rejection::MissingHeader(_) => (StatusCode::BAD_REQUEST, ErrorCode::MissingHeader),
        Rejection::MalformedSignature => (StatusCode::BAD_REQUEST, ErrorCode::MalformedSignature),
        Rejection::UnknownKey => (StatusCode::BAD_REQUEST, ErrorCode::UnknownKey),
        Rejection::RevokedKey => (StatusCode::BAD_REQUEST, ErrorCode::RevokedKey),
        Rejection::BadSignature => (StatusCode::BAD_REQUEST, ErrorCode::BadSignature),
        Rejection::MalformedJson(_) => (StatusCode::BAD_REQUEST, ErrorCode::MalformedJson),
        Rejection::WrongShape(_) => (StatusCode::BAD_REQUEST, ErrorCode::WrongShape),
        Rejection::Stale => (StatusCode::BAD_REQUEST, ErrorCode::StaleEvent),
        Rejection::Future => (StatusCode::BAD_REQUEST, ErrorCode::FutureEvent),
        Rejection::BadToken => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let (status, body) = self.parts();
        let mut response = (status, Json(body)).into_response();
        if let Self::RateLimited { retry_after } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        GatewayError::Webhook(self).into_response()
    }
}

/// A JSON body whose rejection is a [`GatewayError`] naming what is wrong.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = GatewayError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if !crate::webhook_verify::is_json(content_type) {
            return Err(GatewayError::invalid(
                "content-type",
                "must be application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|r| GatewayError::invalid("body", r.body_text()))?;
        decode_json(&bytes).map(Self)
    }
}

/// A JSON body as [`ApiJson`] decodes it once it is read: one value of `T` and nothing
/// after it, or the field at fault and why (quoting nothing of the body). A pure function
/// of the bytes, so that it can be fuzzed as the routes run it.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, GatewayError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let reason = json_error::describe(e.inner());
        // The path's last step of an unknown field is the sender's key: name its parent.
        let mut steps: Vec<String> = e.path().iter().map(ToString::to_string).collect();
        if reason.starts_with("unknown field") {
            steps.pop();
        }
        let field = if steps.is_empty() {
            "body".to_owned()
        } else {
            steps.join(".")
        };
        GatewayError::invalid(field, reason)
    })?;
    de.end()
        .map_err(|e| GatewayError::invalid("body", json_error::describe(&e)))?;
    Ok(value)
}
