//! Klarna's own wire shapes (Payments API v1, Order Management API v1, customer tokens),
//! as both the client sends them and the sandbox receives them. Field names are Klarna's; amounts are minor units (`i64`).
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_urls: Option<MerchantUrls>,
    /// Placing the order captures it at once (create-order only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_capture: Option<bool>,
}

/// Where Klarna calls back: `{session.id}` and `{order.id}` are filled in by Klarna.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantUrls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethodCategory {
    pub identifier: String,
    pub name: String,
    #[serde(default)]
    pub asset_urls: AssetUrls,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// Klarna's fraud decision on an order. The same strings travel in Klarna's answers, in
/// the widget contract and in the gateway's store, so [`FraudStatus::as_str`] and
/// [`FraudStatus::parse`] are the only place they are written outside serde's derive.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FraudStatus {
    Accepted,
    Pending,
    Rejected,
}

impl FraudStatus {
    pub const ALL: [Self; 3] = [Self::Accepted, Self::Pending, Self::Rejected];

    /// The wire name, as serde writes it (a test holds the two together).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "ACCEPTED",
            Self::Pending => "PENDING",
            Self::Rejected => "REJECTED",
        }
    }

    /// The inverse of [`Self::as_str`]; `None` for anything else (case matters, as on the
    /// wire).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

impl std::fmt::Display for FraudStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Answer to `POST /payments/v1/authorizations/{token}/order`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
    pub fraud_status: FraudStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized_payment_method: Option<AuthorizedPaymentMethod>,
}

/// Klarna documents an object; one sample shows a bare string. Both are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AuthorizedPaymentMethod {
    Detailed {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        number_of_days: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        number_of_installments: Option<i64>,
    },
    Name(String),
}

impl AuthorizedPaymentMethod {
    /// `invoice`, `fixed_amount`, `direct_debit`, ...
    pub fn kind(&self) -> &str {
        match self {
            Self::Detailed { kind, .. } | Self::Name(kind) => kind,
        }
    }
}

/// `GET /payments/v1/sessions/{id}`: the session's order data and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    #[serde(flatten)]
    pub order: OrderBody,
    /// `complete` once an order was placed from it, else `incomplete`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub payment_method_categories: Vec<PaymentMethodCategory>,
}

/// `POST /payments/v1/authorizations/{token}/customer-token`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerTokenRequest {
    pub purchase_country: String,
    pub purchase_currency: String,
    pub locale: String,
    pub description: String,
    /// `SUBSCRIPTION`
    pub intended_use: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerTokenCreated {
    pub token_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Customer Token API v1: a saved Klarna payment method, charged with no shopper present

/// A customer token's state: only an `ACTIVE` token can be charged; `CANCELLED` is for
/// good; `SUSPENDED` (the payment method behind it stopped working, a card expired) may
/// come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TokenStatus {
    Active,
    Suspended,
    Cancelled,
}

/// `GET /customer-token/v1/tokens/{token}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerToken {
    pub status: TokenStatus,
    /// `INVOICE`, `CARD`, `DIRECT_DEBIT`, …
    pub payment_method_type: String,
}

/// `POST /customer-token/v1/tokens/{token}/order`: an order charged to the saved payment
/// method. Answered with an [`OrderCreated`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenOrder {
    pub purchase_currency: String,
    pub order_amount: i64,
    pub order_tax_amount: i64,
    pub order_lines: Vec<OrderLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_reference1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_reference2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_urls: Option<MerchantUrls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_capture: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
}

/// `PATCH /customer-token/v1/tokens/{token}/status`: only `CANCELLED` may be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenStatusUpdate {
    pub status: TokenStatus,
}

// ---------------------------------------------------------------------------------------
// Order Management API v1

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Authorized,
    PartCaptured,
    Captured,
    Cancelled,
    Expired,
    /// Not defined by Klarna's spec; seen as "finished / remainder released".
    Closed,
}

/// `shipping_info` of a capture: how a shipment travels.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_company: Option<String>,
    /// `PickUpStore`, `Home`, `BoxReg`, ... `Digital`, `Undefined`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_shipping_company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_tracking_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_tracking_uri: Option<String>,
}

