# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import logging

from odoo import _, models
from odoo.exceptions import UserError, ValidationError

_logger = logging.getLogger(__name__)


class PaymentToken(models.Model):
    _inherit = 'payment.token'

    def _handle_archiving(self):
        """ Override of `payment` to cancel a saved Klarna at Klarna when its token is archived
        (the shopper removed it in the portal, the merchant archived it): it can never be
        charged again. When the gateway cannot cancel it, the archiving fails with the reason,
        so that Odoo never shows as removed a payment method Klarna would still charge. """
        super()._handle_archiving()
        for token in self.filtered(lambda t: t.provider_code == 'klarna' and t.provider_ref):
            token._klarna_cancel()

    def unlink(self):
        """ Override of `base` to cancel a saved Klarna before its token is deleted. """
        for token in self.filtered(
            lambda t: t.active and t.provider_code == 'klarna' and t.provider_ref
        ):
            token._klarna_cancel()
        return super().unlink()

    def _klarna_cancel(self):
        self.ensure_one()
        try:
            self.provider_id._klarna_request(
                'POST', f'/admin/tokens/{self.provider_ref}/cancel', payload={},
            )
        except ValidationError as e:
            raise UserError(_(
                "The saved Klarna %(token)s could not be cancelled at Klarna, so it was kept: "
                "%(reason)s",
                token=self.display_name, reason=e.args[0] if e.args else e,
            )) from e
        _logger.info("saved Klarna %s cancelled at Klarna (token %s)", self.provider_ref, self.id)
