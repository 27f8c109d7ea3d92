//! The widget ↔ gateway contract: what the browser may send and what it gets back.
//!
//! The browser never sends an amount. It names an order (reference + Odoo access token);
//! the gateway reads the amounts from Odoo.

use serde::{Deserialize, Serialize};

use crate::klarna::{FraudStatus, PaymentMethodCategory};

/// `POST /klarna/session`
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// The Odoo sale order's name (`S00043`).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub order_reference: String,
    /// The order's portal access token.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub access_token: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionResponse {
    pub session_id: String,
    pub client_token: String,
    pub payment_method_categories: Vec<PaymentMethodCategory>,
}

/// `POST /klarna/authorize`
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub session_id: String,
    /// What Klarna's SDK gave the widget on approval.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub authorization_token: String,
}

/// What became of an authorization the widget posted.
///
/// On the wire it is internally tagged by `outcome`. It is read through [`AuthorizeWire`]
/// rather than serde's tagged-enum derive: that derive buffers the whole object in serde's
/// `Content` first, which costs the widget's bundle 14 KB of code before wasm-opt.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", try_from = "AuthorizeWire")]
pub enum AuthorizeResponse {
    /// Klarna placed the order. `fraud_status` PENDING means the merchant waits for
    /// Klarna's decision before shipping; the shopper is done either way.
    Authorized {
        order_reference: String,
        klarna_order_id: String,
        fraud_status: FraudStatus,
    },
    /// Klarna refused to place the order.
    Declined { reason: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Authorized,
    Declined,
}

/// [`AuthorizeResponse`] as read: every variant's fields side by side, each optional.
#[derive(Deserialize)]
struct AuthorizeWire {
    outcome: Outcome,
    order_reference: Option<String>,
    klarna_order_id: Option<String>,
    fraud_status: Option<FraudStatus>,
    reason: Option<String>,
}

impl TryFrom<AuthorizeWire> for AuthorizeResponse {
    type Error = &'static str;

    fn try_from(w: AuthorizeWire) -> Result<Self, Self::Error> {
        Ok(match w.outcome {
            Outcome::Authorized => Self::Authorized {
                order_reference: w.order_reference.ok_or("missing field `order_reference`")?,
                klarna_order_id: w.klarna_order_id.ok_or("missing field `klarna_order_id`")?,
                fraud_status: w.fraud_status.ok_or("missing field `fraud_status`")?,
            },
            Outcome::Declined => Self::Declined {
                reason: w.reason.ok_or("missing field `reason`")?,
            },
        })
    }
}

/// Every error the gateway returns to the widget: a stable code and a sentence.
///
/// `code` stays a `String` rather than an [`ErrorCode`]: a widget bundle cached on a
/// storefront may meet a newer gateway, and a code it does not know must still decode
/// (the shopper gets the generic message, the host's `klarna:error` event gets the code
/// as sent). [`ApiError::error_code`] gives the typed view to whoever matches on it; an
/// `Other(String)` variant would carry the same string with more code in the bundle.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    /// The request field at fault, as a path (`access_token`, `order_lines[3].tax_rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// On `order_not_payable`: every field of the order Klarna would refuse, as paths
    /// (`purchase_currency`, `billing_address.postal_code`), so that the widget can tell the
    /// shopper what to change (a currency and country Klarna does not pair is not fixed by
    /// trying again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// The payment as the gateway holds it, on a `state_changed` refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentFigures>,
}

/// A payment's amounts as the gateway holds them, in minor units: what a `state_changed`
/// refusal carries, so that the caller brings its own records in line instead of asking
/// again.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFigures {
    pub currency: String,
    pub authorized: i64,
    /// Captured, with the captures Klarna has not confirmed yet.
    pub captured: i64,
    /// Refunded, with the refunds Klarna has not confirmed yet.
    pub refunded: i64,
    /// Of `captured`, what is still in flight.
    pub captured_in_flight: i64,
    /// Of `refunded`, what is still in flight.
    pub refunded_in_flight: i64,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>, field: Option<String>) -> Self {
        Self {
            code: code.as_str().to_owned(),
            message: message.into(),
            field,
            fields: Vec::new(),
            payment: None,
        }
    }

    /// The code, when it is one this build knows.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::parse(&self.code)
    }
}

