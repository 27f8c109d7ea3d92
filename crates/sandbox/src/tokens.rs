//! Klarna's Customer Token API v1: a saved payment method, read, charged with no shopper
//! present, and cancelled. Tokens are made by `POST /payments/v1/authorizations/{token}/
//! customer-token` ([`crate::payments`]).
//!
//! Failures modelled: an unknown token (404), a cancelled or suspended one (403
//! `NOT_ALLOWED`, inferred: Klarna documents no code), a shopper whose orders are declined
//! (`+reject@` in the e-mail: 403 `REJECTED`), a currency not the token's and amounts that
//! break Klarna's rules (400 `BAD_VALUE`). `POST /_sandbox/tokens/{token}/status` suspends a
//! token (a card that expired) or makes it active again.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, patch, post};
use klarna_types::klarna::{CustomerToken, TokenOrder, TokenStatus, TokenStatusUpdate};
use klarna_types::money::MAX_AMOUNT;
use serde_json::json;

use crate::api::{KlarnaJson, MerchantAuth};
use crate::ordermanagement::{idempotent, lines_total};
use crate::payments::{Placement, payment_type, place};
use crate::reply::{KlarnaError, Reply};
use crate::state::Sandbox;
use crate::webhooks;

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/customer-token/v1/tokens/{token}", get(read))
        .route("/customer-token/v1/tokens/{token}/order", post(order))
        .route("/customer-token/v1/tokens/{token}/status", patch(status))
}

/// The sandbox's control of a token's state (not Klarna's API).
pub fn control_routes() -> Router<Arc<Sandbox>> {
    Router::new().route("/_sandbox/tokens/{token}/status", post(set_status))
}

fn unknown() -> KlarnaError {
    KlarnaError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "Invalid customer-token ID",
    )
}

async fn read(
    State(sandbox): State<Arc<Sandbox>>,
    _auth: MerchantAuth,
    Path(token): Path<String>,
) -> Result<Reply, KlarnaError> {
    let state = sandbox.state();
    let t = state.customer_tokens.get(&token).ok_or_else(unknown)?;
    Ok(Reply::json(
        StatusCode::OK,
        &CustomerToken {
            status: t.status,
            // The payment method type the order API names, as the token API spells it.
            payment_method_type: payment_type(&t.category).to_ascii_uppercase(),
        },
    ))
}

async fn order(
    State(sandbox): State<Arc<Sandbox>>,
    _auth: MerchantAuth,
    Path(token): Path<String>,
    headers: HeaderMap,
    KlarnaJson(body): KlarnaJson<TokenOrder>,
) -> Reply {
    let mut placed_event = None;
    let reply = idempotent(&sandbox, &headers, |state, now| {
        let t = state
            .customer_tokens
            .get(&token)
            .cloned()
            .ok_or_else(unknown)?;
        let mut bad = Vec::new();
        if !(1..=MAX_AMOUNT).contains(&body.order_amount) {
            bad.push("Bad value: order_amount".to_owned());
        }
        if body.order_lines.is_empty() || lines_total(&body.order_lines) != body.order_amount {
            bad.push("Bad value: order_lines".to_owned());
        }
        if body.order_tax_amount < 0 {
            bad.push("Bad value: order_tax_amount".to_owned());
        }
        if !body
            .purchase_currency
            .eq_ignore_ascii_case(&t.purchase_currency)
        {
            bad.push("Bad value: purchase_currency".to_owned());
        }
        if !bad.is_empty() {
            return Err(KlarnaError::bad_value(bad));
        }
        if t.status != TokenStatus::Active {
            return Err(KlarnaError::new(
                StatusCode::FORBIDDEN,
                "NOT_ALLOWED",
                format!(
                    "The customer token is {:?}: it cannot be charged.",
                    t.status
                ),
            ));
        }
        if t.email.contains("+reject@") {
            return Err(KlarnaError::new(
                StatusCode::FORBIDDEN,
                "REJECTED",
                "Rejected",
            ));
        }
        let (order, placed) = place(
            &sandbox,
            now,
            &t.session_id,
            &t.category,
            &t.email,
            Placement {
                order_amount: body.order_amount,
                purchase_currency: body.purchase_currency.clone(),
                purchase_country: t.purchase_country.clone(),
                locale: body.locale.clone().or_else(|| Some(t.locale.clone())),
                order_lines: body.order_lines.clone(),
                merchant_reference1: body.merchant_reference1.clone(),
                merchant_reference2: body.merchant_reference2.clone(),
                billing_address: t.billing_address.clone(),
                shipping_address: body.shipping_address.clone(),
                merchant_urls: body.merchant_urls.clone(),
                auto_capture: body.auto_capture == Some(true),
            },
        );
        placed_event = Some(order.order.clone());
        state.orders.insert(order.order.order_id.clone(), order);
        Ok(Reply::json(StatusCode::OK, &placed))
    });
    if let Some(event) = placed_event {
        webhooks::state_change(&sandbox, "authorized", &event);
    }
    reply
}

async fn status(
    State(sandbox): State<Arc<Sandbox>>,
    _auth: MerchantAuth,
    Path(token): Path<String>,
    KlarnaJson(body): KlarnaJson<TokenStatusUpdate>,
) -> Result<Reply, KlarnaError> {
    if body.status != TokenStatus::Cancelled {
        return Err(KlarnaError::bad_value(vec!["Bad value: status".into()]));
    }
    let mut state = sandbox.state();
    let t = state.customer_tokens.get_mut(&token).ok_or_else(unknown)?;
    t.status = TokenStatus::Cancelled;
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

/// `{"status": "SUSPENDED" | "ACTIVE"}`: the payment method behind the token stopped
/// working, or works again. A cancelled token stays cancelled.
async fn set_status(
    State(sandbox): State<Arc<Sandbox>>,
    Path(token): Path<String>,
    axum::Json(body): axum::Json<TokenStatusUpdate>,
) -> (StatusCode, axum::Json<serde_json::Value>) {
    let mut state = sandbox.state();
    match state.customer_tokens.get_mut(&token) {
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "no such token"})),
        ),
        Some(t) if t.status == TokenStatus::Cancelled => (
            StatusCode::CONFLICT,
            axum::Json(json!({"error": "the token is cancelled for good"})),
        ),
        Some(t) => {
            t.status = body.status;
            (StatusCode::OK, axum::Json(json!({"status": t.status})))
        }
    }
}
