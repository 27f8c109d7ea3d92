from odoo import fields, models


class PaymentProvider(models.Model):
    _inherit = 'payment.provider'

    code = fields.Selection(
        selection_add=[('klarna', "Klarna")], ondelete={'klarna': 'set default'}
    )
    klarna_gateway_url = fields.Char(
        string="Gateway URL",
        help="Where klarna-gateway answers, ideally on this shop's own domain (/klarna/).",
        required_if_provider='klarna',
    )
