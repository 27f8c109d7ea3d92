//! Idempotency of the admin API: a request repeated with the same `Idempotency-Key`
//! (Odoo retrying a capture after a timeout) gets the first answer, and is not done twice.

use sqlx::Row;

use super::{Db, is_unique_violation, now_ms};
use crate::error::GatewayError;

/// A stored answer: HTTP status and JSON body.
pub struct StoredAnswer {
    pub request_hash: String,
    pub status: u16,
    pub response: String,
}

impl Db {
    pub async fn stored_answer(&self, key: &str) -> Result<Option<StoredAnswer>, GatewayError> {
        let row = sqlx::query("SELECT * FROM idempotency_keys WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let status: i64 = r.try_get("status")?;
            Ok(StoredAnswer {
                request_hash: r.try_get("request_hash")?,
                status: u16::try_from(status).unwrap_or(500),
                response: r.try_get("response")?,
            })
        })
        .transpose()
    }

    /// Stores the first answer for a key; a concurrent duplicate loses quietly.
    pub async fn store_answer(
        &self,
        key: &str,
        request_hash: &str,
        status: u16,
        response: &str,
    ) -> Result<(), GatewayError> {
        let done = sqlx::query("INSERT INTO idempotency_keys (key, request_hash, status, response, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(key)
        .bind(request_hash)
        .bind(i64::from(status))
        .bind(response)
        .bind(now_ms())
        .execute(&self.pool)
        .await;
        match done {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
