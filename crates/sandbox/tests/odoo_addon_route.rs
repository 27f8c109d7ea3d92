//! The stand-in for the payment_klarna addon's signed route answers as the real addon does
//! against Odoo 18 (`odoo/payment_klarna/tests/test_klarna.py` holds the same cases): the
//! signature is checked over the raw bytes before anything is parsed, a malformed one is a
//! 401 with `{code, message}` (never a crash), and no answer repeats a value of the request.

use klarna_sandbox::SandboxConfig;
use klarna_types::odoo_signature::sign_update;
use serde_json::{Value, json};

async fn post(url: &str, timestamp: &str, signature: &[u8], body: &[u8]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{url}/payment/klarna/gateway"))
        .header("content-type", "application/json")
        .header("X-Klarna-Gateway-Timestamp", timestamp)
        .header(
            "X-Klarna-Gateway-Signature",
            reqwest::header::HeaderValue::from_bytes(signature).expect("header bytes"),
        )
        .body(body.to_vec())
        .send()
        .await
        .expect("post");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

#[tokio::test]
async fn the_addon_route_checks_the_signature_first_and_echoes_nothing() {
    let config = SandboxConfig::default();
    let (addr, _sandbox) = klarna_sandbox::spawn(config.clone())
        .await
        .expect("sandbox");
    let url = format!("http://{addr}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    let ts: i64 = now.parse().expect("seconds");
    let secret = &config.odoo_shared_secret;
    let signed = |body: &[u8]| sign_update(secret, ts, body).into_bytes();

    // Non-ASCII (Latin-1 bytes) in the signature: a clean 401.
    let body = br#"{"event_id":"e-1","event":"authorized","reference":"S-NOPE-4711"}"#;
    let (status, answer) = post(&url, &now, "\u{e9}".repeat(64).as_bytes(), body).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("unauthorized"))
    );

    // A signature of the right form over other bytes: refused before the body is read, so
    // a body that is not even JSON is still a 401, not a 400.
    let (status, answer) = post(&url, &now, &signed(b"{}"), b"not json").await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not match"))
    );

    // Signed but not JSON, or JSON without the two required fields.
    let (status, answer) = post(&url, &now, &signed(b"not json"), b"not json").await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("malformed_json"))
    );
    let shapeless = br#"{"event_id":"e-2","event":7}"#;
    let (status, answer) = post(&url, &now, &signed(shapeless), shapeless).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("wrong_shape"))
    );

    // A stale timestamp, correctly signed.
    let old = (ts - 301).to_string();
    let stale = sign_update(secret, ts - 301, body).into_bytes();
    let (status, _) = post(&url, &old, &stale, body).await;
    assert_eq!(status, 401);

    // Signed, well formed, for an order Odoo does not have: 422, and the answer does not
    // repeat the reference (or the unknown event name).
    let (status, answer) = post(&url, &now, &signed(body), body).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (422, Some("not_applied"))
    );
    assert!(!answer.to_string().contains("S-NOPE-4711"), "{answer}");
    let odd = json!({"event_id": "e-3", "event": "teleported-XYZ", "reference": "S00001"});
    let odd = serde_json::to_vec(&odd).expect("json");
    let (status, answer) = post(&url, &now, &signed(&odd), &odd).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (422, Some("not_applied"))
    );
    assert!(!answer.to_string().contains("teleported"), "{answer}");
}

#[tokio::test]
async fn a_signed_ping_answers_the_addons_version_and_a_wrongly_signed_one_is_refused() {
    let config = SandboxConfig::default();
    let (addr, _sandbox) = klarna_sandbox::spawn(config.clone())
        .await
        .expect("sandbox");
    let url = format!("http://{addr}");
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let ts = i64::try_from(ts).expect("seconds");
    let ping = br#"{"event":"ping"}"#;
    let signed = sign_update(&config.odoo_shared_secret, ts, ping).into_bytes();
    let (status, answer) = post(&url, &ts.to_string(), &signed, ping).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"status": "pong", "version": "18.0.1.3.0"}));
    // The stand-in's version is the addon's manifest's.
    let manifest = include_str!("../../../odoo/payment_klarna/__manifest__.py");
    assert!(manifest.contains("'version': '18.0.1.3.0'"), "bump both");

    let wrong = sign_update("not-the-secret", ts, ping).into_bytes();
    let (status, answer) = post(&url, &ts.to_string(), &wrong, ping).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert!(answer.get("version").is_none());
}
