//! The widget API over a real socket, against the sandbox's Klarna and Odoo.

use std::sync::Arc;

use klarna_gateway::odoo::OdooConfig;
use klarna_gateway::store::TransactionState;
use klarna_gateway::{Config, Gateway};
use klarna_sandbox::{Sandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ORDER: &str = "S00043";
/// S00043's portal access token, as Odoo generated it (fixtures/odoo18-orders.jsonl).
const TOKEN: &str = "b0222ee7-6d99-405f-9975-3e3e17dfd0c4";

struct Harness {
    sandbox: Arc<Sandbox>,
    sandbox_url: String,
    gateway: Arc<Gateway>,
    url: String,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

async fn harness() -> Harness {
    let sandbox_config = SandboxConfig::default();
    let (addr, sandbox) = klarna_sandbox::spawn(sandbox_config.clone())
        .await
        .expect("sandbox");
    let sandbox_url = format!("http://{addr}");
    let data = tempfile::tempdir().expect("tempdir");
    let config = Config {
        database_url: format!("sqlite://{}", data.path().join("gw.db").display()),
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
        allowed_origins: vec!["https://shop.example".into()],
        surcharge_codes: Vec::new(),
    };
    let (gw_addr, gateway) = klarna_gateway::spawn(config).await.expect("gateway");
    Harness {
        sandbox,
        sandbox_url,
        gateway,
        url: format!("http://{gw_addr}"),
        http: reqwest::Client::new(),
        _data: data,
    }
}

impl Harness {
    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn session(&self) -> Value {
        let (status, body) = self
            .post(
                "/klarna/session",
                &json!({"order_reference": ORDER, "access_token": TOKEN}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// What the SDK stand-in does when the shopper clicks "Buy" in Klarna's dialog.
    async fn approve(&self, session_id: &str) -> String {
        let r: Value = self
            .http
            .post(format!("{}/kp/frame/decision", self.sandbox_url))
            .json(&json!({"session_id": session_id, "category": "pay_later", "outcome": "approve"}))
            .send()
            .await
            .expect("approve")
            .json()
            .await
            .expect("json");
        r["authorization_token"].as_str().expect("token").to_owned()
    }
}

#[tokio::test]
async fn a_session_comes_from_odoos_amounts_and_is_reused_for_an_unchanged_cart() {
    let h = harness().await;
    let first = h.session().await;
    assert!(
        first["client_token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );
    // S00043's buyer belongs to Bäckerei Schmidt GmbH: a business purchase, which Klarna
    // (and the sandbox) offers as invoice only.
    assert_eq!(
        first["payment_method_categories"][0]["identifier"],
        "pay_later"
    );
    assert_eq!(
        first["payment_method_categories"].as_array().map(Vec::len),
        Some(1)
    );
    let second = h.session().await;
    assert_eq!(
        first["session_id"], second["session_id"],
        "same cart, same session"
    );
    assert_eq!(h.sandbox.state().sessions.len(), 1, "Klarna was asked once");
    let session = h
        .sandbox
        .state()
        .sessions
        .values()
        .next()
        .cloned()
        .expect("session");
    assert_eq!(
        session.body.order_amount, 70_028,
        "Odoo's amount_total in cents"
    );
    assert_eq!(session.body.purchase_currency, "EUR");
}

#[tokio::test]
async fn wrong_token_or_unknown_order_is_404_and_changes_nothing() {
    let h = harness().await;
    for body in [
        json!({"order_reference": ORDER, "access_token": "wrong"}),
        json!({"order_reference": "S99999", "access_token": TOKEN}),
    ] {
        let (status, answer) = h.post("/klarna/session", &body).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(answer["code"], "order_not_found");
    }
    assert_eq!(h.gateway.store.session_count().await.expect("count"), 0);
    assert!(h.sandbox.state().sessions.is_empty());
}

#[tokio::test]
async fn an_order_klarna_would_refuse_is_422_with_its_fields_and_klarna_is_not_called() {
    let h = harness().await;
    // S00037 is a SEK order for a customer in Austria: not a Klarna market combination.
    let (status, answer) = h
        .post(
            "/klarna/session",
            &json!({"order_reference": "S00037", "access_token": "ceee7cd5-7afa-4cb4-9efc-396c2dda6250"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "order_not_payable");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("purchase_currency")),
        "{answer}"
    );
    assert!(
        h.sandbox.state().sessions.is_empty(),
        "nothing was sent to Klarna"
    );
    assert_eq!(h.gateway.store.session_count().await.expect("count"), 0);
}

#[tokio::test]
async fn bad_requests_name_the_problem() {
    let h = harness().await;
    let (status, answer) = h
        .post("/klarna/session", &json!({"order_reference": ORDER}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("access_token")),
        "{answer}"
    );
    let (status, answer) = h
        .post(
            "/klarna/session",
            &json!({"order_reference": "", "access_token": TOKEN}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["field"], "order_reference");
    // An amount from the browser is not part of the contract and is refused.
    let (status, answer) = h
        .post(
            "/klarna/session",
            &json!({"order_reference": ORDER, "access_token": TOKEN, "order_amount": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("order_amount")),
        "{answer}"
    );
    let r = h
        .http
        .post(format!("{}/klarna/session", h.url))
        .header("content-type", "application/json")
        .body(vec![b' '; 64 * 1024])
        .send()
        .await
        .expect("oversized");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(h.gateway.store.session_count().await.expect("count"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_submits_place_one_klarna_order() {
    let h = harness().await;
    let session = h.session().await;
    let session_id = session["session_id"].as_str().expect("id").to_owned();
    let token = h.approve(&session_id).await;
    let body = json!({"session_id": session_id, "authorization_token": token});
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (http, url, body) = (
                h.http.clone(),
                format!("{}/klarna/authorize", h.url),
                body.clone(),
            );
            tokio::spawn(async move {
                let r = http.post(url).json(&body).send().await.expect("request");
                (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("task"));
    }
    let mut order_ids = std::collections::BTreeSet::new();
    for (status, answer) in &answers {
        match *status {
            StatusCode::OK => {
                assert_eq!(answer["outcome"], "authorized");
                order_ids.insert(answer["klarna_order_id"].to_string());
            }
            StatusCode::CONFLICT => assert_eq!(answer["code"], "authorization_in_progress"),
            other => panic!("unexpected {other}: {answer}"),
        }
    }
    assert_eq!(order_ids.len(), 1, "every success names the same order");
    assert_eq!(h.sandbox.state().orders.len(), 1);
    let rows = h.gateway.store.transactions().await.expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, TransactionState::Authorized);
    assert_eq!(rows[0].amount, 70_028);
    // And afterwards the same token gets the same answer, without Klarna.
    let (status, again) = h.post("/klarna/authorize", &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        again["klarna_order_id"].to_string(),
        *order_ids.iter().next().expect("id")
    );
    assert_eq!(h.sandbox.state().orders.len(), 1);
}

#[tokio::test]
async fn an_unknown_authorization_token_is_gone_and_leaves_no_claim() {
    let h = harness().await;
    let session = h.session().await;
    let (status, answer) = h
        .post(
            "/klarna/authorize",
            &json!({"session_id": session["session_id"], "authorization_token": "not-a-token"}),
        )
        .await;
    assert_eq!(status, StatusCode::GONE, "{answer}");
    assert_eq!(answer["code"], "authorization_expired");
    assert!(
        h.gateway
            .store
            .transactions()
            .await
            .expect("rows")
            .is_empty()
    );
    // The shopper can still authorize afterwards.
    let token = h.approve(session["session_id"].as_str().expect("id")).await;
    let (status, _) = h
        .post(
            "/klarna/authorize",
            &json!({"session_id": session["session_id"], "authorization_token": token}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn only_configured_storefronts_pass_cors() {
    let h = harness().await;
    let preflight = |origin: &'static str| {
        h.http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/klarna/session", h.url),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("https://shop.example").await.expect("preflight");
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://shop.example")
    );
    let other = preflight("https://evil.example").await.expect("preflight");
    assert!(other.headers().get("access-control-allow-origin").is_none());
}
