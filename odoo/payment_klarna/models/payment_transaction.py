# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import logging
import pprint

from odoo import _, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import format_amount

from odoo.addons.payment_klarna import const
from odoo.addons.payment_klarna import utils as klarna_utils

_logger = logging.getLogger(__name__)

# The provider reference of a capture, refund or void made through the gateway: its operation.
OPERATION_REFERENCE = 'klarna-op-%s'


class PaymentTransaction(models.Model):
    _inherit = 'payment.transaction'

    klarna_confirmation_sent = fields.Boolean(
        string="Klarna Order Confirmation Sent", copy=False, readonly=True,
        help="With 'send order confirmation on capture', whether it went out.",
    )

    #=== BUSINESS METHODS - PAYMENT FLOW ===#

    def _get_specific_processing_values(self, processing_values):
        """ Override of `payment` to hand the widget what it pays: the order and its token.

        The browser never sends an amount: the gateway reads it from the sale order.
        """
        res = super()._get_specific_processing_values(processing_values)
        if self.provider_code != 'klarna':
            return res
        order = self.sale_order_ids[:1].sudo()
        return {
            'klarna_order_reference': order.name,
            'klarna_access_token': order._portal_ensure_token() if order else '',
        }

    def _klarna_payment_key(self):
        """ What the gateway knows this payment by: Klarna's order id, else the sale order. """
        source = self.source_transaction_id or self
        return source.provider_reference or source.sale_order_ids[:1].name

    def _klarna_minor(self, amount):
        return klarna_utils.to_minor(amount, self.currency_id)

    def _klarna_lock(self):
        """ Lock the payment's row, and give it a new version, until this transaction ends.

        A capture (refund, void) asked from Odoo and the gateway's update about it race: the
        gateway answers the request and notifies at once, while Odoo's request — and the child
        transaction it created — is not committed yet. Both paths take this lock first. Odoo's
        transactions are REPEATABLE READ, so the update's transaction, once it gets the lock,
        could still not see the child; because the row got a new version, it fails with a
        serialization error instead, and Odoo retries the whole request with a fresh view —
        which finds the child.

        That serialization error is expected and retried (by Odoo's request handling, or by the
        gateway on a 409): it is not logged as a bad query (`log_exceptions=False`), so a race
        leaves no ERROR line in Odoo's log.
        """
        source = self.source_transaction_id or self
        self.env.cr.execute(
            'UPDATE payment_transaction SET write_date = write_date WHERE id = %s', [source.id],
            log_exceptions=False,
        )
        source.invalidate_recordset()
        source.child_transaction_ids.invalidate_recordset()

    def _klarna_expected(self, sending):
        """ What Odoo believes the gateway holds for this payment, in minor units: the
        captures and refunds that are done, or that the gateway accepted (they carry its
        operation's reference) — the request being made now excluded.

        Sent with every capture, refund and void, the gateway refuses (`state_changed`)
        when it holds something else. A request whose first attempt Odoo rolled back (the
        gateway crashed, the answer was lost) is retried under the same key when it is the
        same intent, and gets the first answer; changed in between (another amount), its
        key is new, but the first capture is in the gateway's figures and not in these:
        refused, never done twice. A deliberate second capture, once the first is in Odoo,
        passes.

        :param recordset sending: The child transaction of the request being made, if any.
        :return: `expected_captured` and `expected_refunded`.
        :rtype: dict
        """
        source = self.source_transaction_id or self
        children = source.child_transaction_ids
        # In Odoo 18 a refund may start from a capture's child transaction.
        family = (children | children.child_transaction_ids) - (sending or self.browse())
        counted = family.filtered(
            lambda t: t.state == 'done'
            or (t.provider_reference or '').startswith(OPERATION_REFERENCE % '')
        )
        captures = counted.filtered(lambda t: t.operation != 'refund')
        refunds = counted.filtered(lambda t: t.operation == 'refund')
        return {
            'expected_captured': sum(self._klarna_minor(t.amount) for t in captures),
            'expected_refunded': sum(self._klarna_minor(-t.amount) for t in refunds),
        }

    def _klarna_operation(self, action, sending, amount_minor=None):
        """ Ask the gateway for a capture, refund, cancel or release of this payment.

        The idempotency key names the merchant's intent — this payment, this operation, this
        amount, asked from what Odoo holds now — not a transaction row that a rollback may
        take away. A retry of the same intent (the gateway crashed, its answer was lost,
        Odoo rolled back) carries the same key and gets the first answer, never a second
        operation; another amount, or a second capture once Odoo has the first, is another
        intent with another key. The figures travel along, so that the gateway refuses
        (`state_changed`) what no longer fits the payment whatever key it carries.

        :param str action: `capture`, `refund`, `cancel` or `release`.
        :param recordset sending: The child transaction of this request, if any.
        :param int amount_minor: The amount of a capture or refund, in minor units.
        :return: The gateway's answer.
        :rtype: dict
        """
        expected = self._klarna_expected(sending)
        payload = dict(expected)
        if amount_minor is not None:
            payload = {'amount': amount_minor, **expected}
        payment = self._klarna_payment_key()
        key = '-'.join(str(part) for part in (
            'odoo', action, payment, amount_minor or 0,
            expected['expected_captured'], expected['expected_refunded'],
        ))
        path = {'capture': 'captures', 'refund': 'refunds'}.get(action, action)
        return self.provider_id._klarna_request(
            'POST', f'/admin/payments/{payment}/{path}', payload=payload, idempotency_key=key,
        )

    def _send_capture_request(self, amount_to_capture=None):
        """ Override of `payment` to capture through the gateway (partial captures included). """
        if self.provider_code == 'klarna':
            self._klarna_lock()
        child_capture_tx = super()._send_capture_request(amount_to_capture=amount_to_capture)
        if self.provider_code != 'klarna':
            return child_capture_tx

        amount = amount_to_capture or self.amount
        answer = self._klarna_operation('capture', child_capture_tx, self._klarna_minor(amount))
        _logger.info("capture request response:\n%s", pprint.pformat(answer))
        operation = answer.get('operation') or {}
        if child_capture_tx and operation.get('id'):
            child_capture_tx.provider_reference = OPERATION_REFERENCE % operation['id']
        self._log_message_on_linked_documents(_(
            "The capture of %(amount)s for the transaction with reference %(ref)s was sent to "
            "Klarna (%(provider)s).",
            amount=format_amount(self.env, amount, self.currency_id), ref=self.reference,
            provider=self.provider_id.name,
        ))
        return child_capture_tx

    def _send_void_request(self, amount_to_void=None):
        """ Override of `payment` to void through the gateway: cancel an order nothing was
        captured of, release the rest of a partially captured one. """
        if self.provider_code == 'klarna':
            self._klarna_lock()
        child_void_tx = super()._send_void_request(amount_to_void=amount_to_void)
        if self.provider_code != 'klarna':
            return child_void_tx

        captured = self.child_transaction_ids.filtered(
            lambda tx: tx.operation != 'refund' and tx.state == 'done'
        )
        action = 'release' if captured else 'cancel'
        answer = self._klarna_operation(action, child_void_tx)
        _logger.info("void request response:\n%s", pprint.pformat(answer))
        self._log_message_on_linked_documents(_(
            "A request was sent to void the transaction with reference %(reference)s (%(provider)s).",
            reference=self.reference, provider=self.provider_id.name,
        ))
        return child_void_tx

    def _send_refund_request(self, amount_to_refund=None):
        """ Override of `payment` to refund through the gateway (never more than captured). """
        if self.provider_code == 'klarna':
            self._klarna_lock()
        refund_tx = super()._send_refund_request(amount_to_refund=amount_to_refund)
        if self.provider_code != 'klarna':
            return refund_tx

        answer = self._klarna_operation('refund', refund_tx, self._klarna_minor(-refund_tx.amount))
        _logger.info("refund request response:\n%s", pprint.pformat(answer))
        operation = answer.get('operation') or {}
        if operation.get('id'):
            refund_tx.provider_reference = OPERATION_REFERENCE % operation['id']
        return refund_tx

    #=== BUSINESS METHODS - NOTIFICATIONS ===#

    def _get_tx_from_notification_data(self, provider_code, notification_data):
        """ Override of `payment` to find the transaction a gateway update is about.

        The payment is found by Klarna's order id, or — for its first update — as the latest
        Klarna transaction of the sale order. A capture or refund is the child transaction
        Odoo created when it asked for it (by the gateway's operation id), or a new one when it
        was made elsewhere (Klarna's portal, the gateway's CLI, reconcile).

        :raise ValidationError: When the data name no transaction we know.
        """
        tx = super()._get_tx_from_notification_data(provider_code, notification_data)
        if provider_code != 'klarna' or len(tx) == 1:
            return tx

        event = notification_data.get('event')
        if event not in const.EVENTS:
            raise ValidationError("Klarna: " + _("Unknown update %(event)r.", event=event))
        klarna_order_id = notification_data.get('klarna_order_id')
        reference = notification_data.get('reference')
        source = self.env['payment.transaction']
        if klarna_order_id:
            source = self.search([
                ('provider_code', '=', 'klarna'),
                ('provider_reference', '=', klarna_order_id),
                ('source_transaction_id', '=', False),
            ], limit=1)
        if not source and reference:
            source = self.search([
                ('provider_code', '=', 'klarna'),
                ('sale_order_ids.name', '=', reference),
                ('source_transaction_id', '=', False),
                ('operation', 'in', ('online_direct', 'online_redirect', 'online_token', 'offline')),
            ], order='id desc', limit=1)
        if not source:
            raise ValidationError("Klarna: " + _(
                "No transaction found for order %(ref)s.", ref=reference or klarna_order_id
            ))

        source._klarna_lock()  # A request from Odoo about the same payment finishes first.
        amount = self._klarna_amount(notification_data, source)
        if event in ('captured', 'refunded'):
            is_refund = event == 'refunded'
            operation_id = notification_data.get('operation_id')
            child = self.env['payment.transaction']
            if operation_id:
                # The gateway's operation ids are its own: look among this payment's children.
                child = source.child_transaction_ids.filtered(
                    lambda t: t.provider_reference == OPERATION_REFERENCE % operation_id
                )[:1]
            if not child:
                # A child Odoo asked for is still a draft of the same amount.
                child = source.child_transaction_ids.filtered(
                    lambda t: t.state == 'draft' and t.amount == (-amount if is_refund else amount)
                    and (t.operation == 'refund') == is_refund
                )[:1]
            if child:
                return child
            full = not is_refund and notification_data.get('amount_minor') == notification_data.get(
                'authorized_minor'
            ) and not source.child_transaction_ids
            if full:
                return source
            return source._create_child_transaction(
                amount, is_refund=is_refund,
                provider_reference=OPERATION_REFERENCE % operation_id if operation_id else None,
            )
        if event == 'released':
            child = source.child_transaction_ids.filtered(
                lambda t: t.state == 'draft' and t.operation != 'refund'
            )[:1]
            if child:
                return child
            remaining = source.amount - sum(source.child_transaction_ids.filtered(
                lambda t: t.operation != 'refund' and t.state in ('done', 'cancel')
            ).mapped('amount'))
            if source.currency_id.compare_amounts(remaining, 0) > 0:
                return source._create_child_transaction(remaining)
        return source

    def _klarna_amount(self, notification_data, source):
        """ The update's amount, from its minor units (never the float of a JSON number). """
        minor = notification_data.get('amount_minor')
        if not isinstance(minor, int):
            raise ValidationError("Klarna: " + _("The update has no amount in minor units."))
        if notification_data.get('currency') != source.currency_id.name:
            raise ValidationError("Klarna: " + _(
                "The update is in %(currency)s, the transaction in %(tx_currency)s.",
                currency=notification_data.get('currency'), tx_currency=source.currency_id.name,
            ))
        return source.currency_id.round(minor / 10 ** source.currency_id.decimal_places)

    def _process_notification_data(self, notification_data):
        """ Override of `payment` to apply a gateway update through Odoo's own state methods. """
        super()._process_notification_data(notification_data)
        if self.provider_code != 'klarna':
            return

        event = notification_data['event']
        message = notification_data.get('message')
        if event in ('authorized', 'pending') and notification_data.get('klarna_order_id'):
            self.provider_reference = notification_data['klarna_order_id']

        if event == 'pending':
            self._set_pending(_("Klarna is reviewing the purchase (fraud check)."))
        elif event == 'authorized':
            self._set_authorized()
            if not self.provider_id.capture_manually:
                # Immediate capture was configured: Klarna captures now; its update makes the
                # transaction done.
                self._send_capture_request()
        elif event == 'captured':
            self._set_done(extra_allowed_states=('done',))
        elif event == 'refunded':
            self._set_done()
            # A refund is not post-processed by a shopper's browser: trigger it.
            self.env.ref('payment.cron_post_process_payment_tx')._trigger()
        elif event == 'released':
            if self.source_transaction_id:
                self._set_canceled(_("The rest of the authorization was released."))
            else:
                self._set_done()
        elif event in ('cancelled', 'expired'):
            self._set_canceled(
                _("The authorization expired.") if event == 'expired'
                else _("Klarna cancelled the order.")
            )
        elif event == 'error':
            text = message or _("Klarna could not process this payment.")
            if self.state in ('draft', 'pending'):
                self._set_error(text)
            else:
                self._log_message_on_linked_documents(_(
                    "Klarna: %(message)s (transaction %(ref)s)", message=text, ref=self.reference,
                ))

    #=== BUSINESS METHODS - ORDER CONFIRMATION ===#

    def _klarna_mail_on_capture(self):
        return self.filtered(
            lambda tx: tx.provider_code == 'klarna'
            and tx.provider_id.klarna_confirmation_mail == 'capture'
        )

    def _check_amount_and_confirm_order(self):
        """ Override of `sale` to confirm the order without its e-mail when the provider sends
        the confirmation on capture; the e-mail then follows the first capture. """
        deferred = self._klarna_mail_on_capture().filtered(lambda tx: tx.state == 'authorized')
        confirmed = super(PaymentTransaction, self - deferred)._check_amount_and_confirm_order()
        for tx in deferred:
            if len(tx.sale_order_ids) == 1:
                quotation = tx.sale_order_ids.filtered(lambda so: so.state in ('draft', 'sent'))
                if quotation and quotation._is_confirmation_amount_reached():
                    quotation.with_context(send_email=False).action_confirm()
                    confirmed |= quotation
        return confirmed

    def _post_process(self):
        """ Override of `payment` (and `sale`) to send the deferred order confirmation once a
        capture is done. """
        super()._post_process()
        for tx in self._klarna_mail_on_capture().filtered(
            lambda t: t.state == 'done' and t.operation != 'refund'
        ):
            source = tx.source_transaction_id or tx
            if source.klarna_confirmation_sent:
                continue
            orders = source.sale_order_ids.filtered(lambda so: so.state == 'sale')
            if orders:
                orders._send_order_confirmation_mail()
                source.klarna_confirmation_sent = True
