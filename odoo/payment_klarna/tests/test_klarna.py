# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import json
from unittest.mock import patch

import requests

from odoo.exceptions import UserError, ValidationError
from odoo.tests import Form, tagged
from odoo.tools import mute_logger

from odoo.addons.payment.tests.http_common import PaymentHttpCommon
from odoo.addons.payment_klarna import utils as klarna_utils
from odoo.addons.payment_klarna.controllers.main import KlarnaController
from odoo.addons.payment_klarna.tests.common import REQUEST, SECRET, FakeResponse, KlarnaCommon


@tagged('post_install', '-at_install')
class KlarnaTest(KlarnaCommon, PaymentHttpCommon):

    def _post_update(self, data, **sign_kwargs):
        return self._post_raw(*self._signed(data, **sign_kwargs))

    def _post_raw(self, body, headers):
        """ POST these bytes to the gateway route, as they are. """
        url = self._build_url(KlarnaController._gateway_url)
        return self.opener.post(url, data=body, headers=headers)

    # === The provider ===

    def test_feature_support_and_currencies(self):
        self.assertEqual(self.klarna.support_manual_capture, 'partial')
        self.assertEqual(self.klarna.support_refund, 'partial')
        # Saved Klarna: the provider and Klarna's payment methods (Odoo ships them False).
        self.assertTrue(self.klarna.support_tokenization)
        for code in ('klarna', 'klarna_paynow', 'klarna_pay_over_time'):
            method = self.env.ref(f'payment.payment_method_{code}')
            self.assertTrue(method.support_tokenization, code)
        supported = self.klarna._get_supported_currencies()
        self.assertIn(self.currency_euro, supported)
        self.assertIn(self.currency_usd, supported)
        self.assertNotIn(self.env.ref('base.JPY'), supported)
        self.assertEqual(self.klarna._get_default_payment_method_codes(), {'klarna'})

    def test_provider_form_shows_the_klarna_settings_and_the_gateways_status(self):
        status = {'reachable': True, 'review_queue': 2, 'jobs_waiting': 0, 'last_reconcile': None}
        with patch(REQUEST, return_value=FakeResponse(status)) as mock:
            with Form(self.klarna) as form:
                form.klarna_gateway_url = 'https://shop.example.com'
                form.klarna_confirmation_mail = 'capture'
                form.klarna_widget_mode = 'modal'
                self.assertTrue(form.klarna_gateway_reachable)
                self.assertEqual(form.klarna_review_queue, 2)
        self.assertEqual(mock.call_args.args, ('GET', 'https://shop.example.com/admin/status'))
        self.assertEqual(self.klarna.klarna_gateway_url, 'https://shop.example.com')
        arch = self.env['payment.provider'].get_views([(False, 'form')])['views']['form']['arch']
        for name in ('klarna_gateway_url', 'klarna_shared_secret', 'klarna_confirmation_mail',
                     'action_klarna_check_gateway', 'action_klarna_view_transactions'):
            self.assertIn(name, arch)

    def test_the_shared_secret_is_for_system_administrators_only(self):
        field = self.env['payment.provider']._fields['klarna_shared_secret']
        self.assertEqual(field.groups, 'base.group_system')

    def test_klarna_is_offered_for_sale_orders_only(self):
        common = (self.company.id, self.partner.id, self.amount)
        with_order = self.env['payment.provider']._get_compatible_providers(
            *common, currency_id=self.currency_euro.id, sale_order_id=self.sale_order.id
        )
        self.assertIn(self.klarna, with_order)
        report = {}
        without = self.env['payment.provider']._get_compatible_providers(
            *common, currency_id=self.currency_euro.id, report=report
        )
        self.assertNotIn(self.klarna, without)
        self.assertFalse(report['providers'][self.klarna]['available'])

    def test_processing_values_name_the_order_never_an_amount(self):
        tx = self._create_klarna_transaction()
        values = tx._get_specific_processing_values({})
        self.assertEqual(values['klarna_order_reference'], self.sale_order.name)
        self.assertEqual(values['klarna_access_token'], self.sale_order.access_token)
        self.assertNotIn('amount', json.dumps(values))

    # === Gateway -> Odoo: signed updates ===

    def test_authorized_update_authorizes_and_sets_klarnas_order_id(self):
        tx = self._create_klarna_transaction()
        response = self._post_update(self._update('authorized'))
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {'status': 'ok'})
        self.assertEqual(tx.state, 'authorized')
        self.assertEqual(tx.provider_reference, self.klarna_order_id)

    def test_pending_update_waits_for_klarnas_fraud_decision(self):
        tx = self._create_klarna_transaction()
        self._post_update(self._update('pending'))
        self.assertEqual(tx.state, 'pending')

    def test_full_capture_update_makes_the_transaction_done(self):
        tx = self._create_klarna_transaction(state='authorized', provider_reference=self.klarna_order_id)
        self._post_update(self._update('captured', captured_minor=10000, operation_id=3))
        self.assertEqual(tx.state, 'done')
        self.assertFalse(tx.child_transaction_ids)

    def test_partial_captures_are_child_transactions_and_the_last_finishes_the_source(self):
        tx = self._create_klarna_transaction(state='authorized', provider_reference=self.klarna_order_id)
        self._post_update(self._update('captured', amount_minor=3000, captured_minor=3000, operation_id=4))
        child = tx.child_transaction_ids
        self.assertEqual((len(child), child.amount, child.state), (1, 30.0, 'done'))
        self.assertEqual(child.provider_reference, 'klarna-op-4')
        self.assertEqual(tx.state, 'authorized')
        self._post_update(self._update('captured', amount_minor=7000, captured_minor=10000, operation_id=5))
        self.assertEqual(len(tx.child_transaction_ids), 2)
        self.assertEqual(tx.state, 'done')

    def test_refund_update_is_a_refund_transaction(self):
        tx = self._create_klarna_transaction(state='done', provider_reference=self.klarna_order_id)
        self._post_update(self._update('refunded', amount_minor=1250, refunded_minor=1250, operation_id=9))
        refund = tx.child_transaction_ids
        self.assertEqual((refund.operation, refund.amount, refund.state), ('refund', -12.5, 'done'))

    def test_cancelled_and_expired_updates_cancel(self):
        for event in ('cancelled', 'expired'):
            tx = self._create_klarna_transaction(
                state='authorized', provider_reference=self.klarna_order_id,
                reference=f'{self.reference}-{event}',
            )
            self._post_update(self._update(event, amount_minor=0))
            self.assertEqual(tx.state, 'cancel', event)
            tx.provider_reference = False  # leave the next one to the next transaction

    def test_released_update_voids_the_rest_after_a_partial_capture(self):
        tx = self._create_klarna_transaction(state='authorized', provider_reference=self.klarna_order_id)
        self._post_update(self._update('captured', amount_minor=6000, captured_minor=6000, operation_id=1))
        self._post_update(self._update('released', amount_minor=4000, captured_minor=6000))
        void = tx.child_transaction_ids.filtered(lambda t: t.state == 'cancel')
        self.assertEqual(void.amount, 40.0)
        self.assertEqual(tx.state, 'done')

    def test_error_update_puts_a_new_transaction_in_error_with_the_message(self):
        tx = self._create_klarna_transaction()
        self._post_update(self._update('error', message="Klarna refused the capture for good"))
        self.assertEqual(tx.state, 'error')
        self.assertIn("refused the capture", tx.state_message)

    @mute_logger('odoo.addons.payment_klarna.controllers.main')
    def test_a_badly_signed_or_stale_update_is_refused_and_changes_nothing(self):
        tx = self._create_klarna_transaction()
        data = self._update('authorized')
        for kwargs in ({'secret': 'not-the-secret'}, {'timestamp': 1_000_000}):
            response = self._post_update(data, **kwargs)
            self.assertEqual(response.status_code, 401, kwargs)
            self.assertEqual(tx.state, 'draft')
        body, headers = self._signed(data)
        body = body.replace(b'"authorized"', b'"cancelled" ')  # altered after signing
        response = self.opener.post(
            self._build_url(KlarnaController._gateway_url), data=body, headers=headers
        )
        self.assertEqual(response.status_code, 401)
        self.assertEqual(tx.state, 'draft')
        self.assertFalse(self.env['payment.klarna.event'].search([('event_id', '=', data['event_id'])]))

    def test_a_repeated_update_is_applied_once(self):
        tx = self._create_klarna_transaction(state='authorized', provider_reference=self.klarna_order_id)
        update = self._update('captured', amount_minor=3000, captured_minor=3000, operation_id=2)
        self.assertEqual(self._post_update(update).json(), {'status': 'ok'})
        self.assertEqual(self._post_update(update).json(), {'status': 'duplicate'})
        self.assertEqual(len(tx.child_transaction_ids), 1)

    @mute_logger('odoo.addons.payment_klarna.controllers.main')
    def test_malformed_and_unknown_updates_get_a_clear_error(self):
        response = self._post_update(b'{nope')
        self.assertEqual((response.status_code, response.json()['code']), (400, 'malformed_json'))
        response = self._post_update({'event_id': ['not', 'a', 'string'], 'event': 'authorized'})
        self.assertEqual((response.status_code, response.json()['code']), (400, 'wrong_shape'))
        self._create_klarna_transaction()
        unknown = self._post_update(self._update('teleported', reference='S<script>'))
        self.assertEqual(unknown.status_code, 422)
        self.assertIn("Unknown update", unknown.json()['message'])
        not_found = self._post_update(
            self._update('authorized', reference='S<script>', klarna_order_id='K<script>')
        )
        self.assertEqual(not_found.status_code, 422)
        self.assertIn("No transaction found", not_found.json()['message'])
        wrong_currency = self._post_update(self._update('authorized', currency='X<script>'))
        self.assertEqual(wrong_currency.status_code, 422)
        for response in (unknown, not_found, wrong_currency):
            self.assertNotIn('teleported', response.text, "no value of the update is echoed")
            self.assertNotIn('script', response.text, "no value of the update is echoed")

    # === The signed route under attack ===

    @mute_logger('odoo.addons.payment_klarna.controllers.main')
    def test_a_non_ascii_or_malformed_signature_is_a_json_401_not_a_crash(self):
        tx = self._create_klarna_transaction()
        body, headers = self._signed(self._update('authorized'))
        for signature in ('é' * 64, b'\xc3\xa9' * 32, 'zz' * 32, headers[
            'X-Klarna-Gateway-Signature'
        ][:-1]):
            response = self._post_raw(body, {**headers, 'X-Klarna-Gateway-Signature': signature})
            self.assertEqual(response.status_code, 401, signature)
            self.assertEqual(response.headers['Content-Type'], 'application/json; charset=utf-8')
            self.assertEqual(response.json()['code'], 'unauthorized')
            self.assertIn('not 64 hexadecimal digits', response.json()['message'])
        self.assertEqual(tx.state, 'draft')

    @mute_logger('odoo.addons.payment_klarna.controllers.main')
    def test_the_signature_is_checked_over_the_raw_body_before_it_is_parsed(self):
        tx = self._create_klarna_transaction()
        data = self._update('authorized')
        body, headers = self._signed(data)
        for tampered in (
            body.replace(b'"event_id"', b'"event_ix"'),  # would be a 400 wrong_shape if parsed
            body[:-1],  # would be a 400 malformed_json if parsed
            body + b' ',  # the same JSON, other bytes
        ):
            with patch('odoo.addons.payment_klarna.controllers.main.json', wraps=json) as parser:
                response = self._post_raw(tampered, headers)
            self.assertEqual(response.status_code, 401, tampered)
            self.assertIn('does not match', response.json()['message'])
            parser.loads.assert_not_called()
        self.assertEqual(tx.state, 'draft')
        self.assertFalse(self.env['payment.klarna.event'].search([('event_id', '=', data['event_id'])]))
        self.assertEqual(self._post_raw(body, headers).status_code, 200, "the bytes signed")
        self.assertEqual(tx.state, 'authorized')

    def test_a_signed_ping_answers_the_addons_version_and_changes_nothing(self):
        tx = self._create_klarna_transaction()
        events = self.env['payment.klarna.event'].search_count([])
        response = self._post_update({'event': 'ping'})
        self.assertEqual(response.status_code, 200)
        version = self.env['ir.module.module'].search(
            [('name', '=', 'payment_klarna')]
        ).latest_version
        self.assertEqual(response.json(), {'status': 'pong', 'version': version})
        self.assertTrue(version.startswith('18.0.1.'), version)
        self.assertEqual(self.env['payment.klarna.event'].search_count([]), events)
        self.assertEqual(tx.state, 'draft')

    @mute_logger('odoo.addons.payment_klarna.controllers.main')
    def test_an_unsigned_or_wrongly_signed_ping_is_refused(self):
        response = self._post_update({'event': 'ping'}, secret='not-the-shared-secret')
        self.assertEqual((response.status_code, response.json()['code']), (401, 'unauthorized'))
        self.assertNotIn('version', response.json())

    @mute_logger('odoo.addons.payment_klarna.controllers.main')
    def test_the_secret_of_a_disabled_provider_is_refused(self):
        tx = self._create_klarna_transaction()
        self.klarna.state = 'disabled'
        response = self._post_update(self._update('authorized'))
        self.assertEqual((response.status_code, response.json()['code']), (401, 'unauthorized'))
        self.assertEqual(tx.state, 'draft')
        self.klarna.state = 'enabled'
        self.assertEqual(self._post_update(self._update('authorized')).status_code, 200)
        self.assertEqual(tx.state, 'authorized')

    @mute_logger('odoo.addons.payment_klarna.controllers.main')
    def test_a_providers_secret_updates_its_own_payments_only(self):
        other_secret = 'the-other-companys-secret-9876543210'
        other_company = self._create_company(name="Other Company", currency_id=self.currency_euro.id)
        other = self._prepare_provider('klarna', company=other_company, update_values={
            'klarna_gateway_url': 'https://other-gateway.test',
            'klarna_shared_secret': other_secret,
            'capture_manually': True,
        })
        self.assertNotEqual(other, self.klarna)
        tx = self._create_klarna_transaction(
            state='authorized', provider_reference=self.klarna_order_id
        )
        # A capture of this company's payment, signed with the other company's secret.
        update = self._update('captured', captured_minor=10000, operation_id=3)
        response = self._post_update(update, secret=other_secret)
        self.assertEqual(response.status_code, 403)
        self.assertEqual(response.json()['code'], 'wrong_provider')
        self.assertNotIn(self.klarna_order_id, response.text)
        self.assertEqual(tx.state, 'authorized')
        self.assertFalse(tx.child_transaction_ids)
        self.assertFalse(self.env['payment.klarna.event'].search([('event_id', '=', update['event_id'])]))
        # A first update, found by the sale order's reference only.
        draft = self._create_klarna_transaction(reference=f'{self.reference}-2')
        response = self._post_update(
            self._update('authorized', klarna_order_id='another-klarna-order'), secret=other_secret,
        )
        self.assertEqual((response.status_code, response.json()['code']), (403, 'wrong_provider'))
        self.assertEqual((draft.state, draft.provider_reference), ('draft', False))
        # The same capture, signed with this company's secret, is applied.
        self.assertEqual(self._post_update(update).json(), {'status': 'ok'})
        self.assertEqual(tx.state, 'done')

    def test_the_first_update_finds_the_signing_providers_transaction_of_the_order(self):
        other_secret = 'the-other-providers-secret-9876543210'
        other = self.klarna.copy({'name': "Klarna (other shop)"})
        other.write({'klarna_shared_secret': other_secret, 'state': 'test', 'capture_manually': True})
        mine = self._create_klarna_transaction()
        theirs = self._create_klarna_transaction(  # newer, on the same order
            provider_id=other.id, reference=f'{self.reference}-other',
        )
        self.assertEqual(self._post_update(self._update('authorized')).status_code, 200)
        self.assertEqual((mine.state, theirs.state), ('authorized', 'draft'))
        response = self._post_update(
            self._update('authorized', klarna_order_id='their-klarna-order'), secret=other_secret,
        )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(theirs.state, 'authorized')
        self.assertEqual(mine.provider_reference, self.klarna_order_id)

    # === Odoo -> gateway: capture, void, refund ===

    def _gateway_call(self, mock):
        """ The (method, url, json body, headers) of the one admin API call made. """
        self.assertEqual(mock.call_count, 1)
        method, url = mock.call_args.args
        body = mock.call_args.kwargs['data'] or b''
        headers = mock.call_args.kwargs['headers']
        path = url.removeprefix('https://gateway.test')
        expected = klarna_utils.admin_signature(
            SECRET, int(headers['X-Klarna-Gateway-Timestamp']), headers['X-Klarna-Gateway-Nonce'],
            method, path, headers.get('Idempotency-Key', ''), body,
        )
        self.assertEqual(headers['X-Klarna-Gateway-Signature'], expected, "signed")
        self.assertGreaterEqual(len(headers['X-Klarna-Gateway-Nonce']), 16, "a fresh nonce")
        return method, path, json.loads(body) if body else None, headers

    def test_partial_capture_request_sends_minor_units_and_records_the_operation(self):
        tx = self._create_klarna_transaction(state='authorized', provider_reference=self.klarna_order_id)
        with patch(REQUEST, return_value=FakeResponse({'operation': {'id': 11}, 'payment': {}})) as mock:
            child = tx._send_capture_request(amount_to_capture=30.0)
        method, path, body, headers = self._gateway_call(mock)
        self.assertEqual((method, path), ('POST', f'/admin/payments/{self.klarna_order_id}/captures'))
        self.assertEqual(body, {'amount': 3000, 'expected_captured': 0, 'expected_refunded': 0})
        self.assertEqual(headers['Idempotency-Key'], f'odoo-capture-{self.klarna_order_id}-3000-0-0')
        self.assertEqual(child.provider_reference, 'klarna-op-11')
        # The gateway's update for that operation finds the same child.
        self._post_update(self._update('captured', amount_minor=3000, captured_minor=3000, operation_id=11))
        self.assertEqual((len(tx.child_transaction_ids), child.state), (1, 'done'))

    def test_full_capture_request_captures_the_whole_amount(self):
        tx = self._create_klarna_transaction(state='authorized', provider_reference=self.klarna_order_id)
        with patch(REQUEST, return_value=FakeResponse({'operation': {'id': 12}})) as mock:
            tx._send_capture_request()
        _method, _path, body, _headers = self._gateway_call(mock)
        self.assertEqual(body, {'amount': 10000, 'expected_captured': 0, 'expected_refunded': 0})
        self.assertFalse(tx.child_transaction_ids)
        self._post_update(self._update('captured', captured_minor=10000, operation_id=12))
        self.assertEqual(tx.state, 'done')
        self.assertFalse(tx.child_transaction_ids, "one capture of everything: the payment is done")

    def test_void_request_cancels_or_releases(self):
        first = self._create_klarna_transaction(
            state='authorized', provider_reference=self.klarna_order_id, reference=f'{self.reference}-1',
        )
        with patch(REQUEST, return_value=FakeResponse({'operation': {'id': 5, 'kind': 'cancel'}})) as mock:
            first._send_void_request()
        self.assertEqual(self._gateway_call(mock)[1], f'/admin/payments/{self.klarna_order_id}/cancel')
        self._post_update(self._update('cancelled'))
        self.assertEqual(first.state, 'cancel')
        self.assertIn("cancelled, as voided from Odoo", first.state_message)
        first.provider_reference = False  # the next payment is another one

        # After a partial capture, voiding the rest releases it.
        tx = self._create_klarna_transaction(state='authorized', provider_reference=self.klarna_order_id)
        self._post_update(self._update('captured', amount_minor=6000, captured_minor=6000, operation_id=6))
        with patch(REQUEST, return_value=FakeResponse({'operation': {'id': 7, 'kind': 'release'}})) as mock:
            tx._send_void_request(amount_to_void=40.0)
        self.assertEqual(self._gateway_call(mock)[1], f'/admin/payments/{self.klarna_order_id}/release')
        self._post_update(self._update('released', amount_minor=4000, captured_minor=6000))
        void = tx.child_transaction_ids.filtered(lambda t: t.state == 'cancel')
        self.assertEqual((void.amount, tx.state), (40.0, 'done'))
        self.assertIn("released, as voided from Odoo", void.state_message)

    def test_a_cancel_made_elsewhere_says_so(self):
        tx = self._create_klarna_transaction(state='authorized', provider_reference=self.klarna_order_id)
        self._post_update(self._update('cancelled', amount_minor=0))
        self.assertIn("cancelled in Klarna (not from Odoo)", tx.state_message)

    def test_refund_request_sends_the_refund_amount(self):
        tx = self._create_klarna_transaction(state='done', provider_reference=self.klarna_order_id)
        with patch(REQUEST, return_value=FakeResponse({'operation': {'id': 21}})) as mock:
            refund = tx._send_refund_request(amount_to_refund=12.5)
        method, path, body, headers = self._gateway_call(mock)
        self.assertEqual(
            (path, body),
            (f'/admin/payments/{self.klarna_order_id}/refunds',
             {'amount': 1250, 'expected_captured': tx._klarna_minor(tx.amount), 'expected_refunded': 0}),
            "captured whole on its own transaction: the gateway holds all of it as captured",
        )
        self.assertEqual(
            headers['Idempotency-Key'],
            f'odoo-refund-{self.klarna_order_id}-1250-{tx._klarna_minor(tx.amount)}-0',
        )
        self.assertEqual((refund.amount, refund.provider_reference), (-12.5, 'klarna-op-21'))
        self.assertNotIn('capture_operation_id', body, "a refund of the whole payment names no capture")
        self._post_update(self._update(
            'refunded', amount_minor=1250, captured_minor=10000, refunded_minor=1250, operation_id=21,
        ))
        self.assertEqual((refund.state, len(tx.child_transaction_ids)), ('done', 1))

    def test_a_capture_retried_after_a_rollback_is_refused_by_the_gateway_not_done_twice(self):
        """ The first capture reached the gateway, but Odoo rolled it back (the gateway's
        answer never came). The retry is a new child with a new idempotency key; it tells
        the gateway that Odoo knows of nothing captured, and the gateway — which holds the
        first capture — refuses. Odoo records nothing and says why. """
        tx = self._create_klarna_transaction(state='authorized', provider_reference=self.klarna_order_id)
        changed = FakeResponse({
            'code': 'state_changed',
            'message': "the payment changed: EUR 3000 captured, not the 0 expected",
            'payment': {'currency': 'EUR', 'authorized': 10000, 'captured': 3000, 'refunded': 0,
                        'captured_in_flight': 0, 'refunded_in_flight': 0},
        }, 409)
        with patch(REQUEST, return_value=changed) as mock, self.assertRaises(ValidationError) as caught:
            with self.env.cr.savepoint():
                tx._send_capture_request(amount_to_capture=30.0)
        _method, _path, body, headers = self._gateway_call(mock)
        self.assertEqual(body['expected_captured'], 0)
        self.assertIn("Nothing was sent", str(caught.exception))
        self.assertIn("3000 captured", str(caught.exception))
        tx.invalidate_recordset()
        self.assertFalse(tx.child_transaction_ids, "the retry's child is rolled back too")
        # The gateway's update about the first capture brings Odoo in line; a deliberate
        # second capture then expects what Odoo now knows.
        self._post_update(self._update('captured', amount_minor=3000, captured_minor=3000, operation_id=31))
        with patch(REQUEST, return_value=FakeResponse({'operation': {'id': 32}})) as mock:
            tx._send_capture_request(amount_to_capture=30.0)
        _method, _path, body, _headers = self._gateway_call(mock)
        self.assertEqual((body['amount'], body['expected_captured']), (3000, 3000))

    def test_a_retry_of_the_same_intent_after_a_rollback_carries_the_same_key(self):
        """ The gateway was unreachable (it crashed mid-capture): Odoo rolls the child back.
        The merchant's retry — same amount, Odoo's figures unchanged — is the same intent
        under the same key, so the gateway answers it with the first capture instead of
        capturing again; another amount is another intent. """
        tx = self._create_klarna_transaction(state='authorized', provider_reference=self.klarna_order_id)
        keys = []
        for answer in (requests.exceptions.ConnectionError("gateway killed"), FakeResponse({'operation': {'id': 51}})):
            with patch(REQUEST, side_effect=[answer]) as mock:
                try:
                    with self.env.cr.savepoint():
                        tx._send_capture_request(amount_to_capture=30.0)
                except ValidationError:
                    pass
            keys.append(self._gateway_call(mock)[3]['Idempotency-Key'])
        self.assertEqual(keys[0], keys[1], "one intent, one key")
        with patch(REQUEST, return_value=FakeResponse({'operation': {'id': 52}})) as mock:
            tx._send_capture_request(amount_to_capture=20.0)
        self.assertNotEqual(self._gateway_call(mock)[3]['Idempotency-Key'], keys[0])

    def test_refunds_expect_what_odoo_holds_across_captures_and_their_refunds(self):
        tx = self._create_klarna_transaction(state='authorized', provider_reference=self.klarna_order_id)
        self._post_update(self._update('captured', amount_minor=6000, captured_minor=6000, operation_id=41))
        capture = tx.child_transaction_ids
        self.assertEqual(capture.state, 'done')
        with patch(REQUEST, return_value=FakeResponse({'operation': {'id': 42}})) as mock:
            first = capture._send_refund_request(amount_to_refund=10.0)
        _method, _path, body, _headers = self._gateway_call(mock)
        self.assertEqual(body, {'amount': 1000, 'expected_captured': 6000, 'expected_refunded': 0,
                                'capture_operation_id': 41})
        self.assertEqual(first.provider_reference, 'klarna-op-42')
        # The second refund counts the first, which the gateway accepted.
        with patch(REQUEST, return_value=FakeResponse({'operation': {'id': 43}})) as mock:
            capture._send_refund_request(amount_to_refund=5.0)
        _method, _path, body, _headers = self._gateway_call(mock)
        self.assertEqual(body, {'amount': 500, 'expected_captured': 6000, 'expected_refunded': 1000,
                                'capture_operation_id': 41})
        # The gateway's updates find both refunds under the capture, and nothing else is made.
        for operation_id, minor, refunded in ((42, 1000, 1000), (43, 500, 1500)):
            self._post_update(self._update(
                'refunded', amount_minor=minor, captured_minor=6000, refunded_minor=refunded,
                operation_id=operation_id, capture_operation_id=41,
            ))
        self.assertEqual(capture.child_transaction_ids.mapped('state'), ['done', 'done'])
        self.assertEqual(tx.child_transaction_ids, capture)

    def test_a_refused_operation_is_reported_with_the_gateways_reason(self):
        tx = self._create_klarna_transaction(state='authorized', provider_reference=self.klarna_order_id)
        refusal = FakeResponse({'code': 'capture_exceeds_remaining', 'message': "only 0.00 EUR remain"}, 409)
        with patch(REQUEST, return_value=refusal), self.assertRaises(Exception) as caught:
            tx._send_capture_request(amount_to_capture=30.0)
        self.assertIn("only 0.00 EUR remain", str(caught.exception))

    # === Where Klarna is offered ===

    def _order_for(self, currency_code, country_code):
        currency = self._prepare_currency(currency_code)
        pricelist = self.env['product.pricelist'].create({
            'name': currency_code, 'currency_id': currency.id,
        })
        billing = self.env['res.partner'].create({
            'name': f"Billing {country_code}", 'country_id': self.env.ref(f'base.{country_code.lower()}').id,
        })
        order = self.env['sale.order'].create({
            'partner_id': self.partner.id,
            'partner_invoice_id': billing.id,
            'pricelist_id': pricelist.id,
            'order_line': [(0, 0, {
                'product_id': self.sale_order.order_line.product_id.id, 'price_unit': 100.0,
                'tax_id': [],
            })],
        })
        self.assertEqual(order.currency_id, currency)
        return order

    def _offered(self, order, report=None):
        self.klarna.available_currency_ids = [(6, 0, self.klarna._get_supported_currencies().ids)]
        return self.klarna in self.env['payment.provider']._get_compatible_providers(
            self.company.id, order.partner_id.id, order.amount_total,
            currency_id=order.currency_id.id, sale_order_id=order.id, report=report,
        )

    def test_klarna_is_offered_only_in_its_markets(self):
        """ The purchase country is the billing address's, and the order must be in its
        currency: a Swedish-crown cart billed to the United States cannot be paid. """
        report = {}
        self.assertFalse(self._offered(self._order_for('SEK', 'US'), report))
        self.assertFalse(report['providers'][self.klarna]['available'])
        self.assertIn("SEK", report['providers'][self.klarna]['reason'])
        self.assertTrue(self._offered(self._order_for('SEK', 'SE')))
        self.assertTrue(self._offered(self._order_for('EUR', 'DE')))
        self.assertFalse(self._offered(self._order_for('EUR', 'SE')), "Sweden pays in SEK")

    def test_the_markets_table_is_the_gateways(self):
        from odoo.addons.payment_klarna import const
        self.assertEqual(const.MARKET_CURRENCY['SE'], 'SEK')
        self.assertEqual(const.MARKET_CURRENCY['US'], 'USD')
        self.assertEqual([m['country'] for m in const.MARKETS], sorted(m['country'] for m in const.MARKETS))
        self.assertIn('sv-SE', next(m for m in const.MARKETS if m['country'] == 'SE')['locales'])
        self.assertEqual(const.SUPPORTED_CURRENCIES, {m['currency'] for m in const.MARKETS})

    # === The gateway's doctor ===

    DOCTOR = {'ok': False, 'checks': [
        {'name': 'database', 'status': 'pass', 'detail': "SQLite answers; schema 5, current"},
        {'name': 'odoo.rights', 'status': 'fail',
         'detail': '"gateway" may not read payment.transaction',
         'fix': "in Odoo, Settings > Users > gateway: add Invoicing: Billing"},
        {'name': 'public_url', 'status': 'warn', 'detail': "answers, over plain HTTP",
         'fix': "put the gateway behind a TLS proxy"},
        {'name': 'proxy', 'status': 'skip', 'detail': "not tried: no public_url"},
    ]}

    def test_check_gateway_shows_the_gateways_doctor_report_with_what_to_do(self):
        with patch(REQUEST, return_value=FakeResponse(self.DOCTOR)) as mock:
            action = self.klarna.action_klarna_check_gateway()
        method, path, body, headers = self._gateway_call(mock)
        self.assertEqual((method, path, body), ('GET', '/admin/doctor', None))
        self.assertTrue(headers['X-Klarna-Gateway-Signature'], "signed with the shared secret")
        doctor = self.env[action['res_model']].browse(action['res_id'])
        self.assertFalse(doctor.ready)
        self.assertEqual(doctor.line_ids.mapped('name'),
                         ['database', 'odoo.rights', 'public_url', 'proxy'])
        self.assertEqual(doctor.line_ids.mapped('status'), ['pass', 'fail', 'warn', 'skip'])
        failed = doctor.line_ids[1]
        self.assertIn('payment.transaction', failed.detail)
        self.assertIn('Invoicing: Billing', failed.fix)

        ready = {'ok': True, 'checks': [dict(c, status='pass') for c in self.DOCTOR['checks']]}
        with patch(REQUEST, return_value=FakeResponse(ready)):
            again = doctor.action_refresh()
        self.assertTrue(self.env[again['res_model']].browse(again['res_id']).ready)

    def test_check_gateway_says_why_when_the_gateway_cannot_be_asked(self):
        refusal = FakeResponse({'code': 'unauthorized', 'message': "signature does not match"}, 401)
        with patch(REQUEST, return_value=refusal), self.assertRaises(UserError) as caught:
            self.klarna.action_klarna_check_gateway()
        self.assertIn("signature does not match", str(caught.exception))
        with patch(REQUEST, return_value=FakeResponse({})):
            action = self.klarna.action_klarna_check_gateway()
        self.assertFalse(
            self.env[action['res_model']].browse(action['res_id']).ready, "an empty report"
        )

    # === The gateway's review queue ===

    REVIEW = {'jobs': [
        {'id': 7, 'kind': 'odoo_sync', 'priority': 0, 'state': 'review', 'attempts': 5,
         'run_at': 1733330000000, 'last_error': "Odoo answered 502 Bad Gateway",
         'created_at': 1733320000000, 'updated_at': 1733330000000,
         'payload': {'event_id': 'e1', 'event': 'captured', 'reference': 'S00042',
                     'klarna_order_id': 'k1', 'currency': 'EUR', 'amount_minor': 5000,
                     'amount': '50.00', 'authorized_minor': 10000, 'captured_minor': 5000,
                     'refunded_minor': 0, 'operation_id': 3, 'capture_operation_id': None,
                     'message': None, 'occurred_at': 1733320000000}},
        {'id': 9, 'kind': 'resume_operation', 'priority': 0, 'state': 'review', 'attempts': 5,
         'run_at': 1733330000000, 'last_error': "klarna_unavailable", 'created_at': 1733320000000,
         'updated_at': 1733330000000, 'payload': {'operation_id': 4}},
    ]}

    def test_review_queue_lists_the_gateways_jobs_and_replays_one(self):
        with patch(REQUEST, return_value=FakeResponse(self.REVIEW)) as mock:
            action = self.klarna.action_klarna_review_queue()
        method, path, body, _headers = self._gateway_call(mock)
        self.assertEqual((method, path, body), ('GET', '/admin/review', None))
        review = self.env[action['res_model']].browse(action['res_id'])
        self.assertEqual(review.line_ids.mapped('job_id'), [7, 9])
        sync = review.line_ids[0]
        self.assertEqual((sync.kind, sync.attempts), ('odoo_sync', 5))
        self.assertIn("captured", sync.summary)
        self.assertIn("S00042", sync.summary)
        self.assertIn("50.00 EUR", sync.summary)
        self.assertEqual(sync.last_error, "Odoo answered 502 Bad Gateway")
        self.assertEqual(str(sync.updated_at), '2024-12-04 16:33:20')
        arch = self.env['payment.klarna.review'].get_views([(False, 'form')])['views']['form']['arch']
        self.assertIn('action_replay', arch)
        self.assertNotIn(SECRET, json.dumps(review.line_ids.read(), default=str))

        after = {'jobs': self.REVIEW['jobs'][1:]}
        with patch(REQUEST, side_effect=[FakeResponse({'replayed': 7}), FakeResponse(after)]) as mock:
            action = sync.action_replay()
        replay, reread = mock.call_args_list
        self.assertEqual(replay.args, ('POST', 'https://gateway.test/admin/jobs/7/replay'))
        self.assertTrue(replay.kwargs['headers']['X-Klarna-Gateway-Signature'])
        self.assertEqual(reread.args, ('GET', 'https://gateway.test/admin/review'))
        self.assertEqual(
            self.env[action['res_model']].browse(action['res_id']).line_ids.mapped('job_id'), [9]
        )

    def test_review_queue_errors_are_the_gateways_words(self):
        with patch(REQUEST, return_value=FakeResponse(self.REVIEW)):
            action = self.klarna.action_klarna_review_queue()
        line = self.env[action['res_model']].browse(action['res_id']).line_ids[0]
        refusal = FakeResponse({'code': 'refused', 'message': "job 7 is not in the review queue"}, 409)
        with patch(REQUEST, return_value=refusal), self.assertRaises(UserError) as caught:
            line.action_replay()
        self.assertIn("job 7 is not in the review queue", str(caught.exception))
        self.assertNotIn(SECRET, str(caught.exception))
        with patch(REQUEST, side_effect=requests.exceptions.ConnectionError("refused")), \
                self.assertRaises(UserError) as caught:
            self.klarna.action_klarna_review_queue()
        self.assertIn("Could not reach the Klarna gateway", str(caught.exception))