/// Declares [`ErrorCode`] from one list, so the variants, their wire names, serde's names
/// and [`ErrorCode::ALL`] cannot drift apart.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $wire:literal,)*) => {
        /// The stable `code` of every error body the gateway sends (widget API, admin
        /// API, front door, webhooks); `docs/gateway-api.md` and `docs/webhooks.md` say
        /// when each is used. On the wire it is the snake_case string.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum ErrorCode {
            $($(#[doc = $doc])* #[serde(rename = $wire)] $variant,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The wire name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)*
                }
            }

            /// The inverse of [`Self::as_str`]; `None` for a code this build does not know.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($wire => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    /// A field is missing, malformed, too long or not part of the contract (`field`).
    InvalidRequest = "invalid_request",
    /// No sale order matches the reference and access token.
    OrderNotFound = "order_not_found",
    SessionNotFound = "session_not_found",
    PaymentNotFound = "payment_not_found",
    /// A missing thing that is none of the above (a job, a webhook event, a route).
    NotFound = "not_found",
    /// The route does not take the request's method (`Allow` names those it takes).
    MethodNotAllowed = "method_not_allowed",
    AuthorizationInProgress = "authorization_in_progress",
    /// Klarna no longer knows the authorization token.
    AuthorizationExpired = "authorization_expired",
    /// The Odoo order changed after the shopper authorized; the session carries the new cart.
    CartChanged = "cart_changed",
    /// The order breaks Klarna's rules; every field path is in the message.
    OrderNotPayable = "order_not_payable",
    // The payment state machine's refusals (`payment::Refusal`).
    WrongCurrency = "wrong_currency",
    AmountNotPositive = "amount_not_positive",
    NotAllowedInThisState = "not_allowed_in_this_state",
    FraudDecisionPending = "fraud_decision_pending",
    CaptureExceedsRemaining = "capture_exceeds_remaining",
    RefundExceedsCaptured = "refund_exceeds_captured",
    UnknownCapture = "unknown_capture",
    /// A refund's `capture_operation_id` is not a succeeded capture of this payment:
    /// nothing was done.
    UnknownCaptureOperation = "unknown_capture_operation",
    CancelAfterCapture = "cancel_after_capture",
    ReleaseWithoutCapture = "release_without_capture",
    NothingToRelease = "nothing_to_release",
    /// An order edit would authorize less than was already captured.
    AmountBelowCaptured = "amount_below_captured",
    /// A cancel, release or extend of this payment is in flight.
    OperationInProgress = "operation_in_progress",
    /// Another admin request with the same `Idempotency-Key` is being worked on.
    InProgress = "in_progress",
    /// The payment is not what the caller expected (`expected_captured`,
    /// `expected_refunded`): nothing was done; `payment` says what it is.
    StateChanged = "state_changed",
    /// Klarna refused the operation for good.
    Refused = "refused",
    /// A saved Klarna that cannot be charged (cancelled here or at Klarna, suspended).
    TokenNotChargeable = "token_not_chargeable",
    /// Admin API without the right bearer token.
    Unauthorized = "unauthorized",
    /// Klarna is unreachable or rate-limited after the client's retries.
    KlarnaUnavailable = "klarna_unavailable",
    KlarnaError = "klarna_error",
    OdooUnavailable = "odoo_unavailable",
    Internal = "internal",
    // The front door (`frontdoor.rs`).
    /// A browser request from a page that is not a configured storefront.
    OriginNotAllowed = "origin_not_allowed",
    RateLimited = "rate_limited",
    /// The address is not on the webhook allow-list.
    Forbidden = "forbidden",
    /// The address is blocked after repeated verification failures.
    Blocked = "blocked",
    /// Too many connections or requests in flight; try again shortly.
    Overloaded = "overloaded",
    /// The request's body did not arrive within the listener's body timeout.
    BodyTimeout = "body_timeout",
    // Webhook refusals (`docs/webhooks.md`).
    TooLarge = "too_large",
    ContentType = "content_type",
    MissingHeader = "missing_header",
    MalformedSignature = "malformed_signature",
    UnknownKey = "unknown_key",
    RevokedKey = "revoked_key",
    BadSignature = "bad_signature",
    MalformedJson = "malformed_json",
    WrongShape = "wrong_shape",
    StaleEvent = "stale_event",
    FutureEvent = "future_event",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_parses_back_from_its_name_and_serde_agrees() {
        for &code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert_eq!(code.to_string(), code.as_str());
            assert_eq!(
                serde_json::to_value(code).expect("serialize"),
                serde_json::Value::String(code.as_str().to_owned())
            );
            let back: ErrorCode =
                serde_json::from_value(serde_json::Value::String(code.as_str().to_owned()))
                    .expect("deserialize");
            assert_eq!(back, code);
        }
    }

    #[test]
    fn error_code_names_are_distinct_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s} is not snake_case"
            );
        }
    }

    #[test]
    fn an_unknown_code_from_a_newer_gateway_still_decodes() {
        let e: ApiError =
            serde_json::from_str(r#"{"code":"brand_new","message":"m"}"#).expect("decodes");
        assert_eq!(e.code, "brand_new");
        assert_eq!(e.error_code(), None);
        assert!(serde_json::from_str::<ErrorCode>(r#""brand_new""#).is_err());
        let known = ApiError::new(ErrorCode::CartChanged, "m", None);
        assert_eq!(known.error_code(), Some(ErrorCode::CartChanged));
        assert_eq!(
            serde_json::to_string(&known).expect("serialize"),
            r#"{"code":"cart_changed","message":"m"}"#
        );
    }

    #[test]
    fn an_authorize_response_reads_back_what_the_gateway_writes() {
        for sent in [
            AuthorizeResponse::Authorized {
                order_reference: "S00042".into(),
                klarna_order_id: "kord-1".into(),
                fraud_status: FraudStatus::Pending,
            },
            AuthorizeResponse::Declined {
                reason: "refused".into(),
            },
        ] {
            let json = serde_json::to_value(&sent).expect("serialize");
            assert!(json["outcome"].is_string(), "{json}");
            let back: AuthorizeResponse = serde_json::from_value(json).expect("deserialize");
            assert_eq!(back, sent);
        }
        let extra: AuthorizeResponse =
            serde_json::from_str(r#"{"outcome":"declined","reason":"r","since":"later"}"#)
                .expect("an unknown extra field is ignored");
        assert_eq!(extra, AuthorizeResponse::Declined { reason: "r".into() });
    }

    #[test]
    fn an_authorize_response_missing_its_outcome_s_field_names_it() {
        let err = |json: &str| {
            serde_json::from_str::<AuthorizeResponse>(json)
                .expect_err(json)
                .to_string()
        };
        assert!(
            err(r#"{"outcome":"authorized","order_reference":"S1","fraud_status":"ACCEPTED"}"#)
                .contains("klarna_order_id")
        );
        assert!(err(r#"{"outcome":"declined"}"#).contains("reason"));
        assert!(err(r#"{"reason":"r"}"#).contains("outcome"));
        assert!(err(r#"{"outcome":"maybe","reason":"r"}"#).contains("maybe"));
    }
}
