//! Money moves once per `Idempotency-Key`, on SQLite and PostgreSQL: concurrent requests
//! with one key make one operation and get one answer; a request whose gateway died
//! mid-way is answered, when retried, from the operation it recorded — never done again;
//! a request Klarna would refuse, or whose stored form cannot be read, is never sent.

mod common;

use common::{ORDER, SE_ORDER, SE_TOKEN, TOKEN, databases, system};
use klarna_gateway::manage;
use klarna_gateway::store::idempotency::Claim;
use klarna_gateway::store::{OpKind, OpState};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Sends `n` copies of one request at once.
async fn at_once(
    s: &common::System,
    n: usize,
    path: &str,
    key: &str,
    body: &Value,
) -> Vec<(StatusCode, Value)> {
    let sends = (0..n).map(|_| s.admin_keyed(path, key, body));
    futures::future::join_all(sends).await
}

/// The payment's operations of `kind`.
async fn operations(s: &common::System, order_id: &str, kind: OpKind) -> usize {
    let (_, ops) = s.payment(order_id).await;
    ops.iter().filter(|o| o.kind == kind).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_key_make_one_operation_and_one_answer() {
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        let base = format!("/admin/payments/{order_id}");
        let mut captures = 0;
        let mut refunds = 0;
        for (n, kind, path, body) in [
            (3, OpKind::Capture, "captures", json!({"amount": 10_000})),
            (10, OpKind::Capture, "captures", json!({"amount": 10_000})),
            (3, OpKind::Refund, "refunds", json!({"amount": 1_000})),
            (10, OpKind::Refund, "refunds", json!({"amount": 1_000})),
        ] {
            let key = format!("{path}-{n}");
            let answers = at_once(&s, n, &format!("{base}/{path}"), &key, &body).await;
            assert_eq!(
                answers[0].0,
                StatusCode::OK,
                "[{}] {key}: {answers:?}",
                s.db
            );
            assert!(
                answers.iter().all(|a| a == &answers[0]),
                "[{}] {key}: every answer the same: {answers:#?}",
                s.db
            );
            match kind {
                OpKind::Capture => captures += 1,
                _ => refunds += 1,
            }
            assert_eq!(
                (
                    operations(&s, &order_id, OpKind::Capture).await,
                    operations(&s, &order_id, OpKind::Refund).await
                ),
                (captures, refunds),
                "[{}] {key}: one operation",
                s.db
            );
        }
        let klarna = s.sandbox.state().orders[&order_id].order.clone();
        assert_eq!(
            (klarna.captures.len(), klarna.captured_amount),
            (2, 20_000),
            "[{}] Klarna's captures",
            s.db
        );
        assert_eq!(
            (klarna.refunds.len(), klarna.refunded_amount),
            (2, 2_000),
            "[{}] Klarna's refunds",
            s.db
        );

        // A cancel, three times at once, on a payment with nothing captured: one
        // operation. Ten more at once under another key: one answer (the payment is
        // cancelled), no operation.
        let se_order = s.paid(SE_ORDER, SE_TOKEN).await;
        let cancel = format!("/admin/payments/{se_order}/cancel");
        let answers = at_once(&s, 3, &cancel, "cancel-3", &json!({})).await;
        assert_eq!(answers[0].0, StatusCode::OK, "[{}] {answers:?}", s.db);
        assert!(answers.iter().all(|a| a == &answers[0]), "[{}]", s.db);
        let answers = at_once(&s, 10, &cancel, "cancel-10", &json!({})).await;
        assert_eq!(answers[0].0, StatusCode::CONFLICT, "[{}] {answers:?}", s.db);
        assert!(answers.iter().all(|a| a == &answers[0]), "[{}]", s.db);
        assert_eq!(operations(&s, &se_order, OpKind::Cancel).await, 1);
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_died_mid_way_is_answered_from_its_operation_when_retried() {
    for db in databases().await {
        for step in ["after_intent", "after_klarna"] {
            let s = system(&db).await;
            let order_id = s.paid(ORDER, TOKEN).await;
            let path = format!("/admin/payments/{order_id}/captures");
            let body = json!({"amount": 30_000});
            let key = format!("odoo-capture-{step}");

            // The gateway stops after recording the capture (and, at the second step,
            // after Klarna did it) and never answers.
            s.gw().crash_at(step);
            let (status, died) = s.admin_keyed(&path, &key, &body).await;
            assert_eq!(
                status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "[{} {step}] {died}",
                s.db
            );
            // Its restart resumes the operation left pending.
            manage::recover(s.gw()).await.expect("recover");
            s.settle().await;

            // The caller retries with the same key: the first operation's result.
            let (status, retried) = s.admin_keyed(&path, &key, &body).await;
            assert_eq!(status, StatusCode::OK, "[{} {step}] {retried}", s.db);
            assert_eq!(
                retried["operation"]["state"], "succeeded",
                "[{} {step}] {retried}",
                s.db
            );
            let klarna = s.sandbox.state().orders[&order_id].order.clone();
            assert_eq!(
                (klarna.captures.len(), klarna.captured_amount),
                (1, 30_000),
                "[{} {step}] one capture at Klarna",
                s.db
            );
            assert_eq!(operations(&s, &order_id, OpKind::Capture).await, 1);
            let (status, again) = s.admin_keyed(&path, &key, &body).await;
            assert_eq!((status, &again), (StatusCode::OK, &retried), "[{}]", s.db);

            // A deliberate second capture of the same amount, with its own key, happens.
            let (status, second) = s.admin_keyed(&path, &format!("{key}-2"), &body).await;
            assert_eq!(status, StatusCode::OK, "[{} {step}] {second}", s.db);
            assert_ne!(second["operation"]["id"], retried["operation"]["id"]);
            assert_eq!(
                s.sandbox.state().orders[&order_id].order.captured_amount,
                60_000,
                "[{} {step}]",
                s.db
            );
            s.shutdown().await;
        }
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_is_one_requests_and_only_an_abandoned_one_is_taken_over() {
    for db in databases().await {
        let s = system(&db).await;
        let store = &s.gw().db;
        assert_eq!(
            store.claim_request("k", "hash").await.expect("claim"),
            Claim::Mine
        );
        let Claim::Taken(first) = store.claim_request("k", "hash").await.expect("claim") else {
            panic!("[{}] a second claim of one key must be refused", s.db);
        };
        assert_eq!(
            (first.operation_id, first.answer.clone()),
            (None, None),
            "[{}]",
            s.db
        );
        // Two takers of one abandoned claim: one wins.
        assert!(store.take_over_request("k", &first).await.expect("take"));
        assert!(!store.take_over_request("k", &first).await.expect("take"));

        // Released without an operation: the key is free again.
        store.release_request("k").await.expect("release");
        assert_eq!(store.admin_request("k").await.expect("read"), None);
        assert_eq!(
            store.claim_request("k", "hash").await.expect("claim"),
            Claim::Mine
        );
        // Answered: the answer stays, and is not overwritten.
        store
            .answer_request("k", 200, "{\"a\":1}")
            .await
            .expect("answer");
        store.answer_request("k", 500, "{}").await.expect("answer");
        let Claim::Taken(done) = store.claim_request("k", "hash").await.expect("claim") else {
            panic!("[{}] an answered key stays taken", s.db);
        };
        assert_eq!(
            done.answer,
            Some((200, "{\"a\":1}".to_owned())),
            "[{}]",
            s.db
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_whose_stored_request_cannot_be_read_is_never_sent() {
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        s.settle().await;
        // A capture recorded, then its stored request broken before the worker sends it.
        s.gw().crash_at("after_intent");
        let (status, _) = s
            .admin_keyed(
                &format!("/admin/payments/{order_id}/captures"),
                "broken",
                &json!({"amount": 5_000}),
            )
            .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "[{}]", s.db);
        sqlx::query("UPDATE operations SET request = $1 WHERE kind = 'capture'")
            .bind("{\"captured_amount\": \"lots\"}")
            .execute(&s.gw().db.pool)
            .await
            .expect("break the stored request");
        manage::recover(s.gw()).await.expect("recover");
        s.settle().await;

        assert_eq!(
            s.sandbox.state().orders[&order_id].order.captured_amount,
            0,
            "[{}] nothing guessed reached Klarna",
            s.db
        );
        let (t, ops) = s.payment(&order_id).await;
        assert_eq!(ops[0].state, OpState::Failed, "[{}] {ops:?}", s.db);
        assert!(
            t.attention
                .as_deref()
                .is_some_and(|a| a.contains("stored capture request")),
            "[{}] the payment needs a person: {:?}",
            s.db,
            t.attention
        );
        let review = s.gw().db.jobs_in("review").await.expect("review");
        assert_eq!(review.len(), 1, "[{}] {review:?}", s.db);
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_beyond_order_managements_limits_is_refused_before_anything_is_recorded() {
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        let path = format!("/admin/payments/{order_id}/captures");
        for (body, field) in [
            (
                json!({"amount": 1_000, "description": "d".repeat(300)}),
                "description",
            ),
            (
                json!({"amount": 1_000, "shipping_info": [{"shipping_company": "c".repeat(120)}]}),
                "shipping_info[0].shipping_company",
            ),
            (
                json!({"amount": 1_000, "shipping_info": [{"tracking_number": "t".repeat(120)}]}),
                "shipping_info[0].tracking_number",
            ),
            (
                json!({"amount": 1_000, "shipping_info": [{"shipping_method": "Drone"}]}),
                "shipping_info[0].shipping_method",
            ),
        ] {
            let (status, answer) = s.admin(&path, &body).await;
            assert_eq!(
                (status, answer["code"].as_str(), answer["field"].as_str()),
                (
                    StatusCode::BAD_REQUEST,
                    Some("invalid_request"),
                    Some(field)
                ),
                "[{}] {answer}",
                s.db
            );
        }
        assert_eq!(operations(&s, &order_id, OpKind::Capture).await, 0);
        assert_eq!(
            s.sandbox.state().orders[&order_id].order.captured_amount,
            0,
            "[{}]",
            s.db
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_under_a_new_key_finds_the_payment_changed_and_moves_no_money() {
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        let path = format!("/admin/payments/{order_id}/captures");
        let capture = |expected: i64| json!({"amount": 30_000, "expected_captured": expected, "expected_refunded": 0});

        // The gateway dies after Klarna captured; the caller's side rolls back, so its
        // retry carries a new key (Odoo's new child transaction).
        s.gw().crash_at("after_klarna");
        let (status, _) = s.admin_keyed(&path, "odoo-capture-P-S1", &capture(0)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "[{}]", s.db);
        // Before and after the restart finished the first capture: refused, with figures.
        for restarted in [false, true] {
            if restarted {
                manage::recover(s.gw()).await.expect("recover");
                s.settle().await;
            }
            let (status, answer) = s
                .admin_keyed(
                    &path,
                    &format!("odoo-capture-P-S2-{restarted}"),
                    &capture(0),
                )
                .await;
            assert_eq!(
                (status, answer["code"].as_str()),
                (StatusCode::CONFLICT, Some("state_changed")),
                "[{}] restarted {restarted}: {answer}",
                s.db
            );
            assert_eq!(answer["payment"]["captured"], 30_000, "[{}] {answer}", s.db);
            assert_eq!(
                answer["payment"]["captured_in_flight"],
                if restarted { 0 } else { 30_000 },
                "[{}] {answer}",
                s.db
            );
        }
        let klarna = s.sandbox.state().orders[&order_id].order.clone();
        assert_eq!(
            (klarna.captures.len(), klarna.captured_amount),
            (1, 30_000),
            "[{}] one capture at Klarna",
            s.db
        );
        assert_eq!(operations(&s, &order_id, OpKind::Capture).await, 1);

        // The caller, in line now, captures the same amount again on purpose: done.
        let (status, second) = s
            .admin_keyed(&path, "odoo-capture-P-S3", &capture(30_000))
            .await;
        assert_eq!(status, StatusCode::OK, "[{}] {second}", s.db);
        assert_eq!(
            s.sandbox.state().orders[&order_id].order.captured_amount,
            60_000,
            "[{}]",
            s.db
        );
        // A refund that expects another refunded amount than the gateway's: refused.
        let (status, answer) = s
            .admin_keyed(
                &format!("/admin/payments/{order_id}/refunds"),
                "odoo-refund-R1",
                &json!({"amount": 1_000, "expected_captured": 60_000, "expected_refunded": 500}),
            )
            .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::CONFLICT, Some("state_changed")),
            "[{}] {answer}",
            s.db
        );
        assert_eq!(operations(&s, &order_id, OpKind::Refund).await, 0);
        s.shutdown().await;
        db.cleanup().await;
    }
}

/// A malformed `Idempotency-Key` is refused, naming the header, and nothing is recorded:
/// the request is not done without the protection the caller asked for.
#[tokio::test]
async fn a_malformed_idempotency_key_is_refused_and_moves_no_money() {
    let db = common::sqlite();
    let s = system(&db).await;
    let order_id = s.paid(ORDER, TOKEN).await;
    let path = format!("{}/admin/payments/{order_id}/captures", s.url);
    let too_long = "k".repeat(256);
    let not_ascii = reqwest::header::HeaderValue::from_bytes(b"caf\xe9-key").expect("obs-text");
    for key in [
        reqwest::header::HeaderValue::from_static(""),
        reqwest::header::HeaderValue::from_str(&too_long).expect("a header"),
        not_ascii,
    ] {
        let r = s
            .http
            .post(&path)
            .bearer_auth(common::ADMIN_TOKEN)
            .header("Idempotency-Key", key.clone())
            .json(&json!({"amount": 10_000}))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{key:?}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["code"], "invalid_request", "{body}");
        assert_eq!(body["field"], "Idempotency-Key", "{body}");
    }
    assert_eq!(operations(&s, &order_id, OpKind::Capture).await, 0);
    // The longest key that is allowed still works.
    let (status, body) = s
        .admin_keyed(
            &format!("/admin/payments/{order_id}/captures"),
            &"k".repeat(255),
            &json!({"amount": 10_000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(operations(&s, &order_id, OpKind::Capture).await, 1);
}
