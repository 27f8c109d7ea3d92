//! The update the gateway posts to Odoo when a payment changes (`docs/odoo-contract.md`):
//! what happened, to which order, and the amounts as they now stand. Data only; queuing
//! and delivering it is [`crate::odoo_sync`]'s.

use klarna_types::money::{Currency, Money};
use serde::{Deserialize, Serialize};

use crate::db::now_ms;
use crate::store::Transaction;

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
    /// The order was edited before it shipped and Klarna took the new amount
    /// (`amount_minor`): the payment's transaction carries it.
    AuthorizationUpdated,
}

impl Event {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorized => "authorized",
            Self::Pending => "pending",
            Self::Captured => "captured",
            Self::Refunded => "refunded",
            Self::Cancelled => "cancelled",
            Self::Released => "released",
            Self::Expired => "expired",
            Self::Error => "error",
            Self::AuthorizationUpdated => "authorization_updated",
        }
    }
}

/// What the checkout saved, as Odoo's update carries it: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedToken {
    /// Odoo's `payment.token.provider_ref`: what the gateway charges and cancels by.
    pub reference: String,
    /// What the shopper saved, for `payment.token.payment_details` ("Klarna (invoice)").
    pub payment_method: String,
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
    /// For a refund: the gateway's operation of the capture it came from, when the
    /// refund named one (Odoo's refund from a capture's transaction, `klarna-op-<id>`);
    /// `null` otherwise and for every other event. Absent in updates queued by earlier
    /// versions.
    #[serde(default)]
    pub capture_operation_id: Option<i64>,
    pub message: Option<String>,
    pub occurred_at: i64,
    /// For a charge of a saved Klarna: Odoo's `payment.transaction.reference` the charge was
    /// asked for (its first update finds that transaction, not the order's latest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_reference: Option<String>,
    /// On the `authorized` or `pending` update of a checkout that saved the payment method:
    /// Odoo makes its `payment.token` of it. Never the token itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SavedToken>,
}

fn decimal(minor: i64, currency: &str) -> String {
    Currency::new(currency).map_or_else(
        |_| minor.to_string(),
        |c| Money::from_minor(minor, c).decimal(),
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
            capture_operation_id: None,
            message,
            occurred_at: now_ms(),
            transaction_reference: crate::store::tokens::charged_for(t).map(str::to_owned),
            token: None,
        }
    }

    /// Names the capture a refund came from (other events name none).
    #[must_use]
    pub fn from_capture(mut self, capture_operation_id: Option<i64>) -> Self {
        if self.event == Event::Refunded {
            self.capture_operation_id = capture_operation_id;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::{Event, decimal};

    #[test]
    fn event_names_are_the_wire_names() {
        for e in [
            Event::Authorized,
            Event::Pending,
            Event::Captured,
            Event::Refunded,
            Event::Cancelled,
            Event::Released,
            Event::Expired,
            Event::Error,
            Event::AuthorizationUpdated,
        ] {
            assert_eq!(serde_json::to_value(e).ok(), Some(e.as_str().into()));
        }
    }

    #[test]
    fn amounts_are_odoo_decimals_in_the_currency_exponent() {
        assert_eq!(decimal(123_456, "EUR"), "1234.56");
        assert_eq!(decimal(5, "KWD"), "0.005");
        assert_eq!(decimal(-250, "SEK"), "-2.50");
        assert_eq!(decimal(700, "JPY"), "700");
    }
}
