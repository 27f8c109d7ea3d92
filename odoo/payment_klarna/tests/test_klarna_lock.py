# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import logging

import psycopg2.errors

from odoo import api, SUPERUSER_ID
from odoo.sql_db import db_connect
from odoo.tests import BaseCase, tagged
from odoo.tests.common import get_db_name


@tagged('post_install', '-at_install')
class KlarnaLockTest(BaseCase):
    """ `_klarna_lock` in two real database transactions (two connections, outside the test's
    own transaction, on a row committed for the test and removed after it). """

    def test_the_lock_race_is_retried_without_an_error_in_the_log(self):
        """ Two real database transactions lock the same payment: the later one fails with a
        serialization error (Odoo retries it) — and Odoo's SQL log says nothing about it. """
        dbname = get_db_name()
        connection = db_connect(dbname)
        setup = connection.cursor()
        tx_id = None
        try:
            env = api.Environment(setup, SUPERUSER_ID, {})
            setup.execute("""
                INSERT INTO payment_transaction (provider_id, payment_method_id, reference, amount,
                    currency_id, partner_id, company_id, state, operation, create_date, write_date)
                VALUES (%s, %s, %s, 1.0, %s, %s, %s, 'authorized', 'online_direct',
                        now() at time zone 'utc', now() at time zone 'utc')
                RETURNING id
            """, [
                env.ref('payment_klarna.payment_provider_klarna').id,
                env.ref('payment.payment_method_klarna').id, 'klarna-lock-race-test',
                env.ref('base.EUR').id, env.ref('base.partner_admin').id,
                env.ref('base.main_company').id,
            ])
            tx_id = setup.fetchone()[0]
            setup.commit()

            first, second = connection.cursor(), connection.cursor()
            try:
                first.execute('SELECT 1')  # Its snapshot is taken now.
                api.Environment(second, SUPERUSER_ID, {})['payment.transaction'].browse(
                    tx_id
                )._klarna_lock()
                second.commit()
                with self.assertNoLogs('odoo.sql_db', level=logging.ERROR), \
                        self.assertRaises(psycopg2.errors.SerializationFailure):
                    api.Environment(first, SUPERUSER_ID, {})['payment.transaction'].browse(
                        tx_id
                    )._klarna_lock()
            finally:
                first.rollback()
                first.close()
                second.close()
        finally:
            if tx_id:
                setup.execute('DELETE FROM payment_transaction WHERE id = %s', [tx_id])
                setup.commit()
            setup.close()
