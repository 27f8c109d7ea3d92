# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import logging
import os
import re
import tempfile
import unittest

import odoo
from odoo.tests import HttpCase, tagged

# The module, not its test class: a class imported here would run here again.
from odoo.addons.payment_klarna.tests import test_checkout_browser as checkout

_logger = logging.getLogger(__name__)

CLIENT_ID = 'messaging-test-client-id'


class KlarnaMessagingCommon(HttpCase):

    def setUp(self):
        super().setUp()
        self.website = self.env['website'].get_current_website()
        self.provider = self.env.ref('payment_klarna.payment_provider_klarna')
        self.provider.write({
            'state': 'test',
            'is_published': True,
            'company_id': self.website.company_id.id,
            'klarna_gateway_url': 'https://gateway.test',
            'klarna_shared_secret': 'messaging-test-shared-secret-0123',
        })
        self.product = self.env['product.template'].create({
            'name': "Klarna Messaging Lamp",
            'list_price': 120.0,
            'type': 'consu',
            'is_published': True,
            'website_published': True,
            'taxes_id': [(6, 0, [])],
        })
        self.currency = self.website.currency_id
        # Read now: while a browser's requests run, they share this test's cursor.
        self.decimals = self.currency.decimal_places
        self.product_url = f'/shop/{self.env["ir.http"]._slug(self.product)}'

    def _messaging_on(self, **values):
        self.provider.write({
            'klarna_messaging': True,
            'klarna_messaging_client_id': CLIENT_ID,
            **values,
        })
        self.env.flush_all()

    def _minor(self, amount):
        return round(amount * 10 ** self.decimals)

    @staticmethod
    def _placements(html):
        return re.findall(r'<klarna-placement[^>]*>', html)


@tagged('post_install', '-at_install')
class KlarnaMessagingPageTest(KlarnaMessagingCommon):
    """ What the shop's pages carry: nothing of Klarna's when messaging is off; when it is on,
    one placement under the product's price (its amount, the visitor's locale, the theme)
    and under the cart's total, with Klarna's script and the merchant's client id. """

    def _cart_html(self, quantity):
        order = self.env['sale.order'].create({
            'partner_id': self.website.user_id.partner_id.id,
            'website_id': self.website.id,
            'order_line': [(0, 0, {
                'product_id': self.product.product_variant_id.id,
                'product_uom_qty': quantity,
            })],
        })
        self.env.flush_all()
        self.authenticate(None, None)
        self.session['sale_order_id'] = order.id
        odoo.http.root.session_store.save(self.session)
        response = self.url_open('/shop/cart')
        self.assertEqual(response.status_code, 200)
        return order, response.text

    def test_off_the_pages_carry_nothing_of_klarna(self):
        html = self.url_open(self.product_url).text
        self.assertIn("Klarna Messaging Lamp", html)
        self.assertEqual(self._placements(html), [])
        self.assertNotIn('klarna.js', html)
        _order, html = self._cart_html(2)
        self.assertEqual(self._placements(html), [])
        self.assertNotIn('klarna.js', html)

    def test_a_client_id_is_needed(self):
        self.provider.write({'klarna_messaging': True, 'klarna_messaging_client_id': False})
        self.env.flush_all()
        self.assertEqual(self._placements(self.url_open(self.product_url).text), [])

    def test_on_the_product_page_shows_a_third_of_the_price(self):
        self._messaging_on(klarna_messaging_theme='dark')
        html = self.url_open(self.product_url).text
        placements = self._placements(html)
        self.assertEqual(len(placements), 1, placements)
        placement = placements[0]
        self.assertIn(f'data-purchase-amount="{self._minor(120.0)}"', placement)
        self.assertIn('data-locale="en-US"', placement)
        self.assertIn('data-theme="dark"', placement)
        self.assertIn('data-klarna-amount-from=".oe_price"', placement)
        self.assertIn('data-klarna-quantity-from="input[name=add_qty]"', placement)
        script = re.search(r'<script[^>]*klarna\.js[^>]*>', html).group(0)
        self.assertIn('src="https://js.klarna.com/web-sdk/v1/klarna.js"', script)
        self.assertIn(f'data-client-id="{CLIENT_ID}"', script)
        self.assertIn('data-environment="playground"', script)
        self.assertIn('async', script, "never blocks the page")

    def test_on_the_cart_shows_it_under_the_total_and_not_in_later_steps(self):
        self._messaging_on()
        order, html = self._cart_html(3)
        placements = self._placements(html)
        self.assertEqual(len(placements), 1, placements)
        self.assertIn(f'data-purchase-amount="{self._minor(order.amount_total)}"', placements[0])
        self.assertIn('data-klarna-amount-from="#order_total .monetary_field"', placements[0])
        self.assertEqual(self._placements(self.url_open('/shop/checkout').text), [])

    def test_a_disabled_provider_shows_nothing(self):
        self._messaging_on()
        self.provider.state = 'disabled'
        self.env.flush_all()
        self.assertEqual(self._placements(self.url_open(self.product_url).text), [])


