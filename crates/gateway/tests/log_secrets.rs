//! Every log line of a representative run — every route, accepted and refused, a payment
//! paid and captured, on SQLite and PostgreSQL — scanned for every configured secret and
//! token. Its own test binary, because it installs the process's log subscriber.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{
    ADMIN_TOKEN, CLASSIC_TOKEN, ORDER, TOKEN, WEBHOOK_KEYS, databases, system_with_webhooks,
};
use hmac::{Hmac, Mac};
use klarna_gateway::config::LogFormat;
use klarna_sandbox::SandboxConfig;
use serde_json::json;
use sha2::Sha256;

/// The log lines, as production writes them (JSON with the request span on each line).
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn no_secret_reaches_the_logs_whatever_the_routes_that_hold_one_are_sent() {
    let lines = Lines::default();
    let writer = lines.clone();
    assert!(
        klarna_gateway::logs::init(LogFormat::Json, move || writer.clone()),
        "the only subscriber of this binary"
    );
    let sandbox = SandboxConfig {
        password: "klarna-password-5b1e".into(),
        oauth_client_secret: "oauth-secret-8c2d".into(),
        odoo_password: "odoo-password-3f9a".into(),
        odoo_shared_secret: "odoo-shared-secret-7d4e".into(),
        ..SandboxConfig::default()
    };
    let mut secrets: Vec<String> = vec![
        sandbox.password.clone(),
        sandbox.oauth_client_secret.clone(),
        sandbox.odoo_password.clone(),
        sandbox.odoo_shared_secret.clone(),
        ADMIN_TOKEN.into(),
        CLASSIC_TOKEN.into(),
        TOKEN.into(),
    ];
    secrets.extend(WEBHOOK_KEYS.iter().map(|(_, s)| (*s).to_owned()));

    for db in databases().await {
        let s = system_with_webhooks(&db, sandbox.clone(), |_| {}).await;
        let url = |path: &str| format!("{}{path}", s.url);
        let post = |path: &str, content_type: &str, body: Vec<u8>| {
            s.http
                .post(url(path))
                .header("content-type", content_type)
                .body(body)
                .send()
        };
        // The widget: a payment start to end, then refusals.
        let session = s.session(ORDER, TOKEN).await;
        let auth_token = s
            .approve(session["session_id"].as_str().expect("session id"))
            .await;
        secrets.push(auth_token.clone());
        let order_id = s.paid(ORDER, TOKEN).await;
        s.settle().await;
        post(
            "/klarna/session",
            "application/json",
            serde_json::to_vec(&json!({"order_reference": ORDER, "access_token": "wrong"}))
                .expect("json"),
        )
        .await
        .expect("send");
        post(
            "/klarna/authorize",
            "text/plain",
            auth_token.clone().into_bytes(),
        )
        .await
        .expect("send");
        // The admin API: a capture, a wrong token, a stale signature.
        let (status, body) = s
            .admin_keyed(
                &format!("/admin/payments/{order_id}/captures"),
                "log-scan-capture",
                &json!({"amount": 100}),
            )
            .await;
        assert!(status.is_success(), "{body}");
        s.http
            .get(url("/admin/status"))
            .bearer_auth(format!("{ADMIN_TOKEN}x"))
            .send()
            .await
            .expect("send");
        s.http
            .post(url("/admin/reconcile"))
            .header("x-klarna-gateway-signature", "v1=00")
            .header("x-klarna-gateway-timestamp", "1")
            .send()
            .await
            .expect("send");
        // Webhooks: signed right and wrong.
        let event = serde_json::to_vec(&json!({
            "metadata": {"event_type": "payment.request.state-change.completed", "event_id": "log-1",
                         "occurred_at": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()},
            "payload": {"order_id": order_id},
        }))
        .expect("json");
        for signature in [sign(WEBHOOK_KEYS[0].1, &event), "0".repeat(64)] {
            s.http
                .post(url("/klarna/webhook"))
                .header("content-type", "application/json")
                .header("klarna-signing-key-id", WEBHOOK_KEYS[0].0)
                .header("klarna-signature", signature)
                .body(event.clone())
                .send()
                .await
                .expect("send");
        }
        // The classic callbacks, whose URL is the secret: right token with a wrong content
        // type and a wrong shape (the requests that leaked it), a wrong token, and right.
        let classic = format!("/klarna/notification/{CLASSIC_TOKEN}");
        let callback = format!("/klarna/authorization/{CLASSIC_TOKEN}");
        let fraud =
            serde_json::to_vec(&json!({"order_id": order_id, "event_type": "FRAUD_RISK_ACCEPTED"}))
                .expect("json");
        for (path, content_type, body) in [
            (classic.as_str(), "text/plain", fraud.clone()),
            (classic.as_str(), "application/json", b"{\"x\":1}".to_vec()),
            (classic.as_str(), "application/json", b"not json".to_vec()),
            (callback.as_str(), "text/plain", b"{}".to_vec()),
            (
                callback.as_str(),
                "application/json",
                b"{\"session_id\":1}".to_vec(),
            ),
            (
                "/klarna/notification/wrong-token",
                "application/json",
                fraud.clone(),
            ),
            (classic.as_str(), "application/json", fraud.clone()),
        ] {
            post(path, content_type, body).await.expect("send");
        }
        s.settle().await;
        s.shutdown().await;
        db.cleanup().await;
    }

    let text = String::from_utf8(
        lines
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
    )
    .expect("utf-8");
    assert!(text.lines().count() > 50, "a representative run logs");
    for secret in &secrets {
        let hits: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(secret.as_str()))
            .collect();
        assert!(
            hits.is_empty(),
            "{secret:?} is in the log:\n{}",
            hits.join("\n")
        );
    }
    assert!(
        text.contains("/klarna/notification/{token}"),
        "the classic route's requests were logged, by their template"
    );
}
