//! The admin API as the Odoo addon calls it: signed with the shared secret over
//! "<timestamp>.<METHOD> <path>.<body>" instead of a bearer token — on SQLite and PostgreSQL.

mod common;

use common::{ORDER, TOKEN, databases, system};
use klarna_sandbox::SandboxConfig;
use klarna_types::odoo_signature::sign_admin as odoo_signature;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odoo_signed_calls_work_and_bad_signatures_change_nothing() {
    let secret = SandboxConfig::default().odoo_shared_secret;
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        s.settle().await;
        let path = format!("/admin/payments/{order_id}/captures");
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        };
        let post = |body: Vec<u8>, ts: i64, signature: String, key: &'static str| {
            let s = &s;
            let path = path.clone();
            async move {
                let r = s
                    .http
                    .post(format!("{}{path}", s.url))
                    .header("content-type", "application/json")
                    .header("x-klarna-gateway-timestamp", ts.to_string())
                    .header("x-klarna-gateway-signature", signature)
                    .header("idempotency-key", key)
                    .body(body)
                    .send()
                    .await
                    .expect("request");
                let status = r.status();
                (status, r.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        let body = serde_json::to_vec(&json!({"amount": 10_000})).expect("json");
        let captured = |s: &common::System| {
            let order_id = order_id.clone();
            let sandbox = s.sandbox.clone();
            move || sandbox.state().orders[&order_id].order.captured_amount
        };
        let klarna_captured = captured(&s);

        // Wrong secret, stale timestamp, body changed after signing, another path: refused.
        let ts = now();
        let cases = [
            (
                body.clone(),
                ts,
                odoo_signature("not-it", ts, "POST", &path, &body),
                "k1",
            ),
            (
                body.clone(),
                ts - 600,
                odoo_signature(&secret, ts - 600, "POST", &path, &body),
                "k2",
            ),
            (
                serde_json::to_vec(&json!({"amount": 99_000})).expect("json"),
                ts,
                odoo_signature(&secret, ts, "POST", &path, &body),
                "k3",
            ),
            (
                body.clone(),
                ts,
                odoo_signature(&secret, ts, "POST", "/admin/payments/x/refunds", &body),
                "k4",
            ),
        ];
        for (i, (b, t, sig, key)) in cases.into_iter().enumerate() {
            let (status, answer) = post(b, t, sig, key).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "[{}] case {i}: {answer}",
                s.db
            );
            assert_eq!(klarna_captured(), 0, "[{}] case {i} captured", s.db);
        }

        // Nonsense timestamps (the most negative one used to overflow the clock
        // comparison and drop the connection): refused, naming the header.
        for t in [i64::MIN, i64::MAX, -1] {
            let sig = odoo_signature(&secret, t, "POST", &path, &body);
            let (status, answer) = post(body.clone(), t, sig, "k5").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "[{}] {t}: {answer}", s.db);
            let message = answer["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("X-Klarna-Gateway-Timestamp"),
                "[{}] {t}: {answer}",
                s.db
            );
            assert_eq!(klarna_captured(), 0, "[{}] {t} captured", s.db);
        }

        // Signed right: the capture happens, once, however often Odoo retries.
        let sig = odoo_signature(&secret, ts, "POST", &path, &body);
        let (status, first) = post(body.clone(), ts, sig.clone(), "odoo-capture-S1").await;
        assert_eq!(status, StatusCode::OK, "[{}] {first}", s.db);
        let (status, again) = post(body.clone(), ts, sig, "odoo-capture-S1").await;
        assert_eq!((status, &again), (StatusCode::OK, &first), "[{}]", s.db);
        assert_eq!(klarna_captured(), 10_000);

        // A GET is signed over an empty body.
        let ts = now();
        let r = s
            .http
            .get(format!("{}/admin/status", s.url))
            .header("x-klarna-gateway-timestamp", ts.to_string())
            .header(
                "x-klarna-gateway-signature",
                odoo_signature(&secret, ts, "GET", "/admin/status", b""),
            )
            .send()
            .await
            .expect("status");
        assert_eq!(r.status(), StatusCode::OK);
        s.shutdown().await;
        db.cleanup().await;
    }
}
