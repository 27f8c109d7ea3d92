//! The `secrets` table: sealed values by name (see [`crate::vault`]).

use sqlx::Row;

use super::{Db, now_ms};
use crate::error::GatewayError;
use crate::vault::Sealed;

impl Db {
    pub async fn sealed_secrets(&self) -> Result<Vec<(String, Sealed)>, GatewayError> {
        let rows = sqlx::query("SELECT * FROM secrets ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("name")?,
                    Sealed {
                        key_id: r.try_get("key_id")?,
                        nonce: r.try_get("nonce")?,
                        ciphertext: r.try_get("ciphertext")?,
                    },
                ))
            })
            .collect()
    }

    pub async fn put_sealed(&self, name: &str, sealed: &Sealed) -> Result<(), GatewayError> {
        sqlx::query("INSERT INTO secrets (name, key_id, nonce, ciphertext, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce,
                                              ciphertext = excluded.ciphertext, updated_at = excluded.updated_at")
        .bind(name)
        .bind(&sealed.key_id)
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
