//! Telling Odoo what happened to a payment, durably.
//!
//! Every state change enqueues a notification in the same transaction (outbox); the job
//! worker posts it to the addon's route (`docs/odoo-contract.md`), signed with the shared
//! secret. Odoo being down loses nothing: the job waits and retries.

use hmac::{Hmac, Mac};
use klarna_types::money::{Currency, Money};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::Gateway;
use crate::db::{Db, Tx, now_ms};
use crate::error::GatewayError;
use crate::secrets::ODOO_SHARED_SECRET;
use crate::store::Transaction;
use crate::store::jobs::PRIORITY_PAYMENT;

pub const JOB: &str = "odoo_sync";

/// What a notification says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Authorized and accepted: Odoo's transaction becomes `authorized`.
    Authorized,
    /// Placed, waiting for Klarna's fraud decision: `pending`.
    Pending,
    /// A capture: partial captures become child transactions in Odoo 18; the last one
    /// makes the transaction `done`.
    Captured,
    /// A refund: a refund transaction.
    Refunded,
    /// Cancelled before capture: `cancel`.
    Cancelled,
    /// The rest of the authorization was released after partial captures.
    Released,
    /// The authorization expired: `cancel` with a message.
    Expired,
    /// Something failed for good: `error` with the message, shown on the order.
    Error,
}

/// The signed body the gateway posts to Odoo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub event_id: String,
    pub event: Event,
    /// The Odoo sale order (`sale.order.name`).
    pub reference: String,
    pub klarna_order_id: Option<String>,
    pub currency: String,
    /// This event's amount (the capture, the refund, …; the authorization for
    /// authorized/pending), in minor units and as a decimal string.
    pub amount_minor: i64,
    pub amount: String,
    pub authorized_minor: i64,
    pub captured_minor: i64,
    pub refunded_minor: i64,
    /// The gateway's operation behind a capture or refund (idempotency on Odoo's side).
    pub operation_id: Option<i64>,
    pub message: Option<String>,
    pub occurred_at: i64,
}

fn decimal(minor: i64, currency: &str) -> String {
    Currency::new(currency).map_or_else(
        |_| minor.to_string(),
        |c| {
            let s = Money::from_minor(minor, c).to_string();
            s.split(' ').next().unwrap_or("").to_owned()
        },
    )
}

impl Notification {
    pub fn new(
        t: &Transaction,
        event: Event,
        amount_minor: i64,
        operation_id: Option<i64>,
        message: Option<String>,
    ) -> Self {
        Self {
            event_id: uuid::Uuid::new_v4().to_string(),
            event,
            reference: t.order_reference.clone(),
            klarna_order_id: t.klarna_order_id.clone(),
            currency: t.currency.clone(),
            amount_minor,
            amount: decimal(amount_minor, &t.currency),
            authorized_minor: t.authorized_amount,
            captured_minor: t.captured_amount,
            refunded_minor: t.refunded_amount,
            operation_id,
            message,
            occurred_at: now_ms(),
        }
    }
}

/// Queues a notification inside the caller's transaction.
pub async fn enqueue(db: &Db, tx: &mut Tx, n: &Notification) -> Result<(), GatewayError> {
    let payload = serde_json::to_value(n).map_err(|e| GatewayError::Config(e.to_string()))?;
    db.enqueue(
        tx,
        JOB,
        &payload,
        PRIORITY_PAYMENT,
        Some(&format!("odoo-{}", n.event_id)),
    )
    .await
}

/// `hex(HMAC-SHA256(secret, "{timestamp}.{body}"))`
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Posts one notification (the job's work).
pub async fn deliver(gw: &Gateway, payload: &serde_json::Value) -> Result<(), String> {
    let body = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
    let secret = gw
        .secrets
        .get(ODOO_SHARED_SECRET)
        .ok_or("the Odoo shared secret (odoo.shared_secret) is not set")?;
    let timestamp = now_ms() / 1000;
    let response = gw
        .http
        .post(&gw.config.odoo_notify_url)
        .header("content-type", "application/json")
        .header("X-Klarna-Gateway-Timestamp", timestamp.to_string())
        .header(
            "X-Klarna-Gateway-Signature",
            signature(&secret, timestamp, &body),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| format!("cannot reach Odoo: {}", e.without_url()))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        let text = response.text().await.unwrap_or_default();
        Err(format!(
            "Odoo answered {status}: {}",
            text.chars().take(300).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        let a = signature("s", 1, b"{}");
        assert_eq!(a.len(), 64);
        assert_ne!(a, signature("s", 2, b"{}"));
        assert_ne!(a, signature("s", 1, b"{ }"));
        assert_eq!(decimal(123_456, "EUR"), "1234.56");
        assert_eq!(decimal(5, "KWD"), "0.005");
    }
}
