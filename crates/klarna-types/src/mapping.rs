//! Odoo sale order → Klarna order body.
//!
//! The order total the shopper saw in Odoo is the one Klarna gets: `order_amount` is always
//! Odoo's `amount_total` in minor units, and every line obeys Klarna's amount rules
//! ([`crate::rules`]) by construction. The rules, with examples, are in `docs/money.md`.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::klarna::{Address, LineType, OrderBody, OrderLine};
use crate::money::{Currency, MoneyError, decimal_from_f64};
use crate::odoo::{OrderDocument, Partner, SaleOrderLine};
use crate::rules::{RuleViolation, check_amounts, expected_tax};

const NAME_MAX: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("{field}: {source}")]
    Money {
        field: String,
        #[source]
        source: MoneyError,
    },
    #[error("{0}: is required and missing in Odoo")]
    Missing(&'static str),
    #[error("the mapped order breaks Klarna's amount rules: {}", join(.0))]
    Rules(Vec<RuleViolation>),
}

fn join(v: &[RuleViolation]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Settings that are not part of the Odoo order itself.
#[derive(Debug, Clone, Default)]
pub struct MappingOptions {
    /// Klarna locale such as `sv-SE`; derived from the billing partner when absent.
    pub locale: Option<String>,
}

/// Maps one Odoo order to the body of a Klarna session (and of the order placed from it).
pub fn map_order(doc: &OrderDocument, opts: &MappingOptions) -> Result<OrderBody, MappingError> {
    let currency = Currency::new(&doc.currency.name).map_err(|source| MappingError::Money {
        field: "purchase_currency".into(),
        source,
    })?;
    let billing = doc
        .partners
        .partner_invoice_id
        .as_ref()
        .or(doc.partners.partner_id.as_ref())
        .ok_or(MappingError::Missing("billing_address"))?;
    let country = billing
        .country_code
        .as_deref()
        .map(str::to_ascii_uppercase)
        .ok_or(MappingError::Missing("billing_address.country"))?;
    let shipping = doc.partners.partner_shipping_id.as_ref().unwrap_or(billing);
    let us_sales_tax = country == "US";

    let amount_total = minor(currency, doc.order.amount_total, "amount_total")?;
    let mut lines = Vec::new();
    for (i, line) in doc.lines.iter().enumerate() {
        if line.display_type.is_some() {
            continue;
        }
        let mut mapped = map_line(currency, line, i)?;
        if us_sales_tax {
            // Klarna's US convention: lines carry no tax; one sales_tax line holds it all.
            let net = minor(
                currency,
                line.price_subtotal,
                &format!("lines[{i}].price_subtotal"),
            )?;
            mapped = retotal(mapped, net, 0);
        }
        lines.push(mapped);
    }
    if us_sales_tax {
        let tax = amount_total - lines.iter().map(|l| l.total_amount).sum::<i64>();
        lines.push(OrderLine {
            kind: Some(LineType::SalesTax),
            reference: None,
            name: "Sales Tax".into(),
            quantity: 1,
            quantity_unit: None,
            unit_price: tax,
            tax_rate: 0,
            total_amount: tax,
            total_discount_amount: 0,
            total_tax_amount: tax,
        });
    } else {
        close_rounding_gap(&mut lines, amount_total);
    }

    let body = OrderBody {
        purchase_country: country.clone(),
        purchase_currency: currency.code().to_owned(),
        locale: Some(
            opts.locale
                .clone()
                .unwrap_or_else(|| locale_for(billing, &country)),
        ),
        order_amount: amount_total,
        order_tax_amount: lines.iter().map(|l| l.total_tax_amount).sum(),
        order_lines: lines,
        billing_address: Some(address(billing)),
        shipping_address: Some(address(shipping)),
        merchant_reference1: Some(doc.order.name.clone()),
        merchant_reference2: None,
        intent: Some("buy".into()),
    };
    let violations = check_amounts(&body);
    if violations.is_empty() {
        Ok(body)
    } else {
        Err(MappingError::Rules(violations))
    }
}

fn minor(currency: Currency, value: f64, field: &str) -> Result<i64, MappingError> {
    currency
        .minor_from_f64(value)
        .map_err(|source| MappingError::Money {
            field: field.to_owned(),
            source,
        })
}

fn map_line(currency: Currency, line: &SaleOrderLine, i: usize) -> Result<OrderLine, MappingError> {
    let total = minor(
        currency,
        line.price_total,
        &format!("lines[{i}].price_total"),
    )?;
    let net = minor(
        currency,
        line.price_subtotal,
        &format!("lines[{i}].price_subtotal"),
    )?;
    let kind = if line.is_delivery {
        LineType::ShippingFee
    } else if line.is_reward_line || total < 0 {
        LineType::Discount
    } else if line.product_type.as_deref() == Some("service") {
        LineType::Digital
    } else {
        LineType::Physical
    };
    let base = OrderLine {
        kind: Some(kind),
        reference: line
            .product
            .as_ref()
            .and_then(|p| p.default_code.clone())
            .map(|c| truncate(&c, NAME_MAX)),
        name: line_name(&line.name),
        quantity: 1,
        quantity_unit: None,
        unit_price: total,
        tax_rate: 0,
        total_amount: total,
        total_discount_amount: 0,
        total_tax_amount: 0,
    };
    let rate = effective_rate(total - net, net);
    let mut mapped = retotal(base, total, rate);

    let qty = decimal_from_f64(line.product_uom_qty).map_err(|source| MappingError::Money {
        field: format!("lines[{i}].product_uom_qty"),
        source,
    })?;
    let whole_qty = qty.fract().is_zero().then(|| qty.to_i64()).flatten();
    match whole_qty {
        Some(q) if q > 0 && kind != LineType::Discount => {
            // Tax-included unit price before the line discount, so that
            // quantity × unit_price − total_discount_amount = total exactly.
            let factor = Decimal::ONE
                - decimal_from_f64(line.discount).unwrap_or_default() / Decimal::ONE_HUNDRED;
            let undiscounted = if factor <= Decimal::ZERO {
                Decimal::from(total)
            } else {
                Decimal::from(total) / factor
            };
            let mut unit = (undiscounted / Decimal::from(q))
                .round()
                .to_i64()
                .unwrap_or(total);
            if q * unit < total {
                unit = (total + q - 1).div_euclid(q);
            }
            mapped.quantity = q;
            mapped.unit_price = unit;
            mapped.total_discount_amount = q * unit - total;
        }
        _ if !qty.is_zero() && qty != Decimal::ONE && kind != LineType::Discount => {
            // Klarna wants whole quantities: one unit of "1.5 kg …" at the line total.
            let unit = line.product_uom_name.clone().unwrap_or_default();
            mapped.name = line_name(&format!("{} {} × {}", qty.normalize(), unit, line.name));
            mapped.quantity_unit = Some(truncate(&unit, 8)).filter(|u| !u.is_empty());
        }
        _ => {}
    }
    Ok(mapped)
}

/// Sets a line's total, its tax rate and Klarna's tax for that total, keeping quantity 1.
fn retotal(mut line: OrderLine, total: i64, rate: i64) -> OrderLine {
    line.quantity = 1;
    line.unit_price = total;
    line.total_discount_amount = 0;
    line.total_amount = total;
    line.tax_rate = rate;
    line.total_tax_amount = expected_tax(total, rate);
    line
}

/// The tax rate in basis points (percent × 100) that turns `net` into `net + tax`.
fn effective_rate(tax: i64, net: i64) -> i64 {
    if net == 0 || tax == 0 {
        return 0;
    }
    let rate = (Decimal::from(tax) * Decimal::from(10_000) / Decimal::from(net)).round();
    rate.to_i64().unwrap_or(0).clamp(0, 10_000)
}

/// Odoo's line totals can miss its order total by a few minor units (global rounding).
/// The order total wins; the difference goes on its own, untaxed line.
fn close_rounding_gap(lines: &mut Vec<OrderLine>, amount_total: i64) {
    let gap = amount_total - lines.iter().map(|l| l.total_amount).sum::<i64>();
    if gap == 0 {
        return;
    }
    lines.push(OrderLine {
        kind: Some(if gap > 0 {
            LineType::Surcharge
        } else {
            LineType::Discount
        }),
        reference: Some("rounding".into()),
        name: "Rounding difference".into(),
        quantity: 1,
        quantity_unit: None,
        unit_price: gap,
        tax_rate: 0,
        total_amount: gap,
        total_discount_amount: 0,
        total_tax_amount: 0,
    });
}

fn line_name(name: &str) -> String {
    let flat = name.split_whitespace().collect::<Vec<_>>().join(" ");
    let flat = if flat.is_empty() { "Item".into() } else { flat };
    truncate(&flat, NAME_MAX)
}

/// At most `max` characters, cut on a character boundary.
fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn locale_for(partner: &Partner, country: &str) -> String {
    // Odoo's `de_DE` → Klarna's `de-DE` when it fits the purchase country.
    match partner.lang.as_deref().and_then(|l| l.split_once('_')) {
        Some((lang, region)) if region.eq_ignore_ascii_case(country) => {
            format!("{}-{}", lang.to_ascii_lowercase(), country)
        }
        _ => format!("en-{country}"),
    }
}

fn address(p: &Partner) -> Address {
    let (given, family) = split_name(&p.name);
    Address {
        given_name: (!p.is_company).then_some(given).flatten(),
        family_name: (!p.is_company).then_some(family).flatten(),
        organization_name: if p.is_company {
            Some(p.name.clone())
        } else {
            p.company_name.clone()
        },
        email: p.email.clone(),
        street_address: p.street.clone(),
        street_address2: p.street2.clone(),
        postal_code: p.zip.clone(),
        city: p.city.clone(),
        region: p.state_code.clone(),
        phone: p.phone.clone().or_else(|| p.mobile.clone()),
        country: p.country_code.clone(),
    }
}

/// Odoo keeps one `name`; Klarna wants given and family names. The last word is the
/// family name, the rest the given name.
fn split_name(name: &str) -> (Option<String>, Option<String>) {
    let name = name.trim();
    match name.rsplit_once(char::is_whitespace) {
        Some((given, family)) => (Some(given.trim().to_owned()), Some(family.to_owned())),
        None if name.is_empty() => (None, None),
        None => (None, Some(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = include_str!("../../../fixtures/odoo18-orders.jsonl");

    fn fixtures() -> Vec<OrderDocument> {
        FIXTURES
            .lines()
            .map(|l| serde_json::from_str(l).expect("fixture parses"))
            .collect()
    }

    #[test]
    fn every_fixture_maps_to_a_valid_body_at_odoos_total() {
        let mut over_cap = 0;
        for doc in fixtures() {
            let currency = Currency::new(&doc.currency.name).expect("currency");
            let total = currency
                .minor_from_f64(doc.order.amount_total)
                .expect("total");
            let mapped = map_order(&doc, &MappingOptions::default());
            if total > crate::money::MAX_AMOUNT {
                // Klarna cannot take this order at all; the mapping must say why.
                let Err(MappingError::Rules(v)) = mapped else {
                    panic!(
                        "{}: an order over Klarna's cap must be refused",
                        doc.order.name
                    )
                };
                assert!(v.iter().any(|v| v.field == "order_amount"), "{v:?}");
                over_cap += 1;
                continue;
            }
            let body = mapped.unwrap_or_else(|e| panic!("{}: {e}", doc.order.name));
            assert_eq!(body.order_amount, total, "{}", doc.order.name);
            assert_eq!(check_amounts(&body), vec![], "{}", doc.order.name);
        }
        assert!(over_cap < 5, "most fixtures are payable");
    }

    #[test]
    fn names_split_on_the_last_word() {
        assert_eq!(
            split_name("Anna Maria Svensson"),
            (Some("Anna Maria".into()), Some("Svensson".into()))
        );
        assert_eq!(split_name("Madonna"), (None, Some("Madonna".into())));
    }

    #[test]
    fn truncation_keeps_utf8_whole() {
        let long = "ä".repeat(300);
        assert_eq!(line_name(&long).chars().count(), 255);
        assert_eq!(line_name("a\n b\tc"), "a b c");
    }
}
