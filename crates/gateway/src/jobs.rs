//! The job protocol: every kind of background work the gateway queues, as one typed
//! [`Job`], and the one way a job reports that it did not finish ([`JobError`]).
//!
//! A job is stored as a row of the durable queue ([`crate::store::jobs`]): its kind name in
//! `kind`, its payload as JSON in `payload`. Only this module knows those names and shapes
//! — except [`Job::WebhookEvent`]'s row, which the database's trigger writes beside each
//! stored event (migration `0005_event_jobs`; `tests/group_commit.rs` reads it back here);
//! the rest of the gateway builds a `Job` and hands it to [`enqueue`], and the worker gets
//! a `Job` back from [`Job::from_stored`]. The stored kind names are the ones earlier
//! versions wrote, so rows queued before an upgrade run after it.
//!
//! How each job runs is the worker's ([`crate::worker`]): this module sits below both the
//! web handlers that queue jobs and the worker that runs them.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::db::Tx;
use crate::error::GatewayError;
use crate::odoo_update::Notification;
use crate::store::Db;
use crate::store::jobs::{PRIORITY_MAINTENANCE, PRIORITY_PAYMENT, StoredJob};

/// The stored kind of [`Job::OdooSync`].
const ODOO_SYNC: &str = "odoo_sync";

/// A unit of background work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum Job {
    /// Post a signed update to Odoo.
    OdooSync(Box<Notification>),
    /// Finish an operation left pending by a crash, a timeout or an outage.
    ResumeOperation { operation_id: i64 },
    /// Apply a stored Klarna event (webhook or classic callback).
    WebhookEvent { event_id: String },
    /// Compare our records with Klarna's and Odoo's.
    Reconcile {},
    /// Remove personal data past its retention.
    PurgePersonalData {},
}

impl Job {
    /// The name stored in the queue's `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OdooSync(_) => ODOO_SYNC,
            Self::ResumeOperation { .. } => "resume_operation",
            Self::WebhookEvent { .. } => "webhook_event",
            Self::Reconcile {} => "reconcile",
            Self::PurgePersonalData {} => "purge_personal_data",
        }
    }

    /// Payment work goes before maintenance.
    pub fn priority(&self) -> i64 {
        match self {
            Self::OdooSync(_) | Self::ResumeOperation { .. } | Self::WebhookEvent { .. } => {
                PRIORITY_PAYMENT
            }
            Self::Reconcile {} | Self::PurgePersonalData {} => PRIORITY_MAINTENANCE,
        }
    }

    /// The key that keeps the same work from being queued twice while it waits. The
    /// periodic jobs have none of their own: their scheduler names the period.
    pub fn dedupe_key(&self) -> Option<String> {
        match self {
            Self::OdooSync(n) => Some(format!("odoo-{}", n.event_id)),
            Self::ResumeOperation { operation_id } => Some(format!("resume-op-{operation_id}")),
            Self::WebhookEvent { event_id } => Some(format!("event-{event_id}")),
            Self::Reconcile {} | Self::PurgePersonalData {} => None,
        }
    }

    /// The payload column's value.
    pub fn payload(&self) -> Result<Value, GatewayError> {
        let mut tagged = serde_json::to_value(self)?;
        Ok(tagged
            .get_mut("payload")
            .map_or_else(|| json!({}), Value::take))
    }

    /// The job a queue row holds. A kind no version wrote, or a payload that does not
    /// fit its kind, is a permanent failure: retrying cannot help.
    pub fn from_stored(row: &StoredJob) -> Result<Self, JobError> {
        serde_json::from_value(json!({"kind": row.kind, "payload": row.payload}))
            .map_err(|e| JobError::Permanent(format!("job {} of kind {:?}: {e}", row.id, row.kind)))
    }
}

/// Adds a job inside the caller's transaction (with the state change that needs it).
pub async fn enqueue(db: &Db, tx: &mut Tx, job: &Job) -> Result<(), GatewayError> {
    db.enqueue(
        tx,
        job.kind(),
        &job.payload()?,
        job.priority(),
        job.dedupe_key().as_deref(),
    )
    .await
}

/// Adds a job on its own; `dedupe_key` overrides the job's own (the periodic jobs name
/// their period with it).
pub async fn enqueue_now(db: &Db, job: &Job, dedupe_key: Option<&str>) -> Result<(), GatewayError> {
    let own = job.dedupe_key();
    db.enqueue_now(
        job.kind(),
        &job.payload()?,
        job.priority(),
        dedupe_key.or(own.as_deref()),
    )
    .await
}

/// Odoo updates waiting in the review queue go back to the queue with a fresh attempt
/// budget (inside the caller's transaction, beside its audit entries). Returns each
/// job's id, its update and the error it was parked with.
pub async fn revive_odoo_updates(
    db: &Db,
    tx: &mut Tx,
) -> Result<Vec<(i64, Notification, Option<String>)>, GatewayError> {
    Ok(db
        .revive_review_jobs(tx, ODOO_SYNC)
        .await?
        .into_iter()
        .filter_map(|row| match Job::from_stored(&row) {
            Ok(Job::OdooSync(n)) => Some((row.id, *n, row.last_error)),
            _ => None,
        })
        .collect())
}

