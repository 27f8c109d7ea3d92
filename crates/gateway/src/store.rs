//! Durable state: Klarna sessions and the transactions placed from them, in SQLite
//! (WAL, created on first start) through sqlx, with migrations.

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use klarna_types::klarna::{FraudStatus, OrderBody, PaymentMethodCategory};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

use crate::error::GatewayError;

/// Klarna keeps a session 48 h; we stop reusing ours an hour before that.
const SESSION_REUSE_MS: i64 = 47 * 3600 * 1000;

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

#[derive(Debug, Clone)]
pub struct StoredSession {
    pub id: String,
    pub order_reference: String,
    pub client_token: String,
    pub currency: String,
    pub order_amount: i64,
    pub body: OrderBody,
    pub categories: Vec<PaymentMethodCategory>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionState {
    /// The order is being placed at Klarna; the row is the claim against a double submit.
    Placing,
    Authorized,
}

#[derive(Debug, Clone, Serialize)]
pub struct Transaction {
    pub id: i64,
    pub session_id: String,
    pub order_reference: String,
    pub state: TransactionState,
    pub klarna_order_id: Option<String>,
    pub fraud_status: Option<FraudStatus>,
    pub currency: String,
    pub amount: i64,
}

/// Whether this caller may place the order for a session.
pub enum Claim {
    Won,
    Existing(Transaction),
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// sha256 of the body Klarna would get: an unchanged cart hashes the same.
pub fn body_hash(body: &OrderBody) -> String {
    let json = serde_json::to_vec(body).unwrap_or_default();
    hex::encode(Sha256::digest(json))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self, GatewayError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    /// A session for this order and exactly this cart that Klarna still holds.
    pub async fn reusable_session(
        &self,
        order_reference: &str,
        hash: &str,
    ) -> Result<Option<StoredSession>, GatewayError> {
        let row = sqlx::query(
            "SELECT s.* FROM sessions s
             LEFT JOIN transactions t ON t.session_id = s.id
             WHERE s.order_reference = ? AND s.body_hash = ? AND s.created_at > ?
               AND t.id IS NULL
             ORDER BY s.created_at DESC LIMIT 1",
        )
        .bind(order_reference)
        .bind(hash)
        .bind(now_ms() - SESSION_REUSE_MS)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| session_from_row(&r)).transpose()
    }

    pub async fn insert_session(&self, s: &StoredSession) -> Result<(), GatewayError> {
        sqlx::query(
            "INSERT INTO sessions (id, order_reference, client_token, currency, order_amount,
                                   body, body_hash, categories, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(&s.order_reference)
        .bind(&s.client_token)
        .bind(&s.currency)
        .bind(s.order_amount)
        .bind(serde_json::to_string(&s.body).unwrap_or_default())
        .bind(body_hash(&s.body))
        .bind(serde_json::to_string(&s.categories).unwrap_or_default())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn session(&self, id: &str) -> Result<Option<StoredSession>, GatewayError> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| session_from_row(&r)).transpose()
    }

    pub async fn transaction_for_session(
        &self,
        session_id: &str,
    ) -> Result<Option<Transaction>, GatewayError> {
        let row = sqlx::query("SELECT * FROM transactions WHERE session_id = ?")
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| transaction_from_row(&r)).transpose()
    }

    /// Claims the right to place the order for `session`; only one caller ever wins.
    pub async fn claim(&self, session: &StoredSession) -> Result<Claim, GatewayError> {
        let now = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO transactions (session_id, order_reference, state, currency, amount,
                                       created_at, updated_at)
             VALUES (?, ?, 'placing', ?, ?, ?, ?)",
        )
        .bind(&session.id)
        .bind(&session.order_reference)
        .bind(&session.currency)
        .bind(session.order_amount)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(Claim::Won),
            Err(e) if is_unique_violation(&e) => self
                .transaction_for_session(&session.id)
                .await?
                .map(Claim::Existing)
                .ok_or(GatewayError::AuthorizationInProgress),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives a claim back after Klarna refused, so the shopper can try again.
    pub async fn release_claim(&self, session_id: &str) -> Result<(), GatewayError> {
        sqlx::query("DELETE FROM transactions WHERE session_id = ? AND state = 'placing'")
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn mark_authorized(
        &self,
        session_id: &str,
        klarna_order_id: &str,
        fraud_status: FraudStatus,
    ) -> Result<Transaction, GatewayError> {
        let status = serde_json::to_value(fraud_status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        sqlx::query(
            "UPDATE transactions SET state = 'authorized', klarna_order_id = ?, fraud_status = ?,
                                     updated_at = ?
             WHERE session_id = ? AND state = 'placing'",
        )
        .bind(klarna_order_id)
        .bind(status)
        .bind(now_ms())
        .bind(session_id)
        .execute(&self.pool)
        .await?;
        self.transaction_for_session(session_id)
            .await?
            .ok_or_else(|| GatewayError::SessionNotFound(session_id.to_owned()))
    }

    pub async fn session_count(&self) -> Result<i64, GatewayError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Every transaction, oldest first.
    pub async fn transactions(&self) -> Result<Vec<Transaction>, GatewayError> {
        let rows = sqlx::query("SELECT * FROM transactions ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(transaction_from_row).collect()
    }
}

fn session_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<StoredSession, GatewayError> {
    let body: String = r.try_get("body")?;
    let categories: String = r.try_get("categories")?;
    Ok(StoredSession {
        id: r.try_get("id")?,
        order_reference: r.try_get("order_reference")?,
        client_token: r.try_get("client_token")?,
        currency: r.try_get("currency")?,
        order_amount: r.try_get("order_amount")?,
        body: serde_json::from_str(&body).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        categories: serde_json::from_str(&categories)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
    })
}

fn transaction_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<Transaction, GatewayError> {
    let state: String = r.try_get("state")?;
    let fraud: Option<String> = r.try_get("fraud_status")?;
    Ok(Transaction {
        id: r.try_get("id")?,
        session_id: r.try_get("session_id")?,
        order_reference: r.try_get("order_reference")?,
        state: if state == "authorized" {
            TransactionState::Authorized
        } else {
            TransactionState::Placing
        },
        klarna_order_id: r.try_get("klarna_order_id")?,
        fraud_status: fraud.and_then(|f| serde_json::from_value(serde_json::Value::String(f)).ok()),
        currency: r.try_get("currency")?,
        amount: r.try_get("amount")?,
    })
}
