//! The `customer_tokens` table: shoppers' saved Klarna, sealed (see [`crate::tokens`]), and
//! the token charges' claims on `transactions`.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::transactions::{Claim, tx_from_row};
use super::{Db, StoredSession, Tx, is_unique_violation, now_ms};
use crate::error::GatewayError;
use crate::vault::Sealed;

/// The id of a charge's row in `sessions`: one per Odoo transaction.
pub fn charge_row(odoo_reference: &str) -> String {
    format!("token-order:{odoo_reference}")
}

/// The Odoo transaction a payment charged to a saved Klarna was made for, read from its
/// row's id.
pub fn charged_for(t: &super::Transaction) -> Option<&str> {
    t.session_id.strip_prefix("token-order:")
}

/// Whether a saved Klarna can still be charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    Active,
    /// Cancelled at Klarna (from Odoo, an operator, or found cancelled there): for good.
    Cancelled,
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Result<Self, GatewayError> {
        match s {
            "active" => Ok(Self::Active),
            "cancelled" => Ok(Self::Cancelled),
            other => Err(GatewayError::Corrupt(format!(
                "customer token state {other:?}"
            ))),
        }
    }
}

/// A saved Klarna as the gateway keeps it: the token sealed, the rest in the clear.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub id: i64,
    pub reference: String,
    pub sealed: Sealed,
    /// The checkout that saved it.
    pub transaction_id: i64,
    pub order_reference: String,
    pub currency: String,
    pub payment_method: String,
    pub state: TokenState,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a new row holds.
pub struct NewToken<'a> {
    pub reference: &'a str,
    pub sealed: &'a Sealed,
    pub transaction_id: i64,
    pub order_reference: &'a str,
    pub currency: &'a str,
    pub payment_method: &'a str,
}

fn from_row(r: &AnyRow) -> Result<StoredToken, GatewayError> {
    let state: String = r.try_get("status")?;
    Ok(StoredToken {
        id: r.try_get("id")?,
        reference: r.try_get("reference")?,
        sealed: Sealed {
            key_id: r.try_get("key_id")?,
            nonce: r.try_get("nonce")?,
            ciphertext: r.try_get("ciphertext")?,
        },
        transaction_id: r.try_get("transaction_id")?,
        order_reference: r.try_get("order_reference")?,
        currency: r.try_get("currency")?,
        payment_method: r.try_get("payment_method")?,
        state: TokenState::parse(&state)?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Db {
    /// Stores a new saved Klarna, in the transaction that records the checkout's order.
    pub async fn insert_token(&self, tx: &mut Tx, t: NewToken<'_>) -> Result<(), GatewayError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO customer_tokens (reference, key_id, nonce, ciphertext, transaction_id,
                                          order_reference, currency, payment_method, status,
                                          created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $10)",
        )
        .bind(t.reference)
        .bind(&t.sealed.key_id)
        .bind(&t.sealed.nonce)
        .bind(&t.sealed.ciphertext)
        .bind(t.transaction_id)
        .bind(t.order_reference)
        .bind(t.currency)
        .bind(t.payment_method)
        .bind(now)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub async fn token(&self, reference: &str) -> Result<Option<StoredToken>, GatewayError> {
        let row = sqlx::query("SELECT * FROM customer_tokens WHERE reference = $1")
            .bind(reference)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    /// The saved Klarna a checkout made, if it made one.
    pub async fn token_of_checkout(
        &self,
        transaction_id: i64,
    ) -> Result<Option<StoredToken>, GatewayError> {
        let row = sqlx::query("SELECT * FROM customer_tokens WHERE transaction_id = $1")
            .bind(transaction_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    /// Every saved Klarna (for re-sealing under a new master key).
    pub async fn tokens(&self) -> Result<Vec<StoredToken>, GatewayError> {
        let rows = sqlx::query("SELECT * FROM customer_tokens ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn reseal_token(&self, id: i64, sealed: &Sealed) -> Result<(), GatewayError> {
        sqlx::query(
            "UPDATE customer_tokens SET key_id = $1, nonce = $2, ciphertext = $3, updated_at = $4
             WHERE id = $5",
        )
        .bind(&sealed.key_id)
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks a saved Klarna cancelled; whether this call did (a second cancel finds it
    /// done).
    pub async fn cancel_token(&self, id: i64) -> Result<bool, GatewayError> {
        let done = sqlx::query(
            "UPDATE customer_tokens SET status = 'cancelled', updated_at = $1
             WHERE id = $2 AND status = 'active'",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims the right to place the order of one charge of a saved Klarna (`session` is
    /// the charge's row, `token-order:<Odoo reference>`), with the Klarna idempotency key
    /// every attempt sends; only one caller ever wins, and a repeat finds the first.
    pub async fn claim_token_charge(
        &self,
        session: &StoredSession,
        token_id: i64,
        klarna_key: &str,
    ) -> Result<Claim, GatewayError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sessions (id, order_reference, client_token, currency, order_amount, body,
                                   body_hash, categories, customer_email, created_at, updated_at)
             VALUES ($1, $2, '', $3, $4, $5, $6, '[]', NULL, $7, $8)
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, body_hash = excluded.body_hash,
                 order_amount = excluded.order_amount, currency = excluded.currency,
                 updated_at = excluded.updated_at",
        )
        .bind(&session.id)
        .bind(&session.order_reference)
        .bind(&session.currency)
        .bind(session.order_amount)
        .bind(serde_json::to_string(&super::sessions::stored_body(
            &session.body,
        ))?)
        .bind(&session.body_hash)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO transactions (session_id, order_reference, state, currency,
                                       authorized_amount, customer_token_id,
                                       klarna_idempotency_key, created_at, updated_at)
             VALUES ($1, $2, 'placing', $3, $4, $5, $6, $7, $8)",
        )
        .bind(&session.id)
        .bind(&session.order_reference)
        .bind(&session.currency)
        .bind(session.order_amount)
        .bind(token_id)
        .bind(klarna_key)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {
                tx.commit().await?;
                self.transaction_for_session(&session.id)
                    .await?
                    .map(Claim::Won)
                    .ok_or(GatewayError::AuthorizationInProgress)
            }
            Err(e) if is_unique_violation(&e) => {
                // Rolled back: the body of a charge that was placed stays what was sent.
                drop(tx);
                self.transaction_for_session(&session.id)
                    .await?
                    .map(Claim::Existing)
                    .ok_or(GatewayError::AuthorizationInProgress)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The body a charge's row holds, the token it charges and the Klarna idempotency key
    /// it is sent with.
    pub async fn token_charge(
        &self,
        transaction_id: i64,
    ) -> Result<Option<(Option<i64>, Option<String>)>, GatewayError> {
        let row = sqlx::query(
            "SELECT customer_token_id, klarna_idempotency_key FROM transactions WHERE id = $1",
        )
        .bind(transaction_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<_, GatewayError> {
            Ok((
                r.try_get("customer_token_id")?,
                r.try_get("klarna_idempotency_key")?,
            ))
        })
        .transpose()
    }

    /// The charges made with a saved Klarna, oldest first.
    pub async fn token_charges(
        &self,
        token_id: i64,
    ) -> Result<Vec<super::Transaction>, GatewayError> {
        let rows =
            sqlx::query("SELECT * FROM transactions WHERE customer_token_id = $1 ORDER BY id")
                .bind(token_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(tx_from_row).collect()
    }
}
