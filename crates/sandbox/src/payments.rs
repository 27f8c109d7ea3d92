//! Klarna Payments API v1: sessions and orders from authorizations.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use klarna_types::klarna::{
    AssetUrls, ErrorBody, FraudStatus, OrderBody, OrderCreated, PaymentMethodCategory,
    SessionCreated,
};
use klarna_types::rules::check_amounts;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::state::{
    AUTHORIZATION_TTL, Order, SESSION_TTL, Sandbox, Session, SessionStatus, new_id, now, unix,
};

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/payments/v1/sessions", post(create_session))
        .route(
            "/payments/v1/sessions/{session_id}",
            get(read_session).post(update_session),
        )
        .route(
            "/payments/v1/authorizations/{token}/order",
            post(create_order),
        )
        .route("/_sandbox/orders", get(list_orders))
}

/// An error in Klarna's format: `{error_code, error_messages, correlation_id}`.
#[derive(Debug)]
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
}

impl IntoResponse for KlarnaError {
    fn into_response(self) -> Response {
        let correlation_id = new_id();
        let body = ErrorBody {
            error_code: self.code.to_owned(),
            error_messages: self.messages,
            correlation_id: correlation_id.clone(),
        };
        (
            self.status,
            [("klarna-correlation-id", correlation_id)],
            Json(body),
        )
            .into_response()
    }
}

impl From<JsonRejection> for KlarnaError {
    fn from(rejection: JsonRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "BAD_VALUE",
            format!("Bad value: {}", rejection.body_text()),
        )
    }
}

/// HTTP Basic with the sandbox's merchant credentials, compared in constant time.
pub struct MerchantAuth;

impl FromRequestParts<Arc<Sandbox>> for MerchantAuth {
    type Rejection = KlarnaError;

    async fn from_request_parts(
        parts: &mut Parts,
        sandbox: &Arc<Sandbox>,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = || {
            KlarnaError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "Missing or invalid credentials",
            )
        };
        let given = basic_credentials(&parts.headers).ok_or_else(unauthorized)?;
        let expected = format!("{}:{}", sandbox.config.username, sandbox.config.password);
        if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(Self)
        } else {
            Err(unauthorized())
        }
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()
}

/// The checks Klarna makes on a session or order body before looking at anything else.
fn validate(body: &OrderBody) -> Result<(), KlarnaError> {
    let mut bad = Vec::new();
    if body.purchase_country.len() != 2
        || !body
            .purchase_country
            .chars()
            .all(|c| c.is_ascii_alphabetic())
    {
        bad.push("Bad value: purchase_country".to_owned());
    }
    if body.purchase_currency.len() != 3
        || !body
            .purchase_currency
            .chars()
            .all(|c| c.is_ascii_alphabetic())
    {
        bad.push("Bad value: purchase_currency".to_owned());
    }
    if let Some(locale) = &body.locale {
        let mut parts = locale.split('-');
        let ok = parts.next().is_some_and(|p| p.len() == 2)
            && parts.all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_alphabetic()));
        if !ok {
            bad.push("Bad value: locale".to_owned());
        }
    }
    bad.extend(
        check_amounts(body)
            .into_iter()
            .map(|v| format!("Bad value: {} ({})", v.field, v.reason)),
    );
    if bad.is_empty() {
        Ok(())
    } else {
        Err(KlarnaError {
            status: StatusCode::BAD_REQUEST,
            code: "BAD_VALUE",
            messages: bad,
        })
    }
}

/// A JWT-shaped client token naming the session, as Klarna's is (the SDK checks the shape).
fn client_token(session_id: &str, base_url: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({"session_id": session_id, "base_url": base_url, "iat": unix(now())});
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
    format!("{header}.{payload}.{signature}")
}

/// The categories the sandbox offers every session, with Klarna's asset shapes.
pub fn categories(base_url: &str) -> Vec<PaymentMethodCategory> {
    [
        ("pay_later", "Pay later."),
        ("pay_now", "Pay now."),
        ("pay_over_time", "Financing."),
    ]
    .into_iter()
    .map(|(identifier, name)| PaymentMethodCategory {
        identifier: identifier.to_owned(),
        name: name.to_owned(),
        asset_urls: AssetUrls {
            descriptive: Some(format!("{base_url}/kp/assets/{identifier}-descriptive.svg")),
            standard: Some(format!("{base_url}/kp/assets/{identifier}.svg")),
        },
    })
    .collect()
}

async fn create_session(
    State(sandbox): State<Arc<Sandbox>>,
    _auth: MerchantAuth,
    body: Result<Json<OrderBody>, JsonRejection>,
) -> Result<Json<SessionCreated>, KlarnaError> {
    let Json(body) = body?;
    validate(&body)?;
    let id = new_id();
    let token = client_token(&id, &sandbox.base_url);
    sandbox.state().sessions.insert(
        id.clone(),
        Session {
            id: id.clone(),
            client_token: token.clone(),
            body,
            status: SessionStatus::Incomplete,
            created_at: now(),
        },
    );
    Ok(Json(SessionCreated {
        session_id: id,
        client_token: token,
        payment_method_categories: categories(&sandbox.base_url),
    }))
}

