//! Klarna's amount rules for an order body, checked the way Klarna checks them.
//!
//! The mapping must never produce a body that fails here, and the sandbox refuses any body
//! that does, with Klarna's `BAD_VALUE` and the offending field path.

use crate::klarna::{
    CaptureRequest, LineType, OrderBody, OrderLine, RefundRequest, ShippingInfo,
    UpdateAuthorization, UpdateShippingInfo,
};
use crate::money::MAX_AMOUNT;

pub const MAX_ORDER_LINES: usize = 1000;

/// Order Management's `shipping_info.shipping_method` values (its OpenAPI pattern).
pub const SHIPPING_METHODS: [&str; 13] = [
    "PickUpStore",
    "Home",
    "BoxReg",
    "BoxUnreg",
    "PickUpPoint",
    "Own",
    "Postal",
    "DHLPackstation",
    "Digital",
    "Undefined",
    "PickUpWarehouse",
    "ClickCollect",
    "PalletDelivery",
];
/// Most `shipping_info` items one capture may carry.
pub const MAX_SHIPPING_INFO: usize = 500;
/// `description` and `reference` of a capture or refund.
pub const MAX_OM_TEXT: usize = 255;

/// One broken rule: the field path Klarna would name, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RuleViolation {
    pub field: String,
    pub reason: String,
}

