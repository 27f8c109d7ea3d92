//! A returning shopper's saved Klarna (made at checkout by [`crate::token_saving`]), charged
//! with no shopper present when Odoo charges its `payment.token` (the shopper choosing it
//! at a later checkout, a renewal, a reorder), shown, and cancelled.
//!
//! Odoo knows a saved Klarna by its `reference` only (the token's `provider_ref`). A charge
//! is a payment like any other: it is captured, refunded, cancelled and followed by
//! webhooks as a checkout's is.
//!
//! Money-path answers:
//! - twice: a charge is claimed by its Odoo transaction reference (the unique row
//!   `token-order:<reference>`), so a repeat gets the first one's answer;
//! - concurrently, after a crash, or with the answer lost: every attempt sends the Klarna
//!   idempotency key stored with the claim, so Klarna places one order (it keeps a key 24
//!   hours; a claim older than that is left to a person rather than sent again);
//! - replayed by someone else: the admin API's door (admin token or Odoo's signature with
//!   its one-time nonce) stands before any of it.

use klarna_client::{ErrorKind, IdempotencyKey};
use klarna_types::contract::AuthorizeResponse;
use klarna_types::klarna::{TokenOrder, TokenStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::checkout::{self, PlacedBy, record_placed};
use crate::db::now_ms;
use crate::error::GatewayError;
use crate::secrets::customer_token_name;
use crate::state::Gateway;
use crate::store::audit::Audit;
use crate::store::sessions::body_hash;
use crate::store::tokens::{StoredToken, TokenState, charge_row};
use crate::store::transactions::Claim;
use crate::store::{StoredSession, Transaction, TxState};

/// Klarna keeps an idempotency key 24 hours: a charge still unanswered after that is not
/// sent again under it (that could place a second order); a person looks.
const KLARNA_KEY_LIFETIME_MS: i64 = 24 * 3600 * 1000;

/// `POST /admin/tokens/{reference}/charges`: the Odoo transaction charging the token, and
/// the sale order it pays.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeRequest {
    /// Odoo's `payment.transaction.reference` of this charge: one charge per reference.
    pub transaction_reference: String,
    /// The sale order charged (`sale.order.name`): its amount and lines, mapped as at
    /// checkout.
    pub order_reference: String,
    /// The order's records as the Odoo transaction asking for the charge sees them (as for
    /// an order edit: `read` rows by model): an order made in that same transaction (a
    /// renewal) is not in Odoo for anyone else yet. Without them, the gateway reads Odoo.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub odoo_records: Option<crate::odoo_order::Snapshot>,
}

/// A saved Klarna as an operator or Odoo sees it: never the token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenView {
    pub reference: String,
    pub state: TokenState,
    pub payment_method: String,
    pub currency: String,
    /// The checkout that saved it.
    pub saved_at_order: String,
    pub created_at: i64,
    /// Its charges, oldest first.
    pub charges: Vec<Transaction>,
}

async fn view(gw: &Gateway, token: StoredToken) -> Result<TokenView, GatewayError> {
    Ok(TokenView {
        charges: gw.db.token_charges(token.id).await?,
        reference: token.reference,
        state: token.state,
        payment_method: token.payment_method,
        currency: token.currency,
        saved_at_order: token.order_reference,
        created_at: token.created_at,
    })
}

async fn find(gw: &Gateway, reference: &str) -> Result<StoredToken, GatewayError> {
    gw.db
        .token(reference)
        .await?
        .ok_or_else(|| GatewayError::not_found(format!("saved Klarna {reference:?}")))
}

pub async fn show(gw: &Gateway, reference: &str) -> Result<TokenView, GatewayError> {
    view(gw, find(gw, reference).await?).await
}

