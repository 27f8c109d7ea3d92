//! Reconcile and the Odoo sync queue, on SQLite and PostgreSQL: Klarna's state wins over
//! ours and over a manual edit in Odoo; Odoo being down loses no update.

mod common;

use common::{ALL_ATTEMPTS_FAST, ORDER, ORDER_TOTAL, TOKEN, databases, system, system_with};
use klarna_client::{IdempotencyKey, KlarnaClient};
use klarna_gateway::reconcile;
use klarna_gateway::store::TxState;
use klarna_gateway::store::jobs::MAX_ATTEMPTS;
use klarna_sandbox::SandboxConfig;
use klarna_types::klarna::{CaptureRequest, RefundRequest};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn klarnas_state_wins_and_every_repair_is_audited() {
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        // Someone captures in Klarna's portal, outside the gateway.
        let cfg = SandboxConfig::default();
        let direct = KlarnaClient::new(klarna_client::Config::basic(
            &s.sandbox_url,
            &cfg.username,
            &cfg.password,
        ))
        .expect("client");
        direct
            .capture(
                &order_id,
                &CaptureRequest {
                    captured_amount: 20_000,
                    ..CaptureRequest::default()
                },
                &IdempotencyKey::new(),
            )
            .await
            .expect("capture at Klarna");
        // And a manual edit in Odoo says the payment was cancelled.
        s.settle().await;
        let odoo = s.odoo_transactions(ORDER).await;
        s.odoo(
            "payment.transaction",
            "write",
            json!([[odoo[0]["id"]], {"state": "cancel"}]),
            json!({}),
        )
        .await;

        let report = reconcile::run(s.gw()).await.expect("reconcile");
        assert_eq!(report.repaired.len(), 1, "[{}] {report:?}", s.db);
        assert!(
            report.repaired[0].contains("recorded from Klarna"),
            "{report:?}"
        );
        // Odoo 18 moves a cancelled transaction nowhere: a person is asked, nothing sent.
        assert!(
            report.odoo_resent.is_empty()
                && report
                    .attention
                    .iter()
                    .any(|a| a.contains("no update can undo a cancel in Odoo")),
            "[{}] {report:?}",
            s.db
        );
        // The person puts Odoo's transaction back to draft; the next run tells it again.
        s.settle().await;
        s.odoo(
            "payment.transaction",
            "write",
            json!([[odoo[0]["id"]], {"state": "draft"}]),
            json!({}),
        )
        .await;
        let report = reconcile::run(s.gw()).await.expect("reconcile");
        assert_eq!(report.odoo_resent.len(), 1, "[{}] {report:?}", s.db);
        let t = s
            .gw()
            .db
            .find_transaction(&order_id)
            .await
            .expect("read")
            .expect("payment");
        assert_eq!(
            (t.state, t.captured_amount),
            (TxState::PartCaptured, 20_000),
            "[{}]",
            s.db
        );
        let ops = s.gw().db.operations(t.id).await.expect("ops");
        assert_eq!((ops.len(), ops[0].requested_by.as_str()), (1, "reconcile"));
        s.settle().await;
        let odoo = s.odoo_transactions(ORDER).await;
        assert_eq!(
            odoo[0]["state"], "authorized",
            "[{}] Klarna's state restored in Odoo: {odoo:?}",
            s.db
        );
        assert_eq!(
            (
                odoo[1]["operation"].clone(),
                odoo[1]["source_transaction_id"][0].clone()
            ),
            (json!("online_direct"), odoo[0]["id"].clone()),
            "[{}] a partial capture is a child of the payment's transaction",
            s.db
        );
        let (_, view) = s.admin_get(&format!("/admin/payments/{order_id}")).await;
        let actions: Vec<&str> = view["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert!(
            actions.contains(&"repaired_from_klarna") && actions.contains(&"odoo_conflict"),
            "[{}] {actions:?}",
            s.db
        );

        // A second run finds nothing to repair.
        let again = reconcile::run(s.gw()).await.expect("reconcile");
        assert!(
            again.repaired.is_empty() && again.odoo_resent.is_empty(),
            "[{}] {again:?}",
            s.db
        );

        // Klarna lets an uncaptured order expire: closed here too.
        let order_id = s.paid(common::SE_ORDER, common::SE_TOKEN).await;
        s.http
            .post(format!("{}/_sandbox/clock", s.sandbox_url))
            .json(&json!({"seconds": 29 * 86_400}))
            .send()
            .await
            .expect("clock");
        let report = reconcile::run(s.gw()).await.expect("reconcile");
        assert!(
            report.repaired.iter().any(|r| r.contains("expired")),
            "[{}] {report:?}",
            s.db
        );
        assert_eq!(
            s.gw()
                .db
                .find_transaction(&order_id)
                .await
                .expect("read")
                .expect("payment")
                .state,
            TxState::Expired
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}

/// Klarna's order is read before the payment is locked; a refund done and recorded in
/// between (here, or by another instance) is not in that read. Applying it as it is would
/// take the refund back out of our amounts: the read is taken again instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_of_klarnas_order_older_than_our_records_takes_nothing_back() {
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        let (status, body) = s
            .admin(
                &format!("/admin/payments/{order_id}/captures"),
                &json!({"amount": 30_000}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // A capture in Klarna's portal, outside the gateway: the read has news for us.
        let cfg = SandboxConfig::default();
        let direct = KlarnaClient::new(klarna_client::Config::basic(
            &s.sandbox_url,
            &cfg.username,
            &cfg.password,
        ))
        .expect("client");
        direct
            .capture(
                &order_id,
                &CaptureRequest {
                    captured_amount: 10_000,
                    ..CaptureRequest::default()
                },
                &IdempotencyKey::new(),
            )
            .await
            .expect("capture at Klarna");
        let read = direct.get_order(&order_id).await.expect("read");
        // Then a refund through the gateway, done and recorded after that read.
        let (status, body) = s
            .admin(
                &format!("/admin/payments/{order_id}/refunds"),
                &json!({"amount": 5_000}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let t = s
            .gw()
            .db
            .find_transaction(&order_id)
            .await
            .expect("read")
            .expect("payment");

        let notes = reconcile::sync_payment(s.gw(), t.id, &read, "test", None)
            .await
            .expect("sync");
        assert!(
            notes
                .iter()
                .any(|n| n.contains("of 10000 recorded from Klarna")),
            "[{}] {notes:?}",
            s.db
        );
        let t = s
            .gw()
            .db
            .transaction(t.id)
            .await
            .expect("read")
            .expect("payment");
        assert_eq!(
            (t.state, t.captured_amount, t.refunded_amount, t.attention),
            (TxState::PartCaptured, 40_000, 5_000, None),
            "[{}] the refund stays; the portal's capture is added",
            s.db
        );
        let klarna = direct.get_order(&order_id).await.expect("read");
        assert_eq!(
            (klarna.captured_amount, klarna.refunded_amount),
            (40_000, 5_000)
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}

/// A refund made in Klarna's portal, once recorded from Klarna, counts against what is
/// left to refund, as one made through us does: a later refund through the gateway
/// keeps it in the payment's figures, and one for more than is left is refused here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_recorded_from_klarna_counts_against_later_refunds() {
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        let captures = format!("/admin/payments/{order_id}/captures");
        let refunds = format!("/admin/payments/{order_id}/refunds");
        let (status, body) = s.admin(&captures, &json!({"amount": 30_000})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let cfg = SandboxConfig::default();
        let direct = KlarnaClient::new(klarna_client::Config::basic(
            &s.sandbox_url,
            &cfg.username,
            &cfg.password,
        ))
        .expect("client");
        direct
            .refund(
                &order_id,
                &RefundRequest {
                    refunded_amount: 10_000,
                    ..RefundRequest::default()
                },
                &IdempotencyKey::new(),
            )
            .await
            .expect("refund at Klarna");
        let report = reconcile::run(s.gw()).await.expect("reconcile");
        assert_eq!(report.repaired.len(), 1, "[{}] {report:?}", s.db);

        let (status, body) = s.admin(&refunds, &json!({"amount": 20_000})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let t = s
            .gw()
            .db
            .find_transaction(&order_id)
            .await
            .expect("read")
            .expect("payment");
        assert_eq!(
            (t.state, t.captured_amount, t.refunded_amount),
            (TxState::PartCaptured, 30_000, 30_000),
            "[{}] both refunds count",
            s.db
        );
        let (status, body) = s.admin(&refunds, &json!({"amount": 1})).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::CONFLICT, &json!("refund_exceeds_captured")),
            "[{}] nothing is left to refund: {body}",
            s.db
        );
        let klarna = direct.get_order(&order_id).await.expect("read");
        assert_eq!(
            (klarna.captured_amount, klarna.refunded_amount),
            (30_000, 30_000)
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_fraud_decision_is_taken_over_from_klarna() {
    for db in databases().await {
        let s = system(&db).await;
        let partner = s
            .odoo(
                "sale.order",
                "search_read",
                json!([[["name", "=", ORDER]]]),
                json!({"fields": ["partner_invoice_id"]}),
            )
            .await;
        s.odoo("res.partner", "write", json!([[partner[0]["partner_invoice_id"][0]], {"email": "sabine+pend-accept-5@example.de"}]), json!({})).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        s.settle().await;
        assert_eq!(s.odoo_transactions(ORDER).await[0]["state"], "pending");
        let (status, body) = s
            .admin(&format!("/admin/payments/{order_id}/captures"), &json!({}))
            .await;
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::CONFLICT, json!("fraud_decision_pending")),
            "[{}] {body}",
            s.db
        );
        s.http
            .post(format!("{}/_sandbox/clock", s.sandbox_url))
            .json(&json!({"seconds": 300}))
            .send()
            .await
            .expect("clock");
        reconcile::run(s.gw()).await.expect("reconcile");
        s.settle().await;
        assert_eq!(
            s.odoo_transactions(ORDER).await[0]["state"],
            "authorized",
            "[{}]",
            s.db
        );
        let (status, body) = s
            .admin(&format!("/admin/payments/{order_id}/captures"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "[{}] {body}", s.db);
        assert_eq!(body["payment"]["captured_amount"], ORDER_TOTAL);
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odoo_down_loses_no_update_and_the_review_queue_replays_it() {
    for db in databases().await {
        // Odoo's route answers 401 (a wrong shared secret stands in for an outage).
        let s = system_with(&db, SandboxConfig::default(), |c| {
            c.retry_scale = ALL_ATTEMPTS_FAST;
        })
        .await;
        s.gw()
            .secrets
            .set(klarna_gateway::secrets::ODOO_SHARED_SECRET, "not-odoos")
            .await
            .expect("secret");
        let order_id = s.paid(ORDER, TOKEN).await;
        s.settle().await;
        assert!(
            s.odoo_transactions(ORDER).await.is_empty(),
            "[{}] Odoo heard nothing",
            s.db
        );
        let (_, review) = s.admin_get("/admin/review").await;
        let jobs = review["jobs"].as_array().expect("jobs").clone();
        assert_eq!(jobs.len(), 1, "[{}] {review}", s.db);
        assert_eq!(
            (jobs[0]["kind"].clone(), jobs[0]["attempts"].clone()),
            (json!("odoo_sync"), json!(MAX_ATTEMPTS))
        );
        assert!(
            jobs[0]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("401")),
            "{review}"
        );
        let metrics = klarna_gateway::metrics::render(&s.gw().db).await;
        assert!(metrics.contains("gateway_review_queue 1"), "{metrics}");

        // Odoo is fixed: the operator replays, and Odoo shows the authorization.
        s.gw()
            .secrets
            .set(
                klarna_gateway::secrets::ODOO_SHARED_SECRET,
                &SandboxConfig::default().odoo_shared_secret,
            )
            .await
            .expect("secret");
        let (status, _) = s
            .admin(&format!("/admin/jobs/{}/replay", jobs[0]["id"]), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK);
        s.settle().await;
        let odoo = s.odoo_transactions(ORDER).await;
        assert_eq!(
            (
                odoo[0]["state"].clone(),
                odoo[0]["provider_reference"].clone()
            ),
            (json!("authorized"), json!(order_id)),
            "[{}]",
            s.db
        );
        let (_, review) = s.admin_get("/admin/review").await;
        assert!(review["jobs"].as_array().is_some_and(Vec::is_empty));
        s.shutdown().await;
        db.cleanup().await;
    }
}
