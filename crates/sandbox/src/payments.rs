//! Klarna Payments API v1: sessions, orders from authorizations, cancelled authorizations
//! and customer tokens — with Klarna's validation and its error codes.
//!
//! Test scenarios ride on the shopper's e-mail, as in Klarna's playground:
//! `…+denied@…` is declined by the SDK's authorize, `…+reject@…` is refused when the order
//! is placed, `…+pend-accept-5@…` / `…+pend-reject-5@…` place a PENDING order that Klarna
//! decides after 5 minutes of sandbox time (see `docs/klarna-sandbox.md`).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use klarna_types::klarna::{
    AssetUrls, AuthorizedPaymentMethod, CustomerTokenCreated, CustomerTokenRequest, FraudStatus,
    Order, OrderBody, OrderCreated, OrderStatus, PaymentMethodCategory, SessionCreated,
    TokenStatus,
};
use klarna_types::rules::check_amounts;
use serde_json::json;

use crate::api::{KlarnaJson, MerchantAuth};
use crate::clock::{rfc3339, unix};
use crate::reply::{KlarnaError, Reply, new_id};
use crate::state::{
    AUTHORIZATION_TTL, CustomerToken, Memory, ORDER_AUTHORIZATION, SESSION_TTL, Sandbox,
    SandboxOrder, Session, SessionStatus,
};
use crate::webhooks;

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
        .route(
            "/payments/v1/authorizations/{token}",
            delete(cancel_authorization),
        )
        .route(
            "/payments/v1/authorizations/{token}/customer-token",
            post(customer_token),
        )
}

fn alpha(s: &str, len: usize) -> bool {
    s.len() == len && s.chars().all(|c| c.is_ascii_alphabetic())
}

