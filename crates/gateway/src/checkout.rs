//! The shopper's side of a payment: a Klarna session for an Odoo order (created, updated
//! when the cart changed, or reused when it did not), then the order placed from the
//! authorization the widget obtained — once, and only for the cart Odoo holds now.

use klarna_client::ErrorKind;
use klarna_types::contract::{
    AuthorizeRequest, AuthorizeResponse, SessionRequest, SessionResponse,
};
use klarna_types::klarna::{FraudStatus, OrderBody};
use klarna_types::mapping::map_order;
use klarna_types::odoo::SaleOrder;
use subtle::ConstantTimeEq;

use crate::db::now_ms;
use crate::error::GatewayError;
use crate::odoo_order::{Snapshot, read_document};
use crate::odoo_sync;
use crate::odoo_update::SavedToken;
use crate::odoo_update::{Event, Notification};
use crate::state::Gateway;
use crate::store::audit::Audit;
use crate::store::sessions::body_hash;
use crate::store::transactions::Claim;
use crate::store::{StoredSession, Transaction, TxState};
use crate::token_saving;

/// Longest order reference / token / id the gateway accepts from a browser.
const MAX_FIELD: usize = 255;
/// Klarna keeps a session 48 h; we stop using ours an hour before that.
const SESSION_REUSE_MS: i64 = 47 * 3600 * 1000;

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

/// What `/klarna/session` checks of a decoded request before it reads anything: both
/// fields present, at most 255 bytes, no control characters.
pub fn check_session_request(req: &SessionRequest) -> Result<(), GatewayError> {
    check_field("order_reference", &req.order_reference)?;
    check_field("access_token", &req.access_token)
}

/// An order as Klarna's body: from the records Odoo sent (as the transaction sending them
/// sees them — an edit, or an order made in the same transaction as its payment), or else
/// read from Odoo. Mapped exactly as at checkout.
pub(crate) async fn records_body(
    gw: &Gateway,
    reference: &str,
    records: Option<&Snapshot>,
) -> Result<OrderBody, GatewayError> {
    let doc = match records {
        Some(records) => read_document(records, reference, |_| true)
            .await
            .map_err(|e| GatewayError::invalid("odoo_records", e.to_string()))?
            .ok_or_else(|| {
                GatewayError::invalid(
                    "odoo_records",
                    format!("holds no sale.order named {reference}"),
                )
            })?,
        None => gw
            .odoo
            .read_order(reference)
            .await?
            .ok_or(GatewayError::OrderNotFound)?,
    };
    Ok(map_order(&doc, &gw.mapping_options())?)
}

/// Odoo's order, checked against the access token the browser holds (when one is given),
/// as a Klarna body, with its Odoo id.
async fn read_order(
    gw: &Gateway,
    reference: &str,
    access_token: Option<&str>,
) -> Result<(OrderBody, i64), GatewayError> {
    // Odoo's portal access token proves the browser was given this order. It is compared
    // on the first read, so an unknown order and a wrong token answer the same, at the
    // same cost: order names cannot be probed, by the answer or by its time.
    let admit = |order: &SaleOrder| {
        access_token.is_none_or(|given| {
            let expected = order.access_token.as_deref().unwrap_or("");
            !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
        })
    };
    let doc = gw
        .odoo
        .read_order_if(reference, admit)
        .await?
        .ok_or(GatewayError::OrderNotFound)?;
    Ok((map_order(&doc, &gw.mapping_options())?, doc.order.id))
}

/// The body of a checkout: Odoo's order, and — when Odoo's checkout transaction asks to
/// save the payment method (the shopper ticked "Save my payment details"; read from Odoo,
/// never from the browser) — Klarna's intent to save it as well. The intent is part of the
/// cart's fingerprint: a box ticked or cleared after the session updates the session.
async fn checkout_body(
    gw: &Gateway,
    reference: &str,
    access_token: Option<&str>,
) -> Result<OrderBody, GatewayError> {
    let (mut body, order_id) = read_order(gw, reference, access_token).await?;
    if gw.odoo.checkout_tokenizes(order_id).await? {
        body.intent = Some(token_saving::BUY_AND_TOKENIZE.into());
    }
    Ok(body)
}

