//! Order management through the admin API, on SQLite and PostgreSQL: captures per
//! shipment, refunds within what was captured, cancel and release rules, idempotent
//! retries from Odoo, the timeline — and Odoo's transactions following along.

mod common;

use common::{ADMIN_TOKEN, ORDER, ORDER_TOTAL, TOKEN, databases, system};
use klarna_gateway::store::TxState;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn odoo_states(txs: &[Value]) -> Vec<(String, String, f64)> {
    txs.iter()
        .map(|t| {
            (
                t["operation"].as_str().unwrap_or("").to_owned(),
                t["state"].as_str().unwrap_or("").to_owned(),
                t["amount"].as_f64().unwrap_or(0.0),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_in_two_shipments_refund_part_and_odoo_follows() {
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        s.settle().await;
        assert_eq!(
            odoo_states(&s.odoo_transactions(ORDER).await),
            [("online_direct".into(), "authorized".into(), 700.28)],
            "[{}]",
            s.db
        );

        // Without the token: 401, nothing done.
        let r = s
            .http
            .post(format!("{}/admin/payments/{order_id}/captures", s.url))
            .json(&json!({"amount": 1}))
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = s
            .http
            .post(format!("{}/admin/payments/{order_id}/captures", s.url))
            .bearer_auth("not-it")
            .json(&json!({"amount": 1}))
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

        // First shipment: half, with tracking.
        let (status, first) = s
            .admin(&format!("/admin/payments/{order_id}/captures"), &json!({"amount": 35_000, "shipping_info": [{"shipping_company": "DHL", "tracking_number": "JJD000390007"}]}))
            .await;
        assert_eq!(status, StatusCode::OK, "[{}] {first}", s.db);
        assert_eq!(first["payment"]["state"], "part_captured");
        // Second shipment: the rest (no amount: all that remains), addressed by Odoo's reference.
        let (status, second) = s
            .admin(&format!("/admin/payments/{ORDER}/captures"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "[{}] {second}", s.db);
        assert_eq!(second["operation"]["amount"], ORDER_TOTAL - 35_000);
        assert_eq!(second["payment"]["state"], "captured");
        // Nothing left to capture, and no cancel after a capture.
        let (status, refused) = s
            .admin(
                &format!("/admin/payments/{order_id}/captures"),
                &json!({"amount": 1}),
            )
            .await;
        assert_eq!(
            (status, refused["code"].clone()),
            (StatusCode::CONFLICT, json!("not_allowed_in_this_state")),
            "{refused}"
        );
        let (status, refused) = s
            .admin(&format!("/admin/payments/{order_id}/cancel"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");

        // A partial refund, from the first capture; then never more than captured − refunded.
        let capture_id = first["operation"]["klarna_id"]
            .as_str()
            .expect("capture id");
        let (status, refund) = s
            .admin(
                &format!("/admin/payments/{order_id}/refunds"),
                &json!({"amount": 10_000, "capture_id": capture_id}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "[{}] {refund}", s.db);
        assert_eq!(refund["payment"]["refunded_amount"], 10_000);
        let (status, refused) = s
            .admin(
                &format!("/admin/payments/{order_id}/refunds"),
                &json!({"amount": ORDER_TOTAL}),
            )
            .await;
        assert_eq!(
            (status, refused["code"].clone()),
            (StatusCode::CONFLICT, json!("refund_exceeds_captured")),
            "{refused}"
        );

        // Klarna agrees.
        let klarna = s.sandbox.state().orders[&order_id].order.clone();
        assert_eq!(
            (
                klarna.captured_amount,
                klarna.refunded_amount,
                klarna.captures.len()
            ),
            (ORDER_TOTAL, 10_000, 2)
        );
        assert_eq!(klarna.captures[0].refunded_amount, 10_000);

        // The timeline tells the story, and Odoo shows it.
        let (_, view) = s.admin_get(&format!("/admin/payments/{order_id}")).await;
        let actions: Vec<&str> = view["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert_eq!(
            actions,
            [
                "authorized",
                "capture_requested",
                "capture_succeeded",
                "capture_requested",
                "capture_succeeded",
                "refund_requested",
                "refund_succeeded"
            ],
            "[{}]",
            s.db
        );
        s.settle().await;
        let states = odoo_states(&s.odoo_transactions(ORDER).await);
        assert_eq!(
            states,
            [
                ("online_direct".into(), "done".into(), 700.28),
                ("online_direct".into(), "done".into(), 350.0),
                ("online_direct".into(), "done".into(), 350.28),
                ("refund".into(), "done".into(), -100.0),
            ],
            "[{}]",
            s.db
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odoo_retrying_a_capture_with_its_idempotency_key_captures_once() {
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        let send = |amount: i64| {
            s.http
                .post(format!("{}/admin/payments/{order_id}/captures", s.url))
                .bearer_auth(ADMIN_TOKEN)
                .header("Idempotency-Key", "odoo-tx-42-capture-1")
                .json(&json!({"amount": amount}))
                .send()
        };
        let first: Value = send(20_000)
            .await
            .expect("first")
            .json()
            .await
            .expect("json");
        let again: Value = send(20_000)
            .await
            .expect("again")
            .json()
            .await
            .expect("json");
        assert_eq!(first, again, "[{}] the first answer, again", s.db);
        assert_eq!(s.sandbox.state().orders[&order_id].order.captures.len(), 1);
        let other = send(30_000).await.expect("other");
        assert_eq!(
            other.status(),
            StatusCode::BAD_REQUEST,
            "the key is bound to its request"
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_capture_and_release_after_a_partial_one() {
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        let (status, body) = s
            .admin(&format!("/admin/payments/{order_id}/extend"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = s
            .admin(&format!("/admin/payments/{order_id}/release"), &json!({}))
            .await;
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::CONFLICT, json!("release_without_capture")),
            "{body}"
        );
        let (status, body) = s
            .admin(&format!("/admin/payments/{order_id}/cancel"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "[{}] {body}", s.db);
        assert_eq!(body["payment"]["state"], "cancelled");
        assert_eq!(
            s.sandbox.state().orders[&order_id].order.status,
            klarna_types::klarna::OrderStatus::Cancelled
        );
        s.settle().await;
        assert_eq!(s.odoo_transactions(ORDER).await[0]["state"], "cancel");

        // A new payment for a fresh demo order, captured in part, the rest released.
        let order_id = s.paid(common::SE_ORDER, common::SE_TOKEN).await;
        let (status, _) = s
            .admin(
                &format!("/admin/payments/{order_id}/captures"),
                &json!({"amount": 100_000}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = s
            .admin(&format!("/admin/payments/{order_id}/release"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "[{}] {body}", s.db);
        assert_eq!(
            (
                body["payment"]["state"].clone(),
                body["payment"]["released_amount"].clone()
            ),
            (json!("captured"), json!(135_796 - 100_000))
        );
        let rows = s.gw().db.transactions().await.expect("rows");
        assert_eq!(
            rows.iter().filter(|t| t.state == TxState::Captured).count(),
            1
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_names_its_capture_by_operation_id_and_odoo_hears_which() {
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        let other_order = s.paid(common::SE_ORDER, common::SE_TOKEN).await;
        let capture = async |payment: &str, amount: i64| {
            let (status, body) = s
                .admin(
                    &format!("/admin/payments/{payment}/captures"),
                    &json!({"amount": amount}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "[{}] {body}", s.db);
            body["operation"]["id"].as_i64().expect("id")
        };
        let first = capture(&order_id, 30_000).await;
        let second = capture(&order_id, 20_000).await;
        let elsewhere = capture(&other_order, 1_000).await;
        let refunds = format!("/admin/payments/{order_id}/refunds");

        // Whatever does not name a succeeded capture of this payment: 422, the field
        // named, nothing done.
        for (bad, why) in [
            (json!(elsewhere), "not one of this payment's"),
            (json!(999_999), "not one of this payment's"),
            (json!("7"), "not an operation id"),
            (json!(1.5), "not an operation id"),
        ] {
            let (status, refused) = s
                .admin_keyed(
                    &refunds,
                    &format!("bad-{bad}"),
                    &json!({"amount": 1_000, "capture_operation_id": bad}),
                )
                .await;
            assert_eq!(
                (status, refused["code"].clone(), refused["field"].clone()),
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!("unknown_capture_operation"),
                    json!("capture_operation_id")
                ),
                "[{}] {bad}: {refused}",
                s.db
            );
            assert!(
                refused["message"].as_str().is_some_and(|m| m.contains(why)),
                "[{}] {refused}",
                s.db
            );
        }
        let (_, ops) = s.payment(&order_id).await;
        assert_eq!(ops.len(), 2, "[{}] no refund recorded: {ops:?}", s.db);

        // A refund from the second capture is bound to it: never more than it holds.
        let (status, refused) = s
            .admin(
                &refunds,
                &json!({"amount": 25_000, "capture_operation_id": second}),
            )
            .await;
        assert_eq!(
            (status, refused["code"].clone()),
            (StatusCode::CONFLICT, json!("refund_exceeds_captured")),
            "[{}] {refused}",
            s.db
        );
        // Naming Klarna's capture id of another capture beside it is a contradiction.
        let first_klarna = ops[0].klarna_id.clone().expect("klarna id");
        let (status, refused) = s
            .admin(
                &refunds,
                &json!({"amount": 1_000, "capture_operation_id": second, "capture_id": first_klarna}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{}] {refused}",
            s.db
        );

        let body = json!({"amount": 5_000, "capture_operation_id": second,
                          "expected_captured": 50_000, "expected_refunded": 0});
        let (status, refund) = s.admin_keyed(&refunds, "refund-second", &body).await;
        assert_eq!(status, StatusCode::OK, "[{}] {refund}", s.db);
        assert_eq!(refund["operation"]["capture_operation_id"], second);
        let (status, again) = s.admin_keyed(&refunds, "refund-second", &body).await;
        assert_eq!(
            (status, &again["operation"]["id"]),
            (StatusCode::OK, &refund["operation"]["id"]),
            "[{}] the same key, the same refund",
            s.db
        );
        let (_, view) = s.admin_get(&format!("/admin/payments/{order_id}")).await;
        let refund_id = refund["operation"]["id"].clone();
        let shown = view["operations"]
            .as_array()
            .and_then(|ops| ops.iter().find(|o| o["id"] == refund_id))
            .expect("the refund in the view");
        assert_eq!(shown["capture_operation_id"], second, "[{}] {view}", s.db);
        let first_shown = &view["operations"][0];
        assert_eq!(first_shown["id"], first);
        assert_eq!(first_shown["capture_operation_id"], Value::Null);

        // Odoo's update names the capture; a refund naming none says null.
        let (status, _) = s.admin(&refunds, &json!({"amount": 1_000})).await;
        assert_eq!(status, StatusCode::OK);
        s.settle().await;
        let updates: Vec<Value> = s
            .gw()
            .db
            .jobs_in("done")
            .await
            .expect("jobs")
            .into_iter()
            .filter(|j| j.kind == "odoo_sync" && j.payload["event"] == "refunded")
            .map(|j| j.payload)
            .collect();
        assert_eq!(updates.len(), 2, "[{}] {updates:?}", s.db);
        assert_eq!(updates[0]["operation_id"], refund_id);
        assert_eq!(updates[0]["capture_operation_id"], second);
        assert!(
            updates[1]
                .as_object()
                .is_some_and(|u| u.get("capture_operation_id") == Some(&Value::Null)),
            "[{}] null, not absent: {}",
            s.db,
            updates[1]
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}