/// The checks Klarna makes on a session or order body.
pub fn validate(body: &OrderBody) -> Result<(), KlarnaError> {
    let mut bad = Vec::new();
    if !alpha(&body.purchase_country, 2) {
        bad.push("Bad value: purchase_country".to_owned());
    }
    if !alpha(&body.purchase_currency, 3) {
        bad.push("Bad value: purchase_currency".to_owned());
    }
    if let Some(locale) = &body.locale {
        let mut parts = locale.split('-');
        let ok = parts.next().is_some_and(|p| alpha(p, 2)) && parts.all(|p| alpha(p, 2));
        if !ok {
            bad.push("Bad value: locale".to_owned());
        }
    }
    // Klarna's markets: each country takes one currency and a few locales.
    match klarna_types::validate::market(&body.purchase_country) {
        None if alpha(&body.purchase_country, 2) => {
            bad.push("Bad value: purchase_country (not a Klarna market)".to_owned());
        }
        Some((currency, locales)) => {
            if alpha(&body.purchase_currency, 3)
                && !body.purchase_currency.eq_ignore_ascii_case(currency)
            {
                bad.push(format!(
                    "Bad value: purchase_currency ({} takes {currency})",
                    body.purchase_country
                ));
            }
            if let Some(locale) = &body.locale
                && !locales.iter().any(|l| l.eq_ignore_ascii_case(locale))
            {
                bad.push(format!(
                    "Bad value: locale ({locale} is not served in {})",
                    body.purchase_country
                ));
            }
        }
        None => {}
    }
    // Lengths and values of Klarna's Payments schema (`session_create`,
    // `create_order_request`; `tests/openapi.rs` holds this list against the document).
    for (name, line) in body.order_lines.iter().enumerate() {
        for (field, value, min, max) in [
            ("name", Some(&line.name), 1, 255),
            ("reference", line.reference.as_ref(), 0, 255),
            ("quantity_unit", line.quantity_unit.as_ref(), 1, 8),
        ] {
            if value.is_some_and(|v| !(min..=max).contains(&v.chars().count())) {
                bad.push(format!("Bad value: order_lines[{name}].{field}"));
            }
        }
    }
    for (field, value, max) in [
        ("merchant_reference1", &body.merchant_reference1, 255),
        ("merchant_reference2", &body.merchant_reference2, 255),
    ] {
        if value.as_ref().is_some_and(|v| v.chars().count() > max) {
            bad.push(format!("Bad value: {field}"));
        }
    }
    if let Some(urls) = &body.merchant_urls {
        for (field, value) in [
            ("confirmation", &urls.confirmation),
            ("notification", &urls.notification),
            ("push", &urls.push),
            ("authorization", &urls.authorization),
        ] {
            if value.as_ref().is_some_and(|v| v.chars().count() > 2000) {
                bad.push(format!("Bad value: merchant_urls.{field}"));
            }
        }
    }
    if let Some(intent) = &body.intent
        && !["buy", "tokenize", "buy_and_tokenize"].contains(&intent.as_str())
    {
        bad.push("Bad value: intent".to_owned());
    }
    if let Some(kind) = body.customer.as_ref().and_then(|c| c.kind.as_deref())
        && !["person", "organization"].contains(&kind)
    {
        bad.push("Bad value: customer.type".to_owned());
    }
    for (prefix, address) in [
        ("billing_address", &body.billing_address),
        ("shipping_address", &body.shipping_address),
    ] {
        let Some(a) = address else { continue };
        for (field, value, max) in [
            ("given_name", &a.given_name, 99),
            ("family_name", &a.family_name, 99),
            ("organization_name", &a.organization_name, 99),
            ("attention", &a.attention, 99),
            ("region", &a.region, 99),
            ("email", &a.email, 99),
            ("street_address", &a.street_address, 99),
            ("street_address2", &a.street_address2, 99),
            ("postal_code", &a.postal_code, 10),
            ("city", &a.city, 99),
            ("phone", &a.phone, 99),
            ("title", &a.title, 20),
        ] {
            if value.as_ref().is_some_and(|v| v.chars().count() > max) {
                bad.push(format!("Bad value: {prefix}.{field}"));
            }
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
        Err(KlarnaError::bad_value(bad))
    }
}

/// A JWT-shaped client token naming the session, as Klarna's is (the SDK checks the shape).
fn client_token(session_id: &str, base_url: &str, now: u64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({"session_id": session_id, "base_url": base_url, "iat": now});
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
    format!("{header}.{payload}.{signature}")
}

/// The categories the sandbox offers: all three in Klarna's markets, pay later only for
/// business buyers (Klarna's B2B invoice).
pub fn categories(base_url: &str, body: Option<&OrderBody>) -> Vec<PaymentMethodCategory> {
    let b2b = body
        .and_then(|b| b.customer.as_ref())
        .and_then(|c| c.kind.as_deref())
        == Some("organization");
    [
        ("pay_later", "Pay later."),
        ("pay_now", "Pay now."),
        ("pay_over_time", "Financing."),
    ]
    .into_iter()
    .filter(|(id, _)| !b2b || *id == "pay_later")
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
    KlarnaJson(body): KlarnaJson<OrderBody>,
) -> Result<Reply, KlarnaError> {
    validate(&body)?;
    let id = new_id();
    let now = sandbox.now();
    let token = client_token(&id, &sandbox.base_url, unix(now));
    let created = SessionCreated {
        session_id: id.clone(),
        client_token: token.clone(),
        payment_method_categories: categories(&sandbox.base_url, Some(&body)),
    };
    sandbox.state().sessions.insert(
        id.clone(),
        Session {
            id,
            client_token: token,
            body,
            status: SessionStatus::Incomplete,
            created_at: now,
        },
    );
    Ok(Reply::json(StatusCode::OK, &created))
}

/// A session Klarna still holds (48 hours).
pub fn live_session<'a>(
    state: &'a mut Memory,
    id: &str,
    now: std::time::SystemTime,
) -> Result<&'a mut Session, KlarnaError> {
    match state.sessions.get_mut(id) {
        Some(s) if now.duration_since(s.created_at).unwrap_or_default() < SESSION_TTL => Ok(s),
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
) -> Result<Reply, KlarnaError> {
    let now = sandbox.now();
    let mut state = sandbox.state();
    let session = live_session(&mut state, &session_id, now)?;
    let answer = klarna_types::klarna::Session {
        order: session.body.clone(),
        status: match session.status {
            SessionStatus::Incomplete => "incomplete".into(),
            SessionStatus::Complete => "complete".into(),
        },
        client_token: Some(session.client_token.clone()),
        expires_at: Some(rfc3339(session.created_at + SESSION_TTL)),
        payment_method_categories: categories(&sandbox.base_url, Some(&session.body)),
    };
    Ok(Reply::json(StatusCode::OK, &answer))
}

