//! Klarna sessions: one per Odoo order, updated when the cart changes.

use klarna_types::klarna::{OrderBody, PaymentMethodCategory};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, hash_json, json_col, now_ms};
use crate::error::GatewayError;

#[derive(Debug, Clone)]
pub struct StoredSession {
    pub id: String,
    pub order_reference: String,
    pub client_token: String,
    pub currency: String,
    pub order_amount: i64,
    pub body: OrderBody,
    pub body_hash: String,
    pub categories: Vec<PaymentMethodCategory>,
    pub created_at: i64,
}

fn from_row(r: &AnyRow) -> Result<StoredSession, GatewayError> {
    let body: String = r.try_get("body")?;
    let categories: String = r.try_get("categories")?;
    Ok(StoredSession {
        id: r.try_get("id")?,
        order_reference: r.try_get("order_reference")?,
        client_token: r.try_get("client_token")?,
        currency: r.try_get("currency")?,
        order_amount: r.try_get("order_amount")?,
        body: json_col(&body)?,
        body_hash: r.try_get("body_hash")?,
        categories: json_col(&categories)?,
        created_at: r.try_get("created_at")?,
    })
}

/// The body as a session row keeps it: without Klarna's callback URLs, whose path is a
/// secret (and which are the installation's, not the cart's).
pub fn stored_body(body: &OrderBody) -> OrderBody {
    OrderBody {
        merchant_urls: None,
        ..body.clone()
    }
}

/// The cart's fingerprint: an unchanged cart hashes the same, whatever the callback URLs.
pub fn body_hash(body: &OrderBody) -> String {
    hash_json(&stored_body(body))
}

fn email(body: &OrderBody) -> Option<String> {
    body.billing_address.as_ref().and_then(|a| a.email.clone())
}

impl Db {
    /// The newest session of an order that no transaction has used yet.
    pub async fn open_session(
        &self,
        order_reference: &str,
        newer_than: i64,
    ) -> Result<Option<StoredSession>, GatewayError> {
        let row = sqlx::query(
            "SELECT s.* FROM sessions s
             LEFT JOIN transactions t ON t.session_id = s.id
             WHERE s.order_reference = $1 AND s.created_at > $2 AND t.id IS NULL
             ORDER BY s.created_at DESC LIMIT 1",
        )
        .bind(order_reference)
        .bind(newer_than)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    pub async fn insert_session(&self, s: &StoredSession) -> Result<(), GatewayError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO sessions (id, order_reference, client_token, currency, order_amount, body,
                                   body_hash, categories, customer_email, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&s.id)
        .bind(&s.order_reference)
        .bind(&s.client_token)
        .bind(&s.currency)
        .bind(s.order_amount)
        .bind(serde_json::to_string(&stored_body(&s.body))?)
        .bind(&s.body_hash)
        .bind(serde_json::to_string(&s.categories).unwrap_or_default())
        .bind(email(&s.body))
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The cart changed: the session now carries this body (`hash` is its [`body_hash`]).
    pub async fn update_session_body(
        &self,
        id: &str,
        body: &OrderBody,
        hash: &str,
    ) -> Result<(), GatewayError> {
        sqlx::query(
            "UPDATE sessions SET body = $1, body_hash = $2, order_amount = $3, currency = $4,
                                 customer_email = $5, updated_at = $6
             WHERE id = $7",
        )
        .bind(serde_json::to_string(&stored_body(body))?)
        .bind(hash)
        .bind(body.order_amount)
        .bind(&body.purchase_currency)
        .bind(email(body))
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn session(&self, id: &str) -> Result<Option<StoredSession>, GatewayError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    pub async fn session_count(&self) -> Result<i64, GatewayError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
            .fetch_one(&self.pool)
            .await?)
    }
}
