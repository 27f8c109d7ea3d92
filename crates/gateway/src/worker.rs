//! The job worker: claims due jobs (payment work before maintenance), runs them, and
//! retries with backoff; after the last attempt a job waits in the review queue.
//! It also schedules the periodic jobs (reconcile, personal-data retention).

use std::sync::Arc;

use serde_json::json;
use tokio::sync::watch;

use crate::Gateway;
use crate::db::now_ms;
use crate::store::jobs::{Job, PRIORITY_MAINTENANCE, backoff};
use crate::{manage, odoo_sync, reconcile, webhook};

pub const PURGE_JOB: &str = "purge_personal_data";

/// Why a job did not finish.
#[derive(Debug)]
pub enum NotDone {
    /// A failed attempt: retried with backoff, then the review queue.
    Failed(String),
    /// Not possible yet (the event came before the payment it is about): tried again
    /// later without using up an attempt.
    Waiting {
        reason: String,
        retry_in: std::time::Duration,
    },
}

impl From<String> for NotDone {
    fn from(e: String) -> Self {
        Self::Failed(e)
    }
}

impl From<&str> for NotDone {
    fn from(e: &str) -> Self {
        Self::Failed(e.to_owned())
    }
}

/// Runs one job's work.
async fn handle(gw: &Gateway, job: &Job) -> Result<(), NotDone> {
    match job.kind.as_str() {
        odoo_sync::JOB => Ok(odoo_sync::deliver(gw, &job.payload).await?),
        manage::RESUME_JOB => {
            let id = job
                .payload
                .get("operation_id")
                .and_then(serde_json::Value::as_i64)
                .ok_or("no operation_id")?;
            Ok(manage::resume(gw, id).await?)
        }
        crate::store::webhooks::JOB => {
            let id = job
                .payload
                .get("event_id")
                .and_then(serde_json::Value::as_str)
                .ok_or("no event_id")?;
            webhook::process(gw, id).await
        }
        reconcile::JOB => reconcile::run(gw)
            .await
            .map(|_| ())
            .map_err(|e| NotDone::Failed(e.to_string())),
        PURGE_JOB => {
            let cutoff =
                now_ms() - i64::try_from(gw.config.pii_retention.as_millis()).unwrap_or(i64::MAX);
            let n = gw
                .db
                .purge_personal_data(cutoff)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(sessions = n, "personal data past its retention removed");
            Ok(())
        }
        other => Err(format!("unknown job kind {other:?}").into()),
    }
}

/// Claims and runs one due job. Returns whether there was one.
pub async fn run_once(gw: &Gateway) -> Result<bool, crate::GatewayError> {
    let Some(job) = gw.db.claim_job(gw.config.job_lease).await? else {
        return Ok(false);
    };
    match handle(gw, &job).await {
        Ok(()) => gw.db.complete_job(job.id).await?,
        Err(NotDone::Waiting { reason, retry_in }) => {
            tracing::debug!(job = job.id, kind = %job.kind, "job waits: {reason}");
            gw.db
                .defer_job(&job, &reason, retry_in.mul_f64(gw.config.retry_scale))
                .await?;
        }
        Err(NotDone::Failed(error)) => {
            metrics::counter!("gateway_job_retries_total", "kind" => job.kind.clone()).increment(1);
            let last = job.attempts >= crate::store::jobs::MAX_ATTEMPTS;
            if last
                && job.kind == manage::RESUME_JOB
                && let Some(id) = job
                    .payload
                    .get("operation_id")
                    .and_then(serde_json::Value::as_i64)
            {
                // Before the job leaves "running": the payment's attention and Odoo's
                // notification are in place by the time anyone sees the review queue.
                manage::gave_up(gw, id, &error).await?;
            }
            if last
                && job.kind == crate::store::webhooks::JOB
                && let Some(id) = job
                    .payload
                    .get("event_id")
                    .and_then(serde_json::Value::as_str)
            {
                gw.db.mark_event_review(id, &error).await?;
            }
            let retry_in = backoff(job.attempts, fastrand::f64()).mul_f64(gw.config.retry_scale);
            if gw.db.fail_job(&job, &error, retry_in).await? {
                tracing::error!(job = job.id, kind = %job.kind, "job moved to the review queue after its last attempt: {error}");
            } else {
                tracing::warn!(job = job.id, kind = %job.kind, attempt = job.attempts, "job failed, will retry: {error}");
            }
        }
    }
    Ok(true)
}

/// Runs jobs until none is due (tests and the CLI).
pub async fn drain(gw: &Gateway) -> Result<usize, crate::GatewayError> {
    let mut n = 0;
    while run_once(gw).await? {
        n += 1;
    }
    Ok(n)
}

/// The worker loop, until `stop` turns true; the job in hand is finished first.
pub async fn run(gw: Arc<Gateway>, mut stop: watch::Receiver<bool>) {
    let mut last_reconcile = 0i64;
    let mut last_purge = 0i64;
    loop {
        if *stop.borrow() {
            break;
        }
        let now = now_ms();
        let reconcile_every =
            i64::try_from(gw.config.reconcile_interval.as_millis()).unwrap_or(i64::MAX);
        if reconcile_every > 0 && now - last_reconcile >= reconcile_every {
            last_reconcile = now;
            let bucket = now / reconcile_every.max(1);
            let _ = gw
                .db
                .enqueue_now(
                    reconcile::JOB,
                    &json!({}),
                    PRIORITY_MAINTENANCE,
                    Some(&format!("reconcile-{bucket}")),
                )
                .await;
        }
        if now - last_purge >= 6 * 3600 * 1000 {
            last_purge = now;
            let _ = gw
                .db
                .enqueue_now(
                    PURGE_JOB,
                    &json!({}),
                    PRIORITY_MAINTENANCE,
                    Some(&format!("purge-{}", now / (6 * 3600 * 1000))),
                )
                .await;
        }
        match run_once(&gw).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::error!("job worker: {e}"),
        }
        tokio::select! {
            () = gw.worker_wakeup.notified() => {}
            () = tokio::time::sleep(gw.config.worker_poll) => {}
            _ = stop.changed() => {}
        }
    }
    tracing::info!("job worker stopped");
}
