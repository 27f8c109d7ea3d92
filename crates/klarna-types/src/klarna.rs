//! Klarna's own wire shapes (Payments API v1), as both the client sends them and the
//! sandbox receives them. Field names are Klarna's; amounts are minor units (`i64`).
//! Unknown fields in Klarna's answers are ignored so that additions on their side do not
//! break us.

use serde::{Deserialize, Serialize};

/// Body of `POST /payments/v1/sessions`, of a session update, and of
/// `POST /payments/v1/authorizations/{token}/order`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderBody {
    pub purchase_country: String,
    pub purchase_currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    pub order_amount: i64,
    #[serde(default)]
    pub order_tax_amount: i64,
    pub order_lines: Vec<OrderLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_reference1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_reference2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineType {
    Physical,
    Discount,
    ShippingFee,
    SalesTax,
    Digital,
    GiftCard,
    StoreCredit,
    Surcharge,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<LineType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub name: String,
    pub quantity: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity_unit: Option<String>,
    pub unit_price: i64,
    /// Percent × 100: 2500 is 25 %.
    #[serde(default)]
    pub tax_rate: i64,
    pub total_amount: i64,
    #[serde(default)]
    pub total_discount_amount: i64,
    #[serde(default)]
    pub total_tax_amount: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<String>,
}

/// The buyer. For a business: `type: organization` and its registration id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub national_identification_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_registration_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A payment method category offered for a session (`pay_later`, `pay_over_time`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethodCategory {
    pub identifier: String,
    pub name: String,
    #[serde(default)]
    pub asset_urls: AssetUrls,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetUrls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptive: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standard: Option<String>,
}

/// Answer to `POST /payments/v1/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCreated {
    pub session_id: String,
    pub client_token: String,
    #[serde(default)]
    pub payment_method_categories: Vec<PaymentMethodCategory>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FraudStatus {
    Accepted,
    Pending,
    Rejected,
}

/// Answer to `POST /payments/v1/authorizations/{token}/order`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    pub fraud_status: FraudStatus,
    /// Klarna documents an object; one sample shows a bare string. Both are accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized_payment_method: Option<serde_json::Value>,
}

/// Klarna's error body: `{error_code, error_messages[], correlation_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub error_code: String,
    #[serde(default)]
    pub error_messages: Vec<String>,
    #[serde(default)]
    pub correlation_id: String,
}
