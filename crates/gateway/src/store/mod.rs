//! Durable state, one module per table family: [`sessions`], [`transactions`] (with their
//! operations), [`audit`], [`jobs`], [`idempotency`], [`secrets`], [`gdpr`], [`tokens`].
//!
//! Every function takes either the pool (a read, or a write that stands alone) or an open
//! transaction (a write that must commit together with others — a state change, its audit
//! entry and the job it needs).

pub mod audit;
pub mod gdpr;
pub mod idempotency;
pub mod jobs;
pub mod secrets;
pub mod sessions;
pub mod tokens;
pub mod transactions;
pub mod webhooks;

use sha2::{Digest, Sha256};

pub use crate::db::{Backend, Db, Tx, now_ms};
pub use sessions::StoredSession;
pub use transactions::{OpKind, OpState, Operation, Transaction, TxState};

/// sha256 of a value's JSON: an unchanged cart hashes the same.
pub fn hash_json<T: serde::Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(Sha256::digest(json))
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation()
                || d.message().contains("UNIQUE constraint failed")
                || d.message().contains("duplicate key value")
        }
        _ => false,
    }
}

pub(crate) fn json_col<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// `($1, …, $k, tail), ($k+1, …)` for a multi-row `INSERT … VALUES`: `rows` rows of
/// `binds` placeholders each, then `tail` (a constant column) when not empty.
///
/// On SQLite the placeholders are anonymous (`?`), bound in order: SQLite finds a
/// numbered one's name by walking the list of all of them, and sqlx asks for every
/// parameter's name, so a batch of 256 events (2,048 parameters) spent its time in that
/// walk (perf: `sqlite3_bind_parameter_name`, on the one thread that writes).
pub(crate) fn values_rows(backend: Backend, rows: usize, binds: usize, tail: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(rows * (binds * 5 + tail.len() + 4));
    for row in 0..rows {
        out.push_str(if row == 0 { "(" } else { ", (" });
        for b in 0..binds {
            let sep = if b == 0 { "" } else { ", " };
            let _ = match backend {
                Backend::Postgres => write!(out, "{sep}${}", row * binds + b + 1),
                Backend::Sqlite => write!(out, "{sep}?"),
            };
        }
        if !tail.is_empty() {
            let _ = write!(out, ", {tail}");
        }
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Backend, values_rows};

    #[test]
    fn values_rows_numbers_every_placeholder_once_in_order() {
        assert_eq!(values_rows(Backend::Postgres, 1, 2, ""), "($1, $2)");
        assert_eq!(
            values_rows(Backend::Postgres, 2, 3, "'queued'"),
            "($1, $2, $3, 'queued'), ($4, $5, $6, 'queued')"
        );
        assert_eq!(
            values_rows(Backend::Sqlite, 2, 2, "'queued'"),
            "(?, ?, 'queued'), (?, ?, 'queued')"
        );
    }
}
