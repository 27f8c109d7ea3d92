//! Klarna calling the merchant, as the sandbox does it: signed webhooks with Klarna's
//! headers and retry schedule, key rotation, classic fraud-decision callbacks, and the
//! `trigger` command.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use klarna_sandbox::{SandboxConfig, SigningKey};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    /// Answer 500 to this many requests first.
    fail_first: Arc<Mutex<u32>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    r.seen.lock().expect("seen").push((headers, body));
    let mut fail = r.fail_first.lock().expect("fail");
    if *fail > 0 {
        *fail -= 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn receiver(fail_first: u32) -> (String, Receiver) {
    let r = Receiver {
        fail_first: Arc::new(Mutex::new(fail_first)),
        ..Receiver::default()
    };
    let app = Router::new()
        .route("/{*path}", post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, r)
}

fn order_body(email: &str, notification: Option<String>) -> Value {
    json!({
        "purchase_country": "SE", "purchase_currency": "SEK", "locale": "sv-SE",
        "order_amount": 10000, "order_tax_amount": 2000,
        "order_lines": [{"type": "physical", "name": "Chair", "quantity": 1, "unit_price": 10000,
                         "tax_rate": 2500, "total_amount": 10000, "total_tax_amount": 2000}],
        "billing_address": {"email": email, "country": "SE"},
        "merchant_urls": {"notification": notification},
    })
}

/// Places an order through the REST API and the SDK's decision endpoint.
async fn place(url: &str, config: &SandboxConfig, body: &Value) -> String {
    let http = reqwest::Client::new();
    let session: Value = http
        .post(format!("{url}/payments/v1/sessions"))
        .basic_auth(&config.username, Some(&config.password))
        .json(body)
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    let decision: Value = http
        .post(format!("{url}/kp/frame/decision"))
        .json(&json!({"session_id": session["session_id"], "category": "pay_later", "outcome": "approve"}))
        .send()
        .await
        .expect("decision")
        .json()
        .await
        .expect("json");
    let token = decision["authorization_token"].as_str().expect("token");
    let order: Value = http
        .post(format!("{url}/payments/v1/authorizations/{token}/order"))
        .basic_auth(&config.username, Some(&config.password))
        .json(body)
        .send()
        .await
        .expect("order")
        .json()
        .await
        .expect("json");
    order["order_id"].as_str().expect("order id").to_owned()
}

async fn wait_for(r: &Receiver, n: usize) -> Vec<(HeaderMap, Bytes)> {
    for _ in 0..300 {
        if r.seen.lock().expect("seen").len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    r.seen.lock().expect("seen").clone()
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Runs the sandbox binary without blocking the runtime that serves the sandbox.
async fn sandbox_cli(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_klarna-sandbox"))
            .args(args)
            .output()
            .expect("run klarna-sandbox")
    })
    .await
    .expect("blocking task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_are_retried_until_acknowledged_and_follow_key_rotation() {
    let (hook_url, r) = receiver(2).await;
    let config = SandboxConfig {
        webhook_url: Some(format!("{hook_url}/klarna/webhook")),
        signing_keys: vec![
            SigningKey {
                id: "key-1".into(),
                secret: "first-secret".into(),
            },
            SigningKey {
                id: "key-2".into(),
                secret: "second-secret".into(),
            },
        ],
        webhook_time_scale: 0.001,
        ..SandboxConfig::default()
    };
    let (addr, sandbox) = klarna_sandbox::spawn(config.clone())
        .await
        .expect("sandbox");
    let url = format!("http://{addr}");
    let order_id = place(&url, &config, &order_body("anna@example.se", None)).await;

    // Two 500s, then Klarna's third attempt (after 10 s and 2 min, scaled) is acknowledged.
    let seen = wait_for(&r, 3).await;
    assert_eq!(seen.len(), 3);
    let (headers, body) = &seen[2];
    assert_eq!(seen[0].1, *body, "every retry sends the same bytes");
    assert_eq!(headers["klarna-signing-key-id"], "key-1");
    assert_eq!(
        headers["klarna-signature"].to_str().expect("ascii"),
        hmac_hex("first-secret", body)
    );
    let event: Value = serde_json::from_slice(body).expect("json");
    assert_eq!(
        event["metadata"]["event_type"],
        "payment.request.state-change.authorized"
    );
    assert_eq!(event["payload"]["order_id"], order_id.as_str());
    assert!(
        event["metadata"]["event_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    let delivery = sandbox
        .webhooks
        .deliveries()
        .into_iter()
        .next()
        .expect("logged");
    assert_eq!(
        (delivery.statuses.as_slice(), delivery.delivered),
        (&[500, 500, 200][..], true)
    );

    // Rotation: the next event is signed with key-2.
    let http = reqwest::Client::new();
    http.post(format!("{url}/_sandbox/webhooks/signing-key"))
        .json(&json!({"id": "key-2"}))
        .send()
        .await
        .expect("rotate");
    let out = sandbox_cli(vec![
        "trigger".into(),
        "completed".into(),
        "--order".into(),
        order_id.to_string(),
        "--sandbox-url".into(),
        url.clone(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = wait_for(&r, 4).await;
    let (headers, body) = &seen[3];
    assert_eq!(headers["klarna-signing-key-id"], "key-2");
    assert_eq!(
        headers["klarna-signature"].to_str().expect("ascii"),
        hmac_hex("second-secret", body)
    );
    let event: Value = serde_json::from_slice(body).expect("json");
    assert_eq!(
        event["metadata"]["event_type"],
        "payment.request.state-change.completed"
    );

    // An unknown order is refused by trigger, with the reason.
    let out = sandbox_cli(vec![
        "trigger".into(),
        "completed".into(),
        "--order".into(),
        "no-such-order".to_string(),
        "--sandbox-url".into(),
        url.clone(),
    ])
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NO_SUCH_ORDER"));
}

#[tokio::test]
async fn a_pending_order_gets_its_fraud_decision_as_a_classic_callback() {
    let (hook_url, r) = receiver(0).await;
    let config = SandboxConfig::default();
    let (addr, _sandbox) = klarna_sandbox::spawn(config.clone())
        .await
        .expect("sandbox");
    let url = format!("http://{addr}");
    let body = order_body(
        "anna+pend-reject-5@example.se",
        Some(format!("{hook_url}/klarna/notify/{{order.id}}")),
    );
    let order_id = place(&url, &config, &body).await;
    reqwest::Client::new()
        .post(format!("{url}/_sandbox/clock"))
        .json(&json!({"seconds": 300}))
        .send()
        .await
        .expect("advance");
    let seen = wait_for(&r, 1).await;
    let (headers, body) = &seen[0];
    assert!(
        headers.get("klarna-signature").is_none(),
        "classic callbacks are unsigned"
    );
    let event: Value = serde_json::from_slice(body).expect("json");
    assert_eq!(event["event_type"], "FRAUD_RISK_REJECTED");
    assert_eq!(event["order_id"], order_id.as_str());
}

#[test]
fn help_explains_every_switch() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_klarna-sandbox"))
        .arg("--help")
        .output()
        .expect("help");
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--username",
        "--password",
        "--fault",
        "--rate-limits",
        "--webhook-url",
        "--signing-key",
        "--webhook-time-scale",
        "trigger",
    ] {
        assert!(text.contains(flag), "--help does not mention {flag}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_klarna-sandbox"))
        .args(["--fault", "capture:bogus=1"])
        .output()
        .expect("bad fault");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown fault setting"));
}

#[tokio::test]
async fn a_burst_to_several_urls_sends_every_event_to_each_and_refuses_bad_urls() {
    let (first, r1) = receiver(0).await;
    let (second, r2) = receiver(0).await;
    let config = SandboxConfig {
        webhook_url: Some(format!("{first}/klarna/webhook")),
        signing_keys: vec![SigningKey {
            id: "key-1".into(),
            secret: "first-secret".into(),
        }],
        webhook_time_scale: 0.001,
        ..SandboxConfig::default()
    };
    let (addr, _sandbox) = klarna_sandbox::spawn(config.clone())
        .await
        .expect("sandbox");
    let url = format!("http://{addr}");
    place(&url, &config, &order_body("anna@example.se", None)).await;
    // The order's own `authorized` event went to the configured URL.
    assert_eq!(wait_for(&r1, 1).await.len(), 1);
    let http = reqwest::Client::new();
    let urls = [format!("{first}/a"), format!("{second}/b")];
    let r: Value = http
        .post(format!("{url}/_sandbox/webhooks/burst"))
        .json(&json!({"count": 3, "urls": urls}))
        .send()
        .await
        .expect("burst")
        .json()
        .await
        .expect("json");
    let ids: Vec<String> = r["event_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    let event_ids = |seen: Vec<(HeaderMap, Bytes)>| -> Vec<String> {
        let mut ids: Vec<String> = seen
            .iter()
            .map(|(_, b)| {
                let v: Value = serde_json::from_slice(b).expect("json");
                v["metadata"]["event_id"].as_str().expect("id").to_owned()
            })
            .collect();
        ids.sort();
        ids
    };
    let mut expected = ids.clone();
    expected.sort();
    let at_second = event_ids(wait_for(&r2, 3).await);
    assert_eq!(at_second, expected, "every event reached the second URL");
    let at_first = event_ids(wait_for(&r1, 4).await);
    assert!(
        expected.iter().all(|id| at_first.contains(id)),
        "and the first"
    );

    for (body, named) in [
        (
            json!({"count": 1, "urls": ["ftp://example.com/x"]}),
            "urls[0]",
        ),
        (
            json!({"count": 1, "urls": vec![format!("{first}/x"); 9]}),
            "at most 8",
        ),
    ] {
        let r = http
            .post(format!("{url}/_sandbox/webhooks/burst"))
            .json(&body)
            .send()
            .await
            .expect("burst");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let text = r.text().await.expect("text");
        assert!(text.contains(named), "{text}");
    }
}
