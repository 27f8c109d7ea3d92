# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

from odoo import fields, models


class PaymentKlarnaEvent(models.Model):
    """ An update from the gateway that was applied, by its event id: the gateway retries until
    Odoo answers, so the same update may arrive twice and must be applied once. """
    _name = 'payment.klarna.event'
    _description = "Klarna gateway update (applied)"
    _order = 'id desc'

    event_id = fields.Char(string="Event ID", required=True, index=True, readonly=True)
    event = fields.Char(string="Update", required=True, readonly=True)
    transaction_id = fields.Many2one('payment.transaction', readonly=True, ondelete='set null')

    _sql_constraints = [
        ('event_id_unique', 'UNIQUE(event_id)', "A gateway update is applied once."),
    ]
