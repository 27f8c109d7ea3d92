//! Applying a stored Klarna event (the job behind every webhook and classic callback):
//! like [`crate::reconcile`], it brings a payment in line with Klarna by reading Klarna's
//! order and going through the state machine ([`reconcile::sync_payment`]). An event for
//! an order we do not know yet (it arrived before its authorization) waits and retries;
//! an authorization callback places the order as the widget would have.

use std::time::Duration;

use serde_json::Value;

use crate::db::now_ms;
use crate::error::GatewayError;
use crate::jobs::JobError;
use crate::state::Gateway;
use crate::store::webhooks::StoredEvent;
use crate::store::{Transaction, TxState};
use crate::webhook_verify::AUTHORIZATION_CALLBACK;
use crate::{checkout, reconcile};

/// Applies a stored event (the job): reads Klarna's order and brings the payment in line.
/// An event about an order we do not know yet (it came before its authorization was
/// recorded) waits — checking less often as it ages — until the horizon, then fails.
pub async fn process(gw: &Gateway, event_id: &str) -> Result<(), JobError> {
    let event = gw
        .db
        .event(event_id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("no event {event_id}")))?;
    if event.state == "applied" {
        return Ok(());
    }
    if event.event_type == AUTHORIZATION_CALLBACK {
        return place_from_callback(gw, &event).await;
    }
    let known = match gw.db.find_transaction(&event.order_id).await? {
        Some(t) => Some(t),
        None => adopt(gw, &event.order_id).await?,
    };
    let Some(t) = known else {
        let reason = format!(
            "order {} is not known yet (an event before its authorization)",
            event.order_id
        );
        let age = Duration::from_millis(u64::try_from(now_ms() - event.received_at).unwrap_or(0));
        if age > gw.config.webhook_horizon {
            return Err(JobError::Retryable(format!(
                "{reason}, and still not after {} hours",
                gw.config.webhook_horizon.as_secs() / 3600
            )));
        }
        let retry_in = (age / 4).clamp(Duration::from_secs(1), Duration::from_secs(600));
        return Err(JobError::Waiting { reason, retry_in });
    };
    let order = gw
        .klarna
        .get_order(&event.order_id)
        .await
        .map_err(|e| JobError::Retryable(e.to_string()))?;
    reconcile::sync_payment(
        gw,
        t.id,
        &order,
        "webhook",
        Some((&event.event_id, &event.event_type)),
    )
    .await?;
    Ok(())
}

/// The authorization callback: place the order from its token through the same path as
/// the widget (amounts re-read from Odoo, one order per session whoever comes first).
/// Klarna checks the token; the body is trusted for nothing else.
async fn place_from_callback(gw: &Gateway, event: &StoredEvent) -> Result<(), JobError> {
    use GatewayError as E;
    // The stored body was verified when it came in; it no longer parsing is for a person.
    let payload: Value = serde_json::from_str(&event.payload)
        .map_err(|e| JobError::Permanent(format!("event {}: {e}", event.event_id)))?;
    let token = payload
        .get("authorization_token")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            JobError::Permanent(format!("event {}: no authorization_token", event.event_id))
        })?;
    let request = klarna_types::contract::AuthorizeRequest {
        session_id: event.order_id.clone(),
        authorization_token: token.to_owned(),
    };
    let outcome = match checkout::authorize(gw, request).await {
        Ok(answer) => format!("{answer:?}"),
        Err(E::AuthorizationInProgress) => {
            return Err(JobError::Waiting {
                reason: "the widget is placing this order right now".into(),
                retry_in: Duration::from_secs(2),
            });
        }
        // Settled for good: nothing (more) to place.
        Err(e @ (E::SessionNotFound(_) | E::AuthorizationExpired | E::CartChanged)) => {
            e.to_string()
        }
        Err(e) => return Err(e.into()),
    };
    let mut tx = gw.db.begin_write().await?;
    gw.db.mark_event_applied(&mut tx, &event.event_id).await?;
    tx.commit().await.map_err(GatewayError::from)?;
    tracing::info!(event = %event.event_id, session = %event.order_id, "authorization callback handled: {outcome}");
    Ok(())
}

/// An event about a Klarna order we have no record of: if an authorize for its Odoo
/// order (Klarna's `merchant_reference1`), same amount and currency, has been "placing"
/// for longer than any live request could take, that request died between Klarna placing
/// the order and our recording it. The event's order is then recorded as that payment's,
/// exactly as the authorize would have, so the shopper's paid order is not lost.
async fn adopt(gw: &Gateway, order_id: &str) -> Result<Option<Transaction>, GatewayError> {
    let order = match gw.klarna.get_order(order_id).await {
        Ok(o) => o,
        Err(e) if e.kind == klarna_client::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(reference) = order.merchant_reference1.as_deref() else {
        return Ok(None);
    };
    let grace = i64::try_from(gw.config.placing_grace.as_millis()).unwrap_or(i64::MAX);
    let candidates: Vec<_> = gw
        .db
        .placing_for(reference)
        .await?
        .into_iter()
        .filter(|t| {
            t.authorized_amount == order.original_order_amount
                && t.currency == order.purchase_currency
                && now_ms() - t.updated_at > grace
        })
        .collect();
    let [claimed] = candidates.as_slice() else {
        return Ok(None);
    };
    let _lock = gw.lock_payment(claimed.id).await;
    let mut tx = gw.db.begin_write().await?;
    let mut t = gw.db.lock_transaction(&mut tx, claimed.id).await?;
    if t.state != TxState::Placing {
        return Ok(Some(t));
    }
    checkout::record_placed(
        gw,
        &mut tx,
        &mut t,
        &order.order_id,
        order.fraud_status,
        checkout::PlacedBy {
            actor: "webhook",
            note: "; adopted from a webhook: the authorize that placed it never recorded it",
            saved: None,
        },
    )
    .await?;
    tx.commit().await?;
    tracing::warn!(order = %t.order_reference, klarna_order = %order.order_id, "an order placed by an authorize that died was recorded from its webhook");
    Ok(Some(t))
}
