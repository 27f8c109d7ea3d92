//! Klarna's webhooks against the running gateway, on SQLite and PostgreSQL: every attack is
//! refused and changes nothing, every event is applied exactly once whatever the delivery
//! order or repetition, keys rotate with an overlap, classic callbacks are only hints, and
//! the front door limits, blocks and alerts.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::{
    CLASSIC_TOKEN, ORDER, ORDER_TOTAL, SE_ORDER, SE_TOKEN, System, TOKEN, WEBHOOK_KEYS, databases,
    system_with, system_with_webhooks,
};
use hmac::{Hmac, Mac};
use klarna_client::{IdempotencyKey, KlarnaClient};
use klarna_sandbox::SandboxConfig;
use klarna_types::klarna::{CaptureRequest, RefundRequest};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::Row;

const KEY_ID: &str = WEBHOOK_KEYS[0].0;
const KEY_SECRET: &str = WEBHOOK_KEYS[0].1;

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn event_at(event_type: &str, event_id: &str, order_id: &str, at: SystemTime) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "metadata": {
            "event_type": event_type,
            "event_id": event_id,
            "event_version": "v2",
            "occurred_at": humantime::format_rfc3339_millis(at).to_string(),
        },
        "payload": {"order_id": order_id},
    }))
    .expect("json")
}

fn event(event_type: &str, event_id: &str, order_id: &str) -> Vec<u8> {
    event_at(event_type, event_id, order_id, SystemTime::now())
}

/// Posts to `path` with exactly these headers and body.
async fn raw(
    s: &System,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut r = s.http.post(format!("{}{path}", s.url)).body(body);
    for (name, value) in headers {
        r = r.header(*name, value);
    }
    let r = r.send().await.expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

type Headers = Vec<(&'static str, String)>;

fn signed_headers(key_id: &str, secret: &str, body: &[u8]) -> Headers {
    vec![
        ("content-type", "application/json".into()),
        ("klarna-signing-key-id", key_id.into()),
        ("klarna-signature", sign(secret, body)),
    ]
}

async fn deliver(s: &System, body: Vec<u8>) -> (StatusCode, Value) {
    let headers = signed_headers(KEY_ID, KEY_SECRET, &body);
    raw(s, "/klarna/webhook", &headers, body).await
}

/// Everything a webhook could change: stored events, jobs, the audit log, payments.
#[derive(Debug, PartialEq)]
struct Snapshot {
    events: i64,
    jobs: i64,
    audit: i64,
    payments: Vec<String>,
}

async fn snapshot(s: &System) -> Snapshot {
    let pool = &s.gw().db.pool;
    // (The retention purge is scheduled by the clock, not by anything a webhook does.)
    let count = |table: &'static str| async move {
        let only = if table == "jobs" {
            " WHERE kind <> 'purge_personal_data'"
        } else {
            ""
        };
        sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}{only}"))
            .fetch_one(pool)
            .await
            .expect("count")
            .try_get::<i64, _>("n")
            .expect("n")
    };
    let payments = s
        .gw()
        .db
        .transactions()
        .await
        .expect("transactions")
        .iter()
        .map(|t| {
            format!(
                "{} {} {:?} {} {} {} {:?}",
                t.order_reference,
                t.state.as_str(),
                t.fraud_status,
                t.captured_amount,
                t.refunded_amount,
                t.released_amount,
                t.attention
            )
        })
        .collect();
    Snapshot {
        events: count("webhook_events").await,
        jobs: count("jobs").await,
        audit: count("audit_log").await,
        payments,
    }
}

/// How many times each event was applied (the audit log's `webhook_applied` rows).
async fn applied(s: &System, event_id: &str) -> usize {
    let rows = sqlx::query("SELECT detail FROM audit_log WHERE action = 'webhook_applied'")
        .fetch_all(&s.gw().db.pool)
        .await
        .expect("audit");
    rows.iter()
        .filter_map(|r| r.try_get::<String, _>("detail").ok())
        .filter(|d| d.starts_with(&format!("event {event_id} ")))
        .count()
}

