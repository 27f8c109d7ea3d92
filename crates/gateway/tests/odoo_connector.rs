//! The Odoo connector against the sandbox's Odoo, whose records are the project's
//! fixtures split back into Odoo's models: reading each order over JSON-RPC must give the
//! mapping exactly what the fixture itself gives it.

use klarna_gateway::odoo::{OdooClient, OdooConfig, OdooError, PasswordSource};
use klarna_sandbox::SandboxConfig;
use klarna_types::mapping::{MappingOptions, map_unvalidated};
use klarna_types::odoo::OrderDocument;

const FIXTURES: &str = include_str!("../../../fixtures/odoo18-orders.jsonl");
const DEMO_ORDERS: &str = include_str!("../../sandbox/data/demo-orders.jsonl");

async fn client(password: &str) -> OdooClient {
    let config = SandboxConfig::default();
    let (addr, _sandbox) = klarna_sandbox::spawn(config.clone())
        .await
        .expect("sandbox");
    OdooClient::new(OdooConfig {
        url: format!("http://{addr}"),
        db: config.odoo_db,
        login: config.odoo_login,
        password: PasswordSource::fixed(password),
    })
    .expect("client")
}

#[tokio::test]
async fn every_fixture_order_reads_back_to_the_same_klarna_body() {
    let odoo = client(&SandboxConfig::default().odoo_password).await;
    let opts = MappingOptions::default();
    let mut count = 0;
    for line in DEMO_ORDERS.lines().chain(FIXTURES.lines()) {
        let fixture: OrderDocument = serde_json::from_str(line).expect("fixture");
        let read = odoo
            .read_order(&fixture.order.name)
            .await
            .expect("read over JSON-RPC")
            .expect("the order exists");
        assert_eq!(read.order.amount_total, fixture.order.amount_total);
        assert_eq!(read.order.access_token, fixture.order.access_token);
        let direct = map_unvalidated(&fixture, &opts).expect("fixture maps");
        let via_rpc = map_unvalidated(&read, &opts).expect("read order maps");
        assert_eq!(via_rpc, direct, "{}", fixture.order.name);
        count += 1;
    }
    assert_eq!(count, 63);
}

#[tokio::test]
async fn unknown_orders_are_none_and_a_wrong_password_is_a_login_error() {
    let odoo = client(&SandboxConfig::default().odoo_password).await;
    assert!(odoo.read_order("S99999").await.expect("read").is_none());
    let wrong = client("not-the-password").await;
    assert!(matches!(
        wrong.read_order("S00043").await,
        Err(OdooError::Login { .. })
    ));
}
