# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

from odoo import models

from odoo.addons.payment_klarna import utils as klarna_utils


class Website(models.Model):
    _inherit = 'website'

    def _klarna_messaging(self):
        """ What the shop's pages need for Klarna's price messaging, when it is switched on.

        :return: `provider`, `script_url`, `client_id`, `environment` (`playground` for a
            provider in test mode), `locale` (Klarna's `language-COUNTRY` for the visitor's
            language) and `theme`; None when messaging is off.
        :rtype: dict | None
        """
        self.ensure_one()
        provider = self.env['payment.provider'].sudo().search([
            ('code', '=', 'klarna'),
            ('state', 'in', ('enabled', 'test')),
            ('is_published', '=', True),
            ('klarna_messaging', '=', True),
            ('klarna_messaging_client_id', '!=', False),
            ('company_id', '=', self.company_id.id),
            ('website_id', 'in', (False, self.id)),
        ], limit=1)
        if not provider:
            return None
        return {
            'provider': provider,
            'script_url': provider.klarna_messaging_script_url,
            'client_id': provider.klarna_messaging_client_id,
            'environment': 'playground' if provider.state == 'test' else 'production',
            'locale': self._klarna_locale(),
            'theme': provider.klarna_messaging_theme or 'default',
        }

    def _klarna_locale(self):
        """ Klarna's locale for the visitor's language: `de_DE` → `de-DE`; a language without
        a country (`fr_BE` has one, `es_419` has not) takes the shop company's country. """
        language, _sep, region = (self.env.lang or 'en_US').partition('_')
        if len(region) != 2 or not region.isalpha():
            region = self.company_id.country_id.code or 'US'
        return f'{language}-{region.upper()}'

    def _klarna_minor(self, amount, currency):
        """ An amount as Klarna's `data-purchase-amount`: minor units. """
        return klarna_utils.to_minor(amount, currency)
