//! End to end: the storefront page in headless Chromium, the widget bundle, the gateway
//! (on SQLite, and for the whole lifecycle once more on PostgreSQL) and the sandbox, each
//! on its own loopback port.
//!
//! Needs the release bundle and a browser, so it is `#[ignore]`d in a plain `cargo test`;
//! `cargo xtask test` builds the bundle and runs it with `--ignored`, telling it in
//! `GATEWAY_TEST_PG` whether PostgreSQL is there (see `support::Database::postgres`).
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::path::PathBuf;
use std::sync::Arc;

use fantoccini::Locator;
use klarna_gateway::store::TxState;
use klarna_gateway::{Config, Gateway, InitialSecrets};
use klarna_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};
use support::{Database, browser, console_errors, screenshot, start_driver, wait_for};
use tokio::net::TcpListener;

/// A fixture order a real Odoo 18 computed: EUR, German customer, 17 lines.
const ORDER: &str = "S00043";
const ORDER_TOTAL_MINOR: i64 = 70_028;

const ADMIN_TOKEN: &str = "e2e-admin-token";

struct System {
    sandbox: Arc<Sandbox>,
    sandbox_url: String,
    gateway: Arc<Gateway>,
    gateway_url: String,
    running: klarna_gateway::Running,
    _data: tempfile::TempDir,
}

/// The built widget bundle (`cargo xtask test` builds it and names it).
fn widget_dist() -> PathBuf {
    PathBuf::from(
        std::env::var("KLARNA_WIDGET_DIST").expect("KLARNA_WIDGET_DIST: the built widget bundle"),
    )
}

async fn start_system(dist: PathBuf, database_url: &str) -> System {
    let sandbox_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind sandbox");
    let gateway_listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind gateway");
    let sandbox_url = format!("http://{}", sandbox_listener.local_addr().expect("addr"));
    let gateway_url = format!("http://{}", gateway_listener.local_addr().expect("addr"));
    let sandbox_config = SandboxConfig {
        storefront_dir: Some(dist),
        gateway_url: Some(gateway_url.clone()),
        ..SandboxConfig::default()
    };
    let sandbox = Arc::new(Sandbox::new(sandbox_config.clone(), sandbox_url.clone()));
    tokio::spawn(klarna_sandbox::serve(
        sandbox_listener,
        sandbox.clone(),
        std::future::pending(),
    ));

    let data = tempfile::tempdir().expect("tempdir");
    let mut config = Config::sandbox(database_url, data.path(), &sandbox_url);
    config.worker_poll = std::time::Duration::from_millis(20);
    let secrets = InitialSecrets {
        klarna_username: Some(sandbox_config.username.clone()),
        klarna_password: Some(sandbox_config.password.clone()),
        admin_token: Some(ADMIN_TOKEN.into()),
        odoo_password: Some(sandbox_config.odoo_password.clone()),
        odoo_shared_secret: Some(sandbox_config.odoo_shared_secret.clone()),
        ..InitialSecrets::default()
    };
    let gateway = Arc::new(Gateway::new(config, secrets).await.expect("gateway starts"));
    let running = klarna_gateway::start(gateway_listener, gateway.clone())
        .await
        .expect("gateway runs");
    System {
        sandbox,
        sandbox_url,
        gateway,
        gateway_url,
        running,
        _data: data,
    }
}

impl System {
    async fn admin(&self, path: &str, body: Value) -> Value {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", self.gateway_url))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("admin API");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.expect("json")
    }

