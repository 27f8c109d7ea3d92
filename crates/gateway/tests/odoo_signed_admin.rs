//! The admin API as the Odoo addon calls it: signed with the shared secret over
//! "<timestamp>\n<nonce>\n<METHOD> <path>\n<Idempotency-Key>\n<body>" instead of a bearer
//! token, each nonce accepted once — on SQLite and PostgreSQL.

mod common;

use common::{ORDER, TOKEN, databases, system};
use klarna_sandbox::SandboxConfig;
use klarna_types::odoo_signature::{AdminCall, sign_admin};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// One signed request as it goes on the wire; fields can be changed after signing, as an
/// attacker holding a copy would.
#[derive(Clone)]
struct Signed {
    method: reqwest::Method,
    path: String,
    timestamp: i64,
    nonce: String,
    key: Option<String>,
    body: Vec<u8>,
    signature: String,
}

impl Signed {
    /// A request signed right with `secret`, with a fresh nonce.
    fn new(secret: &str, method: &str, path: &str, key: Option<&str>, body: &Value) -> Self {
        let body = if method == "GET" {
            Vec::new()
        } else {
            serde_json::to_vec(body).expect("json")
        };
        let mut signed = Self {
            method: method.parse().expect("method"),
            path: path.to_owned(),
            timestamp: now(),
            nonce: uuid::Uuid::new_v4().to_string(),
            key: key.map(str::to_owned),
            body,
            signature: String::new(),
        };
        signed.sign(secret);
        signed
    }

    fn sign(&mut self, secret: &str) {
        self.signature = sign_admin(
            secret,
            &AdminCall {
                timestamp: self.timestamp,
                nonce: &self.nonce,
                method: self.method.as_str(),
                path: &self.path,
                idempotency_key: self.key.as_deref().unwrap_or(""),
                body: &self.body,
            },
        );
    }

