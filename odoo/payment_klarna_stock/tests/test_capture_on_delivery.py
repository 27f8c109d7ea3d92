# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import json
from unittest.mock import patch

from odoo.tests import tagged

from odoo.addons.payment_klarna.tests.common import KlarnaCommon

REQUEST = 'odoo.addons.payment_klarna.models.payment_provider.requests.request'


class Answer:
    ok = True
    status_code = 200
    reason = 'OK'

    def json(self):
        return {'operation': {'id': 1}}


@tagged('post_install', '-at_install')
class TestCaptureOnDelivery(KlarnaCommon):

    def test_each_validated_delivery_captures_what_it_ships(self):
        self.klarna.klarna_capture_on_delivery = True
        product = self.env['product.product'].create({
            'name': "Chair", 'is_storable': True, 'list_price': 50.0, 'taxes_id': [],
        })
        order = self.env['sale.order'].create({
            'partner_id': self.partner.id,
            'pricelist_id': self.sale_order.pricelist_id.id,
            'order_line': [(0, 0, {
                'product_id': product.id, 'product_uom_qty': 2, 'price_unit': 50.0, 'tax_id': [],
            })],
        })
        self.env['stock.quant']._update_available_quantity(
            product, order.warehouse_id.lot_stock_id, 2
        )
        order.action_confirm()
        tx = self._create_transaction(
            'direct', sale_order_ids=[(6, 0, order.ids)], state='authorized',
            provider_reference=self.klarna_order_id, reference=order.name,
        )
        picking = order.picking_ids
        picking.move_ids.quantity = 1
        with patch(REQUEST, return_value=Answer()) as mock:
            picking.with_context(skip_backorder=False).button_validate()
            backorder_wizard = self.env['stock.backorder.confirmation'].with_context(
                button_validate_picking_ids=picking.ids
            ).create({'pick_ids': [(4, picking.id)]})
            backorder_wizard.process()
        bodies = [json.loads(c.kwargs['data']) for c in mock.call_args_list]
        self.assertEqual(
            bodies, [{'amount': 5000, 'expected_captured': 0, 'expected_refunded': 0}],
            "the first shipment: one chair",
        )
        backorder = order.picking_ids - picking
        backorder.move_ids.quantity = 1
        with patch(REQUEST, return_value=Answer()) as mock:
            backorder.button_validate()
        bodies = [json.loads(c.kwargs['data']) for c in mock.call_args_list]
        self.assertEqual(
            bodies, [{'amount': 5000, 'expected_captured': 5000, 'expected_refunded': 0}],
            "the last shipment: what remains, after the first (which the gateway accepted)",
        )
        self.assertEqual(len(tx.child_transaction_ids), 2)