    /// Odoo's payment transactions for the order, once the gateway's updates arrived.
    async fn odoo_transactions(&self, expected: usize) -> Vec<Value> {
        for _ in 0..200 {
            let txs: Vec<Value> = self
                .sandbox
                .odoo
                .records("payment.transaction")
                .into_iter()
                .filter(|t| t.get("sale_order_name").and_then(Value::as_str) == Some(ORDER))
                .map(Value::Object)
                .collect();
            if txs.len() >= expected {
                return txs;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("Odoo did not get {expected} transactions");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the widget bundle and Chromium: run `cargo xtask test`"]
async fn a_shopper_pays_once_through_widget_gateway_and_sandbox() {
    let database = Database::sqlite();
    a_shopper_pays_once(&database).await;
    database.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the widget bundle, Chromium and PostgreSQL: run `cargo xtask test`"]
async fn a_shopper_pays_once_with_the_gateway_on_postgresql() {
    let Some(database) = Database::postgres().await else {
        return;
    };
    a_shopper_pays_once(&database).await;
    database.drop_database().await;
}

/// The whole lifecycle through the page, with the gateway on `database`.
async fn a_shopper_pays_once(database: &Database) {
    let dist = widget_dist();
    eprintln!("the gateway on {}", database.name);
    let system = start_system(dist, &database.url).await;
    let driver = start_driver().await;
    let profile = tempfile::tempdir().expect("profile dir");
    let client = browser(&driver, profile.path(), 1280).await;

    client
        .goto(&format!("{}/shop/payment/{ORDER}", system.sandbox_url))
        .await
        .expect("open the checkout page");
    wait_for(&client, ".kw[data-phase=ready]").await;
    wait_for(&client, ".kw-container iframe").await;
    screenshot(&client, "lifecycle-inline-1280-ready").await;
    wait_for(&client, ".kw-pay:not([disabled])")
        .await
        .click()
        .await
        .expect("click Pay");

    // Klarna's dialog opens in its own iframe; the shopper confirms there.
    let dialog = wait_for(&client, "iframe#klarna-sandbox-authorize").await;
    screenshot(&client, "lifecycle-inline-1280-klarna-dialog").await;
    dialog.enter_frame().await.expect("enter Klarna's dialog");
    wait_for(&client, "#klarna-sandbox-approve")
        .await
        .click()
        .await
        .expect("click Buy");
    client.enter_parent_frame().await.expect("back to the page");

    // (a) the page shows the confirmation
    wait_for(&client, ".kw[data-phase=authorized]").await;
    let status = client
        .find(Locator::Css(".kw-status"))
        .await
        .expect("status")
        .text()
        .await
        .expect("status text");
    assert!(status.contains("confirmed"), "status says {status:?}");
    screenshot(&client, "lifecycle-inline-1280-authorized").await;

    // (b) one authorized transaction with the sandbox's order id and Odoo's exact amount
    let orders: Vec<_> = system
        .sandbox
        .state()
        .orders
        .values()
        .map(|o| o.order.clone())
        .collect();
    assert_eq!(orders.len(), 1, "the sandbox holds exactly one order");
    let transactions = system
        .gateway
        .db
        .transactions()
        .await
        .expect("transactions");
    assert_eq!(transactions.len(), 1);
    let t = &transactions[0];
    assert_eq!(t.state, TxState::Authorized);
    assert_eq!(t.order_reference, ORDER);
    assert_eq!(
        t.klarna_order_id.as_deref(),
        Some(orders[0].order_id.as_str())
    );
    assert_eq!(t.authorized_amount, ORDER_TOTAL_MINOR);
    assert_eq!(t.currency, "EUR");
    assert_eq!(orders[0].order_amount, ORDER_TOTAL_MINOR);

    // (c) the same authorization token posted again from the page (a second
    // click-through) gets the same order, and Klarna is not asked for a second one.
    let token = {
        let state = system.sandbox.state();
        state
            .authorizations
            .values()
            .find(|a| a.session_id == t.session_id)
            .map(|a| a.token.clone())
            .expect("the sandbox issued an authorization token")
    };
    let replay = client
        .execute_async(
            "const [url, body, done] = arguments;
             fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'}, body})
               .then(r => r.json().then(j => done({status: r.status, body: j})))
               .catch(e => done({error: String(e)}));",
            vec![
                json!(format!("{}/klarna/authorize", system.gateway_url)),
                json!(
                    json!({"session_id": t.session_id, "authorization_token": token}).to_string()
                ),
            ],
        )
        .await
        .expect("replay the authorization from the page");
    assert_eq!(replay["status"], json!(200), "{replay}");
    assert_eq!(replay["body"]["outcome"], json!("authorized"));
    assert_eq!(
        replay["body"]["klarna_order_id"],
        Value::String(orders[0].order_id.clone())
    );
    assert_eq!(
        system.sandbox.state().orders.len(),
        1,
        "no second Klarna order"
    );
    assert_eq!(
        system.gateway.db.transactions().await.expect("rows").len(),
        1
    );

    // (d) the rest of the lifecycle, as Odoo's buttons drive it: capture half, capture
    // the rest, refund part — and Odoo's transactions follow.
    let order_id = orders[0].order_id.clone();
    let half = ORDER_TOTAL_MINOR / 2;
    let first = system
        .admin(
            &format!("/admin/payments/{ORDER}/captures"),
            json!({"amount": half}),
        )
        .await;
    assert_eq!(first["payment"]["state"], "part_captured");
    let rest = system
        .admin(&format!("/admin/payments/{ORDER}/captures"), json!({}))
        .await;
    assert_eq!(
        (
            rest["operation"]["amount"].clone(),
            rest["payment"]["state"].clone()
        ),
        (json!(ORDER_TOTAL_MINOR - half), json!("captured"))
    );
    let refund = system
        .admin(
            &format!("/admin/payments/{order_id}/refunds"),
            json!({"amount": 1_000}),
        )
        .await;
    assert_eq!(refund["payment"]["refunded_amount"], 1_000);
    let klarna = system.sandbox.state().orders[&order_id].order.clone();
    assert_eq!(
        (
            klarna.captured_amount,
            klarna.refunded_amount,
            klarna.captures.len()
        ),
        (ORDER_TOTAL_MINOR, 1_000, 2)
    );
    let odoo = system.odoo_transactions(4).await;
    let states: Vec<(String, String, f64)> = odoo
        .iter()
        .map(|t| {
            (
                t["operation"].as_str().unwrap_or("").to_owned(),
                t["state"].as_str().unwrap_or("").to_owned(),
                t["amount"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("online_direct".to_owned(), "done".to_owned(), 700.28),
            // Odoo 18 gives a partial capture its parent's operation.
            ("online_direct".to_owned(), "done".to_owned(), 350.14),
            ("online_direct".to_owned(), "done".to_owned(), 350.14),
            ("refund".to_owned(), "done".to_owned(), -10.0),
        ]
    );
    assert_eq!(odoo[0]["provider_reference"], json!(order_id));

    let errors = console_errors(&client).await;
    assert!(errors.is_empty(), "browser console errors: {errors:#?}");
    client.close().await.expect("close the browser");
    system.running.shutdown().await;
}

/// The demo order of a Swedish consumer.
const SE_ORDER: &str = "S09001";

async fn js(client: &fantoccini::Client, code: &str) -> Value {
    client.execute(code, vec![]).await.expect("script")
}

/// Confirms in Klarna's (stand-in) dialog.
async fn approve_in_klarna(client: &fantoccini::Client, shot: &str) {
    answer_in_klarna(client, "#klarna-sandbox-approve", Some(shot)).await;
}

/// Presses `button` in Klarna's (stand-in) dialog.
async fn answer_in_klarna(client: &fantoccini::Client, button: &str, shot: Option<&str>) {
    let dialog = wait_for(client, "iframe#klarna-sandbox-authorize").await;
    if let Some(shot) = shot {
        screenshot(client, shot).await;
    }
    dialog.enter_frame().await.expect("enter Klarna's dialog");
    wait_for(client, button)
        .await
        .click()
        .await
        .expect("click in Klarna's dialog");
    client.enter_parent_frame().await.expect("back to the page");
}

/// Klarna sends the shopper back with wrong details: the widget names them, tells the
/// page (`klarna:invalid_fields`), and keeps the form usable for the corrected attempt.
async fn wrong_details_first(client: &fantoccini::Client, pay: &str, label: &str) {
    js(
        client,
        "window.__invalid = []; document.addEventListener('klarna:invalid_fields', \
         (e) => window.__invalid.push(e.detail));",
    )
    .await;
    wait_for(client, pay).await.click().await.expect("Pay");
    answer_in_klarna(client, "#klarna-sandbox-invalid", None).await;
    let notice = wait_for(client, ".kw-notice:not([hidden])").await;
    let said = notice.text().await.expect("notice text");
    // The demo order is a Swedish shopper's: named in Swedish.
    assert!(
        said == "Kontrollera de här uppgifterna: e-postadress, telefonnummer.",
        "[{label}] {said}"
    );
    assert_eq!(
        js(
            client,
            "return window.__invalid.map((d) => d.fields.join(','))"
        )
        .await,
        json!(["billing_address.email,billing_address.phone"]),
        "[{label}]"
    );
    wait_for(client, &format!("{pay}:not([disabled])")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the widget bundle and Chromium: run `cargo xtask test`"]
async fn inline_and_modal_pay_at_phone_and_desktop_widths_under_a_strict_csp() {
    use fantoccini::key::Key;

    let dist = widget_dist();
    let driver = start_driver().await;
    let mut shots = Vec::new();
    for (mode, width) in [
        ("inline", 375),
        ("inline", 1280),
        ("modal", 375),
        ("modal", 1280),
    ] {
        let database = Database::sqlite();
        let system = start_system(dist.clone(), &database.url).await;
        let url = format!("{}/shop/payment/{SE_ORDER}?mode={mode}", system.sandbox_url);
        // The page is served under a strict Content-Security-Policy: no inline script,
        // no eval; only this origin's scripts and WebAssembly compilation.
        let page = reqwest::get(&url).await.expect("page");
        let csp = page
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let script_src = csp
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src "))
            .unwrap_or_default();
        assert_eq!(script_src, "script-src 'self' 'wasm-unsafe-eval'", "{csp}");
        let html = page.text().await.expect("html");
        assert!(
            !html.contains("<script>") && !html.contains("<script type=\"module\">"),
            "no inline script"
        );

        let profile = tempfile::tempdir().expect("profile dir");
        let client = browser(&driver, profile.path(), width).await;
        client.goto(&url).await.expect("open the checkout page");
        let name = |state: &str| format!("{mode}-{width}-{state}");
        if mode == "inline" {
            wait_for(&client, ".kw[data-phase=ready] .kw-container iframe").await;
            shots.push(screenshot(&client, &name("ready")).await);
            wrong_details_first(&client, ".kw-pay", &name("invalid")).await;
            shots.push(screenshot(&client, &name("invalid-fields")).await);
            wait_for(&client, ".kw-pay:not([disabled])")
                .await
                .click()
                .await
                .expect("Pay");
            approve_in_klarna(&client, &name("klarna-dialog")).await;
            shots.push(system_dir(&name("klarna-dialog")));
        } else {
            let trigger = wait_for(&client, ".kw[data-phase=ready] .kw-open").await;
            shots.push(screenshot(&client, &name("closed")).await);
            // Keyboard only: Enter opens, focus moves into the dialog.
            trigger
                .send_keys(&Key::Enter.to_string())
                .await
                .expect("Enter");
            wait_for(&client, ".kw-backdrop:not([data-closed]) .kw-dialog").await;
            let inside = "return !!document.activeElement.closest('.kw-dialog')";
            // Focus moves in once the dialog is shown (the next task).
            let mut focused = false;
            for _ in 0..50 {
                focused = js(&client, inside).await == json!(true);
                if focused {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert!(focused, "[{mode} {width}] focus in the dialog");
            shots.push(screenshot(&client, &name("open")).await);
            // Tab keeps cycling inside the dialog.
            for i in 0..8 {
                client
                    .active_element()
                    .await
                    .expect("focus")
                    .send_keys(&Key::Tab.to_string())
                    .await
                    .expect("Tab");
                assert_eq!(
                    js(&client, inside).await,
                    json!(true),
                    "Tab {i} left the dialog"
                );
            }
            // Escape closes and gives focus back to the button.
            client
                .active_element()
                .await
                .expect("focus")
                .send_keys(&Key::Escape.to_string())
                .await
                .expect("Escape");
            wait_for(&client, ".kw-backdrop[data-closed]").await;
            assert_eq!(
                js(&client, "return document.activeElement.className").await,
                json!("kw-open")
            );
            client
                .active_element()
                .await
                .expect("focus")
                .send_keys(&Key::Enter.to_string())
                .await
                .expect("Enter");
            let pay = ".kw-backdrop:not([data-closed]) .kw-pay";
            wait_for(&client, &format!("{pay}:not([disabled])")).await;
            // Every category's form has its height in the dialog.
            assert!(
                js(&client, "return document.querySelector('.kw-backdrop .kw-container:not([hidden]) iframe').getBoundingClientRect().height").await.as_f64().unwrap_or(0.0) > 50.0,
                "[{mode} {width}] Klarna's form has a height in the dialog"
            );
            wrong_details_first(&client, pay, &name("invalid")).await;
            shots.push(screenshot(&client, &name("invalid-fields")).await);
            wait_for(&client, &format!("{pay}:not([disabled])"))
                .await
                .click()
                .await
                .expect("Pay in the dialog");
            approve_in_klarna(&client, &name("klarna-dialog")).await;
            shots.push(system_dir(&name("klarna-dialog")));
        }
        wait_for(&client, ".kw[data-phase=authorized]").await;
        shots.push(screenshot(&client, &name("authorized")).await);
        // Nothing wider than the screen, from 375 px up.
        assert_eq!(
            js(
                &client,
                "return document.documentElement.scrollWidth <= window.innerWidth"
            )
            .await,
            json!(true),
            "[{mode} {width}] horizontal scrolling"
        );
        let transactions = system.gateway.db.transactions().await.expect("rows");
        assert_eq!(
            (transactions.len(), transactions[0].state),
            (1, TxState::Authorized),
            "[{mode} {width}]"
        );
        let errors = console_errors(&client).await;
        assert!(
            errors.is_empty(),
            "[{mode} {width}] browser console errors: {errors:#?}"
        );
        client.close().await.expect("close the browser");
    }
    for shot in &shots {
        assert!(shot.is_file(), "{}", shot.display());
    }
    eprintln!("screenshots in {}", support::screenshot_dir().display());
}

fn system_dir(name: &str) -> PathBuf {
    support::screenshot_dir().join(format!("{name}.png"))
}

/// Types `value` into the field `css` (cleared first), as a shopper does.
async fn type_into(client: &fantoccini::Client, css: &str, value: &str) {
    let field = wait_for(client, css).await;
    field.clear().await.expect("clear");
    field.send_keys(value).await.expect("type");
}

/// The placement once Klarna's (stand-in) script rendered it for `minor`: its text.
async fn placement_for(client: &fantoccini::Client, minor: i64) -> String {
    wait_for(
        client,
        &format!("klarna-placement[data-rendered-amount=\"{minor}\"] [role=note]"),
    )
    .await
    .text()
    .await
    .expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: run `cargo xtask test`"]
async fn price_messaging_follows_the_quantity_on_product_and_cart_pages_under_a_strict_csp() {
    let dist = widget_dist();
    let driver = start_driver().await;
    let database = Database::sqlite();
    let system = start_system(dist, &database.url).await;
    // A coffee maker of S09001 (SEK, Swedish customer): 499.00 SEK.
    let product = format!("{}/shop/product/900101", system.sandbox_url);
    let cart = format!("{}/shop/cart/S09001", system.sandbox_url);
    let page = reqwest::get(&product).await.expect("page");
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval';"),
        "{csp}"
    );
    assert!(
        !page.text().await.expect("html").contains("<script>"),
        "no inline script"
    );

    for width in [375, 1280] {
        let profile = tempfile::tempdir().expect("profile dir");
        let client = browser(&driver, profile.path(), width).await;
        let name = |state: &str| format!("messaging-{width}-{state}");

        // The product page: a third of the price, then of three times the price.
        client.goto(&product).await.expect("product page");
        let text = placement_for(&client, 49_900).await;
        assert!(text.contains("166,33"), "[{width}] {text}");
        screenshot(&client, &name("product")).await;
        type_into(&client, "input[name=add_qty]", "3").await;
        let text = placement_for(&client, 149_700).await;
        assert!(text.contains("499,00"), "[{width}] {text}");
        screenshot(&client, &name("product-3")).await;

        // The cart: one coffee maker fewer, the total and the placement follow.
        client.goto(&cart).await.expect("cart page");
        placement_for(&client, 135_796).await;
        type_into(
            &client,
            "tr[data-unit-minor=\"49900\"] input[name=qty]",
            "1",
        )
        .await;
        let text = placement_for(&client, 85_896).await;
        assert!(text.contains("286,32"), "[{width}] {text}");
        screenshot(&client, &name("cart")).await;
        assert_eq!(
            js(
                &client,
                "return document.documentElement.scrollWidth <= window.innerWidth"
            )
            .await,
            json!(true),
            "[{width}] horizontal scrolling"
        );
        let errors = console_errors(&client).await;
        assert!(
            errors.is_empty(),
            "[{width}] console errors (CSP): {errors:#?}"
        );

        // Switched off: no placement, and Klarna's script is not even fetched.
        client
            .goto(&format!("{product}?messaging=off"))
            .await
            .expect("product page without messaging");
        wait_for(&client, ".oe_price").await;
        assert_eq!(
            js(
                &client,
                "return [document.querySelectorAll('klarna-placement').length, \
                 performance.getEntriesByType('resource').filter((r) => /klarna/.test(r.name)).length]"
            )
            .await,
            json!([0, 0]),
            "[{width}]"
        );
        client.close().await.expect("close the browser");
    }
    system.running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the widget bundle and Chromium: run `cargo xtask test`"]
async fn a_shopper_saves_klarna_on_the_storefront_and_the_shop_charges_it_later() {
    let dist = widget_dist();
    let driver = start_driver().await;
    let database = Database::sqlite();
    let system = start_system(dist, &database.url).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let client = browser(&driver, profile.path(), 1280).await;

    // "Save my payment details" ticked: Odoo's checkout transaction asks for it, and
    // Klarna's dialog shows its terms for saving before the shopper approves.
    client
        .goto(&format!(
            "{}/shop/payment/{SE_ORDER}?save=1",
            system.sandbox_url
        ))
        .await
        .expect("open the checkout page");
    wait_for(&client, ".kw[data-phase=ready]").await;
    wait_for(&client, ".kw-pay:not([disabled])")
        .await
        .click()
        .await
        .expect("click Pay");
    let dialog = wait_for(&client, "iframe#klarna-sandbox-authorize").await;
    dialog.enter_frame().await.expect("enter Klarna's dialog");
    let terms = wait_for(&client, "#klarna-sandbox-save-terms")
        .await
        .text()
        .await
        .expect("terms");
    assert!(terms.contains("save this payment method"), "{terms}");
    screenshot(&client, "save-klarna-terms").await;
    wait_for(&client, "#klarna-sandbox-approve")
        .await
        .click()
        .await
        .expect("click Buy");
    client.enter_parent_frame().await.expect("back to the page");
    wait_for(&client, ".kw[data-phase=authorized]").await;

    // Klarna made one customer token; the gateway keeps it sealed, Odoo's payment.token
    // and the page know only the gateway's reference.
    let secrets: Vec<String> = system
        .sandbox
        .state()
        .customer_tokens
        .keys()
        .cloned()
        .collect();
    assert_eq!(secrets.len(), 1, "{secrets:?}");
    let mut saved = Vec::new();
    for _ in 0..200 {
        saved = system.sandbox.odoo.records("payment.token");
        if !saved.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(saved.len(), 1, "Odoo's payment tokens: {saved:?}");
    let reference = saved[0]["provider_ref"]
        .as_str()
        .expect("provider_ref")
        .to_owned();
    assert!(reference.starts_with("kt_"), "{reference}");
    assert!(
        !Value::Object(saved[0].clone())
            .to_string()
            .contains(&secrets[0])
    );
    let page = js(&client, "return document.documentElement.outerHTML").await;
    assert!(
        !page.to_string().contains(&secrets[0]),
        "the page holds the token"
    );
    let stored = system
        .gateway
        .db
        .token(&reference)
        .await
        .expect("read")
        .expect("the gateway keeps it");
    assert_eq!(stored.order_reference, SE_ORDER);

    // The shop charges it later, with no shopper present: one Klarna order, once.
    let body = json!({"transaction_reference": "S09003-1", "order_reference": "S09003"});
    let path = format!("/admin/tokens/{reference}/charges");
    let charged = system.admin(&path, body.clone()).await;
    assert_eq!(charged["outcome"], "authorized", "{charged}");
    assert_eq!(system.admin(&path, body).await, charged);
    let placed = system
        .sandbox
        .state()
        .orders
        .values()
        .filter(|o| o.order.merchant_reference1.as_deref() == Some("S09003"))
        .count();
    assert_eq!(placed, 1);
    client.close().await.expect("close the browser");
    system.running.shutdown().await;
    database.drop_database().await;
}
