//! What the gateway reads from Odoo 18, in Odoo's own field names and JSON shapes.
//!
//! One [`OrderDocument`] is a `sale.order` with its lines, the taxes they use, its currency
//! and its partners, each record exactly as JSON-RPC `read` returns it: empty fields are
//! `false`, many2one fields are `[id, "display name"]`, amounts are floats. This is also the
//! input of `klarna-gateway map ORDER.json` and the shape of the shared fixtures.

use serde::{Deserialize, Deserializer, Serialize};

/// Odoo writes `false` for an empty field of any type; this reads it as `None`.
pub fn falsy<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OrFalse<T> {
        Value(T),
        Bool(bool),
        Null,
    }
    match Option::<OrFalse<T>>::deserialize(de)? {
        Some(OrFalse::Value(v)) => Ok(Some(v)),
        Some(OrFalse::Bool(true)) => Err(serde::de::Error::custom(
            "expected a value or false, found true",
        )),
        Some(OrFalse::Bool(false) | OrFalse::Null) | None => Ok(None),
    }
}

/// A many2one read as its display name; a plain string is taken as the name.
pub fn name_of<'de, D>(de: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NameOrRef {
        Name(String),
        Ref(Many2one),
    }
    Ok(falsy::<D, NameOrRef>(de)?.map(|v| match v {
        NameOrRef::Name(n) => n,
        NameOrRef::Ref(m) => m.1,
    }))
}

/// A many2one value: `[id, "display name"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Many2one(pub i64, pub String);

