//! Crashes and outages in the middle of money movement, on SQLite and PostgreSQL: the work
//! is stopped after each step, a new gateway starts on the same database, and Klarna ends
//! up with exactly one capture or refund — never two, never none.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    ALL_ATTEMPTS_FAST, ORDER, ORDER_TOTAL, TOKEN, config, databases, secrets, system, system_with,
};
use klarna_gateway::manage::{self, Command, Expected};
use klarna_gateway::store::jobs::MAX_ATTEMPTS;
use klarna_gateway::store::{OpState, TxState};
use klarna_gateway::{Gateway, GatewayError, worker};
use klarna_sandbox::SandboxConfig;
use reqwest::StatusCode;
use serde_json::json;

fn capture(amount: i64) -> Command {
    Command::Capture(manage::CaptureArgs {
        amount: Some(amount),
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_any_two_steps_is_recovered_without_a_second_capture() {
    for db in databases().await {
        for step in ["after_intent", "after_klarna"] {
            // No background worker here: only the restarted gateway may resume the work.
            let s = system_with(&db, SandboxConfig::default(), |c| c.run_worker = false).await;
            let order_id = s.paid(ORDER, TOKEN).await;
            // A second gateway on the same database stands in for the process that dies;
            // it has no worker of its own.
            let mut c = config(&db, &s.sandbox_url, s.data_dir.path());
            c.run_worker = false;
            let doomed = Gateway::new(c.clone(), secrets(&SandboxConfig::default()))
                .await
                .expect("gateway");
            doomed.crash_at(step);
            let err = manage::run(
                &doomed,
                &order_id,
                capture(30_000),
                Expected::default(),
                "test",
                None,
            )
            .await
            .expect_err("crashed");
            assert!(
                matches!(err, GatewayError::Crashed(_)),
                "[{} {step}] {err}",
                s.db
            );
            let klarna_captures = s.sandbox.state().orders[&order_id].order.captures.len();
            assert_eq!(
                klarna_captures,
                usize::from(step == "after_klarna"),
                "[{} {step}]",
                s.db
            );
            drop(doomed);

            // Restart: recovery resumes the pending operation.
            let restarted = Arc::new(
                Gateway::new(c, secrets(&SandboxConfig::default()))
                    .await
                    .expect("restart"),
            );
            assert_eq!(manage::recover(&restarted).await.expect("recover"), 1);
            worker::drain(&restarted).await.expect("drain");
            let order = s.sandbox.state().orders[&order_id].order.clone();
            assert_eq!(
                (order.captures.len(), order.captured_amount),
                (1, 30_000),
                "[{} {step}] one capture at Klarna",
                s.db
            );
            let t = restarted
                .db
                .find_transaction(&order_id)
                .await
                .expect("read")
                .expect("payment");
            assert_eq!(
                (t.state, t.captured_amount),
                (TxState::PartCaptured, 30_000),
                "[{} {step}]",
                s.db
            );
            let ops = restarted.db.operations(t.id).await.expect("ops");
            assert_eq!(ops.len(), 1);
            assert_eq!(ops[0].state, OpState::Succeeded);
            assert_eq!(
                ops[0].klarna_id.as_deref(),
                Some(order.captures[0].capture_id.as_str())
            );
            // Nothing pending is left to resume.
            assert_eq!(manage::recover(&restarted).await.expect("recover"), 0);
            s.shutdown().await;
        }
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_resumed_by_the_worker_and_captures_once() {
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        // Klarna captures; its answer never arrives (and the retries' answers neither).
        let put = |spec: serde_json::Value| {
            let (http, url) = (
                s.http.clone(),
                format!("{}/_sandbox/faults/capture", s.sandbox_url),
            );
            async move { http.put(url).json(&spec).send().await.expect("fault") }
        };
        put(json!({"next": ["lose_response", "timeout", "timeout"]})).await;
        let (status, body) = s
            .admin(
                &format!("/admin/payments/{order_id}/captures"),
                &json!({"amount": 40_000}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "[{}] queued for retry: {body}",
            s.db
        );
        assert_eq!(body["operation"]["state"], "pending");
        s.settle().await;
        let order = s.sandbox.state().orders[&order_id].order.clone();
        assert_eq!(
            (order.captures.len(), order.captured_amount),
            (1, 40_000),
            "[{}]",
            s.db
        );
        let t = s
            .gw()
            .db
            .find_transaction(&order_id)
            .await
            .expect("read")
            .expect("payment");
        assert_eq!(t.captured_amount, 40_000);
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_that_keeps_failing_ends_in_review_with_attention_and_odoo_told() {
    for db in databases().await {
        let s = system_with(&db, SandboxConfig::default(), |c| {
            c.klarna_timeout = Duration::from_millis(500);
            c.retry_scale = ALL_ATTEMPTS_FAST;
        })
        .await;
        let order_id = s.paid(ORDER, TOKEN).await;
        s.http
            .put(format!("{}/_sandbox/faults/capture", s.sandbox_url))
            .json(&json!({"error_rate": 1.0}))
            .send()
            .await
            .expect("fault");
        let (status, _) = s
            .admin(
                &format!("/admin/payments/{order_id}/captures"),
                &json!({"amount": ORDER_TOTAL}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        s.settle().await;
        let (_, review) = s.admin_get("/admin/review").await;
        let jobs = review["jobs"].as_array().expect("jobs");
        assert_eq!(jobs.len(), 1, "[{}] {review}", s.db);
        assert_eq!(jobs[0]["kind"], "resume_operation");
        assert_eq!(jobs[0]["attempts"], MAX_ATTEMPTS);
        let t = s
            .gw()
            .db
            .find_transaction(&order_id)
            .await
            .expect("read")
            .expect("payment");
        assert!(
            t.attention
                .as_deref()
                .is_some_and(|a| a.contains("capture")),
            "[{}] {:?}",
            s.db,
            t.attention
        );
        assert_eq!(t.state, TxState::Authorized, "nothing was captured");
        assert!(
            s.sandbox.state().orders[&order_id]
                .order
                .captures
                .is_empty()
        );
        let odoo = s.odoo_transactions(ORDER).await;
        assert!(
            odoo[0]["state_message"]
                .as_str()
                .is_some_and(|m| m.contains("capture")),
            "[{}] Odoo shows it: {odoo:?}",
            s.db
        );

        // Klarna is back: the operator replays the job... which finds the operation
        // already failed for good and does nothing twice; a new capture goes through.
        s.http
            .delete(format!("{}/_sandbox/faults", s.sandbox_url))
            .send()
            .await
            .expect("clear");
        let id = jobs[0]["id"].as_i64().expect("id");
        let (status, _) = s
            .admin(&format!("/admin/jobs/{id}/replay"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK);
        s.settle().await;
        let (status, body) = s
            .admin(
                &format!("/admin/payments/{order_id}/captures"),
                &json!({"amount": ORDER_TOTAL}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(s.sandbox.state().orders[&order_id].order.captures.len(), 1);
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_operations_on_one_payment_never_interleave() {
    for db in databases().await {
        let s = system(&db).await;
        // Capture and cancel at once: exactly one wins.
        let order_id = s.paid(ORDER, TOKEN).await;
        let (capture_path, cancel_path) = (
            format!("/admin/payments/{order_id}/captures"),
            format!("/admin/payments/{order_id}/cancel"),
        );
        let (capture_body, empty) = (json!({"amount": 10_000}), json!({}));
        let ((cs, cb), (xs, xb)) = tokio::join!(
            s.admin(&capture_path, &capture_body),
            s.admin(&cancel_path, &empty)
        );
        let wins = [cs, xs].iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(wins, 1, "[{}] capture {cs} {cb}, cancel {xs} {xb}", s.db);
        let order = s.sandbox.state().orders[&order_id].order.clone();
        if cs == StatusCode::OK {
            assert_eq!(
                (order.captures.len(), order.status),
                (1, klarna_types::klarna::OrderStatus::PartCaptured)
            );
        } else {
            assert_eq!(
                (order.captures.len(), order.status),
                (0, klarna_types::klarna::OrderStatus::Cancelled)
            );
        }

        // Two full refunds at once: one refund.
        let order_id = s.paid(common::SE_ORDER, common::SE_TOKEN).await;
        let (status, _) = s
            .admin(&format!("/admin/payments/{order_id}/captures"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK);
        let refund_path = format!("/admin/payments/{order_id}/refunds");
        let ((a_status, a_body), (b_status, b_body)) =
            tokio::join!(s.admin(&refund_path, &empty), s.admin(&refund_path, &empty));
        let wins = [a_status, b_status]
            .iter()
            .filter(|s| **s == StatusCode::OK)
            .count();
        assert_eq!(
            wins, 1,
            "[{}] {a_status} {a_body} / {b_status} {b_body}",
            s.db
        );
        let order = s.sandbox.state().orders[&order_id].order.clone();
        assert_eq!(
            (order.refunds.len(), order.refunded_amount),
            (1, order.captured_amount),
            "[{}]",
            s.db
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}
