# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import json
import logging
import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

from odoo.exceptions import UserError
from odoo.tests import Form, HttpCase, tagged

_logger = logging.getLogger(__name__)

WIDGET_DIR = Path(__file__).resolve().parent.parent / 'static' / 'src' / 'widget'
SECRET = 'browser-test-shared-secret-0123456789'
ADMIN_TOKEN = 'browser-test-admin-token-0123456789'
GATEWAY_LOGIN = 'klarna_gateway_browser_test'
GATEWAY_PASSWORD = 'klarna-gateway-browser-test-password'

try:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # The test says so and skips.
    webdriver = None


def _unlimited_memory():
    """ Odoo's server caps its address space (limit_memory_hard) and children inherit it:
    Chromium reserves more than that and dies at start, as Odoo's own browser would (Odoo
    lifts it the same way for its tours). """
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _wait_healthy(url, process, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{what} did not answer {url} within {timeout} s")


@tagged('post_install', '-at_install')
class TestKlarnaCheckoutInBrowser(HttpCase):
    """ A shopper pays through Odoo's own /shop in Chromium, with the real widget bundle,
    against a running klarna-sandbox (Klarna's API and JS SDK) and klarna-gateway.

    Not an Odoo JS tour: Klarna's dialog is an iframe of another origin (the sandbox's, as
    Klarna's own is), which a tour cannot enter; WebDriver can. Needs, else it skips and
    says why:

    - ``KLARNA_SANDBOX_BIN`` and ``KLARNA_GATEWAY_BIN``: the two binaries
      (``cargo build -p klarna-sandbox -p klarna-gateway``);
    - the widget bundle in ``static/src/widget`` (``cargo xtask addon``);
    - ``website_sale`` installed, the Python package ``selenium``, and ``chromedriver`` with
      Chromium on the PATH (``KLARNA_CHROMEDRIVER`` / ``KLARNA_CHROMIUM`` to name them).

    ``KLARNA_SCREENSHOT_DIR``, when set, receives a screenshot of every step.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        missing = [name for name in ('KLARNA_SANDBOX_BIN', 'KLARNA_GATEWAY_BIN')
                   if not os.environ.get(name)]
        if missing:
            raise unittest.SkipTest(
                "Klarna browser checkout: set %s to the built binaries to run it"
                % ' and '.join(missing)
            )
        if webdriver is None:
            raise unittest.SkipTest("Klarna browser checkout: the selenium package is missing")
        if not (WIDGET_DIR / 'klarna-widget_bg.wasm').is_file():
            raise unittest.SkipTest(
                "Klarna browser checkout: no widget bundle in %s (run `cargo xtask addon`)"
                % WIDGET_DIR
            )
        cls._find_chromium(cls)
        if cls.env['ir.module.module']._get('website_sale').state != 'installed':
            raise unittest.SkipTest("Klarna browser checkout: website_sale is not installed")

    @staticmethod
    def _find_chromium(cls):
        """ Names Chromium and chromedriver on `cls`, or skips its tests saying why. """
        cls.chromium = os.environ.get('KLARNA_CHROMIUM') or next(
            filter(None, map(shutil.which, ('chromium', 'chromium-browser', 'google-chrome'))), None)
        cls.chromedriver = os.environ.get('KLARNA_CHROMEDRIVER') or shutil.which('chromedriver')
        if not (cls.chromium and cls.chromedriver):
            raise unittest.SkipTest(
                "Klarna browser tests: no Chromium or chromedriver on the PATH"
                " (KLARNA_CHROMIUM / KLARNA_CHROMEDRIVER name them)"
            )

    def setUp(self):
        super().setUp()
        self.odoo_url = self.base_url()
        self.shots = os.environ.get('KLARNA_SCREENSHOT_DIR')
        self.processes = []
        self._start_services()
        self._configure_shop()

    # === THE SERVICES === #

    def _spawn(self, args, log_name):
        log = open(Path(self.workdir) / log_name, 'wb')  # noqa: SIM115 (closed in cleanup)
        self.addCleanup(log.close)
        process = subprocess.Popen(  # noqa: S603 (binaries the developer named)
            args, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_unlimited_memory,  # noqa: PLW1509
        )
        self.processes.append(process)

        def stop():
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.addCleanup(stop)
        return process

    def _start_services(self):
        self.workdir = tempfile.mkdtemp(prefix='klarna-browser-')
        sandbox_port, gateway_port = _free_port(), _free_port()
        self.sandbox_url = f'http://127.0.0.1:{sandbox_port}'
        self.gateway_url = f'http://127.0.0.1:{gateway_port}'
        sandbox = self._spawn([
            os.environ['KLARNA_SANDBOX_BIN'], '--listen', f'127.0.0.1:{sandbox_port}',
        ], 'sandbox.log')
        _wait_healthy(f'{self.sandbox_url}/kp/lib/v1/api.js', sandbox, 'klarna-sandbox')
        gateway = self._spawn([
            os.environ['KLARNA_GATEWAY_BIN'], 'serve',
            '--listen', f'127.0.0.1:{gateway_port}',
            '--database-url', f'sqlite://{self.workdir}/gateway.db?mode=rwc',
            '--klarna-url', self.sandbox_url,
            '--klarna-username', 'sandbox-merchant',
            '--klarna-password', 'sandbox-password',
            '--odoo-url', self.odoo_url,
            '--odoo-db', self.env.cr.dbname,
            '--odoo-login', GATEWAY_LOGIN,
            '--odoo-password', GATEWAY_PASSWORD,
            '--odoo-shared-secret', SECRET,
            '--admin-token', ADMIN_TOKEN,
            '--allowed-origin', self.odoo_url,
            # No reconcile at start: its JSON-RPC reads would share this test's cursor with
            # setUp's own writes (a race Odoo's test cursor does not guard against).
            '--reconcile-interval-secs', '0',
        ], 'gateway.log')
        _wait_healthy(f'{self.gateway_url}/healthz', gateway, 'klarna-gateway')

    def _configure_shop(self):
        # The gateway's Odoo user, with the rights the README names.
        self.env['res.users'].create({
            'name': "Klarna Gateway (browser test)",
            'login': GATEWAY_LOGIN,
            'password': GATEWAY_PASSWORD,
            'groups_id': [(6, 0, [
                self.env.ref('base.group_user').id,
                self.env.ref('sales_team.group_sale_salesman_all_leads').id,
                self.env.ref('account.group_account_invoice').id,
            ])],
        })
        self.provider = self.env.ref('payment_klarna.payment_provider_klarna')
        self.provider.write({
            'state': 'test',
            'is_published': True,
            'klarna_gateway_url': self.gateway_url,
            'klarna_shared_secret': SECRET,
            'klarna_sdk_url': f'{self.sandbox_url}/kp/lib/v1/api.js',
            'capture_manually': True,
        })
        self.provider.payment_method_ids.filtered(lambda m: m.code == 'klarna').active = True
        self.product = self.env['product.template'].create({
            'name': "Klarna Test Lamp",
            'list_price': 120.0,
            'type': 'consu',
            'is_published': True,
            'website_published': True,
            'taxes_id': [(6, 0, [])],
        })
        # Euro shop, so that a German address is a Klarna market.
        website = self.env['website'].get_current_website()
        eur = self.env.ref('base.EUR')
        eur.active = True
        pricelist = self.env['product.pricelist'].create({
            'name': "Klarna EUR", 'currency_id': eur.id, 'website_id': website.id,
            'selectable': True, 'sequence': 1,
        })
        self.pricelist = pricelist
        self.env.flush_all()

    # === THE BROWSER === #

    def _browser(self, width):
        options = webdriver.ChromeOptions()
        options.add_argument('--headless=new')
        options.add_argument('--no-sandbox')
        options.add_argument(f'--window-size={width},900')
        # Named outright: left to find them, Selenium asks its manager, which looks for
        # Google Chrome and downloads one when it finds none.
        options.binary_location = self.chromium
        service = webdriver.ChromeService(
            executable_path=self.chromedriver,
            popen_kw={'preexec_fn': _unlimited_memory},
        )
        driver = webdriver.Chrome(options=options, service=service)
        self.addCleanup(driver.quit)
        driver.set_window_size(width, 900)
        return driver

    def _shot(self, driver, name):
        if self.shots:
            Path(self.shots).mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(Path(self.shots) / f'odoo-{name}.png'))

    def _wait(self, driver, css, timeout=30, clickable=False):
        condition = EC.element_to_be_clickable if clickable else EC.visibility_of_element_located
        try:
            return WebDriverWait(driver, timeout).until(condition((By.CSS_SELECTOR, css)))
        except Exception as e:
            self._shot(driver, f'failed-{driver.get_window_size()["width"]}')
            raise AssertionError(f"{css} never came on {driver.current_url}") from e

    def _present(self, driver, css, timeout=30):
        try:
            return WebDriverWait(driver, timeout).until(
                EC.presence_of_element_located((By.CSS_SELECTOR, css))
            )
        except Exception as e:
            self._shot(driver, f'failed-{driver.get_window_size()["width"]}')
            raise AssertionError(f"{css} never came on {driver.current_url}") from e

    def _click(self, driver, css, timeout=30):
        element = self._wait(driver, css, timeout, clickable=True)
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()
        return element

    def _in_klarna(self, driver, button):
        """ Press `button` in Klarna's (the sandbox's) dialog, an iframe of its origin. """
        frame = self._wait(driver, 'iframe#klarna-sandbox-authorize')
        driver.switch_to.frame(frame)
        try:
            self._click(driver, button)
        finally:
            driver.switch_to.default_content()

    def _to_payment_page(self, driver):
        """ A guest puts the lamp in the cart and gives a German address. """
        slug = self.env['ir.http']._slug(self.product)
        driver.get(f'{self.odoo_url}/shop/{slug}')
        # The button works once the page's scripts run; the cart's counter (hidden in the
        # phone layout's header, so read, not seen) says when it did.
        in_cart = ("return [...document.querySelectorAll('.my_cart_quantity')]"
                   ".some((e) => Number(e.textContent.trim()) >= 1)")
        for _attempt in range(3):
            WebDriverWait(driver, 30).until(
                lambda d: d.execute_script("return document.readyState") == 'complete'
            )
            self._click(driver, '#add_to_cart')
            try:
                WebDriverWait(driver, 10).until(lambda d: d.execute_script(in_cart))
                break
            except Exception:  # noqa: BLE001 (clicked too early: again)
                _logger.info("the lamp is not in the cart yet; clicking again")
        else:
            self._shot(driver, 'failed-cart')
            raise AssertionError("the lamp never reached the cart")
        driver.get(f'{self.odoo_url}/shop/checkout?try_skip_step=true')
        # A guest gives an address; a signed-in shopper with one confirms it (or goes straight
        # on to the payment page).
        WebDriverWait(driver, 30).until(lambda d: '/shop/payment' in d.current_url or d.find_elements(
            By.CSS_SELECTOR, 'input[name="name"], a[name="website_sale_main_button"]'
        ))
        if not driver.find_elements(By.CSS_SELECTOR, 'input[name="name"]'):
            if '/shop/payment' not in driver.current_url:
                self._click(driver, 'a[name="website_sale_main_button"]')
                WebDriverWait(driver, 30).until(lambda d: '/shop/payment' in d.current_url)
            # Its saved payment methods first; Klarna's own option may be folded away.
            self._present(driver, 'input[name="o_payment_radio"]')
            return
        for name, value in (
            ('name', "Erika Mustermann"), ('email', 'erika@example.de'),
            ('phone', '+49 30 1234567'), ('street', 'Unter den Linden 1'),
            ('city', 'Berlin'), ('zip', '10117'),
        ):
            field = driver.find_element(By.CSS_SELECTOR, f'input[name="{name}"]')
            field.clear()
            field.send_keys(value)
        country = driver.find_element(By.CSS_SELECTOR, 'select[name="country_id"]')
        driver.execute_script(
            "const s = arguments[0]; const o = [...s.options].find((o) => o.text.trim() === 'Germany');"
            "s.value = o.value; s.dispatchEvent(new Event('change', {bubbles: true}));", country,
        )
        self._click(driver, 'a[name="website_sale_main_button"], #save_address')
        # The delivery step, if any, then the payment page.
        WebDriverWait(driver, 30).until(lambda d: '/shop/address' not in d.current_url)
        if '/shop/payment' not in driver.current_url:
            driver.get(f'{self.odoo_url}/shop/payment')
        self._wait(driver, 'input[name="o_payment_radio"][data-payment-method-code="klarna"]')

    def _log_in(self, driver, login, password):
        # Straight to the shop: the portal's home page loads its counters behind the page, a
        # request that would share this test's cursor with the next page's.
        driver.get(f'{self.odoo_url}/web/login?redirect=/shop')
        self._wait(driver, 'input[name="login"]').send_keys(login)
        driver.find_element(By.CSS_SELECTOR, 'input[name="password"]').send_keys(password)
        self._click(driver, 'form.oe_login_form button[type="submit"]')
        WebDriverWait(driver, 30).until(lambda d: '/web/login' not in d.current_url)
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script("return document.readyState") == 'complete'
        )

    def _gateway(self, path):
        request = urllib.request.Request(
            self.gateway_url + path, headers={'Authorization': f'Bearer {ADMIN_TOKEN}'},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (the test's gateway)
            return json.load(answer)

    def _pay(self, mode, width):
        self.provider.klarna_widget_mode = mode
        # The browser's requests share this test's cursor, not its pending writes.
        self.env.flush_all()
        driver = self._browser(width)
        self._to_payment_page(driver)
        label = f'{mode}-{width}'
        radio = driver.find_element(
            By.CSS_SELECTOR, 'input[name="o_payment_radio"][data-payment-method-code="klarna"]'
        )
        driver.execute_script("arguments[0].click();", radio)
        self._wait(driver, '.o_klarna_widget .kw[data-phase="ready"]')
        self.assertEqual(
            [b for b in driver.find_elements(By.CSS_SELECTOR, '.kw-open') if b.is_displayed()], [],
            "one pay button: Odoo's",
        )
        self._shot(driver, f'{label}-ready')
        pay_now = 'button[name="o_payment_submit_button"]'

        # Wrong details first: Klarna sends the shopper back, the widget names them and
        # Odoo's button is usable again (no overlay left behind).
        self._click(driver, pay_now)
        if mode == 'modal':
            self._click(driver, '.kw-backdrop:not([data-closed]) .kw-pay')
        self._in_klarna(driver, '#klarna-sandbox-invalid')
        notice = self._wait(driver, '.kw-notice')
        self.assertIn("e-mail address", notice.text)
        self._shot(driver, f'{label}-invalid-fields')
        if mode == 'modal':
            # The dialog stays open with the form: the shopper corrects and pays in it.
            self._click(driver, '.kw-backdrop:not([data-closed]) .kw-pay')
        else:
            self._wait(driver, f'{pay_now}:not(:disabled)', clickable=True)
            self.assertFalse(
                driver.find_elements(By.CSS_SELECTOR, '.o_blockUI, .o-main-components-container .o_blockUI'),
                "no blocking overlay left",
            )
            self._click(driver, pay_now)
        self._in_klarna(driver, '#klarna-sandbox-approve')
        WebDriverWait(driver, 60).until(
            lambda d: 'Your payment has been authorized' in d.page_source
            or 'confirmation' in d.current_url and 'authorized' in d.page_source
        )
        self._shot(driver, f'{label}-authorized')
        # Leave the status page: its polls would go on sharing this test's cursor.
        driver.get('about:blank')

        # The gateway told Odoo: the shopper's transaction is authorized, with Klarna's id.
        # Read between the status page's polls, which share this test's cursor (read in
        # the middle of one, a query came back with another's rows).
        def transactions():
            order = self.env['sale.order'].search(
                [('order_line.product_template_id', '=', self.product.id)], order='id desc', limit=1,
            )
            return order.transaction_ids
        authorized = lambda: transactions().filtered(lambda t: t.state == 'authorized')  # noqa: E731
        self._settled(lambda: len(authorized()) == 1, "the authorized transaction")
        with self.registry.test_lock:
            tx = authorized()
            self.assertEqual(len(tx), 1, transactions().mapped('state'))
            self.assertTrue(tx.provider_reference)
        return tx

    # === THE MERCHANT, AFTERWARDS === #

    def _settled(self, check, what, timeout=30):
        """ Waits for the gateway's update to reach Odoo (it posts it from its worker). """
        deadline = time.time() + timeout
        while time.time() < deadline:
            # Odoo's requests share this test's database connection: read between them,
            # never in the middle of one.
            with self.registry.test_lock:
                self.env.invalidate_all()
                if check():
                    return
            time.sleep(0.3)
        raise AssertionError(f"the gateway's update never arrived: {what}")

    def _merchant(self, action):
        """ A merchant's wizard: the gateway answers at once and posts its update from its
        worker; Odoo's requests wait until the wizard's transaction is through, as in
        production, where its update waits for the payment's lock. """
        with self.registry.test_lock:
            action()
            self.env.flush_all()

    def _capture_then_refund_from_the_capture(self, tx):
        """ Capture part of the order with Odoo's capture wizard, then refund part of that
        capture from its payment with Odoo's refund wizard — against the real gateway and
        Klarna's stand-in. One refund transaction in Odoo, done, and the wizard's figures
        right afterwards (once, a second refund transaction appeared beside a draft). """
        def capture():
            action = tx.action_capture()
            with Form(self.env[action['res_model']].with_context(action['context'])) as wizard:
                wizard.amount_to_capture = 50.0
            wizard.record.action_capture()
        self._merchant(capture)
        captures = lambda: tx.child_transaction_ids.filtered(  # noqa: E731
            lambda t: t.operation != 'refund' and t.state == 'done'
        )
        self._settled(lambda: len(captures()) == 1, "the capture")
        child = captures()
        self.assertEqual(child.amount, 50.0)
        self.assertTrue(child.provider_reference.startswith('klarna-op-'))
        self.assertTrue(child.payment_id, "the capture's payment, where a refund starts")

        def refund():
            with Form(self.env['payment.refund.wizard'].with_context(
                active_model='account.payment', active_id=child.payment_id.id,
            )) as wizard:
                wizard.amount_to_refund = 20.0
            wizard.record.action_refund()
        self._merchant(refund)
        family = lambda: (tx.child_transaction_ids | tx.child_transaction_ids.child_transaction_ids)  # noqa: E731
        refunds = lambda: family().filtered(lambda t: t.operation == 'refund')  # noqa: E731
        self._settled(lambda: refunds().filtered(lambda t: t.state == 'done'), "the refund")
        self.assertEqual(refunds().mapped('state'), ['done'], "one refund transaction, done")
        self.assertEqual(refunds().amount, -20.0)
        self.assertEqual(refunds().source_transaction_id, child)
        wizard = Form(self.env['payment.refund.wizard'].with_context(
            active_model='account.payment', active_id=child.payment_id.id,
        ))
        self.assertEqual(
            (wizard.payment_amount, wizard.refunded_amount, wizard.amount_available_for_refund,
             wizard.has_pending_refund),
            (50.0, 20.0, 30.0, False),
        )

    def _capture_all_then_refund(self, tx):
        """ Capture the whole order (Odoo makes no child transaction for that), then refund
        part of it, against the real gateway: the refund must expect all of it captured. """
        def capture():
            action = tx.action_capture()
            Form(self.env[action['res_model']].with_context(action['context'])).save().action_capture()
        self._merchant(capture)
        self._settled(lambda: tx.state == 'done' and tx.payment_id, "the whole capture")

        def refund():
            with Form(self.env['payment.refund.wizard'].with_context(
                active_model='account.payment', active_id=tx.payment_id.id,
            )) as wizard:
                wizard.amount_to_refund = 10.0
            wizard.record.action_refund()
        self._merchant(refund)
        refunds = lambda: tx.child_transaction_ids.filtered(lambda t: t.operation == 'refund')  # noqa: E731
        self._settled(lambda: refunds().filtered(lambda t: t.state == 'done'), "the refund")
        self.assertEqual(refunds().mapped('amount'), [-10.0])

    def _edit_the_order(self, tx):
        """ The merchant edits the confirmed order before it ships, against the real gateway
        and Klarna's stand-in: a lower price is taken and the payment follows; three lamps
        instead of one is an increase Klarna declines — the save fails with Klarna's reason and
        the order stays as Klarna has it. """
        order = tx.sale_order_ids
        self.assertEqual(order.state, 'sale')
        lamp = lambda: order.order_line.filtered(  # noqa: E731
            lambda l: l.product_template_id == self.product
        )

        def lower():
            with Form(order) as edit:
                with edit.order_line.edit(order.order_line.ids.index(lamp().id)) as line:
                    line.price_unit = 100.0
            self.env.cr.flush()  # The request ends: the precommit hook sends the edit.
        self._merchant(lower)
        self.assertEqual(tx.amount, order.amount_total)
        self.assertEqual(lamp().price_unit, 100.0)
        self.assertFalse(order.klarna_authorization_differs)
        self.assertIn("follows the edited order", order.message_ids[0].body)

        def three_lamps():
            with self.assertRaises(UserError) as refused:
                lamp().product_uom_qty = 3
                self.env.cr.flush()
            self.assertIn("declined the increase", str(refused.exception))
        self._merchant(three_lamps)
        self.env.invalidate_all()
        self.assertEqual((lamp().product_uom_qty, tx.amount), (1, order.amount_total))

    def test_inline_wrong_details_then_paid_then_captured_whole_and_refunded_at_phone_width(self):
        tx = self._pay('inline', 375)
        self._capture_all_then_refund(tx)

    def _a_parked_update_is_replayed_from_the_provider_form(self):
        """ An update that used every attempt (Odoo down for more than a day) waits in the
        gateway's review queue: the provider form lists it and *Replay* sends it again —
        through the real gateway's signed admin API. Getting there for real takes the
        34-hour retry schedule, so the test parks the gateway's last update itself. """
        gateway_db = sqlite3.connect(Path(self.workdir) / 'gateway.db', timeout=10)
        self.addCleanup(gateway_db.close)
        with gateway_db:
            (job_id,) = gateway_db.execute(
                "SELECT id FROM jobs WHERE kind = 'odoo_sync' AND state = 'done' "
                "ORDER BY id DESC LIMIT 1"
            ).fetchone()
            gateway_db.execute(
                "UPDATE jobs SET state = 'review', attempts = 10, last_error = ? WHERE id = ?",
                ("Odoo answered 502 Bad Gateway", job_id),
            )
        review = self.env['payment.klarna.review']
        with self.registry.test_lock:
            action = self.provider.action_klarna_review_queue()
        review = review.browse(action['res_id'])
        self.assertEqual(review.line_ids.mapped('job_id'), [job_id])
        self.assertIn("refunded", review.line_ids.summary)
        self.assertEqual(review.line_ids.last_error, "Odoo answered 502 Bad Gateway")
        with self.registry.test_lock:
            action = review.line_ids.action_replay()
        self.assertFalse(review.browse(action['res_id']).line_ids, "out of the review queue")

        def done():
            (state,) = gateway_db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return state == 'done'
        self._settled(done, "the replayed update")

    def test_inline_wrong_details_then_paid_then_captured_and_refunded_at_desktop_width(self):
        tx = self._pay('inline', 1280)
        self._capture_then_refund_from_the_capture(tx)
        self._a_parked_update_is_replayed_from_the_provider_form()

    def test_a_shopper_saves_klarna_then_pays_the_next_order_with_it_then_removes_it(self):
        """ Odoo's "Save my payment details", for real: a signed-in shopper ticks it, Klarna's
        dialog shows its terms for saving, and Odoo gets a token holding only the gateway's
        reference. The next order offers the saved Klarna and is paid with it — Odoo's token
        flow, no Klarna form — as a Klarna order of its own. Removing it cancels it. """
        self.provider.allow_tokenization = True
        password = 'erika-portal-password-1'
        user = self.env['res.users'].create({
            'name': "Erika Mustermann", 'login': 'erika@example.de', 'password': password,
            'email': 'erika@example.de',
            'groups_id': [(6, 0, [self.env.ref('base.group_portal').id])],
        })
        user.partner_id.write({
            'street': 'Unter den Linden 1', 'city': 'Berlin', 'zip': '10117',
            'country_id': self.env.ref('base.de').id, 'phone': '+49 30 1234567',
        })
        self.env.flush_all()
        driver = self._browser(1280)
        self._log_in(driver, 'erika@example.de', password)
        self._to_payment_page(driver)
        radio = self._present(
            driver, 'input[name="o_payment_radio"][data-payment-method-code="klarna"]'
        )
        driver.execute_script("arguments[0].click();", radio)
        self._wait(driver, '.o_klarna_widget .kw[data-phase="ready"]')
        save = self._wait(
            driver, '[name="o_payment_tokenize_container"]:not(.d-none) '
                    'input[name="o_payment_tokenize_checkbox"]',
        )
        driver.execute_script("arguments[0].click();", save)
        self._shot(driver, 'save-ticked')
        self._click(driver, 'button[name="o_payment_submit_button"]')
        frame = self._wait(driver, 'iframe#klarna-sandbox-authorize', timeout=60)
        driver.switch_to.frame(frame)
        try:
            terms = self._wait(driver, '#klarna-sandbox-save-terms')
            self.assertIn("save this payment method", terms.text)
            self._shot(driver, 'save-terms')
            self._click(driver, '#klarna-sandbox-approve')
        finally:
            driver.switch_to.default_content()
        WebDriverWait(driver, 60).until(lambda d: 'Your payment has been authorized' in d.page_source)
        self._shot(driver, 'save-authorized')
        driver.get('about:blank')

        tokens = lambda: self.env['payment.token'].search([  # noqa: E731
            ('partner_id', '=', user.partner_id.id), ('provider_id', '=', self.provider.id),
        ])
        self._settled(lambda: tokens(), "the saved Klarna")
        with self.registry.test_lock:
            token = tokens()
            self.assertEqual(len(token), 1)
            self.assertTrue(token.provider_ref.startswith('kt_'), token.provider_ref)
            self.assertTrue(token.payment_details.startswith('Klarna'), token.payment_details)
            first = token.transaction_ids
            self.assertEqual(first.state, 'authorized')
            first_order_id = first.provider_reference

        # The next order: the saved Klarna is offered, and paying with it needs no form.
        self._to_payment_page(driver)
        saved = self._present(
            driver, f'input[name="o_payment_radio"][data-payment-option-type="token"]'
                    f'[data-payment-option-id="{token.id}"]',
        )
        driver.execute_script("arguments[0].click();", saved)
        self._shot(driver, 'saved-offered')
        self._click(driver, 'button[name="o_payment_submit_button"]')
        WebDriverWait(driver, 60).until(lambda d: 'Your payment has been authorized' in d.page_source)
        self._shot(driver, 'saved-paid')
        driver.get('about:blank')
        charged = lambda: self.env['payment.transaction'].search([  # noqa: E731
            ('token_id', '=', token.id), ('operation', '=', 'online_token'),
        ])
        self._settled(lambda: charged().state == 'authorized', "the charge of the saved Klarna")
        with self.registry.test_lock:
            charge = charged()
            self.assertTrue(charge.provider_reference)
            self.assertNotEqual(charge.provider_reference, first_order_id)
            self.assertEqual(charge.sale_order_ids.state, 'sale')
        view = self._gateway(f'/admin/tokens/{token.provider_ref}')
        self.assertEqual(
            [c['klarna_order_id'] for c in view['charges']], [charge.provider_reference],
        )
        self._capture_all_then_refund(charge)

        # The shopper removes it: cancelled at Klarna.
        with self.registry.test_lock:
            token.action_archive()
            self.env.flush_all()
        self.assertEqual(self._gateway(f'/admin/tokens/{token.provider_ref}')['state'], 'cancelled')

    def test_modal_wrong_details_then_paid_at_phone_width(self):
        self._pay('modal', 375)

    def test_modal_wrong_details_then_paid_then_edited_then_captured_at_desktop_width(self):
        tx = self._pay('modal', 1280)
        self._edit_the_order(tx)
        self._capture_all_then_refund(tx)
