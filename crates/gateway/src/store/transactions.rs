//! Transactions (one per Klarna order) and their operations (captures, refunds, cancel,
//! release, extend), and the state machine view of them.

use klarna_types::klarna::FraudStatus;
use klarna_types::money::{Currency, Money};
use klarna_types::payment::{Capture, Payment, Status};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Db, StoredSession, Tx, is_unique_violation, json_col, now_ms};
use crate::error::GatewayError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TxState {
    /// The order is being placed at Klarna; the row is the claim against a double submit.
    Placing,
    Authorized,
    PartCaptured,
    Captured,
    Cancelled,
    Expired,
}

impl TxState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placing => "placing",
            Self::Authorized => "authorized",
            Self::PartCaptured => "part_captured",
            Self::Captured => "captured",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "authorized" => Self::Authorized,
            "part_captured" => Self::PartCaptured,
            "captured" => Self::Captured,
            "cancelled" => Self::Cancelled,
            "expired" => Self::Expired,
            _ => Self::Placing,
        }
    }

    pub fn from_status(s: Status) -> Self {
        match s {
            Status::SessionCreated => Self::Placing,
            Status::Authorized => Self::Authorized,
            Status::PartCaptured => Self::PartCaptured,
            Status::Captured => Self::Captured,
            Status::Cancelled => Self::Cancelled,
            Status::Expired => Self::Expired,
        }
    }

    fn status(self) -> Status {
        match self {
            Self::Placing => Status::SessionCreated,
            Self::Authorized => Status::Authorized,
            Self::PartCaptured => Status::PartCaptured,
            Self::Captured => Status::Captured,
            Self::Cancelled => Status::Cancelled,
            Self::Expired => Status::Expired,
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, Self::Authorized | Self::PartCaptured)
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Transaction {
    pub id: i64,
    pub session_id: String,
    pub order_reference: String,
    pub state: TxState,
    pub klarna_order_id: Option<String>,
    pub fraud_status: Option<FraudStatus>,
    pub currency: String,
    pub authorized_amount: i64,
    pub captured_amount: i64,
    pub refunded_amount: i64,
    pub released_amount: i64,
    pub attention: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Transaction {
    /// The payment's currency; a code we could not have stored is corrupt data.
    pub fn currency(&self) -> Result<Currency, GatewayError> {
        Currency::new(&self.currency)
            .map_err(|e| GatewayError::Corrupt(format!("payment in {}: {e}", self.currency)))
    }

    /// An amount of this payment, in its currency.
    pub fn money(&self, minor: i64) -> Result<Money, GatewayError> {
        Ok(Money::from_minor(minor, self.currency()?))
    }

    /// What the state machine says about this payment, given its captures.
    pub fn payment(&self, ops: &[Operation]) -> Result<Payment, GatewayError> {
        let currency = self.currency()?;
        let captures = ops
            .iter()
            .filter(|o| o.kind == OpKind::Capture && o.state == OpState::Succeeded)
            .map(|o| Capture {
                amount: o.amount,
                refunded: o.refunded_amount,
            })
            .collect();
        Ok(Payment::restore(
            currency,
            self.state.status(),
            self.fraud_status.unwrap_or(FraudStatus::Pending),
            self.authorized_amount,
            self.released_amount,
            captures,
        ))
    }
}

pub(crate) fn tx_from_row(r: &AnyRow) -> Result<Transaction, GatewayError> {
    let state: String = r.try_get("state")?;
    let fraud: Option<String> = r.try_get("fraud_status")?;
    Ok(Transaction {
        id: r.try_get("id")?,
        session_id: r.try_get("session_id")?,
        order_reference: r.try_get("order_reference")?,
        state: TxState::parse(&state),
        klarna_order_id: r.try_get("klarna_order_id")?,
        fraud_status: fraud.as_deref().and_then(FraudStatus::parse),
        currency: r.try_get("currency")?,
        authorized_amount: r.try_get("authorized_amount")?,
        captured_amount: r.try_get("captured_amount")?,
        refunded_amount: r.try_get("refunded_amount")?,
        released_amount: r.try_get("released_amount")?,
        attention: r.try_get("attention")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Capture,
    Refund,
    Cancel,
    Release,
    Extend,
    /// The order was edited before it shipped: a new amount and lines.
    UpdateAuthorization,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Capture => "capture",
            Self::Refund => "refund",
            Self::Cancel => "cancel",
            Self::Release => "release",
            Self::Extend => "extend",
            Self::UpdateAuthorization => "update_authorization",
        }
    }

    /// A kind this build does not know is an error, never a guess: a row written by a
    /// newer version must not be resumed as something else.
    fn parse(s: &str) -> Result<Self, GatewayError> {
        Ok(match s {
            "capture" => Self::Capture,
            "refund" => Self::Refund,
            "cancel" => Self::Cancel,
            "release" => Self::Release,
            "extend" => Self::Extend,
            "update_authorization" => Self::UpdateAuthorization,
            other => {
                return Err(GatewayError::Corrupt(format!(
                    "an operation of unknown kind {other:?}"
                )));
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpState {
    /// Persisted; Klarna may or may not have done it yet.
    Pending,
    Succeeded,
    Failed,
}

impl OpState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Operation {
    pub id: i64,
    pub transaction_id: i64,
    pub kind: OpKind,
    pub amount: i64,
    /// For a refund: the operation of the capture it came from, when the caller named one
    /// (`capture_operation_id`, or Klarna's `capture_id`). Stored in `capture_id`.
    pub capture_operation_id: Option<i64>,
    pub request: serde_json::Value,
    pub idempotency_key: String,
    pub state: OpState,
    pub klarna_id: Option<String>,
    pub refunded_amount: i64,
    pub error: Option<String>,
    pub attempts: i64,
    pub requested_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

fn op_from_row(r: &AnyRow) -> Result<Operation, GatewayError> {
    let kind: String = r.try_get("kind")?;
    let state: String = r.try_get("state")?;
    let request: String = r.try_get("request")?;
    Ok(Operation {
        id: r.try_get("id")?,
        transaction_id: r.try_get("transaction_id")?,
        kind: OpKind::parse(&kind)?,
        amount: r.try_get("amount")?,
        capture_operation_id: r.try_get("capture_id")?,
        request: json_col(&request)?,
        idempotency_key: r.try_get("idempotency_key")?,
        state: OpState::parse(&state),
        klarna_id: r.try_get("klarna_id")?,
        refunded_amount: r.try_get("refunded_amount")?,
        error: r.try_get("error")?,
        attempts: r.try_get("attempts")?,
        requested_by: r.try_get("requested_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Whether this caller may place the order for a session.
pub enum Claim {
    Won(Transaction),
    Existing(Transaction),
}

/// A new operation to persist before Klarna is called.
pub struct NewOperation<'a> {
    pub transaction_id: i64,
    pub kind: OpKind,
    pub amount: i64,
    /// For a refund: the capture operation it comes from.
    pub capture_operation_id: Option<i64>,
    pub request: &'a serde_json::Value,
    pub idempotency_key: &'a str,
    pub requested_by: &'a str,
}

impl Db {
    /// Claims the right to place the order for `session`; only one caller ever wins.
    pub async fn claim(&self, session: &StoredSession) -> Result<Claim, GatewayError> {
        let now = now_ms();
        let email = session
            .body
            .billing_address
            .as_ref()
            .and_then(|a| a.email.clone());
        let inserted = sqlx::query(
            "INSERT INTO transactions (session_id, order_reference, state, currency,
                                       authorized_amount, customer_email, created_at, updated_at)
             VALUES ($1, $2, 'placing', $3, $4, $5, $6, $7)",
        )
        .bind(&session.id)
        .bind(&session.order_reference)
        .bind(&session.currency)
        .bind(session.order_amount)
        .bind(email)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => self
                .transaction_for_session(&session.id)
                .await?
                .map(Claim::Won)
                .ok_or(GatewayError::AuthorizationInProgress),
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
        sqlx::query("DELETE FROM transactions WHERE session_id = $1 AND state = 'placing'")
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn transaction_for_session(
        &self,
        session_id: &str,
    ) -> Result<Option<Transaction>, GatewayError> {
        let row = sqlx::query("SELECT * FROM transactions WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| tx_from_row(&r)).transpose()
    }

    /// Orders being placed for an Odoo order reference (no Klarna order id recorded yet).
    pub async fn placing_for(
        &self,
        order_reference: &str,
    ) -> Result<Vec<Transaction>, GatewayError> {
        let rows = sqlx::query(
            "SELECT * FROM transactions WHERE order_reference = $1 AND state = 'placing'",
        )
        .bind(order_reference)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tx_from_row).collect()
    }

    pub async fn transaction(&self, id: i64) -> Result<Option<Transaction>, GatewayError> {
        let row = sqlx::query("SELECT * FROM transactions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| tx_from_row(&r)).transpose()
    }

    /// A payment by Klarna order id, or the newest placed one of an Odoo order reference.
    pub async fn find_transaction(&self, key: &str) -> Result<Option<Transaction>, GatewayError> {
        let row = sqlx::query("SELECT * FROM transactions WHERE klarna_order_id = $1
             UNION ALL
             SELECT * FROM (SELECT * FROM transactions WHERE order_reference = $2 AND klarna_order_id IS NOT NULL
                            ORDER BY id DESC LIMIT 1) newest
             LIMIT 1")
        .bind(key)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| tx_from_row(&r)).transpose()
    }

    /// Locks a payment row for the rest of `tx` and reads it.
    pub async fn lock_transaction(
        &self,
        tx: &mut Tx,
        id: i64,
    ) -> Result<Transaction, GatewayError> {
        let sql = format!(
            "SELECT * FROM transactions WHERE id = $1{}",
            self.for_update()
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or(GatewayError::PaymentNotFound(id.to_string()))?;
        tx_from_row(&row)
    }

    pub async fn transactions(&self) -> Result<Vec<Transaction>, GatewayError> {
        let rows = sqlx::query("SELECT * FROM transactions ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(tx_from_row).collect()
    }

    /// Payments Klarna may still change: open, pending a decision, or needing a look.
    pub async fn unsettled_transactions(&self) -> Result<Vec<Transaction>, GatewayError> {
        let rows = sqlx::query(
            "SELECT * FROM transactions
             WHERE klarna_order_id IS NOT NULL
               AND (state IN ('authorized', 'part_captured') OR fraud_status = 'PENDING' OR attention IS NOT NULL
                    OR id IN (SELECT transaction_id FROM operations WHERE state = 'pending'))
             ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tx_from_row).collect()
    }

    /// Writes a payment's state and amounts (inside the caller's transaction).
    pub async fn save_transaction(&self, tx: &mut Tx, t: &Transaction) -> Result<(), GatewayError> {
        sqlx::query(
            "UPDATE transactions SET state = $1, klarna_order_id = $2, fraud_status = $3,
                    authorized_amount = $4, captured_amount = $5, refunded_amount = $6,
                    released_amount = $7, attention = $8, updated_at = $9
             WHERE id = $10",
        )
        .bind(t.state.as_str())
        .bind(&t.klarna_order_id)
        .bind(t.fraud_status.map(FraudStatus::as_str))
        .bind(t.authorized_amount)
        .bind(t.captured_amount)
        .bind(t.refunded_amount)
        .bind(t.released_amount)
        .bind(&t.attention)
        .bind(now_ms())
        .bind(t.id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub async fn operations(&self, transaction_id: i64) -> Result<Vec<Operation>, GatewayError> {
        let rows = sqlx::query("SELECT * FROM operations WHERE transaction_id = $1 ORDER BY id")
            .bind(transaction_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(op_from_row).collect()
    }

    pub async fn operations_in(
        &self,
        tx: &mut Tx,
        transaction_id: i64,
    ) -> Result<Vec<Operation>, GatewayError> {
        let rows = sqlx::query("SELECT * FROM operations WHERE transaction_id = $1 ORDER BY id")
            .bind(transaction_id)
            .fetch_all(&mut **tx)
            .await?;
        rows.iter().map(op_from_row).collect()
    }

    pub async fn operation(&self, id: i64) -> Result<Option<Operation>, GatewayError> {
        let row = sqlx::query("SELECT * FROM operations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| op_from_row(&r)).transpose()
    }

    pub async fn pending_operations(&self) -> Result<Vec<Operation>, GatewayError> {
        let rows = sqlx::query("SELECT * FROM operations WHERE state = 'pending' ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(op_from_row).collect()
    }

    pub async fn insert_operation(
        &self,
        tx: &mut Tx,
        op: NewOperation<'_>,
    ) -> Result<i64, GatewayError> {
        let now = now_ms();
        let row = sqlx::query("INSERT INTO operations (transaction_id, kind, amount, capture_id, request, idempotency_key,
                                     state, requested_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9) RETURNING id")
        .bind(op.transaction_id)
        .bind(op.kind.as_str())
        .bind(op.amount)
        .bind(op.capture_operation_id)
        .bind(op.request.to_string())
        .bind(op.idempotency_key)
        .bind(op.requested_by)
        .bind(now)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Records Klarna's answer to an operation.
    pub async fn finish_operation(
        &self,
        tx: &mut Tx,
        id: i64,
        state: OpState,
        klarna_id: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), GatewayError> {
        sqlx::query("UPDATE operations SET state = $1, klarna_id = COALESCE($2, klarna_id), error = $3, updated_at = $4
             WHERE id = $5")
        .bind(state.as_str())
        .bind(klarna_id)
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub async fn count_attempt(&self, id: i64, error: &str) -> Result<(), GatewayError> {
        sqlx::query("UPDATE operations SET attempts = attempts + 1, error = $1, updated_at = $2 WHERE id = $3")
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records, per capture, what was refunded of it as the state machine allocated it
    /// (oldest first). `captures` are the payment's capture operations in the state
    /// machine's order, each with what it had refunded before: the id and that amount.
    pub async fn save_refunds_by_capture(
        &self,
        tx: &mut Tx,
        captures: &[(i64, i64)],
        payment: &Payment,
    ) -> Result<(), GatewayError> {
        for ((capture_op, before), c) in captures.iter().zip(payment.captures()) {
            let added = c.refunded - before;
            if added > 0 {
                sqlx::query("UPDATE operations SET refunded_amount = refunded_amount + $1, updated_at = $2 WHERE id = $3")
                    .bind(added)
                    .bind(now_ms())
                    .bind(capture_op)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }
}
