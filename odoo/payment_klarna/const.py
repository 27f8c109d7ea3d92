# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import json
import os

# Klarna's markets: a purchase country, its one currency, the locales Klarna serves there.
# The table is shared with the gateway (crates/klarna-types/src/validate.rs `MARKETS`, which a
# Rust test compares with this file): edit both together.
with open(os.path.join(os.path.dirname(__file__), 'data', 'klarna_markets.json'), encoding='utf-8') as f:
    MARKETS = json.load(f)

# Purchase country -> its currency, e.g. {'SE': 'SEK', 'DE': 'EUR', ...}.
MARKET_CURRENCY = {market['country']: market['currency'] for market in MARKETS}

# The currencies of Klarna's markets.
SUPPORTED_CURRENCIES = frozenset(MARKET_CURRENCY.values())

# The payment method activated with the provider: Odoo 18's "Klarna". Inside it, the widget
# shows the categories Klarna offers for the purchase (pay now, pay later, financing), as
# Klarna recommends; Odoo's "Klarna - Pay Now" and "Klarna - Pay over time" can be activated
# too and then open the widget on that category.
DEFAULT_PAYMENT_METHOD_CODES = {
    'klarna',
}

# Klarna's production SDK; the sandbox serves a stand-in at <sandbox>/kp/lib/v1/api.js.
SDK_URL = 'https://x.klarnacdn.net/kp/lib/v1/api.js'

# Odoo's payment method code -> Klarna's payment method category, for the widget's
# preferred category.
PAYMENT_METHOD_CATEGORIES = {
    'klarna': 'pay_later',
    'klarna_paynow': 'pay_now',
    'klarna_pay_over_time': 'pay_over_time',
}

# Klarna's API regions.
REGIONS = [
    ('eu', "Europe"),
    ('na', "North America"),
    ('oc', "Oceania"),
]

# The gateway's update events (docs/odoo-contract.md) and the transaction state each leads to.
EVENTS = {
    'authorized', 'pending', 'captured', 'refunded', 'cancelled', 'released', 'expired', 'error',
    'authorization_updated',
}

# How far the gateway's signed timestamp may be from Odoo's clock, in seconds.
SIGNATURE_WINDOW = 300

# Headers of the signed calls, both ways.
HEADER_TIMESTAMP = 'X-Klarna-Gateway-Timestamp'
HEADER_SIGNATURE = 'X-Klarna-Gateway-Signature'
HEADER_NONCE = 'X-Klarna-Gateway-Nonce'

# What the gateway reads of an order, by model (the gateway's `odoo_order::MODEL_FIELDS`;
# a gateway test holds the two equal). An order edit sends these records as read in the
# transaction that edits the order: the gateway maps them as it maps a new order.
KLARNA_ORDER_FIELDS = {
    'sale.order': [
        'name', 'state', 'access_token', 'currency_id', 'amount_untaxed', 'amount_tax',
        'amount_total', 'partner_id', 'partner_invoice_id', 'partner_shipping_id',
        'fiscal_position_id', 'tax_calculation_rounding_method', 'order_line',
    ],
    'sale.order.line': [
        'sequence', 'name', 'display_type', 'product_id', 'product_type', 'product_uom_qty',
        'product_uom', 'price_unit', 'discount', 'tax_id', 'price_subtotal', 'price_tax',
        'price_total', 'is_delivery', 'is_reward_line', 'reward_id', 'is_downpayment',
        'product_no_variant_attribute_value_ids',
    ],
    'product.product': [
        'default_code', 'type', 'product_template_attribute_value_ids',
    ],
    'product.template.attribute.value': [
        'name', 'display_name',
    ],
    'loyalty.reward': [
        'reward_type', 'program_id',
    ],
    'loyalty.program': [
        'program_type',
    ],
    'account.tax': [
        'name', 'amount', 'amount_type', 'price_include', 'include_base_amount',
        'children_tax_ids',
    ],
    'res.currency': [
        'name', 'decimal_places',
    ],
    'res.partner': [
        'name', 'title', 'street_name', 'street_number', 'street_number2', 'is_company',
        'company_name', 'commercial_company_name', 'street', 'street2', 'zip', 'city',
        'state_id', 'country_code', 'phone', 'mobile', 'email', 'vat', 'lang',
    ],
    'res.country.state': [
        'code',
    ],
}
