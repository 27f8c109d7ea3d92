//! The job worker: claims due jobs (payment work before maintenance), runs them, and
//! retries with backoff; after the last attempt a job waits in the review queue.
//! It also schedules the periodic jobs (reconcile, personal-data retention).

use std::sync::Arc;

use tokio::sync::watch;

use crate::db::now_ms;
use crate::error::GatewayError;
use crate::jobs::{self, Job, JobError};
use crate::state::Gateway;
use crate::store::jobs::{MAX_ATTEMPTS, backoff};
use crate::{event_apply, manage, odoo_sync, reconcile};

/// How often personal data past its retention is looked for.
const PURGE_EVERY_MS: i64 = 6 * 3600 * 1000;

/// Runs one job's work: the one place that knows which handler each [`Job`] has.
async fn run_job(gw: &Gateway, job: &Job) -> Result<(), JobError> {
    match job {
        Job::OdooSync(notification) => odoo_sync::deliver(gw, notification).await,
        Job::ResumeOperation { operation_id } => manage::resume(gw, *operation_id).await,
        Job::WebhookEvent { event_id } => event_apply::process(gw, event_id).await,
        Job::Reconcile {} => {
            reconcile::run(gw).await?;
            Ok(())
        }
        Job::PurgePersonalData {} => {
            let retention = i64::try_from(gw.config.pii_retention.as_millis()).unwrap_or(i64::MAX);
            let n = gw
                .db
                .purge_personal_data(now_ms().saturating_sub(retention))
                .await?;
            tracing::info!(sessions = n, "personal data past its retention removed");
            Ok(())
        }
    }
}

/// A job that will not be tried again: what its work leaves behind for a person, set
/// before the job leaves "running" so it is in place by the time anyone sees the review
/// queue.
async fn gave_up(gw: &Gateway, job: &Job, error: &str) -> Result<(), GatewayError> {
    match job {
        // The payment's attention and Odoo's notification.
        Job::ResumeOperation { operation_id } => manage::gave_up(gw, *operation_id, error).await,
        Job::WebhookEvent { event_id } => gw.db.mark_event_review(event_id, error).await,
        Job::OdooSync(_) | Job::Reconcile {} | Job::PurgePersonalData {} => Ok(()),
    }
}

/// Claims and runs one due job. Returns whether there was one.
pub async fn run_once(gw: &Gateway) -> Result<bool, GatewayError> {
    let Some(row) = gw.db.claim_job(gw.config.job_lease).await? else {
        return Ok(false);
    };
    let done = match Job::from_stored(&row) {
        Ok(job) => run_job(gw, &job).await.map_err(|e| (Some(job), e)),
        Err(e) => Err((None, e)),
    };
    match done {
        Ok(()) => gw.db.complete_job(row.id).await?,
        Err((_, JobError::Waiting { reason, retry_in })) => {
            tracing::debug!(job = row.id, kind = %row.kind, "job waits: {reason}");
            gw.db
                .defer_job(&row, &reason, retry_in.mul_f64(gw.config.retry_scale))
                .await?;
        }
        Err((job, failure)) => {
            metrics::counter!("gateway_job_retries_total", "kind" => row.kind.clone()).increment(1);
            let error = failure.to_string();
            let permanent = matches!(failure, JobError::Permanent(_));
            if (permanent || row.attempts >= MAX_ATTEMPTS)
                && let Some(job) = &job
            {
                gave_up(gw, job, &error).await?;
            }
            let to_review = if permanent {
                gw.db.park_job(&row, &error).await?;
                true
            } else {
                let retry_in =
                    backoff(row.attempts, fastrand::f64()).mul_f64(gw.config.retry_scale);
                gw.db.fail_job(&row, &error, retry_in).await?
            };
            if to_review {
                tracing::error!(job = row.id, kind = %row.kind, "job moved to the review queue: {error}");
            } else {
                tracing::warn!(job = row.id, kind = %row.kind, attempt = row.attempts, "job failed, will retry: {error}");
            }
        }
    }
    Ok(true)
}

/// Runs jobs until none is due (tests and the CLI).
pub async fn drain(gw: &Gateway) -> Result<usize, GatewayError> {
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
            let key = format!("reconcile-{bucket}");
            if let Err(e) = jobs::enqueue_now(&gw.db, &Job::Reconcile {}, Some(&key)).await {
                tracing::warn!("reconcile could not be scheduled: {e}");
            }
        }
        if now - last_purge >= PURGE_EVERY_MS {
            last_purge = now;
            let key = format!("purge-{}", now / PURGE_EVERY_MS);
            if let Err(e) = jobs::enqueue_now(&gw.db, &Job::PurgePersonalData {}, Some(&key)).await
            {
                tracing::warn!("the personal-data purge could not be scheduled: {e}");
            }
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
