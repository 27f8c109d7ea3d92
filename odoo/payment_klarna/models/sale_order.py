# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

from odoo import models


class SaleOrder(models.Model):
    _inherit = 'sale.order'

    def _send_payment_succeeded_for_order_mail(self):
        """ Override of `sale` to send no "payment executed" e-mail for a Klarna capture or
        release of an order that is already confirmed: its order confirmation is the one
        e-mail (see `payment.transaction._post_process`). Quotations still get it (a payment
        that Klarna is reviewing, one that does not reach the amount to confirm). """
        orders = self
        if self.env.context.get('klarna_no_payment_mail'):
            orders = self.filtered(lambda so: so.state != 'sale')
        return super(SaleOrder, orders)._send_payment_succeeded_for_order_mail()
