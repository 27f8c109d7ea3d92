# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import json
from unittest.mock import patch
from urllib.parse import urlsplit

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from odoo.addons.payment.tests.http_common import PaymentHttpCommon
from odoo.addons.payment_klarna.controllers.main import KlarnaController
from odoo.addons.payment_klarna.tests.common import REQUEST, FakeResponse, KlarnaCommon

SAVED = {'reference': 'kt_Zm9yLXRlc3RzLW9ubHk', 'payment_method': "Klarna (invoice)"}
CHARGED_ORDER_ID = '0b1c6f5e-2d3a-4b8e-9f60-7a1d2c3e4f50'


class FakeTokenGateway:
    """ The gateway's saved-Klarna routes (docs/gateway-api.md): a charge places one order per
    `transaction_reference` (a repeat answers the first), a cancelled token is refused with 409
    `token_not_chargeable`; `/cancel` cancels. `outage` answers 503 to everything. """

    def __init__(self):
        self.calls = []  # (path, body)
        self.orders = {}  # transaction_reference -> Klarna order id
        self.cancelled = set()
        self.decline = False
        self.fraud_status = 'ACCEPTED'
        self.outage = False

    def __call__(self, method, url, data=None, headers=None, timeout=None):
        path = urlsplit(url).path
        body = json.loads(data) if data else None
        self.calls.append((path, body))
        if self.outage:
            return FakeResponse({
                'code': 'klarna_unavailable', 'message': "Klarna could not handle the request",
            }, 503)
        parts = path.split('/')  # '', 'admin', 'tokens', ref, action
        if method != 'POST' or parts[1:3] != ['admin', 'tokens'] or len(parts) != 5:
            return FakeResponse({'code': 'not_found', 'message': f"no route {path}"}, 404)
        reference, action = parts[3], parts[4]
        if action == 'cancel':
            self.cancelled.add(reference)
            return FakeResponse({'reference': reference, 'state': 'cancelled', 'charges': []})
        if reference in self.cancelled:
            return FakeResponse({
                'code': 'token_not_chargeable',
                'message': f"the saved Klarna {reference} was cancelled; the shopper can pay "
                           f"with Klarna again (and save it anew)",
            }, 409)
        if self.decline:
            return FakeResponse({
                'outcome': 'declined',
                'reason': "Klarna declined to charge the saved payment method",
            })
        order_id = self.orders.setdefault(
            body['transaction_reference'], f"{CHARGED_ORDER_ID[:-2]}{len(self.orders):02d}"
        )
        return FakeResponse({
            'outcome': 'authorized', 'order_reference': body['order_reference'],
            'klarna_order_id': order_id, 'fraud_status': self.fraud_status,
        })