@tagged('post_install', '-at_install')
class KlarnaMessagingInBrowser(KlarnaMessagingCommon):
    """ The placement in Chromium, rendered by the sandbox's stand-in for Klarna's script:
    on a product page it follows the quantity (Odoo's + button), in the cart it follows the
    total when a quantity changes — at phone and desktop width. Needs ``KLARNA_SANDBOX_BIN``,
    selenium and Chromium, else it skips. """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not os.environ.get('KLARNA_SANDBOX_BIN'):
            raise unittest.SkipTest("Klarna price messaging in a browser: set KLARNA_SANDBOX_BIN")
        if checkout.webdriver is None:
            raise unittest.SkipTest("Klarna price messaging in a browser: selenium is missing")
        checkout.TestKlarnaCheckoutInBrowser._find_chromium(cls)

    def setUp(self):
        super().setUp()
        self.shots = os.environ.get('KLARNA_SCREENSHOT_DIR')
        self.processes = []
        self.workdir = tempfile.mkdtemp(prefix='klarna-messaging-')
        port = checkout._free_port()
        self.sandbox_url = f'http://127.0.0.1:{port}'
        sandbox = checkout.TestKlarnaCheckoutInBrowser._spawn(
            self, [os.environ['KLARNA_SANDBOX_BIN'], '--listen', f'127.0.0.1:{port}'], 'sandbox.log',
        )
        checkout._wait_healthy(f'{self.sandbox_url}/web-sdk/v1/klarna.js', sandbox, 'klarna-sandbox')
        self._messaging_on(klarna_messaging_script_url=f'{self.sandbox_url}/web-sdk/v1/klarna.js')

    _browser = checkout.TestKlarnaCheckoutInBrowser._browser
    _shot = checkout.TestKlarnaCheckoutInBrowser._shot
    _wait = checkout.TestKlarnaCheckoutInBrowser._wait
    _click = checkout.TestKlarnaCheckoutInBrowser._click

    def _rendered(self, driver, minor, timeout=30):
        css = f'klarna-placement[data-rendered-amount="{minor}"] [role=note]'
        try:
            return checkout.WebDriverWait(driver, timeout).until(
                lambda d: d.find_element(checkout.By.CSS_SELECTOR, css)
            ).text
        except Exception as e:
            amounts = driver.execute_script(
                "return [...document.querySelectorAll('klarna-placement')]"
                ".map((p) => p.getAttribute('data-purchase-amount'))"
            )
            raise AssertionError(f"no placement for {minor} on {driver.current_url}: {amounts}") from e

    def _follows_the_quantity(self, width):
        driver = self._browser(width)
        for attempt in range(3):
            driver.get(f'{self.base_url()}{self.product_url}')
            text = self._rendered(driver, self._minor(120.0))
            self.assertIn("40", text, "a third of 120")
            self._shot(driver, f'messaging-product-{width}')
            self._click(driver, '.js_main_product a.js_add_cart_json[title="Add one"]')
            try:
                self._rendered(driver, self._minor(240.0), timeout=10)
                break
            except AssertionError:
                # The test server shares one cursor between the page's requests, and now and
                # then a script bundle fails to load (a 500 in Odoo's log): the page again.
                if attempt == 2:
                    raise
                _logger.info("the product page's scripts did not load; loading it again")
        self._shot(driver, f'messaging-product-2-{width}')
        self._click(driver, '#add_to_cart')
        checkout.WebDriverWait(driver, 30).until(lambda d: d.execute_script(
            "return [...document.querySelectorAll('.my_cart_quantity')]"
            ".some((e) => Number(e.textContent.trim()) >= 2)"))
        driver.get(f'{self.base_url()}/shop/cart')
        self._rendered(driver, self._minor(240.0))
        self._click(driver, 'div[name="website_sale_cart_line_quantity"] a.js_add_cart_json[title="Add one"]')
        self._rendered(driver, self._minor(360.0))
        self._shot(driver, f'messaging-cart-{width}')
        self.assertTrue(driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"
        ), "no horizontal scrolling")

    def test_tour_the_placement_follows_the_quantity_on_a_product_page(self):
        # Odoo's own tour runner (its Chromium), beside the WebDriver runs below.
        self.assertEqual(self._minor(120.0), 12000, "the tour's amounts are for two decimals")
        self.start_tour(self.product_url, 'payment_klarna_price_messaging')

    def test_the_placement_follows_the_quantity_at_phone_width(self):
        self._follows_the_quantity(375)

    def test_the_placement_follows_the_quantity_at_desktop_width(self):
        self._follows_the_quantity(1280)
