# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import json
import logging
import time
import uuid

import requests

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

from odoo.addons.payment import utils as payment_utils
from odoo.addons.payment_klarna import const
from odoo.addons.payment_klarna import utils as klarna_utils

_logger = logging.getLogger(__name__)


class PaymentProvider(models.Model):
    _inherit = 'payment.provider'

    code = fields.Selection(
        selection_add=[('klarna', "Klarna")], ondelete={'klarna': 'set default'}
    )
    klarna_gateway_url = fields.Char(
        string="Gateway URL",
        help="Where klarna-gateway answers, ideally on this shop's own domain (its routes start "
             "with /klarna/ and /admin/).",
        required_if_provider='klarna',
    )
    klarna_shared_secret = fields.Char(
        string="Shared Secret",
        help="The secret the gateway and Odoo sign their calls to each other with "
             "(the gateway's ODOO_SHARED_SECRET).",
        required_if_provider='klarna',
        groups='base.group_system',
    )
    klarna_sdk_url = fields.Char(
        string="Klarna SDK URL", default=const.SDK_URL,
        help="Klarna's JavaScript SDK. Change it only to use the klarna-sandbox stand-in.",
    )
    klarna_region = fields.Selection(
        string="Klarna Region", selection=const.REGIONS, default='eu',
        help="The region of the Klarna merchant account the gateway uses.",
    )
    klarna_widget_mode = fields.Selection(
        string="Checkout Display",
        selection=[('inline', "In the page"), ('modal', "In a dialog")],
        default='inline',
    )
    klarna_confirmation_mail = fields.Selection(
        string="Send Order Confirmation",
        selection=[
            ('authorization', "When Klarna authorizes the payment"),
            ('capture', "When the payment is captured"),
        ],
        default='authorization',
        help="On authorization the shopper hears at once that the order is placed; on capture "
             "the confirmation follows the shipment, so an order that is never shipped (and whose "
             "authorization is released) never announced a purchase.",
    )
    klarna_capture_on_delivery = fields.Boolean(
        string="Capture When Delivered",
        help="Capture what each validated delivery ships (needs Inventory: the "
             "payment_klarna_stock module).",
    )
    klarna_gateway_reachable = fields.Boolean(
        string="Gateway Reachable", compute='_compute_klarna_gateway_status',
    )
    klarna_review_queue = fields.Integer(
        string="Review Queue", compute='_compute_klarna_gateway_status',
    )
    klarna_last_reconcile = fields.Char(
        string="Last Reconcile", compute='_compute_klarna_gateway_status',
    )
    klarna_transaction_count = fields.Integer(
        string="Klarna Transactions", compute='_compute_klarna_transaction_count',
    )

    #=== COMPUTE METHODS ===#

    def _compute_feature_support_fields(self):
        """ Override of `payment` to enable additional features. """
        super()._compute_feature_support_fields()
        self.filtered(lambda p: p.code == 'klarna').update({
            'support_manual_capture': 'partial',
            'support_refund': 'partial',
            # A returning shopper's saved Klarna (Klarna's customer token, kept sealed by the
            # gateway; Odoo's token holds only the gateway's reference).
            'support_tokenization': True,
        })

    def _compute_klarna_transaction_count(self):
        counts = dict(self.env['payment.transaction']._read_group(
            [('provider_id', 'in', self.ids)], ['provider_id'], ['__count'],
        ))
        for provider in self:
            provider.klarna_transaction_count = counts.get(provider, 0)

    def _compute_klarna_gateway_status(self):
        for provider in self:
            status = {}
            if provider.code == 'klarna' and provider.klarna_gateway_url:
                try:
                    status = provider.sudo()._klarna_request('GET', '/admin/status', timeout=3)
                except ValidationError as e:
                    _logger.info("Klarna gateway status unavailable: %s", e)
            provider.klarna_gateway_reachable = bool(status.get('reachable'))
            provider.klarna_review_queue = status.get('review_queue') or 0
            last = status.get('last_reconcile')
            provider.klarna_last_reconcile = (
                fields.Datetime.to_string(fields.Datetime.from_string(
                    time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(last / 1000))
                )) if last else _("never")
            )

    #=== BUSINESS METHODS ===#

    @api.model
    def _get_compatible_providers(self, *args, sale_order_id=None, report=None, **kwargs):
        """ Override of `payment` to offer Klarna only where it can be paid.

        Klarna pays sale orders only: the gateway reads the order, its lines and addresses from
        Odoo, and a payment link without an order has none. And Klarna sells in its markets
        only: the purchase country is the billing address's (`partner_invoice_id`), and the
        order must be in that country's currency (`const.MARKETS`, the gateway's own table). A
        Klarna the shopper cannot pay with is not shown at all.
        """
        providers = super()._get_compatible_providers(
            *args, sale_order_id=sale_order_id, report=report, **kwargs
        )
        klarna = providers.filtered(lambda p: p.code == 'klarna')
        if not klarna:
            return providers
        if not sale_order_id:
            providers -= klarna
            payment_utils.add_to_report(
                report, klarna, available=False, reason=_("Klarna pays sale orders only")
            )
            return providers
        order = self.env['sale.order'].sudo().browse(sale_order_id).exists()
        country = order.partner_invoice_id.country_id.code
        currency = order.currency_id.name
        if not self._klarna_is_market(country, currency):
            providers -= klarna
            payment_utils.add_to_report(report, klarna, available=False, reason=_(
                "Klarna does not sell in %(currency)s to a billing address in %(country)s",
                currency=currency or '-', country=country or '-',
            ))
        return providers

    @api.model
    def _klarna_is_market(self, country_code, currency_name):
        """ Whether Klarna sells to a purchase country in a currency (its markets). """
        return bool(country_code) and const.MARKET_CURRENCY.get(country_code.upper()) == currency_name

    def _get_supported_currencies(self):
        """ Override of `payment` to return the currencies of Klarna's markets. """
        supported_currencies = super()._get_supported_currencies()
        if self.code == 'klarna':
            supported_currencies = supported_currencies.filtered(
                lambda c: c.name in const.SUPPORTED_CURRENCIES
            )
        return supported_currencies

    def _get_default_payment_method_codes(self):
        """ Override of `payment` to return Klarna's payment methods. """
        default_codes = super()._get_default_payment_method_codes()
        if self.code != 'klarna':
            return default_codes
        return const.DEFAULT_PAYMENT_METHOD_CODES

    def _klarna_request(self, method, path, payload=None, idempotency_key=None, timeout=30):
        """ Call the gateway's admin API, signed with the shared secret.

        Note: self.ensure_one()

        :param str method: `GET` or `POST`.
        :param str path: The path, e.g. `/admin/payments/<ref>/captures`.
        :param dict payload: The JSON body of a POST.
        :param str idempotency_key: The same key for a retried button press: done once.
        :param int timeout: Seconds.
        :return: The JSON answer.
        :rtype: dict
        :raise ValidationError: When the gateway cannot be reached or refuses, with its reason.
        """
        self.ensure_one()
        body = json.dumps(payload).encode() if payload is not None else b''
        timestamp = int(time.time())
        nonce = str(uuid.uuid4())
        if method == 'POST':
            idempotency_key = idempotency_key or str(uuid.uuid4())
        else:
            idempotency_key = ''
        headers = {
            const.HEADER_TIMESTAMP: str(timestamp),
            const.HEADER_NONCE: nonce,
            const.HEADER_SIGNATURE: klarna_utils.admin_signature(
                self.klarna_shared_secret or '', timestamp, nonce, method, path,
                idempotency_key, body,
            ),
        }
        if payload is not None:
            headers['Content-Type'] = 'application/json'
        if idempotency_key:
            headers['Idempotency-Key'] = idempotency_key
        url = self.klarna_gateway_url.rstrip('/') + path
        try:
            response = requests.request(method, url, data=body or None, headers=headers, timeout=timeout)
        except requests.exceptions.RequestException as e:
            _logger.warning("unable to reach the Klarna gateway at %s: %s", url, e)
            raise ValidationError("Klarna: " + _("Could not reach the Klarna gateway."))
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if not response.ok:
            _logger.warning("Klarna gateway refused %s %s: %s", method, path, response.status_code)
            if answer.get('code') == 'state_changed':
                # Nothing was done: the payment already holds what this request meant to
                # add (a retry after a failure), or someone else changed it. The gateway's
                # updates bring this transaction in line; the merchant decides again then.
                raise ValidationError("Klarna: " + _(
                    "Nothing was sent: the payment changed since Odoo last saw it (%(reason)s). "
                    "Odoo is being updated with Klarna's figures; check the transaction before "
                    "trying again.",
                    reason=answer.get('message'),
                ))
            raise ValidationError("Klarna: " + _(
                "The Klarna gateway refused the request: %(reason)s",
                reason=answer.get('message') or response.reason,
            ))
        return answer

    def _klarna_sdk_url(self):
        self.ensure_one()
        return self.klarna_sdk_url or const.SDK_URL

    #=== ACTIONS ===#

    def action_klarna_view_transactions(self):
        self.ensure_one()
        return {
            'type': 'ir.actions.act_window',
            'name': _("Klarna Transactions"),
            'res_model': 'payment.transaction',
            'view_mode': 'list,form',
            'domain': [('provider_id', '=', self.id)],
        }

    def action_klarna_check_gateway(self):
        """ The "Check gateway" smart button: the gateway's own doctor report, every check
        with what to do about a failure. """
        self.ensure_one()
        return self.env['payment.klarna.doctor']._open_for(self)

    def action_klarna_review_queue(self):
        """ The "Review queue" button: the gateway's jobs waiting for a person, to replay. """
        self.ensure_one()
        return self.env['payment.klarna.review']._open_for(self)
