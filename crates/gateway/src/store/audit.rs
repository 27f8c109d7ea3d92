//! The append-only audit log: every state change, who or what caused it, before and after.
//! The database refuses updates and deletes of it (triggers in the migrations).

use serde::Serialize;
use sqlx::Row;

use super::{Db, Tx, now_ms};
use crate::error::GatewayError;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub transaction_id: Option<i64>,
    pub order_reference: Option<String>,
    pub actor: String,
    pub action: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub detail: Option<String>,
    pub at: i64,
}

/// One entry to write.
pub struct Audit<'a> {
    pub transaction_id: Option<i64>,
    pub order_reference: Option<&'a str>,
    /// `widget`, `admin`, `cli`, `worker`, `reconcile`, `webhook`, `gdpr`
    pub actor: &'a str,
    pub action: &'a str,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
    pub detail: Option<String>,
}

impl Db {
    pub async fn audit(&self, tx: &mut Tx, a: Audit<'_>) -> Result<(), GatewayError> {
        sqlx::query(
            "INSERT INTO audit_log (transaction_id, order_reference, actor, action, before_state,
                                    after_state, detail, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(a.transaction_id)
        .bind(a.order_reference)
        .bind(a.actor)
        .bind(a.action)
        .bind(a.before)
        .bind(a.after)
        .bind(a.detail)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// A payment's timeline, oldest first.
    pub async fn timeline(&self, transaction_id: i64) -> Result<Vec<AuditEntry>, GatewayError> {
        let rows = sqlx::query("SELECT * FROM audit_log WHERE transaction_id = $1 ORDER BY id")
            .bind(transaction_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    transaction_id: r.try_get("transaction_id")?,
                    order_reference: r.try_get("order_reference")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    before: r.try_get("before_state")?,
                    after: r.try_get("after_state")?,
                    detail: r.try_get("detail")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }
}
