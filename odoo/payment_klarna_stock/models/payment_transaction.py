# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

from odoo import models


class PaymentTransaction(models.Model):
    _inherit = 'payment.transaction'

    def _klarna_capture_sent(self, child_capture_tx, operation):
        """ Override of `payment_klarna` to remember which capture a delivery made, so that a
        tracking number set on it later reaches that capture. """
        super()._klarna_capture_sent(child_capture_tx, operation)
        picking_id = self.env.context.get('klarna_capturing_picking')
        if picking_id and operation.get('id'):
            self.env['stock.picking'].browse(picking_id).write({
                'klarna_capture_operation': operation['id'],
                'klarna_transaction_id': self.id,
            })
