//! Idempotency of the admin API. A request's `Idempotency-Key` is claimed (a unique row)
//! before any work starts, so of concurrent requests with one key exactly one does the
//! work; the row then names the operation that request recorded (written in the same
//! transaction as the operation), and finally holds the answer every repeat gets.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, is_unique_violation, now_ms};
use crate::db::Tx;
use crate::error::GatewayError;

/// What is known about a key someone else claimed first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRequest {
    pub request_hash: String,
    /// The operation the first request recorded: from here on money may move, and the
    /// work is never started again for this key.
    pub operation_id: Option<i64>,
    /// The first request's answer (HTTP status, JSON body), once it has one.
    pub answer: Option<(u16, String)>,
    /// When its request claimed the key (unix ms); 0 once that request ended without an
    /// answer.
    pub claimed_at: i64,
}

/// The outcome of claiming a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request holds the key: it does the work.
    Mine,
    /// Another request claimed it first.
    Taken(AdminRequest),
}

fn request_from_row(r: &AnyRow) -> Result<AdminRequest, GatewayError> {
    let status: Option<i64> = r.try_get("status")?;
    let response: Option<String> = r.try_get("response")?;
    let answer = match (status, response) {
        (Some(status), Some(response)) => {
            let status = u16::try_from(status)
                .map_err(|_| GatewayError::Corrupt(format!("stored HTTP status {status}")))?;
            Some((status, response))
        }
        _ => None,
    };
    Ok(AdminRequest {
        request_hash: r.try_get("request_hash")?,
        operation_id: r.try_get("operation_id")?,
        answer,
        claimed_at: r.try_get("claimed_at")?,
    })
}

impl Db {
    /// Claims `key` for a request with this hash, or says who has it.
    pub async fn claim_request(
        &self,
        key: &str,
        request_hash: &str,
    ) -> Result<Claim, GatewayError> {
        loop {
            let now = now_ms();
            let inserted = sqlx::query(
                "INSERT INTO admin_requests (key, request_hash, claimed_at, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(key)
            .bind(request_hash)
            .bind(now)
            .bind(now)
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => return Ok(Claim::Mine),
                Err(e) if is_unique_violation(&e) => {}
                Err(e) => return Err(e.into()),
            }
            // Taken; unless its request gave the key up in between, then try again.
            if let Some(found) = self.admin_request(key).await? {
                return Ok(Claim::Taken(found));
            }
        }
    }

    pub async fn admin_request(&self, key: &str) -> Result<Option<AdminRequest>, GatewayError> {
        sqlx::query("SELECT * FROM admin_requests WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(request_from_row)
            .transpose()
    }

    /// Takes over a claim whose request died before it recorded an operation (so nothing
    /// was sent to Klarna). Only one of several takers wins: the claim must still be the
    /// one `seen` read.
    pub async fn take_over_request(
        &self,
        key: &str,
        seen: &AdminRequest,
    ) -> Result<bool, GatewayError> {
        let done = sqlx::query(
            "UPDATE admin_requests SET claimed_at = $1 WHERE key = $2 AND claimed_at = $3 AND operation_id IS NULL AND status IS NULL",
        )
        .bind(now_ms())
        .bind(key)
        .bind(seen.claimed_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Names the operation a claimed request recorded, in the transaction that records it.
    pub async fn link_request(
        &self,
        tx: &mut Tx,
        key: &str,
        operation_id: i64,
    ) -> Result<(), GatewayError> {
        let done = sqlx::query(
            "UPDATE admin_requests SET operation_id = $1 WHERE key = $2 AND operation_id IS NULL",
        )
        .bind(operation_id)
        .bind(key)
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            // The claim is this request's: nobody else links it. Not finding it means the
            // request runs without one, and the operation must not be recorded.
            Err(GatewayError::Corrupt(format!(
                "the Idempotency-Key claim {key:?} is gone or already names an operation"
            )))
        }
    }

    /// Stores the answer every repeat of the key gets (the first one stays).
    pub async fn answer_request(
        &self,
        key: &str,
        status: u16,
        response: &str,
    ) -> Result<(), GatewayError> {
        sqlx::query("UPDATE admin_requests SET status = $1, response = $2 WHERE key = $3 AND status IS NULL")
            .bind(i64::from(status))
            .bind(response)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The request ended without an answer to keep (a server error). With no operation
    /// recorded nothing happened, and the key is free again; with one, repeats are
    /// answered from that operation.
    pub async fn release_request(&self, key: &str) -> Result<(), GatewayError> {
        sqlx::query(
            "DELETE FROM admin_requests WHERE key = $1 AND operation_id IS NULL AND status IS NULL",
        )
        .bind(key)
        .execute(&self.pool)
        .await?;
        sqlx::query("UPDATE admin_requests SET claimed_at = 0 WHERE key = $1 AND status IS NULL")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl Db {
    /// Accepts a signed request's nonce once: `false` when it was seen before (a replay).
    /// Nonces older than `keep_ms` are forgotten on the way; their requests' timestamps
    /// are refused before the nonce is asked about.
    pub async fn accept_nonce(&self, nonce: &str, keep_ms: i64) -> Result<bool, GatewayError> {
        let now = now_ms();
        sqlx::query("DELETE FROM admin_nonces WHERE seen_at < $1")
            .bind(now.saturating_sub(keep_ms))
            .execute(&self.pool)
            .await?;
        let inserted = sqlx::query("INSERT INTO admin_nonces (nonce, seen_at) VALUES ($1, $2)")
            .bind(nonce)
            .bind(now)
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