async fn update_session(
    State(sandbox): State<Arc<Sandbox>>,
    _auth: MerchantAuth,
    Path(session_id): Path<String>,
    KlarnaJson(body): KlarnaJson<OrderBody>,
) -> Result<Reply, KlarnaError> {
    validate(&body)?;
    let now = sandbox.now();
    let mut state = sandbox.state();
    let session = live_session(&mut state, &session_id, now)?;
    if session.status == SessionStatus::Complete {
        return Err(KlarnaError::new(
            StatusCode::NOT_FOUND,
            "SESSION_COMPLETED",
            "Session is already completed",
        ));
    }
    session.body = body;
    Ok(Reply::empty(StatusCode::NO_CONTENT))
}

/// The fields Klarna compares between the authorized cart and the order it is asked to
/// place; any difference is a 409 "Not matching fields".
fn mismatched_fields(authorized: &OrderBody, placed: &OrderBody) -> Vec<&'static str> {
    let mut out = Vec::new();
    if !authorized
        .purchase_country
        .eq_ignore_ascii_case(&placed.purchase_country)
    {
        out.push("purchase_country");
    }
    if !authorized
        .purchase_currency
        .eq_ignore_ascii_case(&placed.purchase_currency)
    {
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
    if placed.billing_address.is_some() && authorized.billing_address != placed.billing_address {
        out.push("billing_address");
    }
    out
}

/// `+pend-accept-NN` / `+pend-reject-NN` in an e-mail: a decision after NN minutes.
pub fn pending_scenario(email: &str) -> Option<(Duration, FraudStatus)> {
    let local = email.split('@').next()?;
    let (_, tag) = local.split_once('+')?;
    let (decision, minutes) = if let Some(m) = tag.strip_prefix("pend-accept-") {
        (FraudStatus::Accepted, m)
    } else if let Some(m) = tag.strip_prefix("pend-reject-") {
        (FraudStatus::Rejected, m)
    } else {
        return None;
    };
    Some((
        Duration::from_secs(minutes.parse::<u64>().ok()? * 60),
        decision,
    ))
}

fn invalid_token() -> KlarnaError {
    KlarnaError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "Invalid authorization token",
    )
}