/// `POST /ordermanagement/v1/orders/{id}/captures/{capture_id}/shipping-info`: shipping
/// info added to a capture after it was made (a tracking number known only later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateShippingInfo {
    /// 1 to 500 items.
    pub shipping_info: Vec<ShippingInfo>,
}

/// `POST /ordermanagement/v1/orders/{id}/captures`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureRequest {
    pub captured_amount: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_lines: Vec<OrderLine>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shipping_info: Vec<ShippingInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_delay: Option<i64>,
}

/// `POST /ordermanagement/v1/orders/{id}/refunds`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    pub refunded_amount: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_lines: Vec<OrderLine>,
}

/// `PATCH /ordermanagement/v1/orders/{id}/authorization`: new amount (and lines) before
/// capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateAuthorization {
    pub order_amount: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub order_lines: Vec<OrderLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    pub capture_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub klarna_reference: Option<String>,
    pub captured_amount: i64,
    #[serde(default)]
    pub captured_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub order_lines: Vec<OrderLine>,
    #[serde(default)]
    pub refunded_amount: i64,
    #[serde(default)]
    pub shipping_info: Vec<ShippingInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub refund_id: String,
    pub refunded_amount: i64,
    #[serde(default)]
    pub refunded_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub order_lines: Vec<OrderLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// `GET /ordermanagement/v1/orders/{id}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub status: OrderStatus,
    pub fraud_status: FraudStatus,
    pub order_amount: i64,
    pub original_order_amount: i64,
    pub captured_amount: i64,
    pub refunded_amount: i64,
    pub remaining_authorized_amount: i64,
    pub purchase_currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default)]
    pub order_lines: Vec<OrderLine>,
    #[serde(default)]
    pub captures: Vec<Capture>,
    #[serde(default)]
    pub refunds: Vec<Refund>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub klarna_reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_reference1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_reference2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_payment_method: Option<serde_json::Value>,
}

/// Klarna's error body: `{error_code, error_messages[], correlation_id}`; some endpoints
/// send a single `error_message` instead, which is read into `error_messages`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub error_code: String,
    #[serde(default)]
    pub error_messages: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default)]
    pub correlation_id: String,
}

impl ErrorBody {
    /// Every message, whichever field Klarna used.
    pub fn messages(&self) -> Vec<String> {
        self.error_messages
            .iter()
            .cloned()
            .chain(self.error_message.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_of_authorized_payment_method_are_read_and_unknown_fields_ignored() {
        let detailed: OrderCreated = serde_json::from_str(
            r#"{"order_id":"o1","fraud_status":"ACCEPTED","redirect_url":"https://x",
                "authorized_payment_method":{"type":"invoice","number_of_days":30},"new_field":1}"#,
        )
        .expect("object shape");
        assert_eq!(
            detailed
                .authorized_payment_method
                .map(|m| m.kind().to_owned()),
            Some("invoice".into())
        );
        let bare: OrderCreated = serde_json::from_str(
            r#"{"order_id":"o2","fraud_status":"PENDING","authorized_payment_method":"direct_debit"}"#,
        )
        .expect("string shape");
        assert_eq!(
            bare.authorized_payment_method.map(|m| m.kind().to_owned()),
            Some("direct_debit".into())
        );
        assert_eq!(bare.fraud_status, FraudStatus::Pending);
    }

    #[test]
    fn fraud_status_names_agree_with_serde_for_every_variant() {
        for f in FraudStatus::ALL {
            assert_eq!(
                serde_json::to_value(f).expect("serialize"),
                serde_json::Value::String(f.as_str().to_owned())
            );
            let back: FraudStatus =
                serde_json::from_value(serde_json::Value::String(f.as_str().to_owned()))
                    .expect("deserialize");
            assert_eq!(back, f);
            assert_eq!(FraudStatus::parse(f.as_str()), Some(f));
            assert_eq!(f.to_string(), f.as_str());
        }
        assert_eq!(FraudStatus::parse("accepted"), None);
        assert_eq!(FraudStatus::parse(""), None);
    }

    #[test]
    fn a_single_error_message_is_read_too() {
        let e: ErrorBody = serde_json::from_str(
            r#"{"error_code":"NOT_FOUND","error_message":"Invalid authorization token","correlation_id":"c"}"#,
        )
        .expect("error");
        assert_eq!(e.messages(), ["Invalid authorization token"]);
    }
}
