//! End to end: the storefront page in headless Chromium, the widget bundle, the gateway
//! (on SQLite) and the sandbox, each on its own loopback port.
//!
//! Needs the release bundle and a browser, so it is `#[ignore]`d in a plain `cargo test`;
//! `cargo xtask test` builds the bundle and runs it with `--ignored`.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::path::PathBuf;
use std::sync::Arc;

use fantoccini::Locator;
use klarna_gateway::odoo::OdooConfig;
use klarna_gateway::store::TransactionState;
use klarna_gateway::{Config, Gateway};
use klarna_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};
use support::{browser, start_driver, wait_for};
use tokio::net::TcpListener;

/// A fixture order a real Odoo 18 computed: EUR, German customer, 17 lines.
const ORDER: &str = "S00043";
const ORDER_TOTAL_MINOR: i64 = 70_028;

struct System {
    sandbox: Arc<Sandbox>,
    sandbox_url: String,
    gateway: Arc<Gateway>,
    gateway_url: String,
    _data: tempfile::TempDir,
}

async fn start_system(dist: PathBuf) -> System {
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
    let config = Config {
        database_url: format!("sqlite://{}", data.path().join("gateway.db").display()),
        klarna: klarna_client::Config::basic(
            sandbox_url.clone(),
            &sandbox_config.username,
            &sandbox_config.password,
        ),
        odoo: OdooConfig {
            url: sandbox_url.clone(),
            db: sandbox_config.odoo_db.clone(),
            login: sandbox_config.odoo_login.clone(),
            password: sandbox_config.odoo_password.clone(),
        },
        allowed_origins: vec![sandbox_url.clone()],
        surcharge_codes: Vec::new(),
    };
    let gateway = Arc::new(Gateway::new(config).await.expect("gateway starts"));
    tokio::spawn(klarna_gateway::serve(
        gateway_listener,
        gateway.clone(),
        std::future::pending(),
    ));
    System {
        sandbox,
        sandbox_url,
        gateway,
        gateway_url,
        _data: data,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the widget bundle and Chromium: run `cargo xtask test`"]
async fn a_shopper_pays_once_through_widget_gateway_and_sandbox() {
    let dist = PathBuf::from(
        std::env::var("KLARNA_WIDGET_DIST").expect("KLARNA_WIDGET_DIST: the built widget bundle"),
    );
    let system = start_system(dist).await;
    let driver = start_driver().await;
    let profile = tempfile::tempdir().expect("profile dir");
    let client = browser(&driver, profile.path(), 1280).await;

    client
        .goto(&format!("{}/shop/payment/{ORDER}", system.sandbox_url))
        .await
        .expect("open the checkout page");
    wait_for(&client, ".kw[data-phase=ready]").await;
    wait_for(&client, ".kw-container iframe").await;
    wait_for(&client, ".kw-pay:not([disabled])")
        .await
        .click()
        .await
        .expect("click Pay");

    // Klarna's dialog opens in its own iframe; the shopper confirms there.
    let dialog = wait_for(&client, "iframe#klarna-sandbox-authorize").await;
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
        .store
        .transactions()
        .await
        .expect("transactions");
    assert_eq!(transactions.len(), 1);
    let t = &transactions[0];
    assert_eq!(t.state, TransactionState::Authorized);
    assert_eq!(t.order_reference, ORDER);
    assert_eq!(
        t.klarna_order_id.as_deref(),
        Some(orders[0].order_id.as_str())
    );
    assert_eq!(t.amount, ORDER_TOTAL_MINOR);
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
        system
            .gateway
            .store
            .transactions()
            .await
            .expect("rows")
            .len(),
        1
    );

    client.close().await.expect("close the browser");
}
