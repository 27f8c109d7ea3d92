# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

from unittest.mock import patch

from odoo.tests import tagged

from odoo.addons.payment_klarna.tests.common import REQUEST, FakeGateway, KlarnaCommon


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
        gateway = FakeGateway(self.klarna_order_id, order.name, 10000)
        picking = order.picking_ids
        picking.move_ids.quantity = 1
        with patch(REQUEST, side_effect=gateway):
            picking.with_context(skip_backorder=False).button_validate()
            backorder_wizard = self.env['stock.backorder.confirmation'].with_context(
                button_validate_picking_ids=picking.ids
            ).create({'pick_ids': [(4, picking.id)]})
            backorder_wizard.process()
        self.assertEqual(
            [body for _method, _path, body, _headers in gateway.calls],
            [{'amount': 5000, 'expected_captured': 0, 'expected_refunded': 0}],
            "the first shipment: one chair",
        )
        first = gateway.last('capture')
        first_child = tx.child_transaction_ids
        self.assertEqual(first_child.provider_reference, f"klarna-op-{first['id']}")
        # The gateway's update arrives: the first capture is done.
        self.env['payment.transaction']._handle_notification_data('klarna', gateway.update(first))
        self.assertEqual(first_child.state, 'done')

        backorder = order.picking_ids - picking
        backorder.move_ids.quantity = 1
        with patch(REQUEST, side_effect=gateway):
            backorder.button_validate()
        self.assertEqual(
            [body for _method, _path, body, _headers in gateway.calls[1:]],
            [{'amount': 5000, 'expected_captured': 5000, 'expected_refunded': 0}],
            "the last shipment: what remains, after the first",
        )
        second = gateway.last('capture')
        self.assertNotEqual(second['id'], first['id'], "each capture is its own operation")
        self.env['payment.transaction']._handle_notification_data('klarna', gateway.update(second))
        children = tx.child_transaction_ids
        self.assertEqual(len(children), 2)
        self.assertEqual(
            sorted(children.mapped('provider_reference')),
            sorted([f"klarna-op-{first['id']}", f"klarna-op-{second['id']}"]),
        )
        self.assertEqual(children.mapped('state'), ['done', 'done'])
        self.assertEqual(tx.state, 'done', "everything shipped is captured")

    def test_a_delivery_captured_before_the_update_of_the_previous_one(self):
        """ The second delivery is validated before the gateway's update for the first arrives:
        the first capture is counted (the gateway accepted it), the second asks for the rest. """
        self.klarna.klarna_capture_on_delivery = True
        product = self.env['product.product'].create({
            'name': "Lamp", 'is_storable': True, 'list_price': 30.0, 'taxes_id': [],
        })
        order = self.env['sale.order'].create({
            'partner_id': self.partner.id,
            'pricelist_id': self.sale_order.pricelist_id.id,
            'order_line': [(0, 0, {
                'product_id': product.id, 'product_uom_qty': 3, 'price_unit': 30.0, 'tax_id': [],
            })],
        })
        self.env['stock.quant']._update_available_quantity(
            product, order.warehouse_id.lot_stock_id, 3
        )
        order.action_confirm()
        tx = self._create_transaction(
            'direct', sale_order_ids=[(6, 0, order.ids)], state='authorized', amount=90.0,
            provider_reference=self.klarna_order_id, reference=order.name,
        )
        gateway = FakeGateway(self.klarna_order_id, order.name, 9000)
        picking = order.picking_ids
        picking.move_ids.quantity = 1
        with patch(REQUEST, side_effect=gateway):
            picking.with_context(skip_backorder=False).button_validate()
            self.env['stock.backorder.confirmation'].with_context(
                button_validate_picking_ids=picking.ids
            ).create({'pick_ids': [(4, picking.id)]}).process()
            backorder = order.picking_ids - picking
            backorder.move_ids.quantity = 2
            backorder.button_validate()
        self.assertEqual(
            [body['amount'] for _method, _path, body, _headers in gateway.calls], [3000, 6000]
        )
        self.assertEqual(gateway.calls[1][2]['expected_captured'], 3000)
        for operation in gateway.operations:
            self.env['payment.transaction']._handle_notification_data('klarna', gateway.update(operation))
        self.assertEqual(tx.child_transaction_ids.mapped('state'), ['done', 'done'])
        self.assertEqual(tx.state, 'done')

    def _order_with_carrier(self, tracking_ref=False):
        """ A confirmed order of one 80.00 table, shipped by a carrier with a tracking link, and
        its authorized Klarna payment. """
        self.klarna.klarna_capture_on_delivery = True
        product = self.env['product.product'].create({
            'name': "Table", 'is_storable': True, 'list_price': 80.0, 'taxes_id': [],
        })
        carrier = self.env['delivery.carrier'].create({
            'name': "DHL Paket",
            'delivery_type': 'fixed',
            'fixed_price': 0.0,
            'tracking_url': 'https://www.dhl.de/track?piececode=<shipmenttrackingnumber>',
            'product_id': self.env['product.product'].create({
                'name': "DHL shipping", 'type': 'service', 'list_price': 0.0,
            }).id,
        })
        order = self.env['sale.order'].create({
            'partner_id': self.partner.id,
            'pricelist_id': self.sale_order.pricelist_id.id,
            'carrier_id': carrier.id,
            'order_line': [(0, 0, {
                'product_id': product.id, 'product_uom_qty': 1, 'price_unit': 80.0, 'tax_id': [],
            })],
        })
        self.env['stock.quant']._update_available_quantity(
            product, order.warehouse_id.lot_stock_id, 1
        )
        order.action_confirm()
        tx = self._create_transaction(
            'direct', sale_order_ids=[(6, 0, order.ids)], state='authorized', amount=80.0,
            provider_reference=self.klarna_order_id, reference=order.name,
        )
        picking = order.picking_ids
        picking.carrier_id = carrier
        if tracking_ref:
            picking.carrier_tracking_ref = tracking_ref
        picking.move_ids.quantity = 1
        return order, tx, picking

    def test_the_capture_carries_the_deliverys_carrier_and_tracking(self):
        _order, _tx, picking = self._order_with_carrier(tracking_ref='00340434161094042557')
        gateway = FakeGateway(self.klarna_order_id, picking.origin, 8000)
        with patch(REQUEST, side_effect=gateway):
            picking.button_validate()
        self.assertEqual(len(gateway.calls), 1)
        self.assertEqual(gateway.calls[0][2]['shipping_info'], [{
            'shipping_company': "DHL Paket",
            'tracking_number': '00340434161094042557',
            'tracking_uri': 'https://www.dhl.de/track?piececode=00340434161094042557',
        }])
        self.assertEqual(picking.klarna_capture_operation, gateway.last('capture')['id'])

    def test_a_tracking_number_set_later_reaches_the_capture_once(self):
        _order, tx, picking = self._order_with_carrier()
        gateway = FakeGateway(self.klarna_order_id, picking.origin, 8000)
        with patch(REQUEST, side_effect=gateway):
            picking.button_validate()
            capture = gateway.last('capture')
            self.assertEqual(
                gateway.calls[0][2]['shipping_info'], [{'shipping_company': "DHL Paket"}],
                "the carrier is known at capture; its tracking number is not yet",
            )
            picking.carrier_tracking_ref = 'JJD000390007834'
            picking.carrier_tracking_ref = 'JJD000390007834'  # saved twice
        later = gateway.calls[1:]
        self.assertEqual(
            [path for _method, path, _body, _headers in later],
            [f'/admin/payments/{self.klarna_order_id}/captures/{capture["id"]}/shipping-info'] * 2,
        )
        self.assertEqual(later[0][2], {'shipping_info': [{
            'shipping_company': "DHL Paket",
            'tracking_number': 'JJD000390007834',
            'tracking_uri': 'https://www.dhl.de/track?piececode=JJD000390007834',
        }]})
        self.assertEqual(len(capture['shipping_info']), 1, "the gateway added it once")
        self.assertTrue(any(
            'JJD000390007834' in (m.body or '') and 'sent to Klarna' in m.body
            for m in picking.message_ids
        ))
        self.assertEqual(picking.klarna_transaction_id, tx)

    def test_a_tracking_number_beyond_klarnas_limit_is_left_out_not_cut(self):
        _order, _tx, picking = self._order_with_carrier(tracking_ref='X' * 101)
        gateway = FakeGateway(self.klarna_order_id, picking.origin, 8000)
        with patch(REQUEST, side_effect=gateway):
            picking.button_validate()
        self.assertEqual(gateway.calls[0][2]['shipping_info'], [{
            'shipping_company': "DHL Paket",
            # The link is within its own limit, and tracks.
            'tracking_uri': 'https://www.dhl.de/track?piececode=' + 'X' * 101,
        }])
        self.assertEqual(gateway.last('capture')['amount'], 8000, "the capture is made all the same")

    def test_a_tracking_number_the_gateway_refuses_is_noted_on_the_delivery(self):
        _order, _tx, picking = self._order_with_carrier()
        gateway = FakeGateway(self.klarna_order_id, picking.origin, 8000)
        with patch(REQUEST, side_effect=gateway):
            picking.button_validate()
        picking.klarna_capture_operation = 9999  # not a capture the gateway knows
        with patch(REQUEST, side_effect=gateway):
            picking.carrier_tracking_ref = 'JJD000390007834'
        self.assertEqual(picking.carrier_tracking_ref, 'JJD000390007834', "the tracking stands")
        self.assertTrue(any(
            "could not be sent to Klarna" in (m.body or '') for m in picking.message_ids
        ))

    def _order_shipping_at_a_higher_total(self, gateway):
        """ An order of two chairs (100.00) paid with Klarna whose total rose to 110.00 as it
        shipped, Klarna not told yet (a carrier invoiced at its real cost adds its line when
        the delivery is validated). """
        self.klarna.klarna_capture_on_delivery = True
        product = self.env['product.product'].create({
            'name': "Chair", 'is_storable': True, 'list_price': 50.0, 'taxes_id': [],
        })
        fee = self.env['product.product'].create({
            'name': "Freight", 'type': 'service', 'list_price': 10.0, 'taxes_id': [],
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
            'direct', sale_order_ids=[(6, 0, order.ids)], state='authorized', amount=100.0,
            provider_reference=self.klarna_order_id, reference=order.name,
        )
        order.with_context(klarna_no_edit_sync=True).write({'order_line': [(0, 0, {
            'product_id': fee.id, 'product_uom_qty': 1, 'price_unit': 10.0, 'tax_id': [],
        })]})
        self.assertTrue(order.klarna_authorization_differs)
        return order, tx

    def test_klarna_follows_a_total_that_rose_as_the_order_shipped_then_captures_it(self):
        gateway = FakeGateway(self.klarna_order_id, 'placeholder', 10000)
        order, tx = self._order_shipping_at_a_higher_total(gateway)
        gateway.reference = order.name
        with patch(REQUEST, side_effect=gateway):
            order.picking_ids.button_validate()
            self.env.cr.flush()  # The request ends: nothing is left for the precommit hook.
        self.assertEqual(
            [path.rsplit('/', 1)[-1] for _method, path, _body, _headers in gateway.calls],
            ['authorization', 'captures'],
        )
        self.assertEqual(gateway.calls[-1][2]['amount'], 11000, "the order as it shipped")
        self.assertEqual(tx.amount, 110.0)

    def test_a_declined_higher_total_leaves_the_delivery_and_captures_what_was_authorized(self):
        gateway = FakeGateway(self.klarna_order_id, 'placeholder', 10000)
        gateway.max_authorization = 10500
        order, tx = self._order_shipping_at_a_higher_total(gateway)
        gateway.reference = order.name
        with patch(REQUEST, side_effect=gateway):
            order.picking_ids.button_validate()
            self.env.cr.flush()
        self.assertEqual(order.picking_ids.state, 'done', "the delivery stands")
        self.assertEqual(
            [path.rsplit('/', 1)[-1] for _method, path, _body, _headers in gateway.calls],
            ['authorization', 'captures'],
            "declined once, and not asked again at the end of the request",
        )
        self.assertEqual(gateway.calls[-1][2]['amount'], 10000, "what Klarna authorized")
        self.assertEqual(tx.amount, 100.0)
        self.assertTrue(any(
            "did not take the order's new total" in m.body for m in order.message_ids
        ), order.message_ids.mapped('body'))
