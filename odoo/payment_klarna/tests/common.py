# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import json
import time
import uuid
from urllib.parse import urlsplit

from odoo.addons.payment.tests.common import PaymentCommon
from odoo.addons.payment_klarna import utils as klarna_utils

SECRET = 'shared-secret-for-tests-0123456789'

# What the addon calls to reach the gateway.
REQUEST = 'odoo.addons.payment_klarna.models.payment_provider.requests.request'


class FakeResponse:
    """ What `requests` answers, as the gateway's admin API would. """

    def __init__(self, payload, status=200):
        self.payload = payload
        self.status_code = status
        self.ok = status < 400
        self.reason = 'OK' if self.ok else 'Refused'

    def json(self):
        return self.payload


class FakeGateway:
    """ The gateway's admin API for one payment, answering as the gateway does
    (docs/gateway-api.md): each capture, refund, cancel and release is its own operation with
    its own id; a refund names the capture it refunds by `capture_operation_id` (422 when that
    is not a capture of the payment); `expected_captured` / `expected_refunded` are checked
    (409 `state_changed`). `update()` gives the signed update the gateway then sends to Odoo
    (docs/odoo-contract.md) for an operation.

    Use it as the `side_effect` of a patch of `requests.request`.
    """

    def __init__(self, klarna_order_id, reference, authorized_minor, currency='EUR', first_id=100):
        self.klarna_order_id = klarna_order_id
        self.reference = reference
        self.currency = currency
        self.authorized = authorized_minor
        self.next_id = first_id
        self.operations = []  # dicts: id, kind, amount, capture_operation_id
        # Klarna re-checks an increase of the authorization: refused above this (minor units).
        self.max_authorization = None
        self.calls = []  # (method, path, body dict or None, headers)

    @property
    def captured(self):
        return sum(op['amount'] for op in self.operations if op['kind'] == 'capture')

    @property
    def refunded(self):
        return sum(op['amount'] for op in self.operations if op['kind'] == 'refund')

    def _payment(self):
        return {
            'currency': self.currency, 'authorized': self.authorized, 'captured': self.captured,
            'refunded': self.refunded, 'captured_in_flight': 0, 'refunded_in_flight': 0,
        }

    def __call__(self, method, url, data=None, headers=None, timeout=None):
        path = urlsplit(url).path
        body = json.loads(data) if data else None
        self.calls.append((method, path, body, headers))
        prefix = f'/admin/payments/{self.klarna_order_id}/'
        if method != 'POST' or not path.startswith(prefix):
            return FakeResponse({'code': 'not_found', 'message': f"no route {method} {path}"}, 404)
        action = path.removeprefix(prefix)
        body = body or {}
        if action.startswith('captures/') and action.endswith('/shipping-info'):
            return self._shipping_info(action.split('/')[1], body)
        if action == 'authorization':
            return self._update_authorization(body)
        if (body.get('expected_captured'), body.get('expected_refunded')) != (
            self.captured, self.refunded
        ):
            return FakeResponse({
                'code': 'state_changed',
                'message': f"the payment changed: {self.currency} {self.captured} captured, "
                           f"not the {body.get('expected_captured')} expected",
                'payment': self._payment(),
            }, 409)
        kind = {'captures': 'capture', 'refunds': 'refund'}.get(action, action)
        amount = body.get('amount', 0)
        capture_operation_id = None
        if kind == 'capture' and amount > self.authorized - self.captured:
            return FakeResponse({'code': 'capture_exceeds_remaining',
                                 'message': "the capture exceeds what remains"}, 409)
        if kind == 'refund':
            capture_operation_id = body.get('capture_operation_id')
            if capture_operation_id is not None:
                capture = self.operation(capture_operation_id)
                if not capture or capture['kind'] != 'capture':
                    return FakeResponse({
                        'code': 'invalid_request', 'field': 'capture_operation_id',
                        'message': f"capture_operation_id: {capture_operation_id} is not a "
                                   f"capture of this payment",
                    }, 422)
            if amount > self.captured - self.refunded:
                return FakeResponse({'code': 'refund_exceeds_captured',
                                     'message': "the refund exceeds what was captured"}, 409)
        if kind == 'cancel' and self.captured:
            return FakeResponse({'code': 'cancel_after_capture',
                                 'message': "the payment has captures: release the rest"}, 409)
        if kind == 'release' and not self.captured:
            return FakeResponse({'code': 'release_without_capture',
                                 'message': "nothing was captured: cancel instead"}, 409)
        if kind == 'release':
            amount = self.authorized - self.captured
        if kind == 'cancel':
            amount = self.authorized
        operation = {
            'id': self.next_id, 'kind': kind, 'amount': amount, 'state': 'done',
            'capture_operation_id': capture_operation_id, 'requested_by': 'odoo',
        }
        self.next_id += 1
        self.operations.append(operation)
        return FakeResponse({'operation': dict(operation), 'payment': self._payment()})

    def _shipping_info(self, capture, body):
        """ `POST …/captures/{capture}/shipping-info`: 422 when `capture` is not a capture of
        the payment; the same info twice is added once (`added` false). """
        operation = self.operation(int(capture)) if capture.isdigit() else None
        if not operation or operation['kind'] != 'capture':
            return FakeResponse({
                'code': 'unknown_capture_operation', 'field': 'capture_operation_id',
                'message': f"capture_operation_id: {capture} is not a succeeded capture of this payment",
            }, 422)
        items = body.get('shipping_info') or []
        shipped = operation.setdefault('shipping_info', [])
        added = any(item not in shipped for item in items)
        shipped.extend(item for item in items if item not in shipped)
        return FakeResponse({
            'capture_operation_id': operation['id'], 'klarna_capture_id': f"capture-{operation['id']}",
            'added': added, 'shipping_info': items,
        })

    def _update_authorization(self, body):
        """ `POST …/authorization`: the order edited in Odoo, from its records; 409
        `state_changed` on stale figures, `refused` when Klarna declines the increase. """
        if body.get('expected_authorized') not in (None, self.authorized):
            return FakeResponse({
                'code': 'state_changed',
                'message': f"the payment changed: {self.currency} {self.authorized} authorized, "
                           f"not the {body.get('expected_authorized')} expected",
                'payment': self._payment(),
            }, 409)
        orders = (body.get('odoo_records') or {}).get('sale.order') or []
        order = next((o for o in orders if o.get('name') == self.reference), None)
        if not order:
            return FakeResponse({
                'code': 'invalid_request', 'field': 'odoo_records',
                'message': f"odoo_records: holds no sale.order named {self.reference}",
            }, 400)
        amount = round(order['amount_total'] * 100)
        if self.max_authorization is not None and amount > self.max_authorization:
            return FakeResponse({
                'code': 'refused',
                'message': "Klarna refused the update_authorization: Klarna declined the "
                           "increase of the order amount.",
            }, 409)
        self.authorized = amount
        operation = {
            'id': self.next_id, 'kind': 'update_authorization', 'amount': amount,
            'state': 'succeeded', 'capture_operation_id': None, 'requested_by': 'odoo',
        }
        self.next_id += 1
        self.operations.append(operation)
        return FakeResponse({
            'operation': dict(operation),
            'payment': {**self._payment(), 'authorized_amount': amount},
        })

    def operation(self, operation_id):
        return next((op for op in self.operations if op['id'] == operation_id), None)

    def last(self, kind=None):
        return [op for op in self.operations if kind in (None, op['kind'])][-1]

    def update(self, operation):
        """ The update the gateway sends Odoo once `operation` is done. """
        event = {'capture': 'captured', 'refund': 'refunded', 'cancel': 'cancelled',
                 'release': 'released'}[operation['kind']]
        minor = operation['amount']
        data = {
            'event_id': str(uuid.uuid4()),
            'event': event,
            'reference': self.reference,
            'klarna_order_id': self.klarna_order_id,
            'currency': self.currency,
            'amount_minor': minor,
            'amount': f'{minor / 100:.2f}',
            'authorized_minor': self.authorized,
            'captured_minor': self.captured,
            'refunded_minor': self.refunded,
            'operation_id': operation['id'] if event in ('captured', 'refunded') else None,
            'capture_operation_id': operation['capture_operation_id'],
            'message': None,
            'occurred_at': int(time.time() * 1000),
        }
        return data


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
            'capture_operation_id': None,
            'message': None,
            'occurred_at': int(time.time() * 1000),
        }
        data.update(extra)
        return data

    @staticmethod
    def _signed(data, secret=SECRET, timestamp=None):
        """ The body (`data` as JSON, or raw bytes as they are) and its gateway headers. """
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        timestamp = int(time.time()) if timestamp is None else timestamp
        headers = {
            'Content-Type': 'application/json',
            'X-Klarna-Gateway-Timestamp': str(timestamp),
            'X-Klarna-Gateway-Signature': klarna_utils.gateway_signature(secret, timestamp, body),
        }
        return body, headers
