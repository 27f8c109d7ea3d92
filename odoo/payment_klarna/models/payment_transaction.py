# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import logging
import pprint

import psycopg2

from odoo import _, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import format_amount

from odoo.addons.payment_klarna import const
from odoo.addons.payment_klarna import utils as klarna_utils

_logger = logging.getLogger(__name__)

# The provider reference of a capture, refund or void made through the gateway: its operation.
OPERATION_REFERENCE = 'klarna-op-%s'


class WrongProvider(AccessError):
    """ A gateway update names a payment of another Klarna provider than the one(s) whose
    shared secret signed it (context `klarna_provider_ids`). """


class PaymentTransaction(models.Model):
    _inherit = 'payment.transaction'

    klarna_confirmation_mail = fields.Selection(
        string="Klarna Order Confirmation",
        selection=[
            ('authorization', "When Klarna authorizes the payment"),
            ('capture', "When the payment is captured"),
        ],
        copy=False, readonly=True,
        help="The provider's 'Send Order Confirmation' when Klarna authorized this payment: a "
             "later change of the setting does not move (or lose) this order's e-mail.",
    )
    klarna_confirmation_sent = fields.Boolean(
        string="Klarna Order Confirmation Sent", copy=False, readonly=True,
        help="Whether the order confirmation of this payment went out (one per order).",
    )
    klarna_void_requested = fields.Boolean(
        string="Klarna Void Requested", copy=False, readonly=True,
        help="Odoo asked the gateway to cancel or release this authorization (Void).",
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

    def _klarna_source(self):
        """ The payment this transaction belongs to: itself, its source, or — for a refund
        started from a capture's child — its source's source. """
        tx = self
        while tx.source_transaction_id:
            tx = tx.source_transaction_id
        return tx

    def _klarna_family(self):
        """ Every transaction of the payment but its source: the captures and voids, the
        refunds, and the refunds of captures (Odoo 18 refunds a partial capture from its
        child transaction, so those are grandchildren). """
        children = self._klarna_source().child_transaction_ids
        return children | children.child_transaction_ids

    def _klarna_operation_id(self):
        """ The gateway's operation id this transaction carries (`klarna-op-<id>`), if any. """
        reference = self.provider_reference or ''
        prefix = OPERATION_REFERENCE % ''
        if reference.startswith(prefix) and reference[len(prefix):].isdigit():
            return int(reference[len(prefix):])
        return None

    def _klarna_payment_key(self):
        """ What the gateway knows this payment by: Klarna's order id, else the sale order. """
        source = self._klarna_source()
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
        source = self._klarna_source()
        self.env.cr.execute(
            'UPDATE payment_transaction SET write_date = write_date WHERE id = %s', [source.id],
            log_exceptions=False,
        )
        # Read the payment's family again: the snapshot may hold children this cache lacks.
        self.env['payment.transaction'].invalidate_model()

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
        # In Odoo 18 a refund may start from a capture's child transaction: the family
        # holds those grandchildren too.
        family = self._klarna_family() - (sending or self.browse())
        counted = family.filtered(
            lambda t: t.state == 'done' or t._klarna_operation_id() is not None
        )
        captures = counted.filtered(lambda t: t.operation != 'refund')
        refunds = counted.filtered(lambda t: t.operation == 'refund')
        captured = sum(self._klarna_minor(t.amount) for t in captures)
        source = self._klarna_source()
        if not captures and source.state == 'done':
            # Captured whole on its own transaction (Odoo's full capture makes no child).
            captured = self._klarna_minor(source.amount)
        return {
            'expected_captured': captured,
            'expected_refunded': sum(self._klarna_minor(-t.amount) for t in refunds),
        }

    def _klarna_operation(self, action, sending, amount_minor=None, **fields_):
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
        :param dict fields_: More fields of the body (a refund's `capture_operation_id`).
        :return: The gateway's answer.
        :rtype: dict
        """
        expected = self._klarna_expected(sending)
        payload = dict(expected)
        if amount_minor is not None:
            payload = {'amount': amount_minor, **expected}
        payload.update(fields_)
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
        # The shipment's carrier and tracking, when the capture is a delivery's
        # (`payment_klarna_stock`): Klarna shows them to the shopper.
        shipping_info = self.env.context.get('klarna_shipping_info')
        extra = {'shipping_info': shipping_info} if shipping_info else {}
        answer = self._klarna_operation(
            'capture', child_capture_tx, self._klarna_minor(amount), **extra
        )
        _logger.info("capture request response:\n%s", pprint.pformat(answer))
        operation = answer.get('operation') or {}
        if child_capture_tx and operation.get('id'):
            child_capture_tx.provider_reference = OPERATION_REFERENCE % operation['id']
        self._klarna_capture_sent(child_capture_tx, operation)
        self._log_message_on_linked_documents(_(
            "The capture of %(amount)s for the transaction with reference %(ref)s was sent to "
            "Klarna (%(provider)s).",
            amount=format_amount(self.env, amount, self.currency_id), ref=self.reference,
            provider=self.provider_id.name,
        ))
        return child_capture_tx

    def _klarna_capture_sent(self, child_capture_tx, operation):
        """ Hook: the gateway accepted a capture of this payment.

        :param recordset child_capture_tx: The capture's child transaction; empty for a whole
            capture, which Odoo makes on this transaction itself.
        :param dict operation: The gateway's operation (`id`, `kind`, `amount`, `state`).
        """

    def _klarna_add_shipping_info(self, capture_operation_id, shipping_info):
        """ Add shipping info (a tracking number known after the capture) to a capture of
        this payment. The gateway appends the same info once, however often it is sent.

        :param int capture_operation_id: The gateway's operation id of the capture.
        :param list shipping_info: Klarna `shipping_info` items.
        :return: The gateway's answer (`added` false when it had it already).
        :rtype: dict
        :raise ValidationError: When the gateway refuses, with its reason.
        """
        self.ensure_one()
        payment = self._klarna_payment_key()
        return self.provider_id._klarna_request(
            'POST', f'/admin/payments/{payment}/captures/{capture_operation_id}/shipping-info',
            payload={'shipping_info': shipping_info},
        )

    def _klarna_tokenize_from_notification_data(self, saved):
        """ Save the shopper's Klarna as a `payment.token`: the checkout asked Klarna to save it
        (the shopper ticked "Save my payment details"), and the gateway keeps Klarna's token
        sealed. Odoo's token holds only the gateway's reference to it (`provider_ref`). A
        repeated update finds the token it made.

        :param dict saved: `reference` and `payment_method` (what the shopper saved).
        :return: None
        """
        reference = saved.get('reference')
        if not reference:
            return
        if self.partner_id.is_public:
            # Odoo keeps no token for the public partner (a constraint): the payment stands.
            _logger.warning("saved Klarna %s not kept: transaction %s is the public partner's",
                            reference, self.reference)
            return
        Token = self.env['payment.token'].sudo().with_context(active_test=False)
        token = Token.search([
            ('provider_id', '=', self.provider_id.id), ('provider_ref', '=', reference),
        ], limit=1)
        if not token:
            token = Token.create({
                'provider_id': self.provider_id.id,
                'payment_method_id': self.payment_method_id.id,
                'payment_details': saved.get('payment_method') or 'Klarna',
                'partner_id': self.partner_id.id,
                'provider_ref': reference,
            })
            _logger.info(
                "saved Klarna %s (token %s) for partner %s from transaction %s",
                reference, token.id, self.partner_id.id, self.reference,
            )
        self.write({'token_id': token.id, 'tokenize': False})

    def _klarna_charged_order(self):
        """ The sale order a charge of a saved Klarna pays: the gateway charges a whole order,
        as Odoo holds it, so the transaction must pay one order, all of it.

        :return: The sale order.
        :rtype: recordset of `sale.order`
        :raise UserError: When the transaction pays no single order, or not all of it.
        """
        orders = self.sale_order_ids or self.invoice_ids.invoice_line_ids.sale_line_ids.order_id
        if len(orders) != 1:
            raise UserError("Klarna: " + _(
                "A saved Klarna pays one sale order: this payment is for %(count)s.",
                count=len(orders),
            ))
        if self.currency_id.compare_amounts(self.amount, orders.amount_total) != 0:
            raise UserError("Klarna: " + _(
                "A saved Klarna pays a whole sale order: %(order)s is %(total)s, this payment "
                "%(amount)s.",
                order=orders.name,
                total=format_amount(self.env, orders.amount_total, orders.currency_id),
                amount=format_amount(self.env, self.amount, self.currency_id),
            ))
        return orders

    def _send_payment_request(self):
        """ Override of `payment` to charge a saved Klarna through the gateway, with no shopper
        present (a renewal, a reorder, a payment registered with the token).

        Klarna places an order for the sale order as Odoo holds it; it is then captured,
        refunded and cancelled like a checkout's. The gateway places one order per transaction
        reference, so a retried request gets the first answer. Its update (authorized or
        pending) follows as for a checkout; the answer already says how it went.
        """
        super()._send_payment_request()
        if self.provider_code != 'klarna':
            return
        if not self.token_id:
            raise UserError("Klarna: " + _("The transaction is not linked to a token."))
        order = self._klarna_charged_order()
        try:
            answer = self.provider_id._klarna_request(
                'POST', f'/admin/tokens/{self.token_id.provider_ref}/charges',
                payload={
                    'transaction_reference': self.reference,
                    'order_reference': order.name,
                    # As this transaction sees it: a renewal's order may be made in it.
                    'odoo_records': order._klarna_order_records(),
                },
                idempotency_key=f'odoo-charge-{self.reference}',
            )
        except ValidationError as e:
            if self.operation == 'offline':
                self._set_error(str(e))  # Shown on the order; nothing was charged.
                return
            raise
        _logger.info("token charge response for %s:\n%s", self.reference, pprint.pformat(answer))
        if answer.get('outcome') == 'authorized':
            self.provider_reference = answer.get('klarna_order_id')
            if answer.get('fraud_status') == 'PENDING':
                self._set_pending()
            else:
                self._set_authorized()
        else:
            self._set_error(_(
                "%(reason)s Nothing was charged.",
                reason=answer.get('reason') or _("Klarna declined the payment."),
            ))

    def _send_void_request(self, amount_to_void=None):
        """ Override of `payment` to void through the gateway: cancel an order nothing was
        captured of, release the rest of a partially captured one. """
        if self.provider_code == 'klarna':
            self._klarna_lock()
        child_void_tx = super()._send_void_request(amount_to_void=amount_to_void)
        if self.provider_code != 'klarna':
            return child_void_tx

        # Captured: done, or accepted by the gateway and waiting for its update (the capture
        # wizard captures, then voids the rest, in one go).
        captured = self.child_transaction_ids.filtered(
            lambda tx: tx.operation != 'refund'
            and (tx.state == 'done' or tx._klarna_operation_id() is not None)
        )
        action = 'release' if captured else 'cancel'
        answer = self._klarna_operation(action, child_void_tx)
        _logger.info("void request response:\n%s", pprint.pformat(answer))
        self.klarna_void_requested = True
        if action == 'release':
            message = _(
                "The release of the rest of the authorization of the transaction %(reference)s "
                "was sent to Klarna (%(provider)s): the shopper will not be charged for it.",
                reference=self.reference, provider=self.provider_id.name,
            )
        else:
            message = _(
                "The cancellation of the authorization of the transaction %(reference)s was "
                "sent to Klarna (%(provider)s): the shopper will not be charged.",
                reference=self.reference, provider=self.provider_id.name,
            )
        self._log_message_on_linked_documents(message)
        return child_void_tx

    def _send_refund_request(self, amount_to_refund=None):
        """ Override of `payment` to refund through the gateway (never more than captured).

        Odoo 18 refunds a partial capture from its child transaction (the refund wizard of the
        capture's payment): the refund is then of that capture, and the gateway is told which
        one by its operation id (`capture_operation_id`, from the child's `klarna-op-<id>`). It
        refuses (422) an id that is not a capture of this payment.
        """
        if self.provider_code == 'klarna':
            self._klarna_lock()
        refund_tx = super()._send_refund_request(amount_to_refund=amount_to_refund)
        if self.provider_code != 'klarna':
            return refund_tx

        extra = {}
        capture_operation_id = self.source_transaction_id and self._klarna_operation_id()
        if capture_operation_id and self.operation != 'refund':
            extra['capture_operation_id'] = capture_operation_id
        answer = self._klarna_operation(
            'refund', refund_tx, self._klarna_minor(-refund_tx.amount), **extra
        )
        _logger.info("refund request response:\n%s", pprint.pformat(answer))
        operation = answer.get('operation') or {}
        if operation.get('id'):
            refund_tx.provider_reference = OPERATION_REFERENCE % operation['id']
        return refund_tx

    #=== BUSINESS METHODS - NOTIFICATIONS ===#

    def _get_tx_from_notification_data(self, provider_code, notification_data):
        """ Override of `payment` to find the transaction a gateway update is about.

        The payment is found by Klarna's order id, or — for its first update — as the latest
        Klarna transaction of the sale order; with `klarna_provider_ids` in the context (the
        providers whose secret signed the update), among their transactions only. A capture or
        refund is the child transaction Odoo created when it asked for it (by the gateway's
        operation id), or a new one when it was made elsewhere (Klarna's portal, the gateway's
        CLI, reconcile).

        The messages name no value of the update (the route answers them to its sender).

        :raise ValidationError: When the data name no transaction we know.
        :raise WrongProvider: When they name a payment of another provider.
        """
        tx = super()._get_tx_from_notification_data(provider_code, notification_data)
        if provider_code != 'klarna':
            return tx

        event = notification_data.get('event')
        if event not in const.EVENTS:
            raise ValidationError("Klarna: " + _(
                "Unknown update: the event is none of %(events)s.",
                events=', '.join(sorted(const.EVENTS)),
            ))
        provider_ids = self.env.context.get('klarna_provider_ids')
        source = self._klarna_find_payment(notification_data, provider_ids)
        if not source and provider_ids is not None and self._klarna_find_payment(notification_data):
            raise WrongProvider("Klarna: " + _(
                "The update's payment belongs to another payment provider."
            ))
        if not source:
            raise ValidationError("Klarna: " + _("No transaction found for the update's order."))

        source._klarna_lock()  # A request from Odoo about the same payment finishes first.
        amount = self._klarna_amount(notification_data, source)
        if event in ('captured', 'refunded'):
            return source._klarna_operation_tx(notification_data, amount)
        if event == 'released':
            # The void Odoo asked for: a draft that is not a capture the gateway accepted.
            child = source.child_transaction_ids.filtered(
                lambda t: t.state == 'draft' and t.operation != 'refund'
                and t._klarna_operation_id() is None
            )[:1]
            if child:
                return child
            remaining = source.amount - sum(source.child_transaction_ids.filtered(
                lambda t: t.operation != 'refund' and t.state in ('done', 'cancel')
            ).mapped('amount'))
            if source.currency_id.compare_amounts(remaining, 0) > 0:
                return source._create_child_transaction(remaining)
        return source

    def _klarna_find_payment(self, notification_data, provider_ids=None):
        """ The payment (source transaction) an update names: by Klarna's order id, else — for
        its first update — the latest Klarna transaction of the sale order (`reference`).

        :param dict notification_data: The update.
        :param list provider_ids: The providers to look in; all Klarna providers when None.
        :return: The transaction, if found.
        :rtype: recordset of `payment.transaction`
        """
        domain = [('provider_code', '=', 'klarna'), ('source_transaction_id', '=', False)]
        if provider_ids is not None:
            domain.append(('provider_id', 'in', provider_ids))
        source = self.browse()
        if transaction_reference := notification_data.get('transaction_reference'):
            # A charge of a saved Klarna: the transaction Odoo made for it.
            source = self.search(domain + [('reference', '=', transaction_reference)], limit=1)
        if not source and (klarna_order_id := notification_data.get('klarna_order_id')):
            source = self.search(domain + [('provider_reference', '=', klarna_order_id)], limit=1)
        if not source and (reference := notification_data.get('reference')):
            source = self.search(domain + [
                ('sale_order_ids.name', '=', reference),
                ('operation', 'in', ('online_direct', 'online_redirect', 'online_token', 'offline')),
            ], order='id desc', limit=1)
        return source

    def _klarna_operation_tx(self, notification_data, amount):
        """ The transaction of a `captured` or `refunded` update, on the payment `self`.

        In this order: the transaction that carries the update's operation (`klarna-op-<id>`,
        set when Odoo asked for it), anywhere in the family — a refund of a capture is a
        grandchild; a draft of the same kind and amount that Odoo asked for and holds no
        operation yet, preferably under the capture the refund names; else a new one, made
        elsewhere (Klarna's portal, the gateway's CLI, reconcile): a refund under the capture
        child named by `capture_operation_id` — as Odoo would have made it from that capture's
        refund wizard — else under the payment itself.

        Note: self.ensure_one() (the payment's source transaction)
        """
        self.ensure_one()
        is_refund = notification_data['event'] == 'refunded'
        operation_id = notification_data.get('operation_id')
        capture_operation_id = notification_data.get('capture_operation_id') if is_refund else None
        family = self._klarna_family()
        if operation_id:
            tx = family.filtered(lambda t: t._klarna_operation_id() == operation_id)[:1]
            if tx:
                return tx

        parent = self
        if capture_operation_id:
            parent = self.child_transaction_ids.filtered(
                lambda t: t.operation != 'refund'
                and t._klarna_operation_id() == capture_operation_id
            )[:1] or self
        signed = -amount if is_refund else amount
        drafts = family.filtered(
            lambda t: t.state == 'draft' and (t.operation == 'refund') == is_refund
            and t._klarna_operation_id() is None
            and t.currency_id.compare_amounts(t.amount, signed) == 0
        )
        if drafts:
            return drafts.sorted(lambda t: (t.source_transaction_id != parent, t.id))[:1]

        if not is_refund and not self.child_transaction_ids and notification_data.get(
            'amount_minor'
        ) == notification_data.get('authorized_minor'):
            return self  # One capture of everything: the payment itself is done.
        return parent._create_child_transaction(
            amount, is_refund=is_refund,
            provider_reference=OPERATION_REFERENCE % operation_id if operation_id else None,
        )

    def _klarna_amount(self, notification_data, source):
        """ The update's amount, from its minor units (never the float of a JSON number). """
        minor = notification_data.get('amount_minor')
        if not isinstance(minor, int):
            raise ValidationError("Klarna: " + _("The update has no amount in minor units."))
        if notification_data.get('currency') != source.currency_id.name:
            raise ValidationError("Klarna: " + _(
                "The update is not in the transaction's currency, %(tx_currency)s.",
                tx_currency=source.currency_id.name,
            ))
        return klarna_utils.from_minor(minor, source.currency_id)

    def _process_notification_data(self, notification_data):
        """ Override of `payment` to apply a gateway update through Odoo's own state methods,
        then post-process what it changed at once (the order confirmation, the payment in
        Accounting) instead of leaving it to the cron: the update is the only signal Odoo gets
        for a capture, refund or release. """
        super()._process_notification_data(notification_data)
        if self.provider_code != 'klarna':
            return

        event = notification_data['event']
        message = notification_data.get('message')
        source = self._klarna_source()
        if event in ('authorized', 'pending') and notification_data.get('klarna_order_id'):
            self.provider_reference = notification_data['klarna_order_id']
        if event in ('authorized', 'pending') and notification_data.get('token'):
            self._klarna_tokenize_from_notification_data(notification_data['token'])

        if event == 'pending':
            self._set_pending(_(
                "Klarna is reviewing this purchase. There is nothing more to do now: you will "
                "hear from us by e-mail as soon as Klarna approves it."
            ))
        elif event == 'authorized':
            if not self.klarna_confirmation_mail:
                # The moment of the order confirmation is chosen now, for this order.
                self.klarna_confirmation_mail = self.provider_id.klarna_confirmation_mail
            self._set_authorized()
            if not self.provider_id.capture_manually:
                # Immediate capture was configured: Klarna captures now; its update makes the
                # transaction done.
                self._send_capture_request()
        elif event == 'captured':
            self._set_done(extra_allowed_states=('done',))
        elif event == 'refunded':
            self._set_done()
        elif event == 'released':
            if self.source_transaction_id:
                self._set_canceled(
                    _("The rest of the authorization was released, as voided from Odoo: the "
                      "shopper will not be charged for it.") if source.klarna_void_requested
                    else _("Klarna released the rest of the authorization: the shopper will not "
                           "be charged for it.")
                )
            else:
                self._set_done()
        elif event == 'expired':
            self._set_canceled(_(
                "The authorization expired before it was captured: the shopper was not "
                "charged. Ask the shopper to pay again if the order still stands."
            ))
        elif event == 'cancelled':
            self._set_canceled(
                _("The authorization was cancelled, as voided from Odoo: the shopper will not "
                  "be charged.") if self.klarna_void_requested
                else _("The authorization was cancelled in Klarna (not from Odoo): the shopper "
                       "will not be charged.")
            )
        elif event == 'authorization_updated':
            # The order was edited and Klarna took the new amount (an edit from Odoo already set
            # it; one from Klarna's portal or the gateway's CLI sets it now).
            amount = self._klarna_amount(notification_data, source)
            if source.currency_id.compare_amounts(source.amount, amount) != 0:
                was = source.amount
                source.amount = amount
                source._log_message_on_linked_documents(_(
                    "Klarna's authorization of the transaction with reference %(ref)s changed "
                    "from %(was)s to %(amount)s: the order was edited.",
                    ref=source.reference,
                    was=format_amount(self.env, was, source.currency_id),
                    amount=format_amount(self.env, amount, source.currency_id),
                ))
        elif event == 'error':
            if self.state in ('draft', 'pending'):
                # The shopper sees this on the payment status page.
                self._set_error(_(
                    "%(reason)s Nothing was charged: you can try again, or choose another "
                    "payment method.",
                    reason=message or _("Klarna could not complete this payment."),
                ))
            else:
                self._log_message_on_linked_documents(_(
                    "Klarna: %(message)s (transaction %(ref)s)",
                    message=message or _("Klarna could not process this operation."),
                    ref=self.reference,
                ))
        self._klarna_post_process()

    def _klarna_post_process(self):
        """ Post-process this transaction and its payment's source now, as Odoo's cron would.

        A failure here (a mail server down, an invoice that cannot be posted) does not undo the
        update: it is logged and left to the cron, which retries. A concurrency error is raised,
        so that the whole update is retried with a fresh view.
        """
        txs = (self | self._klarna_source()).filtered(lambda t: not t.is_post_processed and t.state in (
            'pending', 'authorized', 'done', 'cancel', 'error'
        ))
        for tx in txs:
            try:
                with self.env.cr.savepoint():
                    tx._post_process()
            except psycopg2.OperationalError:
                raise
            except Exception:
                _logger.exception(
                    "Klarna: post-processing transaction %s failed; the cron retries", tx.reference
                )
                self.env.ref('payment.cron_post_process_payment_tx')._trigger()

    #=== BUSINESS METHODS - ORDER CONFIRMATION ===#

    def _klarna_confirmation_moment(self):
        """ When this payment's order confirmation goes out: `authorization` or `capture`, as
        the provider said when Klarna authorized it (its setting now for an older payment). """
        source = self._klarna_source()
        return source.klarna_confirmation_mail or source.provider_id.klarna_confirmation_mail

    def _check_amount_and_confirm_order(self):
        """ Override of `sale` to confirm the order without its e-mail when the confirmation
        follows the capture; the e-mail is then sent once, at the first capture. """
        klarna = self.filtered(lambda tx: tx.provider_code == 'klarna')
        deferred = klarna.filtered(lambda tx: tx._klarna_confirmation_moment() == 'capture')
        confirmed = super(PaymentTransaction, self - deferred)._check_amount_and_confirm_order()
        (klarna - deferred).filtered(
            lambda tx: tx.sale_order_ids & confirmed
        ).klarna_confirmation_sent = True
        for tx in deferred:
            if len(tx.sale_order_ids) == 1:
                quotation = tx.sale_order_ids.filtered(lambda so: so.state in ('draft', 'sent'))
                if quotation and quotation._is_confirmation_amount_reached():
                    quotation.with_context(send_email=False).action_confirm()
                    confirmed |= quotation
        return confirmed

    def _post_process(self):
        """ Override of `payment` (and `sale`) for one order confirmation per order.

        Odoo follows a done transaction of an order confirmed earlier with its "payment
        executed" e-mail, stating the transaction's amount as paid. For Klarna that is a
        capture, or the payment once its rest is released — the order confirmation already
        went out, or goes out now (below), and a release would announce the authorized amount
        as paid. So that e-mail is not sent for confirmed orders; the deferred confirmation
        goes out with the first capture that is done.
        """
        klarna = self.filtered(lambda tx: tx.provider_code == 'klarna')
        super(PaymentTransaction, self - klarna)._post_process()
        super(PaymentTransaction, klarna.with_context(klarna_no_payment_mail=True))._post_process()
        for tx in klarna.filtered(lambda t: t.state == 'done' and t.operation != 'refund'):
            source = tx._klarna_source()
            if source.klarna_confirmation_sent or tx._klarna_confirmation_moment() != 'capture':
                continue
            orders = source.sale_order_ids.filtered(lambda so: so.state == 'sale')
            if orders:
                orders._send_order_confirmation_mail()
                source.klarna_confirmation_sent = True
