# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import logging

from odoo import _, models
from odoo.exceptions import ValidationError

_logger = logging.getLogger(__name__)


class StockPicking(models.Model):
    _inherit = 'stock.picking'

    def _action_done(self):
        """ Override of `stock` to capture, with providers set to "Capture When Delivered", what
        each validated delivery of a Klarna-paid order ships (the original design's "capture when
        the order reaches the shipping stage", one capture per shipment). """
        res = super()._action_done()
        for picking in self.filtered(lambda p: p.picking_type_code == 'outgoing' and p.sale_id):
            picking._klarna_capture_shipped()
        return res

    def _klarna_capture_shipped(self):
        self.ensure_one()
        order = self.sale_id
        txs = order.transaction_ids.filtered(
            lambda tx: tx.provider_code == 'klarna' and tx.state == 'authorized'
            and not tx.source_transaction_id and tx.provider_id.klarna_capture_on_delivery
        )
        for tx in txs:
            currency = tx.currency_id
            asked = sum(tx.child_transaction_ids.filtered(
                lambda c: c.operation != 'refund' and c.state in ('draft', 'pending', 'authorized', 'done')
            ).mapped('amount'))
            remaining = currency.round(tx.amount - asked)
            shipped = sum(
                move.sale_line_id.price_total / move.sale_line_id.product_uom_qty * move.quantity
                for move in self.move_ids
                if move.state == 'done' and move.sale_line_id and move.sale_line_id.product_uom_qty
            )
            # The last delivery takes what remains (shipping fees, rounding).
            last = not order.picking_ids.filtered(
                lambda p: p.picking_type_code == 'outgoing' and p.state not in ('done', 'cancel')
            )
            amount = remaining if last else min(currency.round(shipped), remaining)
            if currency.compare_amounts(amount, 0) <= 0:
                continue
            try:
                tx._send_capture_request(
                    amount_to_capture=None if currency.compare_amounts(amount, tx.amount) == 0 else amount
                )
            except ValidationError as e:
                # The delivery stands; the capture can be retried from the transaction.
                _logger.warning("Klarna capture for %s failed: %s", self.name, e)
                order.message_post(body=_(
                    "The Klarna capture for delivery %(picking)s failed: %(error)s",
                    picking=self.name, error=e,
                ))