    async fn send(&self, s: &common::System) -> (StatusCode, Value) {
        let mut r = s
            .http
            .request(self.method.clone(), format!("{}{}", s.url, self.path))
            .header("x-klarna-gateway-timestamp", self.timestamp.to_string())
            .header("x-klarna-gateway-nonce", &self.nonce)
            .header("x-klarna-gateway-signature", &self.signature);
        if !self.body.is_empty() {
            r = r
                .header("content-type", "application/json")
                .body(self.body.clone());
        }
        if let Some(key) = &self.key {
            r = r.header("idempotency-key", key);
        }
        let r = r.send().await.expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// What a replay could change: the payment's operations and Klarna's captured amount.
async fn snapshot(s: &common::System, order_id: &str) -> (usize, i64) {
    let (_, ops) = s.payment(order_id).await;
    (
        ops.len(),
        s.sandbox.state().orders[order_id].order.captured_amount,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odoo_signed_calls_work_and_bad_signatures_change_nothing() {
    let secret = SandboxConfig::default().odoo_shared_secret;
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        s.settle().await;
        let path = format!("/admin/payments/{order_id}/captures");
        let capture = |key: &str| {
            Signed::new(
                &secret,
                "POST",
                &path,
                Some(key),
                &json!({"amount": 10_000}),
            )
        };
        let untouched = snapshot(&s, &order_id).await;
        assert_eq!(untouched, (0, 0));

        // Wrong secret, stale timestamp, body changed after signing, another path, a
        // missing or malformed nonce, nonsense timestamps (the most negative one used to
        // overflow the clock comparison and drop the connection): refused, saying why.
        let mut cases = Vec::new();
        cases.push((
            "signature",
            Signed::new(
                "not-it",
                "POST",
                &path,
                Some("k1"),
                &json!({"amount": 10_000}),
            ),
        ));
        let mut stale = capture("k2");
        stale.timestamp -= 600;
        stale.sign(&secret);
        cases.push(("timestamp", stale));
        let mut tampered = capture("k3");
        tampered.body = serde_json::to_vec(&json!({"amount": 99_000})).expect("json");
        cases.push(("signature", tampered));
        let mut moved = capture("k4");
        moved.path = format!("/admin/payments/{order_id}/refunds");
        cases.push(("signature", moved));
        let mut no_nonce = capture("k5");
        no_nonce.nonce = String::new();
        no_nonce.sign(&secret);
        cases.push(("nonce", no_nonce));
        let mut dotted = capture("k6");
        dotted.nonce = "a.b.c.d.e.f.g.h.i.j".into();
        dotted.sign(&secret);
        cases.push(("nonce", dotted));
        for t in [i64::MIN, i64::MAX, -1] {
            let mut nonsense = capture("k7");
            nonsense.timestamp = t;
            nonsense.sign(&secret);
            cases.push(("timestamp", nonsense));
        }
        for (i, (names, request)) in cases.iter().enumerate() {
            let (status, answer) = request.send(&s).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "[{}] case {i}: {answer}",
                s.db
            );
            let message = answer["message"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase();
            assert!(
                message.contains(names),
                "[{}] case {i} names {names}: {answer}",
                s.db
            );
            assert_eq!(
                snapshot(&s, &order_id).await,
                untouched,
                "[{}] case {i}",
                s.db
            );
        }

        // Signed right: the capture happens once, however often Odoo retries (each retry
        // is a new signed request with a new nonce and the same key).
        let first_request = capture("odoo-capture-S1");
        let (status, first) = first_request.send(&s).await;
        assert_eq!(status, StatusCode::OK, "[{}] {first}", s.db);
        let (status, again) = capture("odoo-capture-S1").send(&s).await;
        assert_eq!((status, &again), (StatusCode::OK, &first), "[{}]", s.db);
        let captured_once = snapshot(&s, &order_id).await;
        assert_eq!(captured_once, (1, 10_000), "[{}]", s.db);

        // Replays of that signed request by someone who copied it: verbatim (the nonce
        // is spent), without its key, with another key — refused, nothing changes.
        let mut without_key = first_request.clone();
        without_key.key = None;
        let mut other_key = first_request.clone();
        other_key.key = Some("odoo-capture-S2".into());
        for (what, replay) in [
            ("verbatim", first_request.clone()),
            ("without its key", without_key),
            ("with another key", other_key),
        ] {
            let (status, answer) = replay.send(&s).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "[{}] {what}: {answer}",
                s.db
            );
            assert_eq!(
                snapshot(&s, &order_id).await,
                captured_once,
                "[{}] {what}",
                s.db
            );
        }
        // A nonce is spent even by Odoo itself: signed again with the same nonce.
        let mut reused = capture("odoo-capture-S3");
        reused.nonce = first_request.nonce.clone();
        reused.sign(&secret);
        let (status, answer) = reused.send(&s).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "[{}] {answer}", s.db);
        assert!(
            answer["message"]
                .as_str()
                .unwrap_or_default()
                .contains("used before"),
            "[{}] {answer}",
            s.db
        );
        assert_eq!(snapshot(&s, &order_id).await, captured_once, "[{}]", s.db);

        // A GET is signed over an empty body and no key.
        let (status, answer) = Signed::new(&secret, "GET", "/admin/status", None, &Value::Null)
            .send(&s)
            .await;
        assert_eq!(status, StatusCode::OK, "[{}] {answer}", s.db);
        s.shutdown().await;
        db.cleanup().await;
    }
}

/// The addon's "Check gateway" button: the doctor's report from the running gateway,
/// signed as every admin call the addon makes; unsigned, it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_report_answers_a_signed_call_and_sees_the_odoo_stand_in() {
    let secret = SandboxConfig::default().odoo_shared_secret;
    let db = common::sqlite();
    let s = system(&db).await;
    let (status, report) = Signed::new(&secret, "GET", "/admin/doctor", None, &Value::Null)
        .send(&s)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["ok"], true, "{report:#}");
    let status_of = |name: &str| {
        report["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == name))
            .map(|c| c["status"].clone())
    };
    for name in ["database", "secrets", "odoo.addon", "klarna.credentials"] {
        assert_eq!(status_of(name), Some(json!("pass")), "{name}: {report:#}");
    }
    // The stand-in's user is Odoo's admin: enough rights, and far more.
    assert_eq!(status_of("odoo.rights"), Some(json!("warn")), "{report:#}");
    let anonymous = s
        .http
        .get(format!("{}/admin/doctor", s.url))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    s.shutdown().await;
}
