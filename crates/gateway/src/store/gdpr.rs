//! Personal data: what we hold about a person, and removing it — at their request, or
//! when the retention period has passed. Amounts, references and the audit trail stay.

use serde_json::{Value, json};
use sqlx::Row;

use super::{Db, now_ms};
use crate::error::GatewayError;
use crate::store::tokens::TokenState;

/// Removes addresses, e-mails, phones and names from a stored Klarna body.
fn scrub(body: &str) -> String {
    let mut v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if let Some(map) = v.as_object_mut() {
        for key in ["billing_address", "shipping_address", "customer"] {
            map.remove(key);
        }
    }
    v.to_string()
}

// A person is their e-mail address whatever its case and surrounding spaces: a shopper
// types `Anna.Svensson@…` at one checkout and `anna.svensson@…` at the next, and a request
// for their data must find both. (`lower` folds ASCII on SQLite, by locale on PostgreSQL.)

impl Db {
    /// Everything we hold that names this e-mail address.
    pub async fn gdpr_export(&self, email: &str) -> Result<Value, GatewayError> {
        let sessions = sqlx::query("SELECT id, order_reference, body, created_at FROM sessions WHERE lower(trim(customer_email)) = lower(trim($1)) ORDER BY created_at")
            .bind(email)
            .fetch_all(&self.pool)
            .await?;
        let transactions = sqlx::query("SELECT id, order_reference, klarna_order_id, state, currency, authorized_amount, captured_amount,
                    refunded_amount, created_at FROM transactions WHERE lower(trim(customer_email)) = lower(trim($1)) ORDER BY id")
        .bind(email)
        .fetch_all(&self.pool)
        .await?;
        let mut out_sessions = Vec::new();
        for r in &sessions {
            let body: String = r.try_get("body")?;
            let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            out_sessions.push(json!({
                "session_id": r.try_get::<String, _>("id")?,
                "order_reference": r.try_get::<String, _>("order_reference")?,
                "created_at": r.try_get::<i64, _>("created_at")?,
                "billing_address": body.get("billing_address"),
                "shipping_address": body.get("shipping_address"),
                "customer": body.get("customer"),
            }));
        }
        let mut out_tx = Vec::new();
        for r in &transactions {
            out_tx.push(json!({
                "id": r.try_get::<i64, _>("id")?,
                "order_reference": r.try_get::<String, _>("order_reference")?,
                "klarna_order_id": r.try_get::<Option<String>, _>("klarna_order_id")?,
                "state": r.try_get::<String, _>("state")?,
                "currency": r.try_get::<String, _>("currency")?,
                "authorized_amount": r.try_get::<i64, _>("authorized_amount")?,
                "captured_amount": r.try_get::<i64, _>("captured_amount")?,
                "refunded_amount": r.try_get::<i64, _>("refunded_amount")?,
                "created_at": r.try_get::<i64, _>("created_at")?,
            }));
        }
        let out_saved = self
            .saved_klarna_of(email)
            .await?
            .into_iter()
            .map(
                |(reference, state, payment_method, order_reference, created_at)| {
                    json!({"reference": reference, "state": state, "payment_method": payment_method,
                       "saved_at_order": order_reference, "created_at": created_at})
                },
            )
            .collect::<Vec<_>>();
        Ok(
            json!({"email": email, "sessions": out_sessions, "payments": out_tx,
                  "saved_klarna": out_saved}),
        )
    }

    /// Order references of this person's payments that are still open (money may still
    /// move), which block erasure.
    pub async fn open_payments_of(&self, email: &str) -> Result<Vec<String>, GatewayError> {
        let rows = sqlx::query(
            "SELECT order_reference FROM transactions WHERE lower(trim(customer_email)) = lower(trim($1))
               AND (state IN ('placing', 'authorized', 'part_captured')
                    OR id IN (SELECT transaction_id FROM operations WHERE state = 'pending'))",
        )
        .bind(email)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get("order_reference")?))
            .collect()
    }

    /// This person's saved Klarna (reference, state, what was saved, the order that saved
    /// it, when) — never the token.
    async fn saved_klarna_of(
        &self,
        email: &str,
    ) -> Result<Vec<(String, String, String, String, i64)>, GatewayError> {
        Ok(sqlx::query_as(
            "SELECT c.reference, c.status, c.payment_method, c.order_reference, c.created_at
               FROM customer_tokens c JOIN transactions t ON t.id = c.transaction_id
              WHERE lower(trim(t.customer_email)) = lower(trim($1)) ORDER BY c.id",
        )
        .bind(email)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Removes the personal data of rows selected by `condition` (with `arg`). Returns how
    /// many sessions were scrubbed.
    async fn scrub_where(&self, condition: &str, arg: Value) -> Result<u64, GatewayError> {
        let mut tx = self.begin_write().await?;
        let select = format!("SELECT id, body FROM sessions WHERE {condition}");
        let mut q = sqlx::query(&select);
        q = match &arg {
            Value::String(s) => q.bind(s.clone()),
            other => q.bind(other.as_i64().unwrap_or(0)),
        };
        let rows = q.fetch_all(&mut *tx).await?;
        for r in &rows {
            let id: String = r.try_get("id")?;
            let body: String = r.try_get("body")?;
            sqlx::query("UPDATE sessions SET body = $1, customer_email = NULL, updated_at = $2 WHERE id = $3")
            .bind(scrub(&body))
            .bind(now_ms())
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE transactions SET customer_email = NULL WHERE session_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// Erases what we hold about an e-mail address, unless one of their payments is open.
    pub async fn gdpr_erase(&self, email: &str) -> Result<u64, GatewayError> {
        let open = self.open_payments_of(email).await?;
        if !open.is_empty() {
            return Err(GatewayError::Refused(format!(
                "cannot erase while payments are open (money may still move): {}",
                open.join(", ")
            )));
        }
        // A saved Klarna that can still be charged blocks erasure too: the shop may charge it
        // with no shopper present, and the person is who it belongs to.
        let saved: Vec<String> = self
            .saved_klarna_of(email)
            .await?
            .into_iter()
            .filter(|(_, state, ..)| state == TokenState::Active.as_str())
            .map(|(reference, ..)| reference)
            .collect();
        if !saved.is_empty() {
            return Err(GatewayError::Refused(format!(
                "cannot erase while a saved Klarna can still be charged: {}; remove it in Odoo \
                 (that cancels it at Klarna), then erase",
                saved.join(", ")
            )));
        }
        self.scrub_where(
            "lower(trim(customer_email)) = lower(trim($1))",
            Value::String(email.to_owned()),
        )
        .await
    }

    /// The retention rule: personal data of sessions older than `cutoff_ms` whose payments
    /// are settled is removed.
    pub async fn purge_personal_data(&self, cutoff_ms: i64) -> Result<u64, GatewayError> {
        self.scrub_where(
            "customer_email IS NOT NULL AND created_at < $1 AND id NOT IN
               (SELECT session_id FROM transactions WHERE state IN ('placing', 'authorized', 'part_captured'))",
            Value::from(cutoff_ms),
        )
        .await
    }
}
