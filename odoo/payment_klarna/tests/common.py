# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import json
import time
import uuid

from odoo.addons.payment.tests.common import PaymentCommon
from odoo.addons.payment_klarna import utils as klarna_utils

SECRET = 'shared-secret-for-tests-0123456789'


class KlarnaCommon(PaymentCommon):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.klarna = cls._prepare_provider('klarna', update_values={
            'klarna_gateway_url': 'https://gateway.test',
            'klarna_shared_secret': SECRET,
            'capture_manually': True,
        })
        cls.provider = cls.klarna
        cls.currency = cls.currency_euro
        cls.amount = 100.0
        cls.klarna_order_id = 'f3392f8b-6116-4073-ab96-e330819e2c07'
        product = cls.env['product.product'].create({
            'name': "Kaffebryggare", 'list_price': 100.0, 'type': 'consu', 'taxes_id': [],
        })
        pricelist = cls.env['product.pricelist'].create({
            'name': "EUR", 'currency_id': cls.currency_euro.id,
        })
        cls.sale_order = cls.env['sale.order'].create({
            'partner_id': cls.partner.id,
            'pricelist_id': pricelist.id,
            'order_line': [(0, 0, {'product_id': product.id, 'price_unit': 100.0, 'tax_id': []})],
        })
        cls.reference = cls.sale_order.name

    def _create_klarna_transaction(self, **values):
        return self._create_transaction(
            'direct', sale_order_ids=[(6, 0, self.sale_order.ids)], **values
        )

    def _update(self, event, amount_minor=10000, **extra):
        """ A gateway update as docs/odoo-contract.md defines it. """
        data = {
            'event_id': str(uuid.uuid4()),
            'event': event,
            'reference': self.reference,
            'klarna_order_id': self.klarna_order_id,
            'currency': 'EUR',
            'amount_minor': amount_minor,
            'amount': f'{amount_minor / 100:.2f}',
            'authorized_minor': 10000,
            'captured_minor': 0,
            'refunded_minor': 0,
            'operation_id': None,
            'message': None,
            'occurred_at': int(time.time() * 1000),
        }
        data.update(extra)
        return data

    @staticmethod
    def _signed(data, secret=SECRET, timestamp=None):
        body = json.dumps(data).encode()
        timestamp = int(time.time()) if timestamp is None else timestamp
        headers = {
            'Content-Type': 'application/json',
            'X-Klarna-Gateway-Timestamp': str(timestamp),
            'X-Klarna-Gateway-Signature': klarna_utils.gateway_signature(secret, timestamp, body),
        }
        return body, headers