fn live_session<'a>(
    sessions: &'a mut std::collections::HashMap<String, Session>,
    id: &str,
) -> Result<&'a mut Session, KlarnaError> {
    match sessions.get_mut(id) {
        Some(s) if now().duration_since(s.created_at).unwrap_or_default() < SESSION_TTL => Ok(s),
        _ => Err(KlarnaError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Session not found",
        )),
    }
}

async fn read_session(
    State(sandbox): State<Arc<Sandbox>>,
    _auth: MerchantAuth,
    Path(session_id): Path<String>,
) -> Result<Json<serde_json::Value>, KlarnaError> {
    let mut state = sandbox.state();
    let session = live_session(&mut state.sessions, &session_id)?;
    let mut value = serde_json::to_value(&session.body).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("status".into(), json!(session.status));
        map.insert("client_token".into(), json!(session.client_token));
        map.insert(
            "expires_at".into(),
            json!(unix(session.created_at + SESSION_TTL)),
        );
        map.insert(
            "payment_method_categories".into(),
            json!(categories(&sandbox.base_url)),
        );
    }
    Ok(Json(value))
}

async fn update_session(
    State(sandbox): State<Arc<Sandbox>>,
    _auth: MerchantAuth,
    Path(session_id): Path<String>,
    body: Result<Json<OrderBody>, JsonRejection>,
) -> Result<StatusCode, KlarnaError> {
    let Json(body) = body?;
    validate(&body)?;
    let mut state = sandbox.state();
    let session = live_session(&mut state.sessions, &session_id)?;
    if session.status == SessionStatus::Complete {
        return Err(KlarnaError::new(
            StatusCode::NOT_FOUND,
            "SESSION_COMPLETED",
            "Session is already completed",
        ));
    }
    session.body = body;
    Ok(StatusCode::NO_CONTENT)
}

/// The fields Klarna compares between the authorized cart and the order it is asked to
/// place; any difference is a 409 "Not matching fields".
fn mismatched_fields(authorized: &OrderBody, placed: &OrderBody) -> Vec<&'static str> {
    let mut out = Vec::new();
    if authorized.purchase_country != placed.purchase_country {
        out.push("purchase_country");
    }
    if authorized.purchase_currency != placed.purchase_currency {
        out.push("purchase_currency");
    }
    if authorized.order_amount != placed.order_amount {
        out.push("order_amount");
    }
    if authorized.order_tax_amount != placed.order_tax_amount {
        out.push("order_tax_amount");
    }
    if authorized.order_lines != placed.order_lines {
        out.push("order_lines");
    }
    out
}

async fn create_order(
    State(sandbox): State<Arc<Sandbox>>,
    _auth: MerchantAuth,
    Path(token): Path<String>,
    body: Result<Json<OrderBody>, JsonRejection>,
) -> Result<Json<OrderCreated>, KlarnaError> {
    let Json(body) = body?;
    validate(&body)?;
    let mut state = sandbox.state();
    let invalid_token = || {
        KlarnaError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Invalid authorization token",
        )
    };
    let authorization = state
        .authorizations
        .get(&token)
        .filter(|a| {
            !a.consumed
                && now().duration_since(a.created_at).unwrap_or_default() < AUTHORIZATION_TTL
        })
        .cloned()
        .ok_or_else(invalid_token)?;
    let mismatched = mismatched_fields(&authorization.body, &body);
    if !mismatched.is_empty() {
        return Err(KlarnaError::new(
            StatusCode::CONFLICT,
            "BAD_VALUE",
            format!("Not matching fields: [{}]", mismatched.join(", ")),
        ));
    }
    let order = Order {
        order_id: new_id(),
        session_id: authorization.session_id.clone(),
        status: "AUTHORIZED",
        fraud_status: FraudStatus::Accepted,
        order_amount: body.order_amount,
        purchase_currency: body.purchase_currency.clone(),
        merchant_reference1: body.merchant_reference1.clone(),
        created_at: unix(now()),
    };
    if let Some(a) = state.authorizations.get_mut(&token) {
        a.consumed = true;
    }
    if let Some(s) = state.sessions.get_mut(&authorization.session_id) {
        s.status = SessionStatus::Complete;
    }
    state.orders.insert(order.order_id.clone(), order.clone());
    Ok(Json(OrderCreated {
        order_id: order.order_id,
        redirect_url: None,
        fraud_status: order.fraud_status,
        authorized_payment_method: Some(json!({
            "type": if authorization.category == "pay_over_time" { "fixed_amount" } else { "invoice" },
            "number_of_days": 30,
        })),
    }))
}

/// Control endpoint (sandbox only): every order placed so far.
async fn list_orders(State(sandbox): State<Arc<Sandbox>>) -> Json<Vec<Order>> {
    let mut orders: Vec<Order> = sandbox.state().orders.values().cloned().collect();
    orders.sort_by_key(|o| o.created_at);
    Json(orders)
}
