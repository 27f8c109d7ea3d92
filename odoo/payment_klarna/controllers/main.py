# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import hmac
import json
import logging
import time

from psycopg2 import IntegrityError

from odoo import http
from odoo.exceptions import ValidationError
from odoo.http import request

from odoo.addons.payment_klarna import const
from odoo.addons.payment_klarna import utils as klarna_utils

_logger = logging.getLogger(__name__)


class KlarnaController(http.Controller):
    _gateway_url = '/payment/klarna/gateway'

    @http.route(_gateway_url, type='http', auth='public', methods=['POST'], csrf=False)
    def klarna_gateway_update(self):
        """ Apply a payment update from klarna-gateway (docs/odoo-contract.md).

        The update is signed with the shared secret over "<timestamp>.<raw body>"; a missing or
        wrong signature, or a timestamp more than five minutes away, is refused with 401 and
        changes nothing. Each `event_id` is applied once: a repeat answers 200 again. Anything
        else than 200 makes the gateway retry later, so nothing is lost while Odoo is busy.

        :return: A JSON answer: `{"status": "ok"}`, `{"status": "duplicate"}`, or an error.
        """
        raw = request.httprequest.get_data()
        try:
            data = json.loads(raw)
        except ValueError:
            return self._answer(400, 'malformed_json', "the body is not JSON")
        if not isinstance(data, dict) or not data.get('event_id') or not data.get('event'):
            return self._answer(400, 'wrong_shape', "event_id and event are required")

        provider_sudo = self._verified_provider(raw)
        if provider_sudo is None:
            _logger.warning("Klarna: refused an update with a bad or stale signature")
            return self._answer(401, 'unauthorized', "the signature does not match")

        events_sudo = request.env['payment.klarna.event'].sudo()
        if events_sudo.search_count([('event_id', '=', data['event_id'])]):
            return self._answer(200, 'duplicate')
        _logger.info("Klarna gateway update:\n%s", {k: data.get(k) for k in (
            'event_id', 'event', 'reference', 'klarna_order_id', 'amount', 'currency'
        )})
        try:
            with request.env.cr.savepoint():
                tx_sudo = request.env['payment.transaction'].sudo()._handle_notification_data(
                    'klarna', data
                )
                events_sudo.create({
                    'event_id': data['event_id'],
                    'event': data['event'],
                    'transaction_id': tx_sudo.id,
                })
        except IntegrityError:
            if events_sudo.search_count([('event_id', '=', data['event_id'])]):
                # The same event, applied by a concurrent request.
                return self._answer(200, 'duplicate')
            # Something else collided: not applied, so the gateway sends it again later.
            _logger.warning("Klarna: update %s not applied (conflict); the gateway retries", data['event_id'])
            return self._answer(409, 'conflict', "the update conflicted with a concurrent change")
        except ValidationError as e:
            _logger.warning("Klarna: update %s not applied: %s", data['event_id'], e)
            return self._answer(422, 'not_applied', str(e))
        return self._answer(200, 'ok')

    @staticmethod
    def _verified_provider(raw):
        """ The Klarna provider whose shared secret signed this request, if any. """
        headers = request.httprequest.headers
        signature = headers.get(const.HEADER_SIGNATURE, '')
        try:
            timestamp = int(headers.get(const.HEADER_TIMESTAMP, ''))
        except ValueError:
            return None
        if abs(time.time() - timestamp) > const.SIGNATURE_WINDOW or not signature:
            return None
        providers_sudo = request.env['payment.provider'].sudo().search([('code', '=', 'klarna')])
        for provider_sudo in providers_sudo:
            secret = provider_sudo.klarna_shared_secret
            if not secret:
                continue
            expected = klarna_utils.gateway_signature(secret, timestamp, raw)
            if hmac.compare_digest(expected, signature):
                return provider_sudo
        return None

    @staticmethod
    def _answer(status, code, message=None):
        body = {'status': code} if status == 200 else {'code': code, 'message': message}
        return request.make_json_response(body, status=status)
