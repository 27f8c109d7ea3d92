//! The widget ↔ gateway contract: what the browser may send and what it gets back.
//!
//! The browser never sends an amount. It names an order (reference + Odoo access token);
//! the gateway reads the amounts from Odoo.

use serde::{Deserialize, Serialize};

use crate::klarna::{FraudStatus, PaymentMethodCategory};

/// `POST /klarna/session`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    pub order_reference: String,
    pub access_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionResponse {
    pub session_id: String,
    pub client_token: String,
    pub payment_method_categories: Vec<PaymentMethodCategory>,
}

/// `POST /klarna/authorize`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    pub session_id: String,
    pub authorization_token: String,
}

/// What became of an authorization the widget posted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
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

/// Every error the gateway returns to the widget: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    /// The request field at fault, as a path (`access_token`, `order_lines[3].tax_rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
