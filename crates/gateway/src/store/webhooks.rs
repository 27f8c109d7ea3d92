//! Klarna's events: each stored once, by event id (in the transaction that also queues the
//! job applying it — see [`crate::ingest`]).

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use std::collections::HashSet;

use super::{Db, Tx, now_ms, values_rows};
use crate::error::GatewayError;

/// A verified event to store.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    pub event_id: String,
    pub source: &'static str,
    pub event_type: String,
    pub order_id: String,
    pub occurred_at: i64,
    pub key_id: Option<String>,
    pub payload: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StoredEvent {
    pub event_id: String,
    pub source: String,
    pub event_type: String,
    pub order_id: String,
    pub occurred_at: i64,
    pub received_at: i64,
    pub state: String,
    pub last_error: Option<String>,
    /// The body as received; not shown (a callback's carries an authorization token).
    #[serde(skip)]
    pub payload: String,
}

impl Db {
    /// Stores a batch of events, each new one with the job that applies it (the table's
    /// trigger adds it: migration `0005_event_jobs`), in one statement — its own
    /// transaction on a connection in autocommit — and returns the ids that were new; an
    /// id stored before is skipped, not an error. The ids in `events` must differ from
    /// each other (the caller dedupes a batch first).
    pub async fn insert_events(
        &self,
        conn: &mut AnyConnection,
        events: &[&IncomingEvent],
    ) -> Result<HashSet<String>, GatewayError> {
        if events.is_empty() {
            return Ok(HashSet::new());
        }
        let mut sql = String::from(
            "INSERT INTO webhook_events (event_id, source, event_type, order_id, occurred_at, received_at,
                                         key_id, payload, state) VALUES ",
        );
        sql.push_str(&values_rows(self.backend, events.len(), 8, "'received'"));
        sql.push_str(" ON CONFLICT (event_id) DO NOTHING RETURNING event_id");
        let now = now_ms();
        let mut query = sqlx::query(&sql);
        for e in events {
            query = query
                .bind(e.event_id.as_str())
                .bind(e.source)
                .bind(e.event_type.as_str())
                .bind(e.order_id.as_str())
                .bind(e.occurred_at)
                .bind(now)
                .bind(e.key_id.as_deref())
                .bind(e.payload.as_str());
        }
        query
            .fetch_all(conn)
            .await?
            .iter()
            .map(|r| Ok(r.try_get::<String, _>("event_id")?))
            .collect()
    }

    pub async fn event(&self, event_id: &str) -> Result<Option<StoredEvent>, GatewayError> {
        let row = sqlx::query("SELECT * FROM webhook_events WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(StoredEvent {
                event_id: r.try_get("event_id")?,
                source: r.try_get("source")?,
                event_type: r.try_get("event_type")?,
                order_id: r.try_get("order_id")?,
                occurred_at: r.try_get("occurred_at")?,
                received_at: r.try_get("received_at")?,
                state: r.try_get("state")?,
                last_error: r.try_get("last_error")?,
                payload: r.try_get("payload")?,
            })
        })
        .transpose()
    }

    pub async fn mark_event_applied(
        &self,
        tx: &mut Tx,
        event_id: &str,
    ) -> Result<(), GatewayError> {
        sqlx::query("UPDATE webhook_events SET state = 'applied', applied_at = $1, last_error = NULL WHERE event_id = $2")
            .bind(now_ms())
            .bind(event_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Whether the event was applied, read inside the transaction that would apply it
    /// (after the payment's lock): two workers holding the same job apply it once.
    pub async fn event_applied_in(
        &self,
        tx: &mut Tx,
        event_id: &str,
    ) -> Result<bool, GatewayError> {
        let row = sqlx::query("SELECT state FROM webhook_events WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(row
            .map(|r| r.try_get::<String, _>("state"))
            .transpose()?
            .as_deref()
            == Some("applied"))
    }

    /// The event's job gave up: the event waits for a person, with the last error.
    pub async fn mark_event_review(&self, event_id: &str, error: &str) -> Result<(), GatewayError> {
        sqlx::query("UPDATE webhook_events SET state = 'review', last_error = $1 WHERE event_id = $2 AND state <> 'applied'")
            .bind(error)
            .bind(event_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn event_counts(&self) -> Result<(i64, i64), GatewayError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN state = 'applied' THEN 1 ELSE 0 END), 0) AS applied FROM webhook_events",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("total")?, row.try_get("applied")?))
    }
}
