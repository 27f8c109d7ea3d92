# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

from . import test_price_messaging