/// Cancels a saved Klarna at Klarna and here: it can never be charged again. Cancelling a
/// cancelled one answers it as it is.
pub async fn cancel(gw: &Gateway, reference: &str, actor: &str) -> Result<TokenView, GatewayError> {
    let token = find(gw, reference).await?;
    if token.state == TokenState::Active {
        let secret = gw
            .secrets
            .open(&customer_token_name(reference), &token.sealed)?;
        match gw.klarna.cancel_customer_token(&secret).await {
            // Klarna no longer knows it: nothing can charge it either.
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        mark_cancelled(gw, &token, actor, "cancelled at Klarna").await?;
    }
    show(gw, reference).await
}

async fn mark_cancelled(
    gw: &Gateway,
    token: &StoredToken,
    actor: &str,
    why: &str,
) -> Result<(), GatewayError> {
    if gw.db.cancel_token(token.id).await? {
        let mut tx = gw.db.begin_write().await?;
        gw.db
            .audit(
                &mut tx,
                Audit {
                    transaction_id: Some(token.transaction_id),
                    order_reference: Some(&token.order_reference),
                    actor,
                    action: "payment_method_cancelled",
                    before: Some(TokenState::Active.as_str()),
                    after: Some(TokenState::Cancelled.as_str()),
                    detail: Some(format!("{}: {why}", token.reference)),
                },
            )
            .await?;
        tx.commit().await?;
        tracing::info!(token = %token.reference, "saved Klarna cancelled: {why}");
    }
    Ok(())
}

fn check(field: &str, value: &str) -> Result<(), GatewayError> {
    if value.trim().is_empty() || value.len() > 255 || value.chars().any(char::is_control) {
        return Err(GatewayError::invalid(
            field,
            "must be 1 to 255 characters, none of them control characters",
        ));
    }
    Ok(())
}

fn not_chargeable(token: &StoredToken, why: &str) -> GatewayError {
    GatewayError::TokenNotChargeable(format!(
        "the saved Klarna {} {why}; the shopper can pay with Klarna again (and save it anew)",
        token.reference
    ))
}

/// The Klarna idempotency key a charge was (or is being) placed under. An Odoo transaction
/// is charged to one saved Klarna: named with another, it is refused, and that token's
/// request neither sees nor resends the first token's charge.
async fn charge_key(
    gw: &Gateway,
    token: &StoredToken,
    transaction_id: i64,
) -> Result<IdempotencyKey, GatewayError> {
    match gw.db.token_charge(transaction_id).await? {
        Some((Some(id), Some(key))) if id == token.id => Ok(IdempotencyKey::from_stored(key)),
        Some((Some(_), _)) => Err(GatewayError::invalid(
            "transaction_reference",
            "was charged to another saved Klarna",
        )),
        _ => Err(GatewayError::Corrupt(format!(
            "the charge {transaction_id} has no idempotency key"
        ))),
    }
}

/// Charges a saved Klarna for an Odoo sale order: Klarna places an order with no shopper
/// present, for the amount and lines Odoo holds, once per Odoo transaction.
pub async fn charge(
    gw: &Gateway,
    reference: &str,
    req: ChargeRequest,
) -> Result<AuthorizeResponse, GatewayError> {
    check("transaction_reference", &req.transaction_reference)?;
    check("order_reference", &req.order_reference)?;
    let token = find(gw, reference).await?;
    let session_id = charge_row(&req.transaction_reference);
    // A repeat of a charge that was placed gets its answer, whatever happened since — if it
    // names the same saved Klarna.
    if let Some(t) = gw.db.transaction_for_session(&session_id).await? {
        charge_key(gw, &token, t.id).await?;
        if let Some(answer) = checkout::authorized(&t) {
            return Ok(answer);
        }
    }
    if token.state == TokenState::Cancelled {
        return Err(not_chargeable(&token, "was cancelled"));
    }
    let body = checkout::records_body(gw, &req.order_reference, req.odoo_records.as_ref()).await?;
    if body.purchase_currency != token.currency {
        return Err(GatewayError::invalid(
            "order_reference",
            format!(
                "the order is in {}, and the saved Klarna charges {} only",
                body.purchase_currency, token.currency
            ),
        ));
    }
    let session = StoredSession {
        id: session_id,
        order_reference: req.order_reference.clone(),
        client_token: String::new(),
        currency: body.purchase_currency.clone(),
        order_amount: body.order_amount,
        body_hash: body_hash(&body),
        body,
        categories: Vec::new(),
        created_at: now_ms(),
    };
    let fresh_key = IdempotencyKey::new();
    let claimed = match gw
        .db
        .claim_token_charge(&session, token.id, fresh_key.as_str())
        .await?
    {
        Claim::Won(t) => t,
        Claim::Existing(t) => {
            if let Some(answer) = checkout::authorized(&t) {
                return Ok(answer);
            }
            if now_ms() - t.created_at > KLARNA_KEY_LIFETIME_MS {
                return Err(GatewayError::Refused(format!(
                    "the charge {} went unanswered for more than a day; check Klarna's portal for {} before charging again",
                    req.transaction_reference, t.order_reference
                )));
            }
            // Being placed (concurrently, or by a request that died): sent again under its
            // key, so Klarna answers with the one order.
            t
        }
    };
    let key = charge_key(gw, &token, claimed.id).await?;
    let stored = gw
        .db
        .session(&claimed.session_id)
        .await?
        .ok_or_else(|| GatewayError::SessionNotFound(claimed.session_id.clone()))?;
    let order = TokenOrder {
        purchase_currency: stored.body.purchase_currency.clone(),
        order_amount: stored.body.order_amount,
        order_tax_amount: stored.body.order_tax_amount,
        order_lines: stored.body.order_lines.clone(),
        locale: stored.body.locale.clone(),
        merchant_reference1: stored.body.merchant_reference1.clone(),
        merchant_reference2: stored.body.merchant_reference2.clone(),
        // This installation's callbacks (the stored body has none: their path is secret).
        merchant_urls: session.body.merchant_urls.clone(),
        auto_capture: None,
        shipping_address: stored.body.shipping_address.clone(),
    };
    let secret = gw
        .secrets
        .open(&customer_token_name(reference), &token.sealed)?;
    match gw.klarna.create_token_order(&secret, &order, &key).await {
        Ok(placed) => {
            gw.checkpoint("after_create_token_order")?;
            let mut t = claimed;
            t.authorized_amount = order.order_amount;
            let mut tx = gw.db.begin_write().await?;
            let current = gw.db.lock_transaction(&mut tx, t.id).await?;
            if current.state != TxState::Placing {
                tx.commit().await?;
                return checkout::authorized(&current).ok_or(GatewayError::AuthorizationInProgress);
            }
            let note = format!(" (charge of saved Klarna {reference})");
            record_placed(
                gw,
                &mut tx,
                &mut t,
                &placed.order_id,
                placed.fraud_status,
                PlacedBy {
                    actor: "odoo",
                    note: &note,
                    saved: None,
                },
            )
            .await?;
            tx.commit().await?;
            gw.wake_worker();
            metrics::counter!("gateway_token_charges_total", "outcome" => "authorized")
                .increment(1);
            tracing::info!(order = %t.order_reference, klarna_order = %placed.order_id, amount = t.authorized_amount, "saved Klarna charged");
            checkout::authorized(&t).ok_or(GatewayError::AuthorizationInProgress)
        }
        Err(e) if e.kind == ErrorKind::Rejected => {
            gw.db.release_claim(&claimed.session_id).await?;
            metrics::counter!("gateway_token_charges_total", "outcome" => "declined").increment(1);
            Ok(AuthorizeResponse::Declined {
                reason: "Klarna declined to charge the saved payment method".into(),
            })
        }
        Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::NotAllowed) => {
            gw.db.release_claim(&claimed.session_id).await?;
            // Klarna will not charge it: cancelled or suspended there. Ask what it is.
            match gw.klarna.get_customer_token(&secret).await {
                Ok(read) if read.status == TokenStatus::Suspended => Err(not_chargeable(
                    &token,
                    "is suspended at Klarna (the payment method behind it stopped working)",
                )),
                Ok(read) if read.status == TokenStatus::Active => Err(e.into()),
                _ => {
                    mark_cancelled(gw, &token, "klarna", "Klarna no longer charges it").await?;
                    Err(not_chargeable(&token, "was cancelled at Klarna"))
                }
            }
        }
        Err(e) if e.is_retryable() => {
            // Klarna may have placed it: the claim and its key stay, and a retry of this
            // charge sends the same key.
            tracing::warn!(order = %claimed.order_reference, "charging a saved Klarna: {e}; a retry sends the same idempotency key");
            Err(e.into())
        }
        Err(e) => {
            gw.db.release_claim(&claimed.session_id).await?;
            Err(e.into())
        }
    }
}
