//! Shared by the client's integration tests: a sandbox, a client for it, and the
//! shopper's click in Klarna's dialog.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use klarna_client::{Config, KlarnaClient, RetryPolicy};
use klarna_sandbox::{Sandbox, SandboxConfig};
use klarna_types::klarna::{Address, LineType, OrderBody, OrderLine};

pub struct Setup {
    pub sandbox: Arc<Sandbox>,
    pub url: String,
    pub config: SandboxConfig,
}

pub async fn sandbox_with(config: SandboxConfig) -> Setup {
    let (addr, sandbox) = klarna_sandbox::spawn(config.clone())
        .await
        .expect("sandbox");
    Setup {
        sandbox,
        url: format!("http://{addr}"),
        config,
    }
}

pub async fn sandbox() -> Setup {
    sandbox_with(SandboxConfig::default()).await
}

/// Retries fast enough for tests.
pub fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(40),
        max_delay: Duration::from_millis(400),
        max_elapsed: Duration::from_secs(10),
    }
}

impl Setup {
    pub fn config(&self) -> Config {
        let mut c = Config::basic(&self.url, &self.config.username, &self.config.password);
        c.retry = quick();
        c.timeout = Duration::from_secs(5);
        c
    }

    pub fn client(&self) -> Arc<KlarnaClient> {
        KlarnaClient::new(self.config()).expect("client")
    }

    /// What the SDK stand-in's dialog does when the shopper picks `outcome`.
    pub async fn decide(&self, session_id: &str, outcome: &str) -> serde_json::Value {
        reqwest::Client::new()
            .post(format!("{}/kp/frame/decision", self.url))
            .json(&serde_json::json!({"session_id": session_id, "category": "pay_later", "outcome": outcome}))
            .send()
            .await
            .expect("decision")
            .json()
            .await
            .expect("json")
    }

    pub async fn approve(&self, session_id: &str) -> String {
        let answer = self.decide(session_id, "approve").await;
        answer["authorization_token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

    pub async fn advance(&self, seconds: u64) {
        reqwest::Client::new()
            .post(format!("{}/_sandbox/clock", self.url))
            .json(&serde_json::json!({"seconds": seconds}))
            .send()
            .await
            .expect("advance the clock");
    }

    pub async fn fault(&self, op: &str, spec: serde_json::Value) {
        let r = reqwest::Client::new()
            .put(format!("{}/_sandbox/faults/{op}", self.url))
            .json(&spec)
            .send()
            .await
            .expect("set fault");
        assert!(r.status().is_success(), "fault accepted");
    }
}

/// A Swedish order of 2 × 500.00 SEK at 25 % with shipping 49.00 (25 %).
pub fn order_body(email: &str) -> OrderBody {
    let line = |name: &str, kind, quantity, unit: i64| OrderLine {
        kind: Some(kind),
        reference: Some(name.to_lowercase()),
        name: name.to_owned(),
        quantity,
        quantity_unit: None,
        unit_price: unit,
        tax_rate: 2500,
        total_amount: quantity * unit,
        total_discount_amount: 0,
        total_tax_amount: quantity * unit / 5,
    };
    let lines = vec![
        line("Chair", LineType::Physical, 2, 50_000),
        line("Shipping", LineType::ShippingFee, 1, 4_900),
    ];
    OrderBody {
        purchase_country: "SE".into(),
        purchase_currency: "SEK".into(),
        locale: Some("sv-SE".into()),
        order_amount: lines.iter().map(|l| l.total_amount).sum(),
        order_tax_amount: lines.iter().map(|l| l.total_tax_amount).sum(),
        order_lines: lines,
        billing_address: Some(Address {
            given_name: Some("Anna".into()),
            family_name: Some("Andersson-Secretsson".into()),
            email: Some(email.into()),
            street_address: Some("Hemligvägen 13".into()),
            postal_code: Some("114 55".into()),
            city: Some("Stockholm".into()),
            phone: Some("+46701740615".into()),
            country: Some("SE".into()),
            ..Address::default()
        }),
        shipping_address: None,
        customer: None,
        merchant_reference1: Some("S00001".into()),
        merchant_reference2: None,
        intent: Some("buy".into()),
        merchant_urls: None,
        auto_capture: None,
    }
}