/// The Odoo updates waiting in the review queue.
pub async fn odoo_updates_in_review(db: &Db) -> Result<Vec<Notification>, GatewayError> {
    Ok(db
        .jobs_in("review")
        .await?
        .iter()
        .filter(|row| row.kind == ODOO_SYNC)
        .filter_map(|row| match Job::from_stored(row) {
            Ok(Job::OdooSync(n)) => Some(*n),
            _ => None,
        })
        .collect())
}

/// The Odoo updates still to be delivered (queued, or being tried now).
pub async fn unfinished_odoo_updates(db: &Db) -> Result<Vec<Notification>, GatewayError> {
    Ok(db
        .unfinished_jobs(ODOO_SYNC)
        .await?
        .iter()
        .filter_map(|row| match Job::from_stored(row) {
            Ok(Job::OdooSync(n)) => Some(*n),
            _ => None,
        })
        .collect())
}

/// Why a job did not finish. The message is what the review queue shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// A failed attempt that may succeed later: retried with backoff, then the review
    /// queue.
    #[error("{0}")]
    Retryable(String),
    /// Retrying cannot help: straight to the review queue.
    #[error("{0}")]
    Permanent(String),
    /// Not possible yet (the event came before the payment it is about): tried again
    /// later without using up an attempt.
    #[error("waiting: {reason}")]
    Waiting { reason: String, retry_in: Duration },
}

impl From<GatewayError> for JobError {
    /// Stored data that breaks what we always write does not heal by waiting; anything
    /// else (a database or a peer that failed) may.
    fn from(e: GatewayError) -> Self {
        match e {
            GatewayError::Corrupt(_) => Self::Permanent(e.to_string()),
            _ => Self::Retryable(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odoo_update::Event;

    fn stored(kind: &str, payload: Value) -> StoredJob {
        StoredJob {
            id: 7,
            kind: kind.into(),
            priority: 0,
            payload,
            state: "queued".into(),
            attempts: 0,
            run_at: 0,
            last_error: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn notification() -> Notification {
        Notification {
            event_id: "n-1".into(),
            event: Event::Captured,
            reference: "S00042".into(),
            klarna_order_id: Some("k-1".into()),
            currency: "EUR".into(),
            amount_minor: 1000,
            amount: "10.00".into(),
            authorized_minor: 1000,
            captured_minor: 1000,
            refunded_minor: 0,
            operation_id: Some(3),
            capture_operation_id: None,
            message: None,
            occurred_at: 1,
            transaction_reference: None,
            token: None,
        }
    }

    #[test]
    fn every_job_survives_its_row_and_keeps_the_stored_kind_names() {
        let jobs = [
            Job::OdooSync(Box::new(notification())),
            Job::ResumeOperation { operation_id: 9 },
            Job::WebhookEvent {
                event_id: "e-1".into(),
            },
            Job::Reconcile {},
            Job::PurgePersonalData {},
        ];
        let names: Vec<_> = jobs.iter().map(Job::kind).collect();
        assert_eq!(
            names,
            [
                "odoo_sync",
                "resume_operation",
                "webhook_event",
                "reconcile",
                "purge_personal_data"
            ]
        );
        for job in jobs {
            let row = stored(job.kind(), job.payload().expect("payload"));
            assert_eq!(Job::from_stored(&row), Ok(job));
        }
    }

    #[test]
    fn rows_written_by_earlier_versions_still_decode() {
        let resume = stored("resume_operation", json!({"operation_id": 12}));
        assert_eq!(
            Job::from_stored(&resume),
            Ok(Job::ResumeOperation { operation_id: 12 })
        );
        let event = stored("webhook_event", json!({"event_id": "ev-1"}));
        assert_eq!(
            Job::from_stored(&event),
            Ok(Job::WebhookEvent {
                event_id: "ev-1".into()
            })
        );
        assert_eq!(
            Job::from_stored(&stored("reconcile", json!({}))),
            Ok(Job::Reconcile {})
        );
        let sync = stored(
            "odoo_sync",
            serde_json::to_value(notification()).expect("json"),
        );
        assert_eq!(
            Job::from_stored(&sync),
            Ok(Job::OdooSync(Box::new(notification())))
        );
    }

    #[test]
    fn an_unknown_kind_or_a_wrong_payload_is_permanent() {
        for row in [
            stored("send_fax", json!({})),
            stored("resume_operation", json!({})),
            stored("webhook_event", json!({"event_id": 5})),
        ] {
            match Job::from_stored(&row) {
                Err(JobError::Permanent(m)) => assert!(m.contains(&row.kind), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn dedupe_keys_name_the_work() {
        assert_eq!(
            Job::ResumeOperation { operation_id: 4 }
                .dedupe_key()
                .as_deref(),
            Some("resume-op-4")
        );
        assert_eq!(
            Job::OdooSync(Box::new(notification()))
                .dedupe_key()
                .as_deref(),
            Some("odoo-n-1")
        );
        assert_eq!(Job::Reconcile {}.dedupe_key(), None);
    }
}
