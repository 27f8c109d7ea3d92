//! The gateway's secrets — Klarna credentials, the admin token, Odoo's password and shared
//! secret, webhook signing keys — sealed in the database and opened only for the moment a
//! request needs them.

use std::collections::HashMap;
use std::sync::RwLock;

use zeroize::Zeroizing;

use crate::db::Db;
use crate::error::GatewayError;
use crate::vault::{Sealed, Vault};

pub const KLARNA_USERNAME: &str = "klarna.username";
pub const KLARNA_PASSWORD: &str = "klarna.password";
pub const ADMIN_TOKEN: &str = "admin.token";
pub const ODOO_PASSWORD: &str = "odoo.password";
pub const ODOO_SHARED_SECRET: &str = "odoo.shared_secret";
/// The webhook signing keys, as JSON (see [`crate::signing_keys`]).
pub const SIGNING_KEYS: &str = "webhook.signing_keys";
/// The secret path segment of the classic callbacks' URLs.
pub const CLASSIC_TOKEN: &str = "webhook.classic_token";

/// The name a shopper's saved Klarna is sealed under (bound into its ciphertext); the
/// token itself lives in `customer_tokens`, not among these secrets.
pub fn customer_token_name(reference: &str) -> String {
    format!("customer_token.{reference}")
}

pub struct Secrets {
    db: Db,
    vault: RwLock<Vault>,
    sealed: RwLock<HashMap<String, Sealed>>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Secrets {
    pub async fn load(db: Db, vault: Vault) -> Result<Self, GatewayError> {
        let sealed = db.sealed_secrets().await?.into_iter().collect();
        if vault.active_age_days() > crate::vault::KEY_MAX_AGE_DAYS {
            tracing::warn!(
                key_id = vault.active_id(),
                age_days = vault.active_age_days(),
                "the active master key is older than {} days: run `klarna-gateway rotate-keys`",
                crate::vault::KEY_MAX_AGE_DAYS
            );
        }
        Ok(Self {
            db,
            vault: RwLock::new(vault),
            sealed: RwLock::new(sealed),
        })
    }

    /// Reads the sealed secrets again: what another instance or the CLI changed (a revoked
    /// webhook key, a new admin token) takes effect here too.
    pub async fn reload(&self) -> Result<(), GatewayError> {
        let sealed = self.db.sealed_secrets().await?.into_iter().collect();
        *write(&self.sealed) = sealed;
        Ok(())
    }

    /// The secrets the master keys do not open, each with the key that sealed it.
    pub fn unopened(&self) -> Vec<String> {
        read(&self.vault).unopened(read(&self.sealed).iter())
    }

    /// Seals and stores a secret (replacing any earlier value).
    pub async fn set(&self, name: &str, plaintext: &str) -> Result<(), GatewayError> {
        let sealed = read(&self.vault).seal(name, plaintext.as_bytes())?;
        self.db.put_sealed(name, &sealed).await?;
        write(&self.sealed).insert(name.to_owned(), sealed);
        Ok(())
    }

    /// The secret's value, decrypted now, wiped when the caller drops it.
    pub fn get(&self, name: &str) -> Option<Zeroizing<String>> {
        let sealed = read(&self.sealed).get(name).cloned()?;
        match read(&self.vault).open_sealed(name, &sealed) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!("{e}");
                None
            }
        }
    }

    /// Seals a value kept outside the `secrets` table (a shopper's saved Klarna, in
    /// `customer_tokens`), under the active key, with `name` bound in.
    pub fn seal(&self, name: &str, plaintext: &str) -> Result<Sealed, GatewayError> {
        read(&self.vault).seal(name, plaintext.as_bytes())
    }

    /// Opens a value [`Secrets::seal`] sealed; the error names the secret, never its value.
    pub fn open(&self, name: &str, sealed: &Sealed) -> Result<Zeroizing<String>, GatewayError> {
        read(&self.vault).open_sealed(name, sealed)
    }

    /// What identifies the secret's current sealed value (its nonce, fresh for every
    /// seal): a copy opened under another version is stale.
    pub fn version(&self, name: &str) -> Option<String> {
        read(&self.sealed).get(name).map(|s| s.nonce.clone())
    }

    pub fn require(&self, name: &str) -> Result<Zeroizing<String>, GatewayError> {
        self.get(name)
            .ok_or_else(|| GatewayError::Config(format!("the secret {name} is not set")))
    }

    pub fn names(&self) -> Vec<String> {
        read(&self.sealed).keys().cloned().collect()
    }

    /// Which key seals each secret.
    pub fn key_ids(&self) -> HashMap<String, String> {
        read(&self.sealed)
            .iter()
            .map(|(n, s)| (n.clone(), s.key_id.clone()))
            .collect()
    }

    /// A new active master key, and every secret — the saved Klarna tokens too — sealed
    /// again under it. Old keys stay usable until removed, so running instances keep
    /// working.
    pub async fn rotate(&self) -> Result<String, GatewayError> {
        let new_id = write(&self.vault).add_key()?.to_owned();
        let names = self.names();
        for name in names {
            let value = self.require(&name)?;
            self.set(&name, &value).await?;
        }
        for token in self.db.tokens().await? {
            let name = customer_token_name(&token.reference);
            let value = self.open(&name, &token.sealed)?;
            let sealed = self.seal(&name, &value)?;
            self.db.reseal_token(token.id, &sealed).await?;
        }
        Ok(new_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn secrets_these_keys_do_not_open_are_named_until_given_again() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("gateway.db").display());
        let db = Db::connect(&url).await.expect("db");
        let secrets = Secrets::load(db.clone(), Vault::ephemeral())
            .await
            .expect("no secrets yet");
        secrets.set(ADMIN_TOKEN, "t0ken").await.expect("set");
        assert!(secrets.unopened().is_empty());
        let elsewhere = Secrets::load(db, Vault::ephemeral()).await.expect("load");
        let unopened = elsewhere.unopened();
        assert_eq!(unopened.len(), 1, "{unopened:?}");
        assert!(unopened[0].starts_with("admin.token (sealed with key "));
        // Given again, it is sealed with the keys at hand and opens.
        elsewhere.set(ADMIN_TOKEN, "t0ken").await.expect("set");
        assert!(elsewhere.unopened().is_empty());
    }
}
