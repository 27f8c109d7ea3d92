# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import logging

from odoo import _, fields, models
from odoo.exceptions import UserError, ValidationError

_logger = logging.getLogger(__name__)

# Klarna's limits on a `shipping_info` item (Order Management's OpenAPI document).
MAX_COMPANY = 100
MAX_TRACKING_NUMBER = 100
MAX_TRACKING_URI = 1024


class StockPicking(models.Model):
    _inherit = 'stock.picking'

    klarna_capture_operation = fields.Integer(
        string="Klarna Capture", readonly=True, copy=False,
        help="The gateway's operation id of the Klarna capture this delivery made.",
    )
    klarna_transaction_id = fields.Many2one(
        'payment.transaction', string="Klarna Payment", readonly=True, copy=False,
    )

    def _klarna_shipping_info(self):
        """ Klarna `shipping_info` for this delivery: its carrier, tracking number and link.
        A value beyond Klarna's limits is left out rather than cut (a cut tracking number
        tracks nothing), so that the capture never fails for it.

        :return: No item, or one.
        :rtype: list
        """
        self.ensure_one()
        item = {}
        if self.carrier_id:
            item['shipping_company'] = self.carrier_id.name[:MAX_COMPANY]
        reference = (self.carrier_tracking_ref or '').strip()
        if reference and len(reference) <= MAX_TRACKING_NUMBER:
            item['tracking_number'] = reference
        url = (self.carrier_tracking_url or '').strip()
        if url.startswith(('https://', 'http://')) and len(url) <= MAX_TRACKING_URI:
            item['tracking_uri'] = url
        return [item] if item else []

    def write(self, vals):
        """ Override to send a tracking number set after the delivery was captured (the
        carrier gave it later) to that capture at Klarna. """
        res = super().write(vals)
        if vals.get('carrier_tracking_ref'):
            for picking in self.filtered(lambda p: p.state == 'done' and p.klarna_capture_operation):
                picking._klarna_send_tracking()
        return res

    def _klarna_send_tracking(self):
        self.ensure_one()
        shipping_info = self._klarna_shipping_info()
        if not shipping_info or 'tracking_number' not in shipping_info[0]:
            return
        try:
            self.klarna_transaction_id._klarna_add_shipping_info(
                self.klarna_capture_operation, shipping_info,
            )
        except ValidationError as e:
            # The tracking stands in Odoo; Klarna lacks it until it is set again.
            _logger.warning("Klarna shipping info for %s failed: %s", self.name, e)
            self.message_post(body=_(
                "The tracking number could not be sent to Klarna: %(error)s", error=e,
            ))
        else:
            self.message_post(body=_(
                "Tracking number %(reference)s sent to Klarna for the capture of this delivery.",
                reference=shipping_info[0]['tracking_number'],
            ))

    def _klarna_follow_order_total(self, order):
        """ The order's total rose while it shipped (a carrier invoiced at its real cost adds or
        raises the delivery line as the delivery is validated): Klarna's authorization follows
        before the capture, so that the capture takes the order as it now stands. When Klarna
        declines, the delivery stands all the same and its capture takes what Klarna authorized;
        the order says so. """
        if not (order.klarna_authorization_differs and order._klarna_open_payment()):
            return
        try:
            order._klarna_update_authorization()
        except UserError as e:
            order._klarna_forget_edit()
            order.message_post(body=_(
                "Klarna did not take the order's new total, so the capture of delivery "
                "%(picking)s takes what Klarna authorized: %(error)s",
                picking=self.name, error=e,
            ))

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
        self._klarna_follow_order_total(order)
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
                tx.with_context(
                    klarna_shipping_info=self._klarna_shipping_info(),
                    klarna_capturing_picking=self.id,
                )._send_capture_request(
                    amount_to_capture=None if currency.compare_amounts(amount, tx.amount) == 0 else amount
                )
            except ValidationError as e:
                # The delivery stands; the capture can be retried from the transaction.
                _logger.warning("Klarna capture for %s failed: %s", self.name, e)
                order.message_post(body=_(
                    "The Klarna capture for delivery %(picking)s failed: %(error)s",
                    picking=self.name, error=e,
                ))
