# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

from datetime import datetime, timezone

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError


class PaymentKlarnaReview(models.TransientModel):
    """ The gateway's review queue, as the provider form shows it: the jobs (updates for Odoo,
    resumed operations, Klarna events, reconcile) that failed every attempt — typically while
    Odoo was down — each with a Replay button that puts it back in the gateway's queue.

    Read from the gateway's admin API (`GET /admin/review`, `POST /admin/jobs/{id}/replay`),
    signed with the shared secret, which never leaves the server. A job's payload is summed up
    (what, which order, how much), not shown raw.
    """
    _name = 'payment.klarna.review'
    _description = "Klarna gateway review queue"

    provider_id = fields.Many2one('payment.provider', required=True, readonly=True)
    line_ids = fields.One2many('payment.klarna.review.line', 'review_id', readonly=True)
    job_count = fields.Integer(compute='_compute_job_count')

    @api.depends('line_ids')
    def _compute_job_count(self):
        for review in self:
            review.job_count = len(review.line_ids)

    @api.model
    def _klarna_call(self, provider, method, path):
        """ Call the gateway's admin API for this wizard; its refusals as UserError. """
        try:
            return provider.sudo()._klarna_request(method, path, timeout=10)
        except ValidationError as e:
            raise UserError(str(e)) from e

    @api.model
    def _open_for(self, provider):
        """ Read the review queue of `provider`'s gateway and return the wizard's action. """
        answer = self._klarna_call(provider, 'GET', '/admin/review')
        review = self.create({
            'provider_id': provider.id,
            'line_ids': [(0, 0, self.env['payment.klarna.review.line']._values_from_job(job))
                         for job in answer.get('jobs') or []],
        })
        return review._action()

    def _action(self):
        self.ensure_one()
        return {
            'type': 'ir.actions.act_window',
            'name': _("Klarna Review Queue"),
            'res_model': self._name,
            'res_id': self.id,
            'view_mode': 'form',
            'target': 'new',
        }

    def action_refresh(self):
        self.ensure_one()
        return self._open_for(self.provider_id)


class PaymentKlarnaReviewLine(models.TransientModel):
    _name = 'payment.klarna.review.line'
    _description = "Klarna gateway job waiting for review"
    _order = 'job_id'

    review_id = fields.Many2one('payment.klarna.review', required=True, ondelete='cascade')
    job_id = fields.Integer(string="Job", readonly=True)
    kind = fields.Char(string="Kind", readonly=True)
    summary = fields.Char(string="What", readonly=True)
    attempts = fields.Integer(string="Attempts", readonly=True)
    last_error = fields.Text(string="Last Error", readonly=True)
    created_at = fields.Datetime(string="Queued", readonly=True)
    updated_at = fields.Datetime(string="Last Attempt", readonly=True)

    @api.model
    def _values_from_job(self, job):
        """ A line from one job of `GET /admin/review` (`{id, kind, payload, attempts,
        last_error, created_at, updated_at, …}`, times in unix milliseconds). """
        return {
            'job_id': job.get('id'),
            'kind': job.get('kind'),
            'summary': self._summary(job.get('kind'), job.get('payload') or {}),
            'attempts': job.get('attempts') or 0,
            'last_error': job.get('last_error'),
            'created_at': self._datetime(job.get('created_at')),
            'updated_at': self._datetime(job.get('updated_at')),
        }

    @staticmethod
    def _datetime(millis):
        if not isinstance(millis, int):
            return False
        return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).replace(tzinfo=None)

    @api.model
    def _summary(self, kind, payload):
        """ What a job is about, in words, from the fields of its payload that say it. """
        if not isinstance(payload, dict):
            return kind or ''
        if kind == 'odoo_sync':
            return _(
                "Update '%(event)s' of order %(reference)s: %(amount)s %(currency)s",
                event=payload.get('event') or '?', reference=payload.get('reference') or '?',
                amount=payload.get('amount') or '0', currency=payload.get('currency') or '',
            )
        if kind == 'resume_operation':
            return _("Finish operation %(id)s", id=payload.get('operation_id'))
        if kind == 'webhook_event':
            return _("Apply Klarna event %(id)s", id=payload.get('event_id'))
        if kind == 'reconcile':
            return _("Reconcile Odoo, the gateway and Klarna")
        return kind or ''

    def action_replay(self):
        """ Put the job back in the gateway's queue, with a fresh budget of attempts. """
        self.ensure_one()
        review = self.review_id
        self.env['payment.klarna.review']._klarna_call(
            review.provider_id, 'POST', f'/admin/jobs/{self.job_id}/replay'
        )
        return review.action_refresh()
