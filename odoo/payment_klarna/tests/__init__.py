# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

from . import test_klarna
from . import test_klarna_flows
from . import test_klarna_lock
from . import test_checkout_browser
from . import test_saved_klarna
