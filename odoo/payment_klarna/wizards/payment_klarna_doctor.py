# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

STATUSES = ('pass', 'warn', 'fail', 'skip')


class PaymentKlarnaDoctor(models.TransientModel):
    """ The "Check gateway" report: `klarna-gateway doctor` run by the gateway itself
    (`GET /admin/doctor`, signed with the shared secret), one line a check, each failure with
    what to do. The same report as the command line's.
    """
    _name = 'payment.klarna.doctor'
    _description = "Klarna gateway check"

    provider_id = fields.Many2one('payment.provider', required=True, readonly=True)
    ready = fields.Boolean(readonly=True)
    line_ids = fields.One2many('payment.klarna.doctor.line', 'doctor_id', readonly=True)

    @api.model
    def _open_for(self, provider):
        """ Ask `provider`'s gateway for its report and return the wizard's action. """
        try:
            # The doctor calls Odoo and Klarna itself: give it their timeouts and more.
            report = provider.sudo()._klarna_request('GET', '/admin/doctor', timeout=60)
        except ValidationError as e:
            raise UserError(str(e)) from e
        checks = report.get('checks') or []
        doctor = self.create({
            'provider_id': provider.id,
            'ready': bool(report.get('ok')) and bool(checks),
            'line_ids': [(0, 0, {
                'sequence': index,
                'name': check.get('name') or '',
                'status': check.get('status') if check.get('status') in STATUSES else 'fail',
                'detail': check.get('detail') or '',
                'fix': check.get('fix') or '',
            }) for index, check in enumerate(checks)],
        })
        return {
            'type': 'ir.actions.act_window',
            'name': _("Klarna Gateway Check"),
            'res_model': self._name,
            'res_id': doctor.id,
            'view_mode': 'form',
            'target': 'new',
        }

    def action_refresh(self):
        self.ensure_one()
        return self._open_for(self.provider_id)


class PaymentKlarnaDoctorLine(models.TransientModel):
    _name = 'payment.klarna.doctor.line'
    _description = "Klarna gateway check line"
    _order = 'sequence'

    doctor_id = fields.Many2one('payment.klarna.doctor', required=True, ondelete='cascade')
    sequence = fields.Integer(readonly=True)
    status = fields.Selection(
        [('pass', "Pass"), ('warn', "Warning"), ('fail', "Fail"), ('skip', "Not tried")],
        readonly=True,
    )
    name = fields.Char(string="Check", readonly=True)
    detail = fields.Char(string="Result", readonly=True)
    fix = fields.Char(string="What to do", readonly=True)
