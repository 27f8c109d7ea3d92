//! The sandbox's stand-in for Klarna's JS SDK, in headless Chromium: every authorize
//! outcome Klarna's SDK can give, `finalize`, the e-mail scenarios, and its named
//! exceptions — with the same callback shapes as Klarna's.
//!
//! `#[ignore]`d in a plain `cargo test` (it needs Chromium); `cargo xtask test` runs it.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::time::Duration;

use fantoccini::{Client, Locator};
use klarna_sandbox::SandboxConfig;
use serde_json::{Value, json};
use support::{browser, start_driver, wait_for};

struct Harness {
    url: String,
    config: SandboxConfig,
    http: reqwest::Client,
}

fn body(email: &str) -> Value {
    json!({
        "purchase_country": "SE", "purchase_currency": "SEK", "locale": "sv-SE",
        "order_amount": 10000, "order_tax_amount": 2000,
        "order_lines": [{"type": "physical", "name": "Chair", "quantity": 1, "unit_price": 10000,
                         "tax_rate": 2500, "total_amount": 10000, "total_tax_amount": 2000}],
        "billing_address": {"email": email, "country": "SE"},
    })
}

impl Harness {
    async fn session(&self, email: &str) -> String {
        let created: Value = self
            .http
            .post(format!("{}/payments/v1/sessions", self.url))
            .basic_auth(&self.config.username, Some(&self.config.password))
            .json(&body(email))
            .send()
            .await
            .expect("session")
            .json()
            .await
            .expect("json");
        created["client_token"]
            .as_str()
            .expect("client token")
            .to_owned()
    }

    async fn place(&self, token: &str, email: &str) -> reqwest::StatusCode {
        self.http
            .post(format!(
                "{}/payments/v1/authorizations/{token}/order",
                self.url
            ))
            .basic_auth(&self.config.username, Some(&self.config.password))
            .json(&body(email))
            .send()
            .await
            .expect("order")
            .status()
    }
}

