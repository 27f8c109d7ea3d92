# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

from . import payment_klarna_event
from . import payment_provider
from . import payment_token
from . import payment_transaction
from . import sale_order