fn klarna(s: &System) -> Arc<KlarnaClient> {
    let cfg = SandboxConfig::default();
    KlarnaClient::new(klarna_client::Config::basic(
        &s.sandbox_url,
        &cfg.username,
        &cfg.password,
    ))
    .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attack_is_refused_and_changes_nothing() {
    for db in databases().await {
        let s = system_with(&db, SandboxConfig::default(), |c| {
            c.frontdoor.block_after = 0;
            c.frontdoor.webhook_per_second = 10_000;
        })
        .await;
        let order_id = s.paid(ORDER, TOKEN).await;
        s.settle().await;
        let before = snapshot(&s).await;
        let good = event(
            "payment.request.state-change.authorized",
            "evt-attack-1",
            &order_id,
        );
        let json_type = ("content-type", "application/json".to_owned());

        let mut altered = good.clone();
        let at = altered.len() / 2;
        altered[at] ^= 0x01;
        let stale = event_at(
            "payment.request.state-change.authorized",
            "evt-stale",
            &order_id,
            SystemTime::now() - Duration::from_secs(25 * 3600),
        );
        let future = event_at(
            "payment.request.state-change.authorized",
            "evt-future",
            &order_id,
            SystemTime::now() + Duration::from_secs(600),
        );
        let oversized = {
            let mut v: Value = serde_json::from_slice(&good).expect("json");
            v["payload"]["padding"] = json!("x".repeat(70 * 1024));
            serde_json::to_vec(&v).expect("json")
        };
        let malformed = b"{\"metadata\": {\"event_type\": ".to_vec();
        let wrong_shape =
            serde_json::to_vec(&json!({"event": "capture", "order": order_id})).expect("json");
        let unknown_type = event(
            "payment.request.state-change.teleported",
            "evt-t",
            &order_id,
        );

        let cases: Vec<(&str, Headers, Vec<u8>, StatusCode, &str)> = vec![
            (
                "bad signature",
                signed_headers(KEY_ID, "not-the-secret", &good),
                good.clone(),
                StatusCode::BAD_REQUEST,
                "bad_signature",
            ),
            (
                "body altered by one byte",
                signed_headers(KEY_ID, KEY_SECRET, &good),
                altered,
                StatusCode::BAD_REQUEST,
                "bad_signature",
            ),
            (
                "unknown key id",
                signed_headers("key-9", KEY_SECRET, &good),
                good.clone(),
                StatusCode::BAD_REQUEST,
                "unknown_key",
            ),
            (
                "no signature header",
                vec![json_type.clone(), ("klarna-signing-key-id", KEY_ID.into())],
                good.clone(),
                StatusCode::BAD_REQUEST,
                "missing_header",
            ),
            (
                "no key id header",
                vec![
                    json_type.clone(),
                    ("klarna-signature", sign(KEY_SECRET, &good)),
                ],
                good.clone(),
                StatusCode::BAD_REQUEST,
                "missing_header",
            ),
            (
                "signature not hex",
                vec![
                    json_type.clone(),
                    ("klarna-signing-key-id", KEY_ID.into()),
                    ("klarna-signature", "zz".repeat(32)),
                ],
                good.clone(),
                StatusCode::BAD_REQUEST,
                "malformed_signature",
            ),
            (
                "stale event",
                signed_headers(KEY_ID, KEY_SECRET, &stale),
                stale,
                StatusCode::BAD_REQUEST,
                "stale_event",
            ),
            (
                "future-dated event",
                signed_headers(KEY_ID, KEY_SECRET, &future),
                future,
                StatusCode::BAD_REQUEST,
                "future_event",
            ),
            (
                "oversized body",
                signed_headers(KEY_ID, KEY_SECRET, &oversized),
                oversized,
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
            ),
            (
                "malformed JSON",
                signed_headers(KEY_ID, KEY_SECRET, &malformed),
                malformed,
                StatusCode::BAD_REQUEST,
                "malformed_json",
            ),
            (
                "valid JSON of the wrong shape",
                signed_headers(KEY_ID, KEY_SECRET, &wrong_shape),
                wrong_shape,
                StatusCode::BAD_REQUEST,
                "wrong_shape",
            ),
            (
                "unknown event type",
                signed_headers(KEY_ID, KEY_SECRET, &unknown_type),
                unknown_type,
                StatusCode::BAD_REQUEST,
                "wrong_shape",
            ),
            (
                "wrong content type",
                {
                    let mut h = signed_headers(KEY_ID, KEY_SECRET, &good);
                    h[0].1 = "text/plain".into();
                    h
                },
                good.clone(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content_type",
            ),
        ];
        for (name, headers, body, status, code) in cases {
            let (got, answer) = raw(&s, "/klarna/webhook", &headers, body).await;
            assert_eq!(
                (got, answer["code"].as_str()),
                (status, Some(code)),
                "[{}] {name}: {answer}",
                s.db
            );
            let message = answer["message"].as_str().unwrap_or("");
            assert!(
                !message.contains(KEY_SECRET) && !message.contains("whsec"),
                "{message}"
            );
            s.settle().await;
            assert_eq!(
                snapshot(&s).await,
                before,
                "[{}] {name} changed something",
                s.db
            );
        }

        // A revoked key: accepted during the overlap, refused after.
        let (k2, k2_secret) = WEBHOOK_KEYS[1];
        let signed_k2 = event(
            "payment.request.state-change.authorized",
            "evt-k2-a",
            &order_id,
        );
        let (status, _) = raw(
            &s,
            "/klarna/webhook",
            &signed_headers(k2, k2_secret, &signed_k2),
            signed_k2,
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "[{}] key-2 during the overlap",
            s.db
        );
        s.settle().await;
        let (status, keys) = s
            .admin(&format!("/admin/webhook-keys/{k2}/revoke"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{keys}");
        assert!(!keys.to_string().contains(k2_secret), "{keys}");
        let before = snapshot(&s).await;
        let late_k2 = event(
            "payment.request.state-change.authorized",
            "evt-k2-b",
            &order_id,
        );
        let (status, answer) = raw(
            &s,
            "/klarna/webhook",
            &signed_headers(k2, k2_secret, &late_k2),
            late_k2,
        )
        .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("revoked_key")),
            "[{}]",
            s.db
        );
        assert_eq!(snapshot(&s).await, before, "[{}] revoked key", s.db);

        // A replay of a processed event: acknowledged, not stored or applied again.
        let (status, answer) = deliver(&s, good.clone()).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (StatusCode::OK, Some("accepted"))
        );
        s.settle().await;
        assert_eq!(applied(&s, "evt-attack-1").await, 1, "[{}]", s.db);
        let before = snapshot(&s).await;
        let (status, answer) = deliver(&s, good.clone()).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (StatusCode::OK, Some("duplicate")),
            "[{}]",
            s.db
        );
        s.settle().await;
        assert_eq!(snapshot(&s).await, before, "[{}] replay", s.db);
        assert_eq!(applied(&s, "evt-attack-1").await, 1, "[{}]", s.db);

        // Classic callbacks: only on the secret-token URL, only JSON of their shape.
        let classic =
            serde_json::to_vec(&json!({"order_id": order_id, "event_type": "FRAUD_RISK_ACCEPTED"}))
                .expect("json");
        let right = format!("/klarna/notification/{CLASSIC_TOKEN}");
        let near = format!("{right}x");
        let classic_cases = [
            (
                "/klarna/notification/guess",
                "application/json",
                classic.clone(),
                StatusCode::NOT_FOUND,
            ),
            (
                near.as_str(),
                "application/json",
                classic.clone(),
                StatusCode::NOT_FOUND,
            ),
            (
                right.as_str(),
                "text/plain",
                classic.clone(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                right.as_str(),
                "application/json",
                b"{\"order_id\": 1}".to_vec(),
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (path, content_type, body, status) in classic_cases {
            let (got, answer) = raw(&s, path, &[("content-type", content_type.into())], body).await;
            assert_eq!(got, status, "[{}] {path}: {answer}", s.db);
            assert_eq!(snapshot(&s).await, before, "[{}] classic {path}", s.db);
        }
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_three_times_at_once_is_applied_once_and_order_does_not_matter() {
    for db in databases().await {
        let s = system_with(&db, SandboxConfig::default(), |_| {}).await;
        let direct = klarna(&s);
        let a = s.paid(ORDER, TOKEN).await;
        let b = s.paid(SE_ORDER, SE_TOKEN).await;
        s.settle().await;

        // The same history at Klarna for both orders: half captured, the rest captured,
        // 10.00 refunded — each step announced by its event.
        let history = |order: &str| -> Vec<(String, &'static str)> {
            ["half", "rest", "refund"]
                .iter()
                .map(|step| (format!("evt-{order}-{step}"), *step))
                .collect()
        };
        let act = |order: String, step: &'static str| {
            let direct = &direct;
            async move {
                let o = direct.get_order(&order).await.expect("order");
                match step {
                    "half" => {
                        let half = o.original_order_amount / 2;
                        direct
                            .capture(
                                &order,
                                &CaptureRequest {
                                    captured_amount: half,
                                    ..CaptureRequest::default()
                                },
                                &IdempotencyKey::new(),
                            )
                            .await
                            .expect("capture half");
                    }
                    "rest" => {
                        direct
                            .capture(
                                &order,
                                &CaptureRequest {
                                    captured_amount: o.remaining_authorized_amount,
                                    ..CaptureRequest::default()
                                },
                                &IdempotencyKey::new(),
                            )
                            .await
                            .expect("capture rest");
                    }
                    _ => {
                        direct
                            .refund(
                                &order,
                                &RefundRequest {
                                    refunded_amount: 1_000,
                                    ..RefundRequest::default()
                                },
                                &IdempotencyKey::new(),
                            )
                            .await
                            .expect("refund");
                    }
                }
            }
        };
        let kind = |step: &str| match step {
            "refund" => "payment_refunded",
            _ => "payment.request.state-change.completed",
        };
        let three_at_once = |id: String, body: Vec<u8>| {
            let s = &s;
            async move {
                let (x, y, z) = tokio::join!(
                    deliver(s, body.clone()),
                    deliver(s, body.clone()),
                    deliver(s, body)
                );
                let statuses: Vec<_> = [&x, &y, &z].iter().map(|r| r.0).collect();
                assert_eq!(statuses, [StatusCode::OK; 3], "[{}] {id}", s.db);
                let accepted = [&x, &y, &z]
                    .iter()
                    .filter(|r| r.1["status"] == "accepted")
                    .count();
                assert_eq!(accepted, 1, "[{}] {id}: {x:?} {y:?} {z:?}", s.db);
            }
        };

        // A: each change at Klarna, then its event (three times at once).
        for (id, step) in history(&a) {
            act(a.clone(), step).await;
            three_at_once(id.clone(), event(kind(step), &id, &a)).await;
            s.settle().await;
            assert_eq!(applied(&s, &id).await, 1, "[{}] {id}", s.db);
        }
        // B: every change first, then the events backwards (three times each, at once).
        for (_, step) in history(&b) {
            act(b.clone(), step).await;
        }
        let mut events = history(&b);
        events.reverse();
        for (id, step) in &events {
            three_at_once(id.clone(), event(kind(step), id, &b)).await;
        }
        s.settle().await;
        for (id, _) in &events {
            assert_eq!(applied(&s, id).await, 1, "[{}] {id}", s.db);
        }

        let shape = |order: &str| {
            let s = &s;
            let order = order.to_owned();
            async move {
                let t = s
                    .gw()
                    .db
                    .find_transaction(&order)
                    .await
                    .expect("db")
                    .expect("payment");
                let ops = s.gw().db.operations(t.id).await.expect("ops");
                let total = t.authorized_amount;
                (
                    t.state.as_str(),
                    t.captured_amount == total,
                    t.refunded_amount,
                    ops.iter()
                        .map(|o| format!("{:?} {:?}", o.kind, o.state))
                        .collect::<Vec<_>>(),
                    t.attention.clone(),
                )
            }
        };
        let (sa, sb) = (shape(&a).await, shape(&b).await);
        assert_eq!(sa, sb, "[{}] in order vs shuffled", s.db);
        assert_eq!(
            (sa.0, sa.1, sa.2, sa.3.len()),
            ("captured", true, 1_000, 3),
            "[{}] {sa:?}",
            s.db
        );
        let odoo = |name: &'static str| {
            let s = &s;
            async move {
                s.odoo_transactions(name)
                    .await
                    .iter()
                    .map(|t| format!("{} {}", t["operation"], t["state"]))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            odoo(ORDER).await,
            odoo(SE_ORDER).await,
            "[{}] Odoo sees the same",
            s.db
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_before_its_authorization_waits_and_a_lost_authorize_is_recovered_from_it() {
    for db in databases().await {
        let s = system_with_webhooks(&db, SandboxConfig::default(), |c| {
            c.placing_grace = Duration::from_millis(1500);
            // No authorization callback: only the signed webhook can tell of the order.
            c.public_url = None;
        })
        .await;
        // An event about an order nobody knows: accepted, then it waits without using up
        // its attempts.
        let (status, _) = deliver(
            &s,
            event(
                "payment.request.state-change.completed",
                "evt-early",
                "unknown-order-1",
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        // Once the worker has looked at it, an event that would be applied has been.
        s.event_job_tried("evt-early").await;
        let stored = s
            .gw()
            .db
            .event("evt-early")
            .await
            .expect("db")
            .expect("event");
        assert_eq!(stored.state, "received", "[{}]", s.db);
        // Queued, or being looked at again this very moment (it moves between the two, so
        // look until it is caught in one): never using up attempts.
        let mut found = None;
        for _ in 0..100 {
            let mut jobs = s.gw().db.jobs_in("queued").await.expect("jobs");
            jobs.extend(s.gw().db.jobs_in("running").await.expect("jobs"));
            found = jobs
                .into_iter()
                .find(|j| j.payload["event_id"] == "evt-early");
            if found.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let job = found.expect("its job waits");
        assert!(job.attempts <= 1, "[{}] {job:?}", s.db);
        assert!(
            job.last_error
                .as_deref()
                .unwrap_or("")
                .contains("not known yet"),
            "{job:?}"
        );

        // The gateway dies between Klarna placing the order and recording it. Klarna's
        // "authorized" webhook arrives, waits, and once no live request can still record
        // it, completes the payment.
        let session = s.session(ORDER, TOKEN).await;
        let session_id = session["session_id"].as_str().expect("id").to_owned();
        let token = s.approve(&session_id).await;
        s.gw().crash_at("after_create_order");
        let (status, body) = s
            .post(
                "/klarna/authorize",
                &json!({"session_id": session_id, "authorization_token": token}),
            )
            .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        let order_id = s
            .sandbox
            .state()
            .orders
            .keys()
            .next()
            .cloned()
            .expect("Klarna has the order");
        let mut recorded = None;
        for _ in 0..200 {
            if let Some(t) = s.gw().db.find_transaction(&order_id).await.expect("db") {
                recorded = Some(t);
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let t = recorded.expect("the webhook recorded the order");
        assert_eq!(t.state.as_str(), "authorized", "[{}]", s.db);
        // (The queue never settles here: the first event still waits for its order.)
        let mut odoo_state = Value::Null;
        for _ in 0..200 {
            odoo_state = s
                .odoo_transactions(ORDER)
                .await
                .first()
                .map_or(Value::Null, |t| t["state"].clone());
            if odoo_state == "authorized" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(odoo_state, "authorized", "[{}] Odoo knows", s.db);
        // The shopper's retry gets the payment, not a second order.
        let (status, body) = s
            .post(
                "/klarna/authorize",
                &json!({"session_id": session_id, "authorization_token": token}),
            )
            .await;
        assert_eq!(
            (status, body["klarna_order_id"].as_str()),
            (StatusCode::OK, Some(order_id.as_str())),
            "{body}"
        );
        assert_eq!(s.sandbox.state().orders.len(), 1);
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_webhooks_and_classic_callbacks_keep_the_payment_in_line() {
    for db in databases().await {
        let s = system_with_webhooks(&db, SandboxConfig::default(), |_| {}).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        let direct = klarna(&s);
        // A full capture in Klarna's portal: its signed "completed" webhook brings it to us.
        s.settle().await;
        direct
            .capture(
                &order_id,
                &CaptureRequest {
                    captured_amount: ORDER_TOTAL,
                    ..CaptureRequest::default()
                },
                &IdempotencyKey::new(),
            )
            .await
            .expect("capture");
        let mut captured = 0;
        for _ in 0..200 {
            s.settle().await;
            captured = s
                .gw()
                .db
                .find_transaction(&order_id)
                .await
                .expect("db")
                .expect("t")
                .captured_amount;
            if captured == ORDER_TOTAL {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(
            captured,
            ORDER_TOTAL,
            "[{}] sent {:?}",
            s.db,
            s.sandbox.webhooks.deliveries()
        );
        let completed = s
            .sandbox
            .webhooks
            .deliveries()
            .into_iter()
            .find(|d| d.event_type.ends_with(".completed"))
            .expect("Klarna sent completed");
        assert_eq!(applied(&s, &completed.event_id).await, 1, "[{}]", s.db);

        // The session named the classic notification URL with its token.
        assert_eq!(
            s.sandbox.state().orders[&order_id]
                .notification_url
                .as_deref(),
            Some(format!("{}/klarna/notification/{CLASSIC_TOKEN}", s.url).as_str())
        );
        // A second order, cancelled; then a late fraud notification must not revive it.
        let other = s.paid(SE_ORDER, SE_TOKEN).await;
        let (status, _) = s
            .admin(&format!("/admin/payments/{other}/cancel"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK);
        s.settle().await;
        let (status, answer) = raw(
            &s,
            &format!("/klarna/notification/{CLASSIC_TOKEN}"),
            &[("content-type", "application/json".into())],
            serde_json::to_vec(&json!({"order_id": other, "event_type": "FRAUD_RISK_ACCEPTED"}))
                .expect("json"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        s.event_job_tried(answer["event_id"].as_str().unwrap_or_default())
            .await;
        s.settle().await;
        let t = s
            .gw()
            .db
            .find_transaction(&other)
            .await
            .expect("db")
            .expect("t");
        assert_eq!(t.state.as_str(), "cancelled", "[{}] not resurrected", s.db);
        let odoo = s.odoo_transactions(SE_ORDER).await;
        assert_eq!(odoo[0]["state"], "cancel", "[{}] {odoo:?}", s.db);
        // The notification's body is only a hint: a claim that is not Klarna's truth
        // (an order Klarna never had) changes nothing and waits.
        let before = snapshot(&s).await;
        let (status, answer) = raw(
            &s,
            &format!("/klarna/notification/{CLASSIC_TOKEN}"),
            &[("content-type", "application/json".into())],
            serde_json::to_vec(
                &json!({"order_id": "no-such-order", "event_type": "FRAUD_RISK_REJECTED"}),
            )
            .expect("json"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        s.event_job_tried(answer["event_id"].as_str().unwrap_or_default())
            .await;
        assert_eq!(snapshot(&s).await.payments, before.payments, "[{}]", s.db);
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_rate_limited_then_blocked_and_the_operators_are_alerted() {
    // The operators' alert endpoint.
    let alerts: Arc<Mutex<Vec<Value>>> = Arc::default();
    let got = alerts.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let alert_url = format!("http://{}/alert", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/alert",
            axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
                let got = got.clone();
                async move {
                    got.lock().expect("lock").push(v);
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let _ = axum::serve(listener, app).await;
    });

    for db in databases().await {
        alerts.lock().expect("lock").clear();
        let url = alert_url.clone();
        let s = system_with(&db, SandboxConfig::default(), move |c| {
            c.frontdoor.webhook_per_second = 5;
            c.frontdoor.widget_per_second = 5;
            c.frontdoor.block_after = 8;
            c.frontdoor.alert_threshold = 6;
            c.frontdoor.alert_url = Some(url);
        })
        .await;
        s.settle().await;
        let before = snapshot(&s).await;
        let junk = event("payment.request.state-change.completed", "evt-flood", "o-1");
        let mut statuses = Vec::new();
        let mut retry_after = None;
        for _ in 0..200 {
            let r = s
                .http
                .post(format!("{}/klarna/webhook", s.url))
                .header("content-type", "application/json")
                .header("klarna-signing-key-id", KEY_ID)
                .header("klarna-signature", "00".repeat(32))
                .body(junk.clone())
                .send()
                .await
                .expect("request");
            if r.status() == StatusCode::TOO_MANY_REQUESTS {
                retry_after = r.headers().get("retry-after").cloned();
            }
            statuses.push(r.status());
            if r.status() == StatusCode::FORBIDDEN {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let first = |code| statuses.iter().position(|s| *s == code);
        let (unauthorized, limited, blocked) = (
            first(StatusCode::BAD_REQUEST),
            first(StatusCode::TOO_MANY_REQUESTS),
            first(StatusCode::FORBIDDEN),
        );
        assert!(
            unauthorized < limited && limited < blocked && unauthorized.is_some(),
            "[{}] {statuses:?}",
            s.db
        );
        assert!(retry_after.is_some(), "429 says when to come back");
        // Blocked: even a correctly signed event from this address is refused.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let (status, answer) = deliver(
            &s,
            event(
                "payment.request.state-change.completed",
                "evt-after-block",
                "o-1",
            ),
        )
        .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("blocked"))
        );
        assert_eq!(
            snapshot(&s).await,
            before,
            "[{}] the flood stored nothing",
            s.db
        );

        // The operators heard about it once, with no secret in it.
        let mut alert = None;
        for _ in 0..100 {
            alert = alerts.lock().expect("lock").first().cloned();
            if alert.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let alert = alert.expect("an alert was posted");
        assert_eq!(alert["alert"], "webhook_verification_failures", "{alert}");
        assert!(alert["failures"].as_u64().unwrap_or(0) >= 6, "{alert}");
        assert!(!alert.to_string().contains(KEY_SECRET));
        assert_eq!(alerts.lock().expect("lock").len(), 1);

        // The widget API has its own limit, with Retry-After.
        let mut limited = None;
        for _ in 0..30 {
            let r = s
                .http
                .post(format!("{}/klarna/session", s.url))
                .json(&json!({"order_reference": ORDER, "access_token": "wrong"}))
                .send()
                .await
                .expect("request");
            if r.status() == StatusCode::TOO_MANY_REQUESTS {
                limited = r.headers().get("retry-after").cloned();
                break;
            }
        }
        assert!(limited.is_some(), "[{}] the widget API limits too", s.db);
        // A page on another origin may not use the widget API (CSRF).
        let r = s
            .http
            .post(format!("{}/klarna/session", s.url))
            .header("origin", "https://evil.example")
            .json(&json!({"order_reference": ORDER, "access_token": TOKEN}))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_list_keeps_other_networks_out() {
    for db in databases().await {
        let s = system_with(&db, SandboxConfig::default(), |c| {
            c.frontdoor.webhook_allow = vec!["192.0.2.0/24".parse().expect("net")];
        })
        .await;
        let (status, answer) = deliver(
            &s,
            event("payment.request.state-change.completed", "evt-allow", "o-1"),
        )
        .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        assert!(s.gw().db.event("evt-allow").await.expect("db").is_none());
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_callback_places_the_order_when_the_browser_never_returns() {
    for db in databases().await {
        let s = system_with_webhooks(&db, SandboxConfig::default(), |_| {}).await;
        let session = s.session(ORDER, TOKEN).await;
        let session_id = session["session_id"].as_str().expect("id").to_owned();
        // The shopper authorizes in Klarna's dialog and closes the tab: only Klarna's
        // callback reaches the gateway.
        let token = s.approve(&session_id).await;
        let mut placed = None;
        for _ in 0..200 {
            placed = s
                .gw()
                .db
                .transaction_for_session(&session_id)
                .await
                .expect("db")
                .filter(|t| t.klarna_order_id.is_some());
            if placed.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let t = placed.expect("the callback placed the order");
        assert_eq!(t.state.as_str(), "authorized", "[{}]", s.db);
        s.settle().await;
        assert_eq!(
            s.odoo_transactions(ORDER).await[0]["state"],
            "authorized",
            "[{}]",
            s.db
        );
        // The browser comes back after all: the same payment, no second order.
        let (status, body) = s
            .post(
                "/klarna/authorize",
                &json!({"session_id": session_id, "authorization_token": token}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["klarna_order_id"].as_str(),
            t.klarna_order_id.as_deref()
        );
        assert_eq!(s.sandbox.state().orders.len(), 1, "[{}]", s.db);
        // Klarna's "authorized" webhook about the order may still be on its way.
        s.settle().await;
        // The callback's URL is secret; a guess is refused and changes nothing.
        let before = snapshot(&s).await;
        let (status, _) = raw(
            &s,
            "/klarna/authorization/guess",
            &[("content-type", "application/json".into())],
            serde_json::to_vec(&json!({"session_id": session_id, "authorization_token": "forged"}))
                .expect("json"),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(snapshot(&s).await, before, "[{}]", s.db);
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_and_webhooks_about_it_at_once_record_one_capture() {
    for db in databases().await {
        let s = system_with_webhooks(&db, SandboxConfig::default(), |_| {}).await;
        for (order, token) in [(ORDER, TOKEN), (SE_ORDER, SE_TOKEN)] {
            let order_id = s.paid(order, token).await;
            s.settle().await;
            // The gateway captures; Klarna's own "completed" webhook races it, and so do
            // three copies of another event about the order.
            let path = format!("/admin/payments/{order_id}/captures");
            let body = event(
                "payment.request.state-change.completed",
                &format!("evt-race-{order}"),
                &order_id,
            );
            let everything = json!({});
            let (capture, a, b, c) = tokio::join!(
                s.admin(&path, &everything),
                deliver(&s, body.clone()),
                deliver(&s, body.clone()),
                deliver(&s, body)
            );
            assert_eq!(capture.0, StatusCode::OK, "[{}] {}", s.db, capture.1);
            assert!([a.0, b.0, c.0].iter().all(|st| *st == StatusCode::OK));
            s.event_job_tried(&format!("evt-race-{order}")).await;
            s.settle().await;
            let t = s
                .gw()
                .db
                .find_transaction(&order_id)
                .await
                .expect("db")
                .expect("t");
            let ops = s.gw().db.operations(t.id).await.expect("ops");
            let captures: Vec<_> = ops
                .iter()
                .filter(|o| format!("{:?}", o.kind) == "Capture")
                .collect();
            let klarna = s.sandbox.state().orders[&order_id].order.clone();
            assert_eq!(klarna.captures.len(), 1, "[{}] one capture at Klarna", s.db);
            assert_eq!(
                captures.len(),
                1,
                "[{}] one capture recorded: {ops:?}",
                s.db
            );
            assert_eq!(
                (t.state.as_str(), t.captured_amount, t.attention.clone()),
                ("captured", klarna.captured_amount, None),
                "[{}]",
                s.db
            );
            // A capture of everything is booked on the payment's own transaction, as the
            // addon does: done, and no second transaction beside it.
            let odoo = s.odoo_transactions(order).await;
            assert_eq!(
                (odoo[0]["state"].clone(), odoo.len()),
                (json!("done"), 1),
                "[{}] Odoo: one capture: {odoo:?}",
                s.db
            );
        }
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn refusals_never_echo_the_body_and_classic_notifications_keep_the_horizon() {
    const MARK: &str = "ECHO-7Q";
    for db in databases().await {
        let s = system_with(&db, SandboxConfig::default(), |c| {
            c.frontdoor.block_after = 0;
        })
        .await;
        s.settle().await;
        let before = snapshot(&s).await;
        let signed = |body: Vec<u8>| (signed_headers(KEY_ID, KEY_SECRET, &body), body);
        let classic = format!("/klarna/notification/{CLASSIC_TOKEN}");
        let json_only: Headers = vec![("content-type", "application/json".into())];
        let mut answers = Vec::new();
        for (path, (headers, body)) in [
            (
                "/klarna/webhook",
                signed(
                    serde_json::to_vec(&json!({
                        "metadata": {"event_type": MARK, "event_id": "e-echo", "occurred_at": "2026-11-26T10:00:00Z"},
                        "payload": {"order_id": "o-1"},
                    }))
                    .expect("json"),
                ),
            ),
            ("/klarna/webhook", signed(format!("{{\"{MARK}\" 1}}").into_bytes())),
            ("/klarna/webhook", signed(format!("[\"{MARK}\", ").into_bytes())),
            (
                classic.as_str(),
                (
                    json_only.clone(),
                    serde_json::to_vec(&json!({"event_type": MARK, "order_id": "o-1"}))
                        .expect("json"),
                ),
            ),
            (
                classic.as_str(),
                (
                    json_only.clone(),
                    serde_json::to_vec(&json!({"event_type": "FRAUD_RISK_ACCEPTED", "order_id": {MARK: 1}}))
                        .expect("json"),
                ),
            ),
            (
                "/klarna/session",
                (
                    json_only.clone(),
                    serde_json::to_vec(&json!({"order_reference": [MARK], "access_token": "t"}))
                        .expect("json"),
                ),
            ),
            (
                "/klarna/session",
                (
                    json_only.clone(),
                    serde_json::to_vec(&json!({"order_reference": "S1", "access_token": "t", MARK: 1}))
                        .expect("json"),
                ),
            ),
            (
                "/klarna/authorize",
                (json_only.clone(), format!("{{\"session_id\": {MARK}}}").into_bytes()),
            ),
        ] {
            let (status, answer) = raw(&s, path, &headers, body).await;
            answers.push((path.to_owned(), status, answer));
        }
        let (status, answer) = s
            .admin("/admin/payments/o-1/captures", &json!({"amount": MARK}))
            .await;
        answers.push(("captures".into(), status, answer));
        for (path, status, answer) in &answers {
            assert_eq!(
                *status,
                StatusCode::BAD_REQUEST,
                "[{}] {path}: {answer}",
                s.db
            );
            assert!(answer["code"].is_string(), "[{}] {path}: {answer}", s.db);
            assert!(
                !answer.to_string().contains(MARK),
                "[{}] {path} echoes the body: {answer}",
                s.db
            );
        }
        assert_eq!(snapshot(&s).await, before, "[{}] nothing changed", s.db);

        // A classic notification carries no time: it is dated by its first receipt, so the
        // same bytes sent again after the horizon are as stale as a signed event would be.
        let fraud = serde_json::to_vec(
            &json!({"order_id": "o-horizon-1", "event_type": "FRAUD_RISK_ACCEPTED"}),
        )
        .expect("json");
        let (status, answer) = raw(&s, &classic, &json_only, fraud.clone()).await;
        assert_eq!(status, StatusCode::OK, "[{}] {answer}", s.db);
        let (status, answer) = raw(&s, &classic, &json_only, fraud.clone()).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "[{}] a redelivery within the horizon: {answer}",
            s.db
        );
        sqlx::query("UPDATE webhook_events SET received_at = received_at - $1 WHERE order_id = 'o-horizon-1'")
            .bind(25 * 3600 * 1000_i64)
            .execute(&s.gw().db.pool)
            .await
            .expect("age the event");
        let stored = snapshot(&s).await;
        let (status, answer) = raw(&s, &classic, &json_only, fraud).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("stale_event")),
            "[{}] {answer}",
            s.db
        );
        assert_eq!(snapshot(&s).await, stored, "[{}] nothing changed", s.db);
        s.shutdown().await;
        db.cleanup().await;
    }
}
