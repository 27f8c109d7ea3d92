# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

from odoo import fields, models

# Klarna's on-site messaging script; the sandbox serves a stand-in at
# <sandbox>/web-sdk/v1/klarna.js.
MESSAGING_SCRIPT_URL = 'https://js.klarna.com/web-sdk/v1/klarna.js'


class PaymentProvider(models.Model):
    _inherit = 'payment.provider'

    klarna_messaging = fields.Boolean(
        string="Price Messaging",
        help="Show Klarna's price messaging (\"Pay in 3 interest-free payments of …\") under the "
             "price on product pages and under the total in the cart. Klarna's script is loaded "
             "only on those pages, and only when this is on.",
    )
    klarna_messaging_client_id = fields.Char(
        string="Messaging Client ID",
        help="The on-site messaging client identifier from Klarna's merchant portal (Settings → "
             "Client identifier). It is public: it is written into the shop's pages.",
    )
    klarna_messaging_theme = fields.Selection(
        string="Messaging Theme",
        selection=[('default', "Light"), ('dark', "Dark")],
        default='default',
    )
    klarna_messaging_script_url = fields.Char(
        string="Messaging Script URL", default=MESSAGING_SCRIPT_URL,
        help="Klarna's on-site messaging script. Change it only to use the klarna-sandbox "
             "stand-in. A Content-Security-Policy must allow its origin in script-src.",
    )