/// Runs `script` in the page and waits for it to set `window.__done`.
async fn run(client: &Client, script: &str) -> Value {
    client
        .execute(&format!("window.__done = undefined; {script}"), vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"));
    done(client, script).await
}

/// Waits for the page to set `window.__done`.
async fn done(client: &Client, what: &str) -> Value {
    for _ in 0..400 {
        let v = client
            .execute(
                "return window.__done === undefined ? null : window.__done;",
                vec![],
            )
            .await
            .expect("poll");
        if !v.is_null() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no result from: {what}");
}

async fn init_and_load(client: &Client, token: &str) -> Value {
    client
        .goto(&format!(
            "{}/_sandbox/sdk-harness",
            client
                .current_url()
                .await
                .expect("url")
                .origin()
                .ascii_serialization()
        ))
        .await
        .expect("reload");
    run(
        client,
        &format!(
            "Klarna.Payments.init({{client_token: {token:?}}});
             Klarna.Payments.on('heightChanged', h => window.__height = h);
             Klarna.Payments.load({{container: '#c', payment_method_category: 'pay_later'}}, {{}}, r => window.__done = r);"
        ),
    )
    .await
}

/// Opens Klarna's dialog with `call` and clicks `button` in it; returns the callback value.
async fn dialog(client: &Client, call: &str, frame: &str, button: &str) -> Value {
    client
        .execute(&format!("window.__done = undefined; {call}"), vec![])
        .await
        .expect("open dialog");
    wait_for(client, &format!("iframe#klarna-sandbox-{frame}"))
        .await
        .enter_frame()
        .await
        .expect("enter dialog");
    wait_for(client, &format!("#klarna-sandbox-{button}"))
        .await
        .click()
        .await
        .expect("click");
    client.enter_parent_frame().await.expect("back");
    done(client, call).await
}

const AUTHORIZE: &str = "Klarna.Payments.authorize({payment_method_category: 'pay_later'}, {}, r => window.__done = r);";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: run `cargo xtask test`"]
async fn every_authorize_outcome_and_named_exception() {
    let config = SandboxConfig::default();
    let (addr, sandbox) = klarna_sandbox::spawn(config.clone())
        .await
        .expect("sandbox");
    let h = Harness {
        url: format!("http://{addr}"),
        config,
        http: reqwest::Client::new(),
    };
    let driver = start_driver().await;
    let profile = tempfile::tempdir().expect("profile");
    let client = browser(&driver, profile.path(), 1024).await;
    client
        .goto(&format!("{}/_sandbox/sdk-harness", h.url))
        .await
        .expect("harness");

    // Approved: a token the REST API accepts for exactly this cart, once.
    let token = h.session("anna@example.se").await;
    assert_eq!(
        init_and_load(&client, &token).await,
        json!({"show_form": true})
    );
    let height = client
        .execute("return window.__height;", vec![])
        .await
        .expect("height");
    assert!(
        height.as_u64().is_some_and(|h| h > 0),
        "heightChanged gave {height}"
    );
    assert!(
        client.find(Locator::Css("#c iframe")).await.is_ok(),
        "the form is in the container"
    );
    let approved = dialog(&client, AUTHORIZE, "authorize", "approve").await;
    assert_eq!(
        (approved["approved"].clone(), approved["show_form"].clone()),
        (json!(true), json!(true))
    );
    let auth = approved["authorization_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    assert_eq!(h.place(&auth, "anna@example.se").await, 200);
    assert_eq!(sandbox.state().orders.len(), 1);
    assert_eq!(
        h.place(&auth, "anna@example.se").await,
        404,
        "a token places one order"
    );

    // Declined: hide Klarna.
    let token = h.session("anna@example.se").await;
    init_and_load(&client, &token).await;
    assert_eq!(
        dialog(&client, AUTHORIZE, "authorize", "decline").await,
        json!({"approved": false, "show_form": false})
    );

    // Fields to fix: keep the form, name the fields.
    let token = h.session("anna@example.se").await;
    init_and_load(&client, &token).await;
    let invalid = dialog(&client, AUTHORIZE, "authorize", "invalid").await;
    assert_eq!(
        (invalid["approved"].clone(), invalid["show_form"].clone()),
        (json!(false), json!(true))
    );
    assert!(
        invalid["error"]["invalid_fields"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "{invalid}"
    );

    // finalize_required with auto_finalize: false, then finalize gives the token.
    let token = h.session("anna@example.se").await;
    init_and_load(&client, &token).await;
    let pending = dialog(
        &client,
        "Klarna.Payments.authorize({payment_method_category: 'pay_later', auto_finalize: false}, {}, r => window.__done = r);",
        "authorize",
        "approve",
    )
    .await;
    assert_eq!(
        pending,
        json!({"approved": true, "show_form": true, "finalize_required": true})
    );
    let finalized = dialog(
        &client,
        "Klarna.Payments.finalize({payment_method_category: 'pay_later'}, {}, r => window.__done = r);",
        "finalize",
        "approve",
    )
    .await;
    let auth = finalized["authorization_token"]
        .as_str()
        .expect("token after finalize")
        .to_owned();
    assert_eq!(h.place(&auth, "anna@example.se").await, 200);

    // Playground scenario: +denied is never approved, whatever the shopper clicks.
    let token = h.session("anna@example.se").await;
    init_and_load(&client, &token).await;
    let denied = dialog(
        &client,
        "Klarna.Payments.authorize({payment_method_category: 'pay_later'}, {billing_address: {email: 'anna+denied@example.se'}}, r => window.__done = r);",
        "authorize",
        "approve",
    )
    .await;
    assert_eq!(denied, json!({"approved": false, "show_form": false}));

    // Named exceptions, with Klarna's names.
    let names = client
        .execute(
            "const name = f => { try { f(); return 'none'; } catch (e) { return e.name; } };
             const out = {};
             out.token = name(() => Klarna.Payments.init({client_token: 'not-a-jwt'}));
             out.event = name(() => Klarna.Payments.on('bogus', () => {}));
             return out;",
            vec![],
        )
        .await
        .expect("exceptions");
    assert_eq!(
        names,
        json!({"token": "InvalidClientTokenError", "event": "EventNotSupportedError"})
    );
    client
        .goto(&format!("{}/_sandbox/sdk-harness", h.url))
        .await
        .expect("fresh page");
    let token = h.session("anna@example.se").await;
    let names = client
        .execute(
            &format!(
                "const name = f => {{ try {{ f(); return 'none'; }} catch (e) {{ return e.name; }} }};
                 const out = {{}};
                 out.not_initialized = name(() => Klarna.Payments.load({{container: '#c', payment_method_category: 'pay_later'}}, {{}}, () => {{}}));
                 Klarna.Payments.init({{client_token: {token:?}}});
                 out.not_loaded = name(() => Klarna.Payments.authorize({{payment_method_category: 'pay_later'}}, {{}}, () => {{}}));
                 out.container = name(() => Klarna.Payments.load({{container: '#missing', payment_method_category: 'pay_later'}}, {{}}, () => {{}}));
                 out.category = name(() => Klarna.Payments.load({{container: '#c'}}, {{}}, () => {{}}));
                 out.review = name(() => Klarna.Payments.loadPaymentReview({{container: '#c'}}, () => {{}}));
                 return out;"
            ),
            vec![],
        )
        .await
        .expect("exceptions");
    assert_eq!(
        names,
        json!({
            "not_initialized": "ApplicationNotInitializedError",
            "not_loaded": "ApplicationNotLoadedError",
            "container": "InvalidContainerSelectorError",
            "category": "PaymentMethodCategoryNotProvidedError",
            "review": "OperationNotSupportedError",
        })
    );
    client.close().await.expect("close");
}