fn violation(field: impl Into<String>, reason: impl Into<String>) -> RuleViolation {
    RuleViolation {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The tax Klarna expects on a tax-included `total` at `rate` (percent × 100):
/// `total − total × 10000 / (10000 + rate)`, rounded half away from zero.
pub fn expected_tax(total: i64, rate: i64) -> i64 {
    let total = i128::from(total);
    let denom = 10_000 + i128::from(rate);
    let net_x2 = 2 * total * 10_000 / denom;
    // Half away from zero, on integers.
    let net = if net_x2 >= 0 {
        (net_x2 + 1) / 2
    } else {
        (net_x2 - 1) / 2
    };
    // Bounded by `total`, which is an i64.
    i64::try_from(total - net).unwrap_or(i64::MAX)
}

/// Every rule the body breaks; empty when Klarna would accept its amounts.
pub fn check_amounts(body: &OrderBody) -> Vec<RuleViolation> {
    let mut out = Vec::new();
    let n = body.order_lines.len();
    if n == 0 || n > MAX_ORDER_LINES {
        out.push(violation(
            "order_lines",
            format!("must hold 1 to {MAX_ORDER_LINES} lines, holds {n}"),
        ));
    }
    if !(0..=MAX_AMOUNT).contains(&body.order_amount) {
        out.push(violation(
            "order_amount",
            format!("must be 0 to {MAX_AMOUNT}, is {}", body.order_amount),
        ));
    }
    if body.order_tax_amount < 0 {
        out.push(violation(
            "order_tax_amount",
            format!("must not be negative, is {}", body.order_tax_amount),
        ));
    }
    let mut sum_total: i128 = 0;
    let mut sum_tax: i128 = 0;
    for (i, line) in body.order_lines.iter().enumerate() {
        check_line(i, line, &mut out);
        sum_total += i128::from(line.total_amount);
        sum_tax += i128::from(line.total_tax_amount);
    }
    if i128::from(body.order_amount) != sum_total {
        out.push(violation(
            "order_amount",
            format!(
                "is {} but the order lines' total_amount add up to {sum_total}",
                body.order_amount
            ),
        ));
    }
    if i128::from(body.order_tax_amount) != sum_tax {
        out.push(violation(
            "order_tax_amount",
            format!(
                "is {} but the order lines' total_tax_amount add up to {sum_tax}",
                body.order_tax_amount
            ),
        ));
    }
    out
}

/// Every rule of Order Management's capture schema (`CaptureObject`) the request breaks;
/// empty when Klarna would take it.
pub fn check_capture(req: &CaptureRequest) -> Vec<RuleViolation> {
    let mut out = Vec::new();
    check_operation(
        ("captured_amount", req.captured_amount),
        req.description.as_deref(),
        req.reference.as_deref(),
        &req.order_lines,
        &mut out,
    );
    check_shipping_infos(&req.shipping_info, &mut out);
    if req.shipping_delay.is_some_and(|d| d < 0) {
        out.push(violation("shipping_delay", "must not be negative"));
    }
    out
}

/// Every rule of Order Management's `UpdateShippingInfo` (shipping info added to a capture
/// after it was made) the request breaks: 1 to 500 items, each as a capture's.
pub fn check_shipping_info_update(req: &UpdateShippingInfo) -> Vec<RuleViolation> {
    let mut out = Vec::new();
    if req.shipping_info.is_empty() {
        out.push(violation("shipping_info", "holds no items, at least 1"));
    }
    check_shipping_infos(&req.shipping_info, &mut out);
    out
}

/// Every rule of Order Management's `Update authorization` schema (an order edited
/// before it shipped) the request breaks.
pub fn check_update_authorization(req: &UpdateAuthorization) -> Vec<RuleViolation> {
    let mut out = Vec::new();
    check_operation(
        ("order_amount", req.order_amount),
        req.description.as_deref(),
        None,
        &req.order_lines,
        &mut out,
    );
    out
}

/// Every rule of Order Management's refund schema (`RefundObject`) the request breaks.
pub fn check_refund(req: &RefundRequest) -> Vec<RuleViolation> {
    let mut out = Vec::new();
    check_operation(
        ("refunded_amount", req.refunded_amount),
        req.description.as_deref(),
        req.reference.as_deref(),
        &req.order_lines,
        &mut out,
    );
    out
}

/// What captures and refunds share: the amount, the texts, the lines.
fn check_operation(
    (amount_field, amount): (&str, i64),
    description: Option<&str>,
    reference: Option<&str>,
    lines: &[OrderLine],
    out: &mut Vec<RuleViolation>,
) {
    if !(0..=MAX_AMOUNT).contains(&amount) {
        out.push(violation(
            amount_field,
            format!("must be 0 to {MAX_AMOUNT}, is {amount}"),
        ));
    }
    for (field, text) in [("description", description), ("reference", reference)] {
        check_length(field, text, MAX_OM_TEXT, out);
    }
    if lines.len() > MAX_ORDER_LINES {
        out.push(violation(
            "order_lines",
            format!("holds {} lines, at most {MAX_ORDER_LINES}", lines.len()),
        ));
    }
    for (i, line) in lines.iter().enumerate() {
        check_line(i, line, out);
    }
    let sum: i128 = lines.iter().map(|l| i128::from(l.total_amount)).sum();
    if !lines.is_empty() && sum != i128::from(amount) {
        out.push(violation(
            "order_lines",
            format!("their total_amount add up to {sum}, not the {amount_field} {amount}"),
        ));
    }
}

fn check_shipping_infos(items: &[ShippingInfo], out: &mut Vec<RuleViolation>) {
    if items.len() > MAX_SHIPPING_INFO {
        out.push(violation(
            "shipping_info",
            format!("holds {} items, at most {MAX_SHIPPING_INFO}", items.len()),
        ));
    }
    for (i, info) in items.iter().enumerate() {
        check_shipping_info(i, info, out);
    }
}

fn check_shipping_info(i: usize, info: &ShippingInfo, out: &mut Vec<RuleViolation>) {
    let at = |field: &str| format!("shipping_info[{i}].{field}");
    for (field, text, max) in [
        ("shipping_company", info.shipping_company.as_deref(), 100),
        ("tracking_number", info.tracking_number.as_deref(), 100),
        ("tracking_uri", info.tracking_uri.as_deref(), 1024),
        (
            "return_shipping_company",
            info.return_shipping_company.as_deref(),
            100,
        ),
        (
            "return_tracking_number",
            info.return_tracking_number.as_deref(),
            100,
        ),
        (
            "return_tracking_uri",
            info.return_tracking_uri.as_deref(),
            1024,
        ),
    ] {
        check_length(&at(field), text, max, out);
    }
    if let Some(method) = &info.shipping_method
        && !SHIPPING_METHODS.contains(&method.as_str())
    {
        out.push(violation(
            at("shipping_method"),
            format!("{method:?} is not one of {}", SHIPPING_METHODS.join(", ")),
        ));
    }
}

fn check_length(field: &str, text: Option<&str>, max: usize, out: &mut Vec<RuleViolation>) {
    if let Some(text) = text {
        let n = text.chars().count();
        if n > max {
            out.push(violation(
                field,
                format!("is {n} characters, at most {max}"),
            ));
        }
    }
}

fn check_line(i: usize, line: &OrderLine, out: &mut Vec<RuleViolation>) {
    let at = |field: &str| format!("order_lines[{i}].{field}");
    if line.name.is_empty() || line.name.chars().count() > 255 {
        out.push(violation(at("name"), "must be 1 to 255 characters"));
    }
    if line.quantity < 0 {
        out.push(violation(at("quantity"), "must not be negative"));
    }
    if !(0..=10_000).contains(&line.tax_rate) {
        out.push(violation(
            at("tax_rate"),
            format!("must be 0 to 10000, is {}", line.tax_rate),
        ));
    }
    for (field, value) in [
        ("unit_price", line.unit_price),
        ("total_amount", line.total_amount),
    ] {
        if value.abs() > MAX_AMOUNT {
            out.push(violation(at(field), format!("exceeds {MAX_AMOUNT}")));
        }
    }
    if line.total_discount_amount < 0 {
        out.push(violation(
            at("total_discount_amount"),
            "must not be negative",
        ));
    }
    let gross = i128::from(line.quantity) * i128::from(line.unit_price)
        - i128::from(line.total_discount_amount);
    if gross != i128::from(line.total_amount) {
        out.push(violation(
            at("total_amount"),
            format!(
                "is {} but quantity × unit_price − total_discount_amount is {gross}",
                line.total_amount
            ),
        ));
    }
    if line.kind == Some(LineType::SalesTax) {
        return;
    }
    let expected = expected_tax(line.total_amount, line.tax_rate);
    if (line.total_tax_amount - expected).abs() > 1 {
        out.push(violation(
            at("total_tax_amount"),
            format!(
                "is {} but {} at tax_rate {} gives {expected} (±1 allowed)",
                line.total_tax_amount, line.total_amount, line.tax_rate
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: &[RuleViolation]) -> Vec<&str> {
        v.iter().map(|v| v.field.as_str()).collect()
    }

    #[test]
    fn shipping_info_added_later_is_one_to_five_hundred_items_each_within_limits() {
        let item = |tracking: &str| ShippingInfo {
            shipping_company: Some("DHL".into()),
            shipping_method: Some("Home".into()),
            tracking_number: Some(tracking.into()),
            ..ShippingInfo::default()
        };
        let ok = UpdateShippingInfo {
            shipping_info: vec![item(&"t".repeat(100))],
        };
        assert!(check_shipping_info_update(&ok).is_empty());
        let none = UpdateShippingInfo {
            shipping_info: Vec::new(),
        };
        assert_eq!(
            fields(&check_shipping_info_update(&none)),
            ["shipping_info"]
        );
        let many = UpdateShippingInfo {
            shipping_info: vec![item("t"); MAX_SHIPPING_INFO + 1],
        };
        assert_eq!(
            fields(&check_shipping_info_update(&many)),
            ["shipping_info"]
        );
        let mut wrong = item(&"t".repeat(101));
        wrong.shipping_method = Some("Drone".into());
        let bad = UpdateShippingInfo {
            shipping_info: vec![item("t"), wrong],
        };
        assert_eq!(
            fields(&check_shipping_info_update(&bad)),
            [
                "shipping_info[1].tracking_number",
                "shipping_info[1].shipping_method"
            ]
        );
    }

    #[test]
    fn captures_and_refunds_keep_order_managements_limits() {
        let ok = CaptureRequest {
            captured_amount: 1000,
            description: Some("d".repeat(255)),
            reference: Some("r".repeat(255)),
            order_lines: vec![line(1000, 2500, 200)],
            shipping_info: vec![ShippingInfo {
                shipping_company: Some("c".repeat(100)),
                shipping_method: Some("PickUpPoint".into()),
                tracking_number: Some("t".repeat(100)),
                tracking_uri: Some("u".repeat(1024)),
                ..ShippingInfo::default()
            }],
            shipping_delay: Some(0),
        };
        assert_eq!(check_capture(&ok), vec![]);

        let mut bad = ok.clone();
        bad.description = Some("ä".repeat(300));
        bad.order_lines[0].total_amount = 999;
        bad.shipping_info[0].shipping_company = Some("c".repeat(120));
        bad.shipping_info[0].tracking_number = Some("t".repeat(120));
        bad.shipping_info[0].shipping_method = Some("Drone".into());
        bad.shipping_delay = Some(-1);
        assert_eq!(
            fields(&check_capture(&bad)),
            [
                "description",
                "order_lines[0].total_amount",
                "order_lines",
                "shipping_info[0].shipping_company",
                "shipping_info[0].tracking_number",
                "shipping_info[0].shipping_method",
                "shipping_delay",
            ]
        );
        bad = ok.clone();
        bad.captured_amount = -1;
        bad.order_lines = vec![line(0, 0, 0); MAX_ORDER_LINES + 1];
        bad.shipping_info = vec![ShippingInfo::default(); MAX_SHIPPING_INFO + 1];
        let found = check_capture(&bad);
        assert_eq!(
            fields(&found)[..2],
            ["captured_amount", "order_lines"],
            "{found:?}"
        );
        assert!(fields(&found).contains(&"shipping_info"));

        let refund = RefundRequest {
            refunded_amount: 1000,
            description: None,
            reference: Some("r".repeat(256)),
            order_lines: Vec::new(),
        };
        assert_eq!(fields(&check_refund(&refund)), ["reference"]);
    }

    fn line(total: i64, rate: i64, tax: i64) -> OrderLine {
        OrderLine {
            kind: Some(LineType::Physical),
            reference: None,
            name: "Item".into(),
            quantity: 1,
            quantity_unit: None,
            unit_price: total,
            tax_rate: rate,
            total_amount: total,
            total_discount_amount: 0,
            total_tax_amount: tax,
        }
    }

    fn body(lines: Vec<OrderLine>) -> OrderBody {
        OrderBody {
            purchase_country: "SE".into(),
            purchase_currency: "SEK".into(),
            locale: None,
            order_amount: lines.iter().map(|l| l.total_amount).sum(),
            order_tax_amount: lines.iter().map(|l| l.total_tax_amount).sum(),
            order_lines: lines,
            billing_address: None,
            shipping_address: None,
            customer: None,
            merchant_reference1: None,
            merchant_reference2: None,
            intent: None,
            merchant_urls: None,
            auto_capture: None,
        }
    }

    #[test]
    fn klarnas_own_tax_example_passes_and_its_mislabelled_twin_fails() {
        // docs.klarna.com tax-handling: 59500 @ 20 % → 9917, 2900 @ 20 % → 483.
        let ok = body(vec![line(59_500, 2000, 9917), line(2900, 2000, 483)]);
        assert_eq!(check_amounts(&ok), vec![]);
        assert_eq!(ok.order_amount, 62_400);
        assert_eq!(ok.order_tax_amount, 10_400);
        let bad = body(vec![line(59_500, 2500, 9917), line(2900, 2500, 483)]);
        let errors = check_amounts(&bad);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].field, "order_lines[0].total_tax_amount");
    }

    #[test]
    fn order_sums_must_match_lines() {
        let mut b = body(vec![line(10_000, 2500, 2000)]);
        b.order_amount += 1;
        b.order_tax_amount -= 1;
        let fields: Vec<_> = check_amounts(&b).into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["order_amount", "order_tax_amount"]);
    }

    #[test]
    fn line_arithmetic_is_checked() {
        let mut l = line(3000, 0, 0);
        l.quantity = 3;
        l.unit_price = 1000;
        l.total_discount_amount = 1;
        let fields: Vec<_> = check_amounts(&body(vec![l]))
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["order_lines[0].total_amount"]);
    }

    #[test]
    fn expected_tax_rounds_half_away_from_zero() {
        assert_eq!(expected_tax(12_500, 2500), 2500);
        assert_eq!(expected_tax(-12_500, 2500), -2500);
        assert_eq!(expected_tax(0, 2500), 0);
        assert_eq!(expected_tax(100, 0), 0);
    }
}
