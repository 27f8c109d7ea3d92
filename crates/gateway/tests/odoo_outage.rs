//! Odoo down, and back: the gateway's updates reach it without anyone pressing a button —
//! through the job schedule's retries, through reconcile reviving what waited in review, and
//! through reconcile re-sending the captures and refunds Odoo lacks.
//!
//! An outage is the sandbox's fault injection on the Odoo stand-in's routes (`odoo_update`,
//! `odoo_jsonrpc`: 503 from a proxy); the job schedule runs on a fast clock (`retry_scale`).

mod common;

use std::time::Duration;

use common::{ALL_ATTEMPTS_FAST, ORDER, System, TOKEN, databases, system, system_with, wait_until};
use klarna_gateway::reconcile;
use klarna_gateway::store::jobs::MAX_ATTEMPTS;
use klarna_sandbox::SandboxConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Odoo's routes answer 503 (`which`: the addon's update route, JSON-RPC, or both).
async fn odoo_down(s: &System, which: &[&str]) {
    for op in which {
        let r = s
            .http
            .put(format!("{}/_sandbox/faults/{op}", s.sandbox_url))
            .json(&json!({"error_rate": 1.0}))
            .send()
            .await
            .expect("fault");
        assert!(r.status().is_success(), "{op}: {}", r.status());
    }
}

async fn odoo_up(s: &System) {
    s.http
        .delete(format!("{}/_sandbox/faults", s.sandbox_url))
        .send()
        .await
        .expect("clear faults");
}

/// Odoo's transaction for one of the gateway's operations: (state, amount), if any.
async fn odoo_operation(s: &System, operation: i64) -> Vec<(String, f64)> {
    let reference = format!("klarna-op-{operation}");
    s.odoo_transactions(ORDER)
        .await
        .iter()
        .filter(|t| t["provider_reference"] == reference.as_str())
        .map(|t| {
            (
                t["state"].as_str().unwrap_or_default().to_owned(),
                t["amount"].as_f64().unwrap_or_default(),
            )
        })
        .collect()
}

