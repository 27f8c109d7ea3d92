# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

from unittest.mock import patch

from odoo.exceptions import UserError
from odoo.tests import Form, tagged

from odoo.addons.payment.tests.http_common import PaymentHttpCommon
from odoo.addons.payment_klarna.controllers.main import KlarnaController
from odoo.addons.payment_klarna.tests.common import (
    REQUEST, FakeGateway, KlarnaCommon,
)


@tagged('post_install', '-at_install')
class KlarnaMerchantFlowTest(KlarnaCommon, PaymentHttpCommon):
    """ A merchant's day with Klarna, through Odoo's own wizards, with a gateway that answers
    as the real one does and sends its updates back: capture, refund, void; the wizards'
    figures afterwards; the order confirmation e-mail. Odoo's post-processing runs for real
    (payments in Accounting, e-mails). """

    def setUp(self):
        self.enable_post_process_patcher = False  # Real payments, real e-mails.
        super().setUp()
        self.gateway = FakeGateway(self.klarna_order_id, self.reference, 10000)

    # === Helpers ===

    def _post_update(self, data):
        body, headers = self._signed(data)
        response = self.opener.post(
            self._build_url(KlarnaController._gateway_url), data=body, headers=headers
        )
        self.assertEqual(response.json(), {'status': 'ok'}, data)
        return response

    def _authorized(self, amount_minor=10000):
        """ The shopper paid with Klarna: the gateway's `authorized` update arrived. """
        tx = self._create_klarna_transaction(amount=amount_minor / 100)
        self.gateway.authorized = amount_minor
        self._post_update(self._update(
            'authorized', amount_minor=amount_minor, authorized_minor=amount_minor,
        ))
        self.assertEqual(tx.state, 'authorized')
        return tx

    def _capture_with_wizard(self, tx, amount, void_rest=False):
        """ The merchant presses Capture on the transaction and confirms the wizard; the
        gateway answers, then sends its update. """
        action = tx.action_capture()
        with patch(REQUEST, side_effect=self.gateway):
            with Form(self.env[action['res_model']].with_context(action['context'])) as wizard:
                wizard.amount_to_capture = amount
                if void_rest:
                    wizard.void_remaining_amount = True
            wizard.record.action_capture()
        operations = [op for op in self.gateway.operations if op['kind'] in ('capture', 'release')]
        for operation in operations[-2 if void_rest else -1:]:
            self._post_update(self.gateway.update(operation))
        return self.gateway.last('capture')

    def _refund_wizard(self, payment):
        return Form(self.env['payment.refund.wizard'].with_context(
            active_model='account.payment', active_id=payment.id,
        ))

    def _refund_with_wizard(self, payment, amount):
        """ The merchant presses Refund on the payment and confirms; the gateway answers, then
        sends its update. """
        with patch(REQUEST, side_effect=self.gateway):
            with self._refund_wizard(payment) as wizard:
                wizard.amount_to_refund = amount
            wizard.record.action_refund()
        refund = self.gateway.last('refund')
        self._post_update(self.gateway.update(refund))
        return refund

    def _capture_child(self, tx, operation):
        return tx.child_transaction_ids.filtered(
            lambda t: t.provider_reference == f"klarna-op-{operation['id']}"
        )

    def _wizard_figures(self, payment):
        payment.invalidate_recordset()
        wizard = self._refund_wizard(payment)
        return (
            wizard.payment_amount, wizard.refunded_amount, wizard.amount_available_for_refund,
            wizard.has_pending_refund,
        )

    # === Refunds of partial captures ===

    def test_a_refund_of_a_partial_capture_is_one_transaction_and_the_wizard_shows_it(self):
        tx = self._authorized()
        capture = self._capture_with_wizard(tx, 50.0)
        child = self._capture_child(tx, capture)
        self.assertEqual((child.amount, child.state), (50.0, 'done'))
        self.assertTrue(child.payment_id, "the capture is a payment in Accounting")
        self.assertEqual(self._wizard_figures(child.payment_id), (50.0, 0.0, 50.0, False))

        refund = self._refund_with_wizard(child.payment_id, 50.0)
        _method, path, body, _headers = self.gateway.calls[-1]
        self.assertEqual(path, f'/admin/payments/{self.klarna_order_id}/refunds')
        self.assertEqual(body, {
            'amount': 5000, 'expected_captured': 5000, 'expected_refunded': 0,
            'capture_operation_id': capture['id'],
        })
        refunds = self.env['payment.transaction'].search([('operation', '=', 'refund')])
        self.assertEqual(len(refunds), 1, "the gateway's update found the refund Odoo asked for")
        self.assertEqual(
            (refunds.source_transaction_id, refunds.amount, refunds.state, refunds.provider_reference),
            (child, -50.0, 'done', f"klarna-op-{refund['id']}"),
        )
        self.assertTrue(refunds.payment_id, "the refund is a payment in Accounting")
        self.assertEqual(self._wizard_figures(child.payment_id), (50.0, 50.0, 0.0, False))

    def test_partial_refunds_across_two_captures(self):
        tx = self._authorized()
        first = self._capture_with_wizard(tx, 30.0)
        second = self._capture_with_wizard(tx, 70.0)
        self.assertEqual(tx.state, 'done', "everything is captured")
        first_child, second_child = self._capture_child(tx, first), self._capture_child(tx, second)

        self._refund_with_wizard(first_child.payment_id, 10.0)
        self._refund_with_wizard(second_child.payment_id, 20.0)
        _method, _path, body, _headers = self.gateway.calls[-1]
        self.assertEqual(body, {
            'amount': 2000, 'expected_captured': 10000, 'expected_refunded': 1000,
            'capture_operation_id': second['id'],
        })
        self._refund_with_wizard(first_child.payment_id, 5.0)

        self.assertEqual(self._wizard_figures(first_child.payment_id), (30.0, 15.0, 15.0, False))
        self.assertEqual(self._wizard_figures(second_child.payment_id), (70.0, 20.0, 50.0, False))
        self.assertEqual(
            sorted(first_child.child_transaction_ids.mapped('amount')), [-10.0, -5.0]
        )
        self.assertEqual(second_child.child_transaction_ids.mapped('amount'), [-20.0])
        self.assertEqual(tx._klarna_expected(None), {
            'expected_captured': 10000, 'expected_refunded': 3500,
        })

    def test_a_refund_made_elsewhere_lands_under_the_capture_it_names(self):
        """ A refund from Klarna's portal or the gateway's CLI: Odoo asked for nothing, so the
        update makes the refund — under the capture it names, as Odoo would have. """
        tx = self._authorized()
        capture = self._capture_with_wizard(tx, 40.0)
        child = self._capture_child(tx, capture)
        self._post_update(self._update(
            'refunded', amount_minor=1500, captured_minor=4000, refunded_minor=1500,
            operation_id=capture['id'] + 50, capture_operation_id=capture['id'],
        ))
        refund = child.child_transaction_ids
        self.assertEqual((refund.amount, refund.state), (-15.0, 'done'))
        self.assertEqual(refund.reference, f'R-{child.reference}')
        self.assertFalse(tx.child_transaction_ids.filtered(lambda t: t.operation == 'refund'))
        self.assertEqual(self._wizard_figures(child.payment_id), (40.0, 15.0, 25.0, False))

    def test_a_refund_update_finds_the_draft_odoo_asked_for_without_an_operation_id(self):
        """ Odoo's refund holds no operation id (the gateway's answer did not carry one): the
        update still finds it, in the capture's family, by its amount. """
        tx = self._authorized()
        capture = self._capture_with_wizard(tx, 60.0)
        child = self._capture_child(tx, capture)
        draft = child._create_child_transaction(25.0, is_refund=True)
        self._post_update(self._update(
            'refunded', amount_minor=2500, captured_minor=6000, refunded_minor=2500,
            operation_id=999, capture_operation_id=capture['id'],
        ))
        self.assertEqual(draft.state, 'done')
        self.assertEqual(len(self.env['payment.transaction'].search([('operation', '=', 'refund')])), 1)

    def test_the_gateway_refuses_a_capture_operation_id_that_is_not_a_capture(self):
        tx = self._authorized()
        capture = self._capture_with_wizard(tx, 50.0)
        child = self._capture_child(tx, capture)
        child.provider_reference = 'klarna-op-4242'  # not one of the gateway's captures
        with patch(REQUEST, side_effect=self.gateway), self.assertRaises(UserError) as caught:
            with self.env.cr.savepoint():
                child.action_refund(amount_to_refund=10.0)
        self.assertIn("4242 is not a capture of this payment", str(caught.exception))

    # === Void ===

    def test_void_after_a_partial_capture_releases_the_rest_and_says_so(self):
        tx = self._authorized()
        self._capture_with_wizard(tx, 40.0)
        with patch(REQUEST, side_effect=self.gateway):
            tx.action_void()
        release = self.gateway.last()
        self.assertEqual((release['kind'], release['amount']), ('release', 6000))
        self._post_update(self.gateway.update(release))
        void = tx.child_transaction_ids.filtered(lambda t: t.state == 'cancel')
        self.assertEqual(void.amount, 60.0)
        self.assertIn("released, as voided from Odoo", void.state_message)
        self.assertEqual(tx.state, 'done')

    def test_void_before_any_capture_cancels_and_says_so(self):
        tx = self._authorized()
        with patch(REQUEST, side_effect=self.gateway):
            tx.action_void()
        cancel = self.gateway.last()
        self.assertEqual(cancel['kind'], 'cancel')
        self._post_update(self.gateway.update(cancel))
        self.assertEqual(tx.state, 'cancel')
        self.assertIn("cancelled, as voided from Odoo", tx.state_message)
        self.assertNotIn("Klarna cancelled the order", tx.state_message)

    # === Order confirmation e-mail ===

    def _mails(self):
        """ (order confirmations, "payment executed" mails) posted on the order. """
        self.sale_order.invalidate_recordset(['message_ids'])
        messages = self.sale_order.message_ids
        confirmation = self.env.ref('sale.mail_template_sale_confirmation')
        executed = self.env.ref('sale.mail_template_sale_payment_executed')
        subject_lookalikes = messages.filtered(lambda m: m.subject and '(Ref ' in m.subject)
        confirmations = subject_lookalikes.filtered(lambda m: 'Your order' in m.body)
        payments = subject_lookalikes.filtered(lambda m: 'Your payment' in m.body)
        self.assertTrue(confirmation and executed)
        self.assertEqual(len(subject_lookalikes), len(confirmations) + len(payments))
        return len(confirmations), len(payments)

    def test_confirmation_on_authorization_is_the_only_mail(self):
        """ Sent when Klarna authorizes; neither a partial capture nor the release of the rest
        sends another (Odoo's "payment executed" would say the authorized amount was paid). """
        self.klarna.klarna_confirmation_mail = 'authorization'
        tx = self._authorized()
        self.assertEqual(self.sale_order.state, 'sale')
        self.assertEqual(self._mails(), (1, 0), "confirmed and announced on authorization")
        self._capture_with_wizard(tx, 40.0, void_rest=True)
        self.assertEqual(tx.state, 'done')
        self.assertEqual(self._mails(), (1, 0), "no second e-mail on capture or release")

    def test_confirmation_on_capture_is_sent_by_the_capture_update_once(self):
        self.klarna.klarna_confirmation_mail = 'capture'
        tx = self._authorized()
        self.assertEqual(self.sale_order.state, 'sale', "confirmed on authorization")
        self.assertEqual(self._mails(), (0, 0), "but not announced yet")
        self._capture_with_wizard(tx, 30.0)
        self.assertEqual(self._mails(), (1, 0), "the capture's update sent it, no cron needed")
        self._capture_with_wizard(tx, 70.0)
        self.assertEqual(tx.state, 'done')
        self.assertEqual(self._mails(), (1, 0), "once")

    def test_the_moment_chosen_at_authorization_survives_a_setting_change(self):
        self.klarna.klarna_confirmation_mail = 'capture'
        tx = self._authorized()
        self.assertEqual(tx.klarna_confirmation_mail, 'capture')
        self.klarna.klarna_confirmation_mail = 'authorization'
        self._capture_with_wizard(tx, 100.0)
        self.assertEqual(self._mails(), (1, 0), "the order authorized under 'capture' got its mail")

    def test_a_setting_change_after_authorization_sends_no_second_mail(self):
        self.klarna.klarna_confirmation_mail = 'authorization'
        tx = self._authorized()
        self.klarna.klarna_confirmation_mail = 'capture'
        self._capture_with_wizard(tx, 100.0)
        self.assertEqual(self._mails(), (1, 0))

    # === Order edits after authorization ===

    def _edit_price(self, price):
        """ The merchant changes the line's price on the confirmed order and saves; the request
        ends (its precommit hooks run, as at the end of a request in production). """
        with patch(REQUEST, side_effect=self.gateway):
            with Form(self.sale_order) as order:
                with order.order_line.edit(0) as line:
                    line.price_unit = price
            self.env.cr.flush()

    def test_an_edit_on_save_sends_the_order_and_the_payment_follows(self):
        tx = self._authorized()
        self.assertEqual(self.sale_order.state, 'sale')
        calls = len(self.gateway.calls)
        self._edit_price(80.0)
        self.assertEqual(len(self.gateway.calls), calls + 1, "one request for the edit")
        _method, path, body, headers = self.gateway.calls[-1]
        self.assertEqual(path, f'/admin/payments/{self.klarna_order_id}/authorization')
        self.assertEqual(
            (body['expected_authorized'], body['expected_captured'], body['expected_refunded']),
            (10000, 0, 0),
        )
        records = body['odoo_records']
        self.assertEqual(
            (records['sale.order'][0]['name'], records['sale.order'][0]['amount_total']),
            (self.reference, 80.0),
            "the edit as this transaction sees it, before Odoo commits it",
        )
        self.assertEqual([l['price_unit'] for l in records['sale.order.line']], [80.0])
        self.assertTrue(headers['Idempotency-Key'].startswith('odoo-edit-'))
        self.assertEqual(tx.amount, 80.0, "the payment is for the edited order")
        self.assertFalse(self.sale_order.klarna_authorization_differs)
        self.assertIn("Klarna's authorization follows the edited order", self.sale_order.message_ids[0].body)

    def test_an_edit_klarna_refuses_is_undone_with_the_reason(self):
        tx = self._authorized()
        self.gateway.max_authorization = 11000
        with self.assertRaises(UserError) as refused:
            self._edit_price(150.0)
        self.assertIn("the order was not changed", str(refused.exception))
        self.assertIn("declined the increase", str(refused.exception))
        self.env.invalidate_all()
        self.assertEqual(
            (self.sale_order.amount_total, tx.amount, self.gateway.authorized),
            (100.0, 100.0, 10000),
            "the order stays as Klarna has it",
        )

    def test_a_write_that_changes_no_amount_sends_nothing(self):
        self._authorized()
        calls = len(self.gateway.calls)
        with patch(REQUEST, side_effect=self.gateway):
            self.sale_order.order_line.name = "Kaffebryggare (svart)"
            self.env.cr.flush()
        self.assertEqual(len(self.gateway.calls), calls)

    def test_the_update_button_sends_an_edit_klarna_was_not_told_of(self):
        tx = self._authorized()
        self.sale_order.order_line.with_context(klarna_no_edit_sync=True).price_unit = 90.0
        self.env.cr.flush()
        self.assertTrue(self.sale_order.klarna_authorization_differs)
        with patch(REQUEST, side_effect=self.gateway):
            self.sale_order.action_klarna_update_authorization()
        self.assertEqual((tx.amount, self.gateway.authorized), (90.0, 9000))
        self.assertFalse(self.sale_order.klarna_authorization_differs)

    def test_an_edit_made_elsewhere_reaches_the_payment_by_the_gateways_update(self):
        tx = self._authorized()
        self._post_update(self._update('authorization_updated', amount_minor=9500))
        self.assertEqual(tx.amount, 95.0)
        self.assertTrue(self.sale_order.klarna_authorization_differs, "the order itself was not edited")
