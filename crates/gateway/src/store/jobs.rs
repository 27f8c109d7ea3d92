//! The durable job queue (outbox), as rows: a job is inserted in the same transaction as the state
//! change that needs it, claimed by one worker at a time (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, SQLite's single writer otherwise), retried on [`RETRY_SCHEDULE`] (more than a
//! day, like Klarna's own webhook retries), and after [`MAX_ATTEMPTS`] failures parked in
//! the review queue for a person. What a row's
//! `kind` and `payload` mean is [`crate::jobs::Job`]'s business, not this module's.

use std::time::Duration;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Db, Tx, json_col, now_ms};
use crate::error::GatewayError;

/// The waits between attempts, after Klarna's own webhook schedule (10 s, 2 min, 15 min,
/// 3 h, 6 h, 12 h) with a few more early on: a short blip is bridged within minutes, and
/// an Odoo that is down overnight or over a weekend's Saturday still gets every update —
/// the attempts span 34 h 18 min (plus jitter) before a job waits for a person.
pub const RETRY_SCHEDULE: [Duration; 9] = [
    Duration::from_secs(10),
    Duration::from_secs(60),
    Duration::from_secs(2 * 60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(3 * 3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(12 * 3600),
    Duration::from_secs(12 * 3600),
];

/// Attempts before a job goes to the review queue: the first, then one after each wait of
/// [`RETRY_SCHEDULE`].
pub const MAX_ATTEMPTS: i64 = RETRY_SCHEDULE.len() as i64 + 1;
/// Payment work goes before maintenance.
pub const PRIORITY_PAYMENT: i64 = 0;
pub const PRIORITY_MAINTENANCE: i64 = 10;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoredJob {
    pub id: i64,
    pub kind: String,
    pub priority: i64,
    pub payload: serde_json::Value,
    pub state: String,
    pub attempts: i64,
    pub run_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn from_row(r: &AnyRow) -> Result<StoredJob, GatewayError> {
    let payload: String = r.try_get("payload")?;
    Ok(StoredJob {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        priority: r.try_get("priority")?,
        payload: json_col(&payload)?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        run_at: r.try_get("run_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// The wait after attempt `attempts` failed: [`RETRY_SCHEDULE`]'s entry (its last beyond
/// the end), with up to a quarter more as jitter so that jobs failed by one outage do not
/// all come back in the same second.
pub fn backoff(attempts: i64, jitter: f64) -> Duration {
    let last = RETRY_SCHEDULE.len() - 1;
    let step = usize::try_from(attempts.saturating_sub(1)).map_or(0, |s| s.min(last));
    let base = RETRY_SCHEDULE[step];
    base + base.mul_f64(jitter.clamp(0.0, 1.0) / 4.0)
}

/// A job to queue, as its row's columns.
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub priority: i64,
    /// The payload column's text (JSON).
    pub payload: String,
    pub dedupe_key: Option<String>,
}

/// Queue health, for `/metrics` and the admin status.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueStats {
    pub waiting: i64,
    pub oldest_waiting_ms: i64,
    pub running: i64,
    pub stuck: i64,
    pub review: i64,
    /// Age of the oldest update for Odoo not yet delivered (0 when none waits): how far
    /// Odoo is behind.
    pub odoo_sync_lag_ms: i64,
}

impl Db {
    /// Adds a job inside the caller's transaction. A `dedupe_key` already queued is not
    /// added twice.
    pub async fn enqueue(
        &self,
        tx: &mut Tx,
        kind: &str,
        payload: &serde_json::Value,
        priority: i64,
        dedupe_key: Option<&str>,
    ) -> Result<(), GatewayError> {
        let job = NewJob {
            kind,
            priority,
            payload: payload.to_string(),
            dedupe_key: dedupe_key.map(str::to_owned),
        };
        self.enqueue_many(tx, &[job]).await
    }

    /// Adds several jobs inside the caller's transaction, in one statement (a batch of
    /// webhook events' jobs). A `dedupe_key` already queued is not added twice.
    pub async fn enqueue_many(&self, tx: &mut Tx, jobs: &[NewJob<'_>]) -> Result<(), GatewayError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let mut sql = String::from(
            "INSERT INTO jobs (kind, priority, payload, dedupe_key, run_at, created_at, updated_at, state) VALUES ",
        );
        sql.push_str(&super::values_rows(self.backend, jobs.len(), 7, "'queued'"));
        sql.push_str(" ON CONFLICT (dedupe_key) DO NOTHING");
        let now = now_ms();
        let mut query = sqlx::query(&sql);
        for job in jobs {
            query = query
                .bind(job.kind)
                .bind(job.priority)
                .bind(job.payload.as_str())
                .bind(job.dedupe_key.as_deref())
                .bind(now)
                .bind(now)
                .bind(now);
        }
        query.execute(&mut **tx).await?;
        Ok(())
    }

    /// Adds a job on its own.
    pub async fn enqueue_now(
        &self,
        kind: &str,
        payload: &serde_json::Value,
        priority: i64,
        dedupe_key: Option<&str>,
    ) -> Result<(), GatewayError> {
        let mut tx = self.begin_write().await?;
        self.enqueue(&mut tx, kind, payload, priority, dedupe_key)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Claims the next due job for `lease`; a job whose worker died is claimed again once
    /// its lease ran out.
    pub async fn claim_job(&self, lease: Duration) -> Result<Option<StoredJob>, GatewayError> {
        let now = now_ms();
        let until = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let skip_locked = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_until = $1, updated_at = $2
             WHERE id = (SELECT id FROM jobs
                         WHERE (state = 'queued' AND run_at <= $3) OR (state = 'running' AND locked_until < $4)
                         ORDER BY priority, run_at, id LIMIT 1{skip_locked})
             RETURNING *"
        );
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&sql)
            .bind(until)
            .bind(now)
            .bind(now)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.map(|r| from_row(&r)).transpose()
    }

    /// Not a failure, only "not yet" (an event before its authorization): back to the
    /// queue after `wait`, with its attempt given back.
    pub async fn defer_job(
        &self,
        job: &StoredJob,
        reason: &str,
        wait: Duration,
    ) -> Result<(), GatewayError> {
        let now = now_ms();
        sqlx::query("UPDATE jobs SET state = 'queued', attempts = attempts - 1, run_at = $1, locked_until = NULL, last_error = $2, updated_at = $3 WHERE id = $4")
        .bind(now + i64::try_from(wait.as_millis()).unwrap_or(0))
        .bind(reason)
        .bind(now)
        .bind(job.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn complete_job(&self, id: i64) -> Result<(), GatewayError> {
        // A done job frees its dedupe key: the same work may be needed again later.
        sqlx::query("UPDATE jobs SET state = 'done', dedupe_key = NULL, locked_until = NULL, last_error = NULL, updated_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A failed attempt: back to the queue after a backoff, or to review after the last.
    /// Returns whether the job went to review.
    pub async fn fail_job(
        &self,
        job: &StoredJob,
        error: &str,
        retry_in: Duration,
    ) -> Result<bool, GatewayError> {
        let to_review = job.attempts >= MAX_ATTEMPTS;
        let now = now_ms();
        sqlx::query("UPDATE jobs SET state = $1, run_at = $2, locked_until = NULL, last_error = $3, updated_at = $4 WHERE id = $5")
        .bind(if to_review { "review" } else { "queued" })
        .bind(now + i64::try_from(retry_in.as_millis()).unwrap_or(0))
        .bind(error)
        .bind(now)
        .bind(job.id)
        .execute(&self.pool)
        .await?;
        Ok(to_review)
    }

    /// A failure that retrying cannot mend: straight to the review queue.
    pub async fn park_job(&self, job: &StoredJob, error: &str) -> Result<(), GatewayError> {
        let now = now_ms();
        sqlx::query("UPDATE jobs SET state = 'review', locked_until = NULL, last_error = $1, updated_at = $2 WHERE id = $3")
            .bind(error)
            .bind(now)
            .bind(job.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn job(&self, id: i64) -> Result<Option<StoredJob>, GatewayError> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    pub async fn jobs_in(&self, state: &str) -> Result<Vec<StoredJob>, GatewayError> {
        let rows = sqlx::query("SELECT * FROM jobs WHERE state = $1 ORDER BY id")
            .bind(state)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Puts a job from review back in the queue, with a fresh attempt budget.
    pub async fn replay_job(&self, id: i64) -> Result<bool, GatewayError> {
        let now = now_ms();
        let done = sqlx::query("UPDATE jobs SET state = 'queued', attempts = 0, run_at = $1, updated_at = $2 WHERE id = $3 AND state = 'review'")
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Puts every job of `kind` in review back in the queue, with a fresh attempt budget
    /// (reconcile does this for Odoo updates, which Odoo applies once per event id: after
    /// an outage longer than the schedule, nothing waits for a person to press replay).
    /// Returns the jobs as they were in review.
    pub async fn revive_review_jobs(
        &self,
        tx: &mut Tx,
        kind: &str,
    ) -> Result<Vec<StoredJob>, GatewayError> {
        let rows =
            sqlx::query("SELECT * FROM jobs WHERE state = 'review' AND kind = $1 ORDER BY id")
                .bind(kind)
                .fetch_all(&mut **tx)
                .await?;
        let jobs: Vec<StoredJob> = rows.iter().map(from_row).collect::<Result<_, _>>()?;
        let now = now_ms();
        for job in &jobs {
            sqlx::query("UPDATE jobs SET state = 'queued', attempts = 0, run_at = $1, updated_at = $2 WHERE id = $3 AND state = 'review'")
                .bind(now)
                .bind(now)
                .bind(job.id)
                .execute(&mut **tx)
                .await?;
        }
        Ok(jobs)
    }

    /// The jobs of `kind` still to be run (queued or running).
    pub async fn unfinished_jobs(&self, kind: &str) -> Result<Vec<StoredJob>, GatewayError> {
        let rows = sqlx::query(
            "SELECT * FROM jobs WHERE state IN ('queued', 'running') AND kind = $1 ORDER BY id",
        )
        .bind(kind)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn queue_stats(&self) -> Result<QueueStats, GatewayError> {
        let now = now_ms();
        let row = sqlx::query("SELECT
                COALESCE(SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END), 0) AS waiting,
                COALESCE(MIN(CASE WHEN state = 'queued' THEN created_at END), $1) AS oldest,
                COALESCE(SUM(CASE WHEN state = 'running' THEN 1 ELSE 0 END), 0) AS running,
                COALESCE(SUM(CASE WHEN state = 'running' AND locked_until < $2 THEN 1 ELSE 0 END), 0) AS stuck,
                COALESCE(SUM(CASE WHEN state = 'review' THEN 1 ELSE 0 END), 0) AS review,
                COALESCE(MIN(CASE WHEN kind = 'odoo_sync' AND state IN ('queued', 'running', 'review')
                    THEN created_at END), $3) AS oldest_sync
             FROM jobs")
        .bind(now)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let oldest: i64 = row.try_get("oldest")?;
        let oldest_sync: i64 = row.try_get("oldest_sync")?;
        Ok(QueueStats {
            waiting: row.try_get("waiting")?,
            oldest_waiting_ms: now - oldest,
            running: row.try_get("running")?,
            stuck: row.try_get("stuck")?,
            review: row.try_get("review")?,
            odoo_sync_lag_ms: now - oldest_sync,
        })
    }

    /// Whether a job with this dedupe key exists (in any state).
    pub async fn has_job(&self, dedupe_key: &str) -> Result<bool, GatewayError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE dedupe_key = $1")
            .bind(dedupe_key)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_the_schedule_and_stays_at_its_last_step() {
        assert_eq!(backoff(1, 0.0), Duration::from_secs(10));
        assert_eq!(backoff(2, 0.0), Duration::from_secs(60));
        assert_eq!(backoff(4, 0.0), Duration::from_secs(15 * 60));
        assert_eq!(backoff(9, 0.0), Duration::from_secs(12 * 3600));
        assert_eq!(backoff(30, 0.0), Duration::from_secs(12 * 3600));
        // A row that says 0 or less (never written so) waits the first step.
        assert_eq!(backoff(0, 0.0), Duration::from_secs(10));
        assert_eq!(backoff(-3, 0.0), Duration::from_secs(10));
        assert_eq!(backoff(1, 1.0), Duration::from_millis(12_500));
        assert_eq!(
            backoff(1, 7.0),
            Duration::from_millis(12_500),
            "jitter is capped"
        );
    }

    #[test]
    fn the_attempts_before_review_cover_more_than_a_day() {
        let waited: Duration = (1..MAX_ATTEMPTS).map(|a| backoff(a, 0.0)).sum();
        assert!(waited > Duration::from_secs(24 * 3600), "{waited:?}");
        assert_eq!(waited, Duration::from_secs(123_490));
        assert_eq!(MAX_ATTEMPTS, 10);
    }
}