/// Creates the Klarna session for an order, updates it when the cart changed, or reuses
/// it when nothing did.
pub async fn start_session(
    gw: &Gateway,
    req: SessionRequest,
) -> Result<SessionResponse, GatewayError> {
    check_session_request(&req)?;
    let body = checkout_body(gw, &req.order_reference, Some(&req.access_token)).await?;
    let hash = body_hash(&body);
    let open = gw
        .db
        .open_session(&req.order_reference, now_ms() - SESSION_REUSE_MS)
        .await?;
    // Benchmarks turn reuse off to make Klarna create a session every time.
    if let Some(existing) = open.filter(|_| gw.config.session_reuse) {
        if existing.body_hash == hash {
            tracing::info!(order = %existing.order_reference, session = %existing.id, "reusing session for unchanged cart");
            return Ok(response(existing));
        }
        // The cart changed: Klarna's session must carry the new cart (and the widget
        // must call load() again), so the old amount can never be authorized.
        match gw.klarna.update_session(&existing.id, &body).await {
            Ok(()) => {
                gw.db
                    .update_session_body(&existing.id, &body, &hash)
                    .await?;
                tracing::info!(order = %existing.order_reference, session = %existing.id, amount = body.order_amount, "klarna session updated");
                return Ok(response(StoredSession {
                    order_amount: body.order_amount,
                    body_hash: hash,
                    body,
                    ..existing
                }));
            }
            // Klarna no longer has it: make a new one.
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    let created = gw.klarna.create_session(&body).await?;
    let session = StoredSession {
        id: created.session_id,
        order_reference: req.order_reference.clone(),
        client_token: created.client_token,
        currency: body.purchase_currency.clone(),
        order_amount: body.order_amount,
        body_hash: hash,
        body,
        categories: created.payment_method_categories,
        created_at: now_ms(),
    };
    gw.db.insert_session(&session).await?;
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

pub(crate) fn authorized(t: &Transaction) -> Option<AuthorizeResponse> {
    match (t.state, &t.klarna_order_id, t.fraud_status) {
        (TxState::Placing, _, _) | (_, None, _) | (_, _, None) => None,
        (_, Some(order_id), Some(fraud_status)) => Some(AuthorizeResponse::Authorized {
            order_reference: t.order_reference.clone(),
            klarna_order_id: order_id.clone(),
            fraud_status,
        }),
    }
}

/// Who placed an order, what the audit entry adds, and the saved Klarna the checkout made.
pub(crate) struct PlacedBy<'a> {
    pub actor: &'a str,
    pub note: &'a str,
    pub saved: Option<SavedToken>,
}

/// Records the order Klarna placed for a payment that was being placed: its id, its fraud
/// decision and state, the audit entry and Odoo's notification — in the caller's database
/// transaction. Used by the widget's authorize and by a webhook adopting the order of an
/// authorize that died.
pub(crate) async fn record_placed(
    gw: &Gateway,
    tx: &mut crate::db::Tx,
    t: &mut Transaction,
    order_id: &str,
    fraud_status: FraudStatus,
    by: PlacedBy<'_>,
) -> Result<(), GatewayError> {
    let PlacedBy { actor, note, saved } = by;
    t.state = if fraud_status == FraudStatus::Rejected {
        TxState::Cancelled
    } else {
        TxState::Authorized
    };
    t.klarna_order_id = Some(order_id.to_owned());
    t.fraud_status = Some(fraud_status);
    let event = match fraud_status {
        FraudStatus::Accepted => Event::Authorized,
        FraudStatus::Pending => Event::Pending,
        FraudStatus::Rejected => Event::Cancelled,
    };
    gw.db.save_transaction(tx, t).await?;
    gw.db
        .audit(
            tx,
            Audit {
                transaction_id: Some(t.id),
                order_reference: Some(&t.order_reference),
                actor,
                action: "authorized",
                before: Some(TxState::Placing.as_str()),
                after: Some(t.state.as_str()),
                detail: Some(format!(
                    "klarna order {order_id} fraud {fraud_status:?} amount {} {}{note}",
                    t.authorized_amount, t.currency
                )),
            },
        )
        .await?;
    let mut notification = Notification::new(t, event, t.authorized_amount, None, None);
    notification.token = saved;
    odoo_sync::enqueue(&gw.db, tx, &notification).await
}

/// Places the Klarna order for an approved authorization, exactly once per session, and
/// only if Odoo's order still is what was authorized.
pub async fn authorize(
    gw: &Gateway,
    req: AuthorizeRequest,
) -> Result<AuthorizeResponse, GatewayError> {
    check_field("session_id", &req.session_id)?;
    check_field("authorization_token", &req.authorization_token)?;
    let session = gw
        .db
        .session(&req.session_id)
        .await?
        .ok_or_else(|| GatewayError::SessionNotFound(req.session_id.clone()))?;
    // A repeated submit (or Klarna's authorization callback racing the widget) gets the
    // first one's answer and never a second order; while the first is still with Klarna,
    // the second waits for it rather than failing the shopper.
    let waiting_since = std::time::Instant::now();
    let claimed = loop {
        match gw.db.claim(&session).await? {
            Claim::Won(t) => break t,
            Claim::Existing(t) => {
                if let Some(answer) = authorized(&t) {
                    return Ok(answer);
                }
                if waiting_since.elapsed() > gw.config.klarna_timeout * 2 {
                    return Err(GatewayError::AuthorizationInProgress);
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    // Amounts come from Odoo: the cart must not have changed since the session.
    let current = match checkout_body(gw, &session.order_reference, None).await {
        Ok(body) => body,
        Err(e) => {
            gw.db.release_claim(&session.id).await?;
            return Err(e);
        }
    };
    let current_hash = body_hash(&current);
    if current_hash != session.body_hash {
        gw.db.release_claim(&session.id).await?;
        if gw
            .klarna
            .update_session(&session.id, &current)
            .await
            .is_ok()
        {
            gw.db
                .update_session_body(&session.id, &current, &current_hash)
                .await?;
        }
        tracing::info!(order = %session.order_reference, "cart changed after authorize: not placing the old amount");
        return Err(GatewayError::CartChanged);
    }
    match gw
        .klarna
        // The body just read from Odoo is the authorized cart (same hash), with this
        // installation's callback URLs.
        .create_order(&req.authorization_token, &current)
        .await
    {
        Ok(order) => {
            gw.checkpoint("after_create_order")?;
            // The shopper asked to save the payment method: Klarna makes the token from the
            // same authorization (a failure there leaves the order as it is).
            let saved = if order.fraud_status == FraudStatus::Rejected {
                None
            } else {
                token_saving::save(
                    gw,
                    &req.authorization_token,
                    &current,
                    &session.order_reference,
                )
                .await
            };
            let mut t = claimed.clone();
            t.authorized_amount = session.order_amount;
            let mut tx = gw.db.begin_write().await?;
            // A webhook may have adopted the order meanwhile (this answer came very late):
            // its record stands.
            let current = gw.db.lock_transaction(&mut tx, t.id).await?;
            if current.state != TxState::Placing {
                tx.commit().await?;
                return authorized(&current).ok_or(GatewayError::AuthorizationInProgress);
            }
            let saved = match &saved {
                Some(saved) => Some(token_saving::record(gw, &mut tx, &t, saved).await?),
                None => None,
            };
            record_placed(
                gw,
                &mut tx,
                &mut t,
                &order.order_id,
                order.fraud_status,
                PlacedBy {
                    actor: "widget",
                    note: "",
                    saved,
                },
            )
            .await?;
            tx.commit().await?;
            gw.wake_worker();
            metrics::counter!("gateway_authorizations_total", "outcome" => "authorized")
                .increment(1);
            tracing::info!(order = %t.order_reference, klarna_order = %order.order_id, amount = t.authorized_amount, "authorized");
            authorized(&t).ok_or(GatewayError::AuthorizationInProgress)
        }
        Err(e) if e.kind == ErrorKind::Rejected => {
            gw.db.release_claim(&session.id).await?;
            metrics::counter!("gateway_authorizations_total", "outcome" => "declined").increment(1);
            Ok(AuthorizeResponse::Declined {
                reason: "Klarna declined the purchase".into(),
            })
        }
        Err(e) if e.kind == ErrorKind::NotFound => {
            gw.db.release_claim(&session.id).await?;
            Err(GatewayError::AuthorizationExpired)
        }
        Err(e) if e.kind == ErrorKind::Conflict => {
            gw.db.release_claim(&session.id).await?;
            Err(GatewayError::CartChanged)
        }
        Err(e) if e.is_retryable() => {
            // Klarna may or may not have placed the order, and the API cannot tell us
            // without its id: keep the claim so nothing places a second one, and ask a
            // person to look (the order carries merchant_reference1 = the Odoo order).
            let mut t = claimed;
            t.attention = Some(format!(
                "placing the order timed out or failed ({}); check Klarna's portal for {}",
                e, t.order_reference
            ));
            let mut tx = gw.db.begin_write().await?;
            // A webhook may have adopted the order meanwhile (this answer came very late):
            // its record stands.
            let current = gw.db.lock_transaction(&mut tx, t.id).await?;
            if current.state != TxState::Placing {
                tx.commit().await?;
                return authorized(&current).ok_or(GatewayError::AuthorizationInProgress);
            }
            gw.db.save_transaction(&mut tx, &t).await?;
            gw.db
                .audit(
                    &mut tx,
                    Audit {
                        transaction_id: Some(t.id),
                        order_reference: Some(&t.order_reference),
                        actor: "widget",
                        action: "authorize_outcome_unknown",
                        before: None,
                        after: Some(TxState::Placing.as_str()),
                        detail: t.attention.clone(),
                    },
                )
                .await?;
            odoo_sync::enqueue(
                &gw.db,
                &mut tx,
                &Notification::new(
                    &t,
                    Event::Error,
                    t.authorized_amount,
                    None,
                    t.attention.clone(),
                ),
            )
            .await?;
            tx.commit().await?;
            Err(e.into())
        }
        Err(e) => {
            gw.db.release_claim(&session.id).await?;
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::decode_json;

    fn parsed(body: &str) -> Result<SessionRequest, GatewayError> {
        let req = decode_json::<SessionRequest>(body.as_bytes())?;
        check_session_request(&req)?;
        Ok(req)
    }

    fn field_at_fault(body: &str) -> String {
        match parsed(body) {
            Err(GatewayError::InvalidRequest { field, .. }) => field,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn session_requests_are_decoded_and_checked_before_any_io() {
        let req = parsed(r#"{"order_reference":"S00042","access_token":"tok-1"}"#).expect("valid");
        assert_eq!(
            (req.order_reference.as_str(), req.access_token.as_str()),
            ("S00042", "tok-1")
        );
        assert_eq!(field_at_fault(r#"{"order_reference":"S1"}"#), "body");
        assert_eq!(
            field_at_fault(r#"{"order_reference":"S1","access_token":"t","amount":1}"#),
            "body"
        );
        assert_eq!(
            field_at_fault(r#"{"order_reference":7,"access_token":"t"}"#),
            "order_reference"
        );
        assert_eq!(
            field_at_fault(r#"{"order_reference":"S1","access_token":"t"} x"#),
            "body"
        );
        assert_eq!(
            field_at_fault(r#"{"order_reference":" ","access_token":"t"}"#),
            "order_reference"
        );
        let long = "a".repeat(MAX_FIELD + 1);
        assert_eq!(
            field_at_fault(&format!(
                r#"{{"order_reference":"S1","access_token":"{long}"}}"#
            )),
            "access_token"
        );
        assert_eq!(
            field_at_fault(r#"{"order_reference":"S\u0000","access_token":"t"}"#),
            "order_reference"
        );
    }
}
