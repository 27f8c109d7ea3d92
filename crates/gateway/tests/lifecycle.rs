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
                ("capture".into(), "done".into(), 350.0),
                ("capture".into(), "done".into(), 350.28),
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