async fn create_order(
    State(sandbox): State<Arc<Sandbox>>,
    _auth: MerchantAuth,
    Path(token): Path<String>,
    KlarnaJson(body): KlarnaJson<OrderBody>,
) -> Result<Reply, KlarnaError> {
    validate(&body)?;
    let now = sandbox.now();
    let (order, event) = {
        let mut state = sandbox.state();
        let authorization = state
            .authorizations
            .get(&token)
            .filter(|a| {
                !a.consumed
                    && now.duration_since(a.created_at).unwrap_or_default() < AUTHORIZATION_TTL
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
        if authorization.email.contains("+reject@") {
            if let Some(a) = state.authorizations.get_mut(&token) {
                a.consumed = true;
            }
            return Err(KlarnaError::new(
                StatusCode::FORBIDDEN,
                "REJECTED",
                "Rejected",
            ));
        }
        let (order, placed) = place(
            &sandbox,
            now,
            &authorization.session_id,
            &authorization.category,
            &authorization.email,
            Placement {
                order_amount: body.order_amount,
                purchase_currency: body.purchase_currency.clone(),
                purchase_country: body.purchase_country.clone(),
                locale: body.locale.clone(),
                order_lines: body.order_lines.clone(),
                merchant_reference1: body.merchant_reference1.clone(),
                merchant_reference2: body.merchant_reference2.clone(),
                billing_address: body.billing_address.clone(),
                shipping_address: body.shipping_address.clone(),
                merchant_urls: body.merchant_urls.clone(),
                auto_capture: body.auto_capture == Some(true),
            },
        );
        let order_id = order.order.order_id.clone();
        if let Some(a) = state.authorizations.get_mut(&token) {
            a.consumed = true;
        }
        if let Some(s) = state.sessions.get_mut(&authorization.session_id) {
            s.status = SessionStatus::Complete;
        }
        let event = order.order.clone();
        state.orders.insert(order_id, order);
        (placed, event)
    };
    webhooks::state_change(&sandbox, "authorized", &event);
    Ok(Reply::json(StatusCode::OK, &order))
}

/// What an order is placed with: an authorization's order body, or an order charged to a
/// customer token.
pub(crate) struct Placement {
    pub order_amount: i64,
    pub purchase_currency: String,
    pub purchase_country: String,
    pub locale: Option<String>,
    pub order_lines: Vec<klarna_types::klarna::OrderLine>,
    pub merchant_reference1: Option<String>,
    pub merchant_reference2: Option<String>,
    pub billing_address: Option<klarna_types::klarna::Address>,
    pub shipping_address: Option<klarna_types::klarna::Address>,
    pub merchant_urls: Option<klarna_types::klarna::MerchantUrls>,
    pub auto_capture: bool,
}

/// Klarna's order for `p`, placed at `now` for the shopper of `session_id` who chose
/// `category` (their e-mail selects a scenario: a pending fraud decision), with its expiry
/// and, with `auto_capture`, its capture; and Klarna's answer to the placement.
pub(crate) fn place(
    sandbox: &Sandbox,
    now: std::time::SystemTime,
    session_id: &str,
    category: &str,
    email: &str,
    p: Placement,
) -> (SandboxOrder, OrderCreated) {
    let pending = pending_scenario(email);
    let order_id = new_id();
    let auto_capture = p.auto_capture;
    let mut order = SandboxOrder {
        order: Order {
            order_id: order_id.clone(),
            status: OrderStatus::Authorized,
            fraud_status: if pending.is_some() {
                FraudStatus::Pending
            } else {
                FraudStatus::Accepted
            },
            order_amount: p.order_amount,
            original_order_amount: p.order_amount,
            captured_amount: 0,
            refunded_amount: 0,
            remaining_authorized_amount: p.order_amount,
            purchase_currency: p.purchase_currency.to_ascii_uppercase(),
            purchase_country: Some(p.purchase_country.to_ascii_uppercase()),
            locale: p.locale,
            order_lines: p.order_lines,
            captures: Vec::new(),
            refunds: Vec::new(),
            klarna_reference: Some(order_id[..8].to_ascii_uppercase()),
            merchant_reference1: p.merchant_reference1.clone(),
            merchant_reference2: p.merchant_reference2.clone(),
            expires_at: None,
            created_at: Some(rfc3339(now)),
            billing_address: p.billing_address.clone(),
            shipping_address: p.shipping_address.clone(),
            initial_payment_method: Some(
                json!({"type": payment_type(category), "description": category}),
            ),
        },
        session_id: session_id.to_owned(),
        notification_url: p
            .merchant_urls
            .as_ref()
            .and_then(|u| u.notification.clone())
            .or_else(|| sandbox.config.notification_url.clone())
            .map(|u| {
                u.replace("{order.id}", &order_id)
                    .replace("{session.id}", session_id)
            }),
        created: now,
        expires: now,
        decision: pending.map(|(after, decision)| (now + after, decision)),
        extended_on: None,
    };
    order.set_expiry(now + ORDER_AUTHORIZATION);
    if auto_capture && pending.is_none() {
        crate::ordermanagement::apply_capture(
            &mut order,
            p.order_amount,
            None,
            Vec::new(),
            Vec::new(),
            now,
        );
    }
    let placed = OrderCreated {
        order_id: order_id.clone(),
        redirect_url: None,
        fraud_status: order.order.fraud_status,
        authorized_payment_method: Some(AuthorizedPaymentMethod::Detailed {
            kind: payment_type(category).into(),
            number_of_days: (category == "pay_later").then_some(30),
            number_of_installments: (category == "pay_over_time").then_some(12),
        }),
    };
    (order, placed)
}

pub(crate) fn payment_type(category: &str) -> &'static str {
    match category {
        "pay_over_time" => "fixed_amount",
        "pay_now" => "direct_debit",
        _ => "invoice",
    }
}

async fn cancel_authorization(
    State(sandbox): State<Arc<Sandbox>>,
    _auth: MerchantAuth,
    Path(token): Path<String>,
) -> Result<Reply, KlarnaError> {
    let mut state = sandbox.state();
    match state.authorizations.get_mut(&token) {
        Some(a) if !a.consumed => {
            a.consumed = true;
            Ok(Reply::empty(StatusCode::NO_CONTENT))
        }
        _ => Err(invalid_token()),
    }
}

async fn customer_token(
    State(sandbox): State<Arc<Sandbox>>,
    _auth: MerchantAuth,
    Path(token): Path<String>,
    KlarnaJson(body): KlarnaJson<CustomerTokenRequest>,
) -> Result<Reply, KlarnaError> {
    let now = sandbox.now();
    let mut state = sandbox.state();
    let authorization = state
        .authorizations
        .get(&token)
        .filter(|a| {
            // With `buy_and_tokenize` the authorization places the order and makes the token,
            // each once.
            let buys_too = a.body.intent.as_deref() == Some("buy_and_tokenize");
            !a.tokenized
                && (!a.consumed || buys_too)
                && now.duration_since(a.created_at).unwrap_or_default() < AUTHORIZATION_TTL
        })
        .cloned()
        .ok_or_else(invalid_token)?;
    if !matches!(
        authorization.body.intent.as_deref(),
        Some("tokenize" | "buy_and_tokenize")
    ) {
        return Err(KlarnaError::bad_value(vec![
            "Bad value: intent (the session was not created to tokenize)".into(),
        ]));
    }
    if body.intended_use != "SUBSCRIPTION"
        || body.description.is_empty()
        || body.description.chars().count() > 255
    {
        return Err(KlarnaError::bad_value(vec![
            "Bad value: intended_use or description".into(),
        ]));
    }
    if !authorization
        .body
        .purchase_currency
        .eq_ignore_ascii_case(&body.purchase_currency)
    {
        return Err(KlarnaError::new(
            StatusCode::CONFLICT,
            "BAD_VALUE",
            "Not matching fields: [purchase_currency]",
        ));
    }
    let token_id = new_id();
    state.customer_tokens.insert(
        token_id.clone(),
        CustomerToken {
            session_id: authorization.session_id.clone(),
            status: TokenStatus::Active,
            category: authorization.category.clone(),
            email: authorization.email.clone(),
            purchase_country: body.purchase_country.to_ascii_uppercase(),
            purchase_currency: body.purchase_currency.to_ascii_uppercase(),
            locale: body.locale.clone(),
            billing_address: body
                .billing_address
                .clone()
                .or_else(|| authorization.body.billing_address.clone()),
        },
    );
    if let Some(a) = state.authorizations.get_mut(&token) {
        a.tokenized = true;
        // A token-only session places no order.
        if authorization.body.intent.as_deref() == Some("tokenize") {
            a.consumed = true;
        }
    }
    Ok(Reply::json(
        StatusCode::OK,
        &CustomerTokenCreated {
            token_id: token_id.clone(),
            payment_method_reference: Some(new_id()),
            redirect_url: Some(format!("{}/kp/tokens/{token_id}/done", sandbox.base_url)),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_scenarios_read_from_the_email() {
        assert_eq!(
            pending_scenario("anna+pend-accept-5@example.se"),
            Some((Duration::from_secs(300), FraudStatus::Accepted))
        );
        assert_eq!(
            pending_scenario("anna+pend-reject-30@example.se"),
            Some((Duration::from_secs(1800), FraudStatus::Rejected))
        );
        assert_eq!(pending_scenario("anna@example.se"), None);
        assert_eq!(pending_scenario("anna+pend-accept-x@example.se"), None);
    }
}
