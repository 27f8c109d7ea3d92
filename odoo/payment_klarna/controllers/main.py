# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import hmac
import json
import logging
import re
import time

from psycopg2 import IntegrityError

from odoo import http
from odoo.exceptions import ValidationError
from odoo.http import request

from odoo.addons.payment_klarna import const
from odoo.addons.payment_klarna import utils as klarna_utils
from odoo.addons.payment_klarna.models.payment_transaction import WrongProvider

_logger = logging.getLogger(__name__)


class KlarnaController(http.Controller):
    _gateway_url = '/payment/klarna/gateway'

    @http.route(_gateway_url, type='http', auth='public', methods=['POST'], csrf=False)
    def klarna_gateway_update(self):
        """ Apply a payment update from klarna-gateway (docs/odoo-contract.md).

        The update is signed with the shared secret of an enabled (or test) Klarna provider
        over "<timestamp>.<raw body>", checked before the body is parsed; a missing, malformed
        or wrong signature, or a timestamp more than five minutes away, is refused with 401 and
        changes nothing. The update may only touch the payments of the provider(s) whose secret
        signed it: another provider's payment is refused with 403 `wrong_provider`, nothing
        changed. Each `event_id` is applied once: a repeat answers 200 again. Anything else
        than 200 makes the gateway retry later, so nothing is lost while Odoo is busy. No error
        repeats a value of the request.

        A signed `{"event": "ping"}` (the gateway's `doctor`) changes nothing and answers
        `{"status": "pong", "version": <this addon's installed version>}`.

        :return: A JSON answer: `{"status": "ok"}`, `{"status": "duplicate"}`, the pong, or
                 an error.
        """
        raw = request.httprequest.get_data()
        providers_sudo, refusal = self._verified_providers(raw)
        if refusal:
            _logger.warning("Klarna: refused an update: %s", refusal)
            return self._answer(401, 'unauthorized', refusal)
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            return self._answer(400, 'malformed_json', "the body is not JSON")
        if isinstance(data, dict) and data.get('event') == 'ping':
            # `klarna-gateway doctor`: the shared secret matches; nothing is changed.
            module_sudo = request.env['ir.module.module'].sudo().search(
                [('name', '=', 'payment_klarna')], limit=1
            )
            return request.make_json_response(
                {'status': 'pong', 'version': module_sudo.latest_version or ''}
            )
        if not isinstance(data, dict) or not all(
            isinstance(data.get(key), str) and data[key] for key in ('event_id', 'event')
        ):
            return self._answer(400, 'wrong_shape', "event_id and event are required")

        events_sudo = request.env['payment.klarna.event'].sudo()
        if events_sudo.search_count([('event_id', '=', data['event_id'])]):
            return self._answer(200, 'duplicate')
        _logger.info("Klarna gateway update:\n%s", {k: data.get(k) for k in (
            'event_id', 'event', 'reference', 'klarna_order_id', 'amount', 'currency'
        )})
        # Only the payments of the providers whose secret signed the update are looked at.
        txs_sudo = request.env['payment.transaction'].sudo().with_context(
            klarna_provider_ids=providers_sudo.ids
        )
        try:
            with request.env.cr.savepoint():
                tx_sudo = txs_sudo._handle_notification_data('klarna', data)
                events_sudo.create({
                    'event_id': data['event_id'],
                    'event': data['event'],
                    'transaction_id': tx_sudo.id,
                })
        except WrongProvider:
            _logger.warning(
                "Klarna: update %r refused: its payment belongs to another provider than %s",
                data['event_id'], providers_sudo.mapped('name'),
            )
            return self._answer(
                403, 'wrong_provider', "the payment belongs to another Klarna provider"
            )
        except IntegrityError:
            if events_sudo.search_count([('event_id', '=', data['event_id'])]):
                # The same event, applied by a concurrent request.
                return self._answer(200, 'duplicate')
            # Something else collided: not applied, so the gateway sends it again later.
            _logger.warning("Klarna: update %r not applied (conflict); the gateway retries", data['event_id'])
            return self._answer(409, 'conflict', "the update conflicted with a concurrent change")
        except ValidationError as e:
            # The messages of `_get_tx_from_notification_data` name no value of the update.
            _logger.warning("Klarna: update %r not applied: %s", data['event_id'], e)
            return self._answer(422, 'not_applied', str(e))
        return self._answer(200, 'ok')

    @staticmethod
    def _verified_providers(raw):
        """ The active Klarna providers whose shared secret signed this request.

        The signature is checked over the raw body, before anything reads it; several
        providers may share a secret (one gateway for several companies), so all of them are
        returned.

        :param bytes raw: The request body.
        :return: The providers (sudo), and why the request is refused ('' when it is not).
        :rtype: tuple
        """
        no_provider = request.env['payment.provider'].sudo().browse()
        headers = request.httprequest.headers
        signature = headers.get(const.HEADER_SIGNATURE, '').strip()
        timestamp = headers.get(const.HEADER_TIMESTAMP, '').strip()
        if not signature or not timestamp:
            return no_provider, (
                f"{const.HEADER_TIMESTAMP} and {const.HEADER_SIGNATURE} are required"
            )
        if not re.fullmatch(r'[0-9]{1,12}', timestamp) or abs(
            time.time() - int(timestamp)
        ) > const.SIGNATURE_WINDOW:
            return no_provider, (
                f"{const.HEADER_TIMESTAMP} is not unix seconds within "
                f"{const.SIGNATURE_WINDOW} s of Odoo's clock"
            )
        if not re.fullmatch(r'[0-9a-fA-F]{64}', signature):
            return no_provider, f"{const.HEADER_SIGNATURE} is not 64 hexadecimal digits"
        signature = signature.lower().encode()
        providers_sudo = request.env['payment.provider'].sudo().search([
            ('code', '=', 'klarna'),
            ('state', 'in', ('enabled', 'test')),
            ('klarna_shared_secret', '!=', False),
        ]).filtered(lambda p: hmac.compare_digest(
            klarna_utils.gateway_signature(
                p.klarna_shared_secret, int(timestamp), raw
            ).encode(),
            signature,
        ))
        if not providers_sudo:
            return no_provider, f"{const.HEADER_SIGNATURE} does not match the request"
        return providers_sudo, ''

    @staticmethod
    def _answer(status, code, message=None):
        body = {'status': code} if status == 200 else {'code': code, 'message': message}
        return request.make_json_response(body, status=status)