@tagged('post_install', '-at_install')
class KlarnaSavedTest(KlarnaCommon, PaymentHttpCommon):
    """ A returning shopper's saved Klarna: the checkout that asked to save it gets a
    `payment.token` holding only the gateway's reference; charging the token places a Klarna
    order through the gateway, once per transaction, and the gateway's update finds that
    transaction; removing the token cancels it at Klarna, or is refused while it cannot. """

    def setUp(self):
        super().setUp()
        self.gateway = FakeTokenGateway()

    def _post_update(self, data):
        body, headers = self._signed(data)
        response = self.opener.post(
            self._build_url(KlarnaController._gateway_url), data=body, headers=headers
        )
        self.assertEqual(response.json(), {'status': 'ok'}, data)

    def _saved_at_checkout(self):
        """ The shopper ticked "Save my payment details" and paid: the gateway's `authorized`
        update carries the saved Klarna. """
        tx = self._create_klarna_transaction(tokenize=True)
        self._post_update(self._update('authorized', token=SAVED))
        self.assertEqual(tx.state, 'authorized')
        return tx

    def _charge_tx(self, token, **values):
        """ Odoo charging the token with no shopper present (a renewal, a reorder). """
        values = {'reference': f'{self.reference}-renewal', 'operation': 'offline', **values}
        return self._create_klarna_transaction(token_id=token.id, **values)

    def test_a_checkout_that_asked_to_save_gets_a_token_with_only_the_gateways_reference(self):
        tx = self._saved_at_checkout()
        token = tx.token_id
        self.assertTrue(token)
        self.assertEqual(
            (token.provider_ref, token.payment_details, token.partner_id, token.provider_id),
            (SAVED['reference'], SAVED['payment_method'], self.partner, self.klarna),
        )
        self.assertFalse(tx.tokenize)
        # The gateway repeats an update (a lost answer): the token is found, not made again.
        self._post_update(self._update('authorized', token=SAVED))
        tokens = self.env['payment.token'].search([('provider_ref', '=', SAVED['reference'])])
        self.assertEqual(tokens, token)

    def test_a_public_partners_checkout_is_paid_and_keeps_no_token(self):
        # Odoo keeps no token for the public partner (a constraint that would otherwise undo
        # the whole update): the payment stands, nothing is saved.
        public = self.env.ref('base.public_partner')
        self.assertTrue(public.is_public)
        tx = self._create_klarna_transaction(tokenize=True, partner_id=public.id)
        self._post_update(self._update('authorized', token=SAVED))
        self.assertEqual(tx.state, 'authorized')
        self.assertFalse(tx.token_id)
        self.assertFalse(
            self.env['payment.token'].with_context(active_test=False)
            .search([('provider_ref', '=', SAVED['reference'])])
        )

    def test_a_checkout_that_did_not_ask_gets_no_token(self):
        tx = self._create_klarna_transaction()
        self._post_update(self._update('authorized'))
        self.assertEqual(tx.state, 'authorized')
        self.assertFalse(tx.token_id)
        self.assertFalse(self.env['payment.token'].search([('provider_id', '=', self.klarna.id)]))

    def test_charging_the_token_places_one_order_and_the_update_finds_its_transaction(self):
        token = self._saved_at_checkout().token_id
        charge = self._charge_tx(token)
        with patch(REQUEST, side_effect=self.gateway):
            charge._send_payment_request()
        [(path, body)] = self.gateway.calls
        self.assertEqual(path, f"/admin/tokens/{SAVED['reference']}/charges")
        self.assertEqual(
            (body['transaction_reference'], body['order_reference']),
            (charge.reference, self.sale_order.name),
        )
        # The order as this transaction sees it, read as the gateway reads Odoo.
        self.assertEqual(
            [o['amount_total'] for o in body['odoo_records']['sale.order']], [100.0],
        )
        self.assertEqual(len(body['odoo_records']['sale.order.line']), 1)
        order_id = self.gateway.orders[charge.reference]
        self.assertEqual((charge.state, charge.provider_reference), ('authorized', order_id))
        # The gateway's update for the charge names Odoo's transaction: it lands there, not on
        # the checkout's (the order's other Klarna payment), and makes nothing new.
        before = self.env['payment.transaction'].search_count([])
        self._post_update(self._update(
            'authorized', klarna_order_id=order_id, transaction_reference=charge.reference,
        ))
        self.assertEqual(charge.state, 'authorized')
        self.assertEqual(self.env['payment.transaction'].search_count([]), before)

    def test_a_charge_waiting_for_klarnas_review_is_pending(self):
        token = self._saved_at_checkout().token_id
        self.gateway.fraud_status = 'PENDING'
        charge = self._charge_tx(token)
        with patch(REQUEST, side_effect=self.gateway):
            charge._send_payment_request()
        self.assertEqual(charge.state, 'pending')

    def test_a_declined_or_refused_charge_is_an_error_and_charges_nothing(self):
        token = self._saved_at_checkout().token_id
        self.gateway.decline = True
        declined = self._charge_tx(token)
        with patch(REQUEST, side_effect=self.gateway):
            declined._send_payment_request()
        self.assertEqual(declined.state, 'error')
        self.assertIn("declined", declined.state_message)
        self.assertIn("Nothing was charged", declined.state_message)

        self.gateway.decline = False
        self.gateway.cancelled.add(SAVED['reference'])
        refused = self._charge_tx(token, reference=f'{self.reference}-renewal-2')
        with patch(REQUEST, side_effect=self.gateway):
            refused._send_payment_request()
        self.assertEqual(refused.state, 'error')
        self.assertIn("was cancelled", refused.state_message)
        self.assertFalse(refused.provider_reference)

    def test_a_payment_of_part_of_an_order_is_not_charged(self):
        token = self._saved_at_checkout().token_id
        partial = self._charge_tx(token, amount=40.0)
        with patch(REQUEST, side_effect=self.gateway), self.assertRaises(UserError):
            partial._send_payment_request()
        self.assertEqual(self.gateway.calls, [])

    def test_removing_the_token_cancels_it_at_klarna_or_keeps_it_while_it_cannot(self):
        token = self._saved_at_checkout().token_id
        self.gateway.outage = True
        with patch(REQUEST, side_effect=self.gateway), self.assertRaises(UserError) as refused:
            token.action_archive()
        self.assertIn("could not be cancelled", str(refused.exception))
        self.assertTrue(token.active)

        self.gateway.outage = False
        with patch(REQUEST, side_effect=self.gateway):
            token.action_archive()
        self.assertFalse(token.active)
        self.assertEqual(self.gateway.calls[-1], (f"/admin/tokens/{SAVED['reference']}/cancel", {}))
        self.assertIn(SAVED['reference'], self.gateway.cancelled)

    def test_a_gateway_that_cannot_be_reached_leaves_an_offline_charge_in_error(self):
        token = self._saved_at_checkout().token_id
        charge = self._charge_tx(token)
        self.gateway.outage = True
        with patch(REQUEST, side_effect=self.gateway):
            charge._send_payment_request()
        self.assertEqual(charge.state, 'error')
        self.assertIn("Klarna could not handle the request", charge.state_message)
        # Shopper present (paying with the saved Klarna at checkout): the error is raised.
        online = self._charge_tx(token, reference=f'{self.reference}-online', operation='online_token')
        with patch(REQUEST, side_effect=self.gateway), self.assertRaises(ValidationError):
            online._send_payment_request()