async fn capture(s: &System, order_id: &str, amount: i64) -> i64 {
    let (status, body) = s
        .admin(
            &format!("/admin/payments/{order_id}/captures"),
            &json!({"amount": amount}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "[{}] {body}", s.db);
    body["operation"]["id"].as_i64().expect("operation id")
}

/// The job of the Odoo update about `operation`: (state, attempts, last error).
async fn update_job(s: &System, operation: i64) -> Option<(String, i64, Option<String>)> {
    for state in ["queued", "running", "review", "done"] {
        let jobs = s.gw().db.jobs_in(state).await.expect("jobs");
        if let Some(j) = jobs
            .iter()
            .find(|j| j.kind == "odoo_sync" && j.payload["operation_id"] == json!(operation))
        {
            return Some((j.state.clone(), j.attempts, j.last_error.clone()));
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_capture_during_a_two_minute_odoo_outage_reaches_odoo_by_the_retries_alone() {
    // One minute of the job schedule is 0.6 s: the waits are 0.1, 0.6, 1.2, 9 s, …
    const SCALE: f64 = 0.01;
    let outage = Duration::from_secs(120).mul_f64(SCALE);
    for db in databases().await {
        let s = system_with(&db, SandboxConfig::default(), |c| c.retry_scale = SCALE).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        s.settle().await;

        odoo_down(&s, &["odoo_update", "odoo_jsonrpc"]).await;
        let down = tokio::time::Instant::now();
        let op = capture(&s, &order_id, 30_000).await;
        tokio::time::sleep_until(down + outage).await;
        let tried = s.sandbox.faults.count("odoo_update");
        let (state, attempts, error) = update_job(&s, op).await.expect("a job");
        assert!(
            tried >= 2 && state != "done" && attempts >= 2,
            "[{}] the update was tried during the outage: {tried} requests, job {state}, {attempts} attempts",
            s.db
        );
        assert!(
            error.as_deref().is_some_and(|e| e.contains("503")),
            "[{}] {error:?}",
            s.db
        );
        assert!(odoo_operation(&s, op).await.is_empty(), "[{}]", s.db);

        // Odoo is back; nobody calls anything.
        odoo_up(&s).await;
        let found = wait_until(
            &format!("[{}] Odoo's stand-in to hold capture {op}", s.db),
            async || {
                let found = odoo_operation(&s, op).await;
                if found.iter().any(|(state, _)| state == "done") {
                    Ok(found)
                } else {
                    Err(format!("{found:?}"))
                }
            },
        )
        .await;
        assert_eq!(found, [("done".to_owned(), 300.0)], "[{}]", s.db);
        // Odoo holds the capture before the worker has recorded its job as done: wait for
        // the job to leave the queue.
        let (state, attempts, _) = wait_until(
            &format!("[{}] the update's job to finish", s.db),
            async || match update_job(&s, op).await {
                Some(job) if job.0 != "queued" && job.0 != "running" => Ok(job),
                other => Err(format!("{other:?}")),
            },
        )
        .await;
        assert!(
            state == "done" && attempts > 2 && attempts < MAX_ATTEMPTS,
            "[{}] {state} after {attempts} attempts",
            s.db
        );
        assert!(
            s.gw()
                .db
                .jobs_in("review")
                .await
                .expect("review")
                .is_empty()
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_in_review_is_queued_again_by_reconcile_once_odoo_answers() {
    for db in databases().await {
        let s = system_with(&db, SandboxConfig::default(), |c| {
            c.retry_scale = ALL_ATTEMPTS_FAST;
        })
        .await;
        let order_id = s.paid(ORDER, TOKEN).await;
        s.settle().await;

        // Odoo is down longer than the whole schedule: the capture's update waits in review.
        odoo_down(&s, &["odoo_update", "odoo_jsonrpc"]).await;
        let op = capture(&s, &order_id, 30_000).await;
        wait_until(
            &format!("[{}] the update to wait in review", s.db),
            async || match update_job(&s, op).await {
                Some((state, attempts, _)) if state == "review" => Ok(attempts),
                other => Err(format!("{other:?}")),
            },
        )
        .await;

        // Reconcile while Odoo is still down leaves it there (and says why).
        let report = reconcile::run(s.gw()).await.expect("reconcile");
        assert!(report.odoo_revived.is_empty(), "[{}] {report:?}", s.db);
        assert!(
            report
                .attention
                .iter()
                .any(|a| a.contains("Odoo does not answer")),
            "[{}] {report:?}",
            s.db
        );
        assert_eq!(
            update_job(&s, op).await.map(|j| j.0),
            Some("review".to_owned())
        );

        // Odoo is back: the next reconcile queues it again, and Odoo gets the capture.
        odoo_up(&s).await;
        let report = reconcile::run(s.gw()).await.expect("reconcile");
        assert_eq!(report.odoo_revived.len(), 1, "[{}] {report:?}", s.db);
        assert!(
            report.odoo_revived[0].contains(ORDER) && report.odoo_revived[0].contains("captured"),
            "[{}] {report:?}",
            s.db
        );
        assert!(
            report.odoo_resent.is_empty(),
            "[{}] the revived update is on its way; nothing is sent twice: {report:?}",
            s.db
        );
        s.settle().await;
        assert_eq!(
            odoo_operation(&s, op).await,
            [("done".to_owned(), 300.0)],
            "[{}]",
            s.db
        );
        assert!(
            s.gw()
                .db
                .jobs_in("review")
                .await
                .expect("review")
                .is_empty()
        );
        let (_, view) = s.admin_get(&format!("/admin/payments/{order_id}")).await;
        assert!(
            view["timeline"]
                .as_array()
                .is_some_and(|t| t.iter().any(|e| e["action"] == "odoo_update_revived")),
            "[{}] audited: {view}",
            s.db
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_re_sends_the_captures_and_refunds_odoo_lacks_and_only_those() {
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        let first = capture(&s, &order_id, 30_000).await;
        let second = capture(&s, &order_id, 20_000).await;
        let (status, body) = s
            .admin(
                &format!("/admin/payments/{order_id}/refunds"),
                &json!({"amount": 5_000}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "[{}] {body}", s.db);
        let refund = body["operation"]["id"].as_i64().expect("refund id");
        s.settle().await;
        let report = reconcile::run(s.gw()).await.expect("reconcile");
        assert!(
            report.odoo_resent.is_empty(),
            "[{}] Odoo has it all: {report:?}",
            s.db
        );

        // Odoo loses the second capture and the refund (a restore from an older backup).
        let lost: Vec<Value> = s
            .odoo_transactions(ORDER)
            .await
            .into_iter()
            .filter(|t| {
                [second, refund]
                    .iter()
                    .any(|op| t["provider_reference"] == format!("klarna-op-{op}").as_str())
            })
            .map(|t| t["id"].clone())
            .collect();
        assert_eq!(lost.len(), 2, "[{}]", s.db);
        s.odoo("payment.transaction", "unlink", json!([lost]), json!({}))
            .await;

        let report = reconcile::run(s.gw()).await.expect("reconcile");
        assert_eq!(report.odoo_resent.len(), 1, "[{}] {report:?}", s.db);
        let line = &report.odoo_resent[0];
        assert!(
            line.contains(&format!("capture {second} of 20000"))
                && line.contains(&format!("refund {refund} of 5000"))
                && !line.contains(&format!("capture {first} ")),
            "[{}] {line}",
            s.db
        );
        s.settle().await;
        assert_eq!(
            odoo_operation(&s, second).await,
            [("done".to_owned(), 200.0)]
        );
        assert_eq!(
            odoo_operation(&s, refund).await,
            [("done".to_owned(), -50.0)]
        );
        assert_eq!(odoo_operation(&s, first).await.len(), 1, "[{}]", s.db);
        let report = reconcile::run(s.gw()).await.expect("reconcile");
        assert!(report.odoo_resent.is_empty(), "[{}] {report:?}", s.db);
        s.shutdown().await;
        db.cleanup().await;
    }
}
