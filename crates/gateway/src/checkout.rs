//! The shopper's side of a payment: a Klarna session for an Odoo order, then the order
//! placed from the authorization the widget obtained.

use klarna_client::ErrorKind;
use klarna_types::contract::{
    AuthorizeRequest, AuthorizeResponse, SessionRequest, SessionResponse,
};
use klarna_types::mapping::map_order;
use subtle::ConstantTimeEq;

use crate::Gateway;
use crate::error::GatewayError;
use crate::store::{Claim, StoredSession, Transaction, TransactionState, body_hash};

/// Longest order reference / token / id the gateway accepts from a browser.
const MAX_FIELD: usize = 255;

fn check_field(field: &str, value: &str) -> Result<(), GatewayError> {
    if value.trim().is_empty() {
        return Err(GatewayError::invalid(field, "is required"));
    }
    if value.len() > MAX_FIELD {
        return Err(GatewayError::invalid(
            field,
            format!("is longer than {MAX_FIELD} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(GatewayError::invalid(field, "contains control characters"));
    }
    Ok(())
}

/// Creates the Klarna session for an order, or reuses the one made for the same cart.
pub async fn start_session(
    gw: &Gateway,
    req: SessionRequest,
) -> Result<SessionResponse, GatewayError> {
    check_field("order_reference", &req.order_reference)?;
    check_field("access_token", &req.access_token)?;
    let doc = gw
        .odoo
        .read_order(&req.order_reference)
        .await?
        .ok_or(GatewayError::OrderNotFound)?;
    // Odoo's portal access token proves the browser was given this order. Unknown order
    // and wrong token answer the same, so order names cannot be probed.
    let expected = doc.order.access_token.as_deref().unwrap_or("");
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(req.access_token.as_bytes())) {
        return Err(GatewayError::OrderNotFound);
    }
    let body = map_order(&doc, &gw.config.mapping_options())?;
    let hash = body_hash(&body);
    if let Some(existing) = gw.store.reusable_session(&doc.order.name, &hash).await? {
        tracing::info!(order = %doc.order.name, session = %existing.id, "reusing session for unchanged cart");
        return Ok(response(existing));
    }
    let created = gw.klarna.create_session(&body).await?;
    let session = StoredSession {
        id: created.session_id,
        order_reference: doc.order.name.clone(),
        client_token: created.client_token,
        currency: body.purchase_currency.clone(),
        order_amount: body.order_amount,
        body,
        categories: created.payment_method_categories,
    };
    gw.store.insert_session(&session).await?;
    tracing::info!(order = %session.order_reference, session = %session.id, amount = session.order_amount, "klarna session created");
    Ok(response(session))
}

fn response(s: StoredSession) -> SessionResponse {
    SessionResponse {
        session_id: s.id,
        client_token: s.client_token,
        payment_method_categories: s.categories,
    }
}

fn authorized(t: &Transaction) -> Option<AuthorizeResponse> {
    match (t.state, &t.klarna_order_id, t.fraud_status) {
        (TransactionState::Authorized, Some(order_id), Some(fraud_status)) => {
            Some(AuthorizeResponse::Authorized {
                order_reference: t.order_reference.clone(),
                klarna_order_id: order_id.clone(),
                fraud_status,
            })
        }
        _ => None,
    }
}

/// Places the Klarna order for an approved authorization, exactly once per session.
pub async fn authorize(
    gw: &Gateway,
    req: AuthorizeRequest,
) -> Result<AuthorizeResponse, GatewayError> {
    check_field("session_id", &req.session_id)?;
    check_field("authorization_token", &req.authorization_token)?;
    let session = gw
        .store
        .session(&req.session_id)
        .await?
        .ok_or_else(|| GatewayError::SessionNotFound(req.session_id.clone()))?;
    match gw.store.claim(&session).await? {
        Claim::Won => {}
        // A repeated submit gets the first one's answer and never a second order.
        Claim::Existing(t) => return authorized(&t).ok_or(GatewayError::AuthorizationInProgress),
    }
    match gw
        .klarna
        .create_order(&req.authorization_token, &session.body)
        .await
    {
        Ok(order) => {
            let t = gw
                .store
                .mark_authorized(&session.id, &order.order_id, order.fraud_status)
                .await?;
            tracing::info!(order = %t.order_reference, klarna_order = %order.order_id, amount = t.amount, "authorized");
            authorized(&t).ok_or(GatewayError::AuthorizationInProgress)
        }
        Err(e) => {
            gw.store.release_claim(&session.id).await?;
            match e.kind {
                ErrorKind::Rejected => Ok(AuthorizeResponse::Declined {
                    reason: "Klarna declined the purchase".into(),
                }),
                ErrorKind::NotFound => Err(GatewayError::AuthorizationExpired),
                _ => Err(e.into()),
            }
        }
    }
}
