//! Which fields of which Odoo model the mapping reads: the gateway asks Odoo for exactly
//! these, and the addon sends exactly these with an order edit (its `const.py`,
//! `KLARNA_ORDER_FIELDS`, which a gateway test holds equal to [`MODEL_FIELDS`]).

/// Every model the mapping reads, with its fields.
pub const MODEL_FIELDS: &[(&str, &[&str])] = &[
    ("sale.order", ORDER_FIELDS),
    ("sale.order.line", LINE_FIELDS),
    ("product.product", PRODUCT_FIELDS),
    ("product.template.attribute.value", ATTRIBUTE_VALUE_FIELDS),
    ("loyalty.reward", REWARD_FIELDS),
    ("loyalty.program", PROGRAM_FIELDS),
    ("account.tax", TAX_FIELDS),
    ("res.currency", CURRENCY_FIELDS),
    ("res.partner", PARTNER_FIELDS),
    ("res.country.state", STATE_FIELDS),
];

pub const PRODUCT_FIELDS: &[&str] = &[
    "default_code",
    "type",
    "product_template_attribute_value_ids",
];
pub const ATTRIBUTE_VALUE_FIELDS: &[&str] = &["name", "display_name"];
pub const REWARD_FIELDS: &[&str] = &["reward_type", "program_id"];
pub const PROGRAM_FIELDS: &[&str] = &["program_type"];
pub const CURRENCY_FIELDS: &[&str] = &["name", "decimal_places"];
pub const STATE_FIELDS: &[&str] = &["code"];
pub const ORDER_FIELDS: &[&str] = &[
    "name",
    "state",
    "access_token",
    "currency_id",
    "amount_untaxed",
    "amount_tax",
    "amount_total",
    "partner_id",
    "partner_invoice_id",
    "partner_shipping_id",
    "fiscal_position_id",
    "tax_calculation_rounding_method",
    "order_line",
];
pub const LINE_FIELDS: &[&str] = &[
    "sequence",
    "name",
    "display_type",
    "product_id",
    "product_type",
    "product_uom_qty",
    "product_uom",
    "price_unit",
    "discount",
    "tax_id",
    "price_subtotal",
    "price_tax",
    "price_total",
    "is_delivery",
    "is_reward_line",
    "reward_id",
    "is_downpayment",
    "product_no_variant_attribute_value_ids",
];
pub const TAX_FIELDS: &[&str] = &[
    "name",
    "amount",
    "amount_type",
    "price_include",
    "include_base_amount",
    "children_tax_ids",
];
pub const PARTNER_FIELDS: &[&str] = &[
    "name",
    "title",
    "street_name",
    "street_number",
    "street_number2",
    "is_company",
    "company_name",
    "commercial_company_name",
    "street",
    "street2",
    "zip",
    "city",
    "state_id",
    "country_code",
    "phone",
    "mobile",
    "email",
    "vat",
    "lang",
];