impl Many2one {
    pub fn id(&self) -> i64 {
        self.0
    }
    pub fn name(&self) -> &str {
        &self.1
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderDocument {
    pub order: SaleOrder,
    pub lines: Vec<SaleOrderLine>,
    #[serde(default)]
    pub taxes: Vec<Tax>,
    pub currency: OdooCurrency,
    pub partners: Partners,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundingMethod {
    RoundPerLine,
    RoundGlobally,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaleOrder {
    pub id: i64,
    pub name: String,
    #[serde(default, deserialize_with = "falsy")]
    pub state: Option<String>,
    #[serde(default, deserialize_with = "falsy")]
    pub access_token: Option<String>,
    pub currency_id: Many2one,
    pub amount_untaxed: f64,
    pub amount_tax: f64,
    pub amount_total: f64,
    #[serde(default, deserialize_with = "falsy")]
    pub partner_id: Option<Many2one>,
    #[serde(default, deserialize_with = "falsy")]
    pub partner_invoice_id: Option<Many2one>,
    #[serde(default, deserialize_with = "falsy")]
    pub partner_shipping_id: Option<Many2one>,
    #[serde(default, deserialize_with = "falsy")]
    pub fiscal_position_id: Option<Many2one>,
    #[serde(default, deserialize_with = "falsy")]
    pub tax_calculation_rounding_method: Option<RoundingMethod>,
    #[serde(default)]
    pub order_line: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaleOrderLine {
    pub id: i64,
    #[serde(default)]
    pub sequence: i64,
    pub name: String,
    /// `line_section` or `line_note` for lines that carry no money.
    #[serde(default, deserialize_with = "falsy")]
    pub display_type: Option<String>,
    #[serde(default, deserialize_with = "falsy")]
    pub product_id: Option<Many2one>,
    /// `consu`, `service` or `combo`.
    #[serde(default, deserialize_with = "falsy")]
    pub product_type: Option<String>,
    #[serde(default)]
    pub product_uom_qty: f64,
    #[serde(default, deserialize_with = "falsy")]
    pub product_uom_name: Option<String>,
    #[serde(default)]
    pub price_unit: f64,
    #[serde(default)]
    pub discount: f64,
    #[serde(default)]
    pub tax_id: Vec<i64>,
    #[serde(default)]
    pub price_subtotal: f64,
    #[serde(default)]
    pub price_tax: f64,
    #[serde(default)]
    pub price_total: f64,
    #[serde(default)]
    pub is_delivery: bool,
    #[serde(default)]
    pub is_reward_line: bool,
    #[serde(default)]
    pub is_downpayment: bool,
    #[serde(default, deserialize_with = "falsy")]
    pub product: Option<Product>,
    /// Attribute values that do not make a variant (engraving, gift wrap, ...).
    #[serde(default)]
    pub no_variant_attribute_values: Vec<AttributeValue>,
    /// The loyalty reward behind a reward line, with its program's type.
    #[serde(default, deserialize_with = "falsy")]
    pub reward: Option<Reward>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: i64,
    #[serde(default, deserialize_with = "falsy")]
    pub default_code: Option<String>,
    #[serde(default, deserialize_with = "falsy", rename = "type")]
    pub kind: Option<String>,
    /// The variant's attribute values (`product_template_attribute_value_ids`, read).
    #[serde(default, rename = "product_template_attribute_values")]
    pub attribute_values: Vec<AttributeValue>,
}

/// A `product.template.attribute.value`: `name` "XL", `display_name` "Size: XL".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeValue {
    pub id: i64,
    pub name: String,
    #[serde(default, deserialize_with = "falsy")]
    pub display_name: Option<String>,
}

/// A `loyalty.reward`, with `program_type` of its program (`gift_card`, `ewallet`,
/// `promotion`, `coupons`, ...), which the gateway reads from `loyalty.program`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reward {
    pub id: i64,
    #[serde(default, deserialize_with = "falsy")]
    pub reward_type: Option<String>,
    #[serde(default, deserialize_with = "falsy")]
    pub program_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tax {
    pub id: i64,
    pub name: String,
    pub amount: f64,
    /// `percent`, `fixed`, `division` or `group`.
    pub amount_type: String,
    #[serde(default)]
    pub price_include: bool,
    #[serde(default)]
    pub include_base_amount: bool,
    #[serde(default)]
    pub children_tax_ids: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OdooCurrency {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub decimal_places: Option<u8>,
}

/// The order's partners by role, as the fixtures and the gateway lay them out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partners {
    #[serde(default, deserialize_with = "falsy")]
    pub partner_id: Option<Partner>,
    #[serde(default, deserialize_with = "falsy")]
    pub partner_invoice_id: Option<Partner>,
    #[serde(default, deserialize_with = "falsy")]
    pub partner_shipping_id: Option<Partner>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Partner {
    pub id: i64,
    pub name: String,
    /// The partner's title (`res.partner.title`): "Mister", "Madam", ... — its name, or
    /// the many2one `[id, name]` as `read` returns it.
    #[serde(default, deserialize_with = "name_of")]
    pub title: Option<String>,
    #[serde(default)]
    pub is_company: bool,
    #[serde(default, deserialize_with = "falsy")]
    pub company_name: Option<String>,
    #[serde(default, deserialize_with = "falsy")]
    pub commercial_company_name: Option<String>,
    #[serde(default, deserialize_with = "falsy")]
    pub street: Option<String>,
    #[serde(default, deserialize_with = "falsy")]
    pub street2: Option<String>,
    /// `base_address_extended`'s split street, when the shop has that module.
    #[serde(default, deserialize_with = "falsy")]
    pub street_name: Option<String>,
    #[serde(default, deserialize_with = "falsy")]
    pub street_number: Option<String>,
    #[serde(default, deserialize_with = "falsy")]
    pub street_number2: Option<String>,
    #[serde(default, deserialize_with = "falsy")]
    pub zip: Option<String>,
    #[serde(default, deserialize_with = "falsy")]
    pub city: Option<String>,
    #[serde(default, deserialize_with = "falsy")]
    pub state_code: Option<String>,
    #[serde(default, deserialize_with = "falsy")]
    pub country_code: Option<String>,
    #[serde(default, deserialize_with = "falsy")]
    pub phone: Option<String>,
    #[serde(default, deserialize_with = "falsy")]
    pub mobile: Option<String>,
    #[serde(default, deserialize_with = "falsy")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "falsy")]
    pub vat: Option<String>,
    #[serde(default, deserialize_with = "falsy")]
    pub lang: Option<String>,
}

impl Partner {
    /// A partner with only a name, for building records in code.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_odoo_false_as_none() {
        let p: Partner = serde_json::from_value(serde_json::json!({
            "id": 7, "name": "Jane Doe", "street": false, "zip": "11122",
            "country_code": "SE", "state_code": false, "unknown_field": [1, 2]
        }))
        .expect("partner parses");
        assert_eq!(p.street, None);
        assert_eq!(p.zip.as_deref(), Some("11122"));
    }

    #[test]
    fn every_shared_fixture_parses() {
        let text = include_str!("../../../fixtures/odoo18-orders.jsonl");
        let mut count = 0;
        for (i, line) in text.lines().enumerate() {
            let doc: OrderDocument = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("fixture line {}: {e}", i + 1));
            assert!(!doc.lines.is_empty());
            count += 1;
        }
        assert_eq!(count, 60);
    }
}
