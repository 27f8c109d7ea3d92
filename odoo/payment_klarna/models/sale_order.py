# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import hashlib
import json
import logging

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import format_amount

from odoo.addons.payment_klarna import const
from odoo.addons.payment_klarna import utils as klarna_utils

_logger = logging.getLogger(__name__)

# The precommit data key: the orders edited in this transaction whose Klarna authorization
# must follow.
EDITED_ORDERS = 'payment_klarna.edited_orders'

# What a line write must touch to change what Klarna holds.
LINE_FIELDS_KLARNA_HOLDS = {
    'product_id', 'product_uom_qty', 'product_uom', 'price_unit', 'discount', 'tax_id', 'name',
    'display_type',
}


class SaleOrder(models.Model):
    _inherit = 'sale.order'

    klarna_authorization_differs = fields.Boolean(
        string="Klarna Authorization Differs", compute='_compute_klarna_authorization_differs',
        help="The order's total is not what Klarna authorized: the order was edited in a way "
             "Klarna was not told of (while Klarna was still reviewing the payment, say).",
    )

    @api.depends('amount_total', 'transaction_ids.amount', 'transaction_ids.state')
    def _compute_klarna_authorization_differs(self):
        for order in self:
            tx = order._klarna_open_payment()
            order.klarna_authorization_differs = bool(tx) and order.currency_id.compare_amounts(
                order.amount_total, tx.amount
            ) != 0

    def _klarna_open_payment(self):
        """ The Klarna payment of this order whose authorization an edit can still change: placed
        at Klarna (it has Klarna's order id), authorized or in Klarna's review.

        :return: The source transaction, or an empty recordset.
        :rtype: recordset of `payment.transaction`
        """
        self.ensure_one()
        return self.sudo().transaction_ids.filtered(
            lambda t: t.provider_code == 'klarna' and not t.source_transaction_id
            and t.state in ('authorized', 'pending') and t.provider_reference
        )[:1]

    def _send_payment_succeeded_for_order_mail(self):
        """ Override of `sale` to send no "payment executed" e-mail for a Klarna capture or
        release of an order that is already confirmed: its order confirmation is the one
        e-mail (see `payment.transaction._post_process`). Quotations still get it (a payment
        that Klarna is reviewing, one that does not reach the amount to confirm). """
        orders = self
        if self.env.context.get('klarna_no_payment_mail'):
            orders = self.filtered(lambda so: so.state != 'sale')
        return super(SaleOrder, orders)._send_payment_succeeded_for_order_mail()

    # === ORDER EDITS AFTER AUTHORIZATION === #

    def _klarna_watch_edit(self):
        """ Note that these orders' lines changed: when the transaction ends (a precommit hook,
        after every write of the request), each order whose total is no longer what Klarna
        authorized asks Klarna to follow — and if Klarna refuses, the error undoes the whole
        edit, so the order stays as Klarna has it. """
        if self.env.context.get('klarna_no_edit_sync'):
            return
        orders = self.filtered(lambda o: o.state == 'sale' and o._klarna_open_payment())
        if not orders:
            return
        data = self.env.cr.precommit.data
        if EDITED_ORDERS not in data:
            data[EDITED_ORDERS] = set()
            self.env.cr.precommit.add(self._klarna_follow_edits)
        data[EDITED_ORDERS].update(orders.ids)

    def _klarna_forget_edit(self):
        """ These orders' edits are settled otherwise (Klarna declined a delivery's real cost,
        and the delivery stands): the end of the transaction does not send them again. """
        self.env.cr.precommit.data.get(EDITED_ORDERS, set()).difference_update(self.ids)

    def _klarna_follow_edits(self):
        """ The precommit hook of `_klarna_watch_edit`. """
        ids = self.env.cr.precommit.data.pop(EDITED_ORDERS, set())
        for order in self.env['sale.order'].browse(sorted(ids)).exists():
            if order.klarna_authorization_differs:
                order._klarna_update_authorization()
        # Writes made in a precommit hook are not flushed by the commit that runs it.
        self.env.flush_all()

    def action_klarna_update_authorization(self):
        """ The "Update Klarna" button: send the order as it is now to Klarna. """
        self.ensure_one()
        if not self._klarna_open_payment():
            raise UserError(_("This order has no Klarna authorization that can still change."))
        self._klarna_update_authorization()

    def _klarna_order_records(self):
        """ The order's records as the gateway reads them (`const.KLARNA_ORDER_FIELDS`), read in
        this transaction: the gateway cannot see an edit Odoo has not committed.

        :return: `read()` rows by model.
        :rtype: dict
        """
        self.ensure_one()
        order = self.sudo()
        lines = order.order_line
        products = lines.product_id
        taxes = lines.tax_id
        partners = order.partner_id | order.partner_invoice_id | order.partner_shipping_id
        records = {
            'sale.order': order,
            'sale.order.line': lines,
            'product.product': products,
            'product.template.attribute.value': (
                products.product_template_attribute_value_ids
                | lines.product_no_variant_attribute_value_ids
            ),
            'account.tax': taxes | taxes.children_tax_ids,
            'res.currency': order.currency_id,
            'res.partner': partners,
            'res.country.state': partners.state_id,
        }
        if 'reward_id' in lines._fields:  # sale_loyalty
            records['loyalty.reward'] = lines.reward_id
            records['loyalty.program'] = lines.reward_id.program_id
        return {
            model: recs.read([f for f in const.KLARNA_ORDER_FIELDS[model] if f in recs._fields])
            for model, recs in records.items()
        }

    def _klarna_update_authorization(self):
        """ Ask the gateway to make Klarna's authorization this order as it is now (its amount
        and lines, mapped as at checkout), from what Odoo believes Klarna holds.

        :raise UserError: When the gateway or Klarna refuses, with the reason: nothing changed
            at Klarna, and the error undoes the edit in Odoo.
        """
        self.ensure_one()
        tx = self._klarna_open_payment()
        payload = {
            'odoo_records': self._klarna_order_records(),
            'expected_authorized': tx._klarna_minor(tx.amount),
            **tx._klarna_expected(None),
        }
        # The same edit asked again (Odoo retried the request) is done once.
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode())
        key = f'odoo-edit-{tx._klarna_payment_key()}-{digest.hexdigest()[:40]}'
        was = tx.amount
        try:
            answer = tx.provider_id._klarna_request(
                'POST', f'/admin/payments/{tx._klarna_payment_key()}/authorization',
                payload=payload, idempotency_key=key,
            )
        except ValidationError as e:
            raise UserError(_(
                "Klarna did not take the change, so the order was not changed.\n%(reason)s",
                reason=e.args[0] if e.args else '',
            )) from e
        _logger.info("order %s: authorization update answered %s", self.name,
                     (answer.get('operation') or {}).get('state'))
        if (answer.get('operation') or {}).get('state') == 'succeeded':
            minor = (answer.get('payment') or {}).get('authorized_amount')
            if isinstance(minor, int):
                tx.sudo().amount = klarna_utils.from_minor(minor, self.currency_id)
            self.message_post(body=_(
                "Klarna's authorization follows the edited order: %(amount)s (was %(was)s).",
                amount=format_amount(self.env, tx.amount, self.currency_id),
                was=format_amount(self.env, was, self.currency_id),
            ))
        else:
            self.message_post(body=_(
                "The edited order was sent to Klarna (%(amount)s); Klarna has not confirmed it "
                "yet. The payment follows once it does.",
                amount=format_amount(self.env, self.amount_total, self.currency_id),
            ))


class SaleOrderLine(models.Model):
    _inherit = 'sale.order.line'

    @api.model_create_multi
    def create(self, vals_list):
        lines = super().create(vals_list)
        lines.order_id._klarna_watch_edit()
        return lines

    def write(self, vals):
        res = super().write(vals)
        if LINE_FIELDS_KLARNA_HOLDS & set(vals):
            self.order_id._klarna_watch_edit()
        return res

    def unlink(self):
        orders = self.order_id
        res = super().unlink()
        orders.exists()._klarna_watch_edit()
        return res
