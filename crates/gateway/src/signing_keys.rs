//! The webhook signing keys: sealed among the secrets, several active at once so that
//! Klarna's key can be rotated with an overlap, revoked one by one. Their secrets are
//! never shown: the admin API and the CLI see [`KeyInfo`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::GatewayError;
use crate::secrets::{SIGNING_KEYS, Secrets};
use crate::webhook_verify::SigningKey;

/// The keys as stored; none when none were ever added.
pub fn load(secrets: &Secrets) -> Vec<SigningKey> {
    secrets
        .get(SIGNING_KEYS)
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

/// How long an opened copy of the keys is kept by default.
pub const DEFAULT_CACHE: Duration = Duration::from_secs(30);

/// An opened copy of the keys for the webhook hot path: opening them (decrypting the sealed
/// JSON, parsing it) costs more than verifying the signature. The copy is dropped — and
/// its secrets wiped, [`SigningKey`] zeroizes on drop — `ttl` after it was opened, or as
/// soon as the sealed value changes (a key added or revoked here, or read from another
/// instance by the secrets refresh).
pub struct KeyCache {
    ttl: Duration,
    slot: Arc<Mutex<Option<Opened>>>,
}

struct Opened {
    version: Option<String>,
    at: Instant,
    keys: Arc<Vec<SigningKey>>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slot: Arc::new(Mutex::new(None)),
        }
    }

    /// The keys, from the copy when it is fresh and current.
    pub fn keys(&self, secrets: &Secrets) -> Arc<Vec<SigningKey>> {
        if self.ttl.is_zero() {
            return Arc::new(load(secrets));
        }
        let version = secrets.version(SIGNING_KEYS);
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = slot.as_ref()
            && open.version == version
            && open.at.elapsed() < self.ttl
        {
            return open.keys.clone();
        }
        let keys = Arc::new(load(secrets));
        let at = Instant::now();
        *slot = Some(Opened {
            version,
            at,
            keys: keys.clone(),
        });
        // Without traffic nothing would look at the copy again: drop it on time anyway.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let slot = Arc::downgrade(&self.slot);
            let ttl = self.ttl;
            runtime.spawn(async move {
                tokio::time::sleep(ttl).await;
                if let Some(slot) = slot.upgrade() {
                    let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
                    if slot.as_ref().is_some_and(|o| o.at == at) {
                        *slot = None;
                    }
                }
            });
        }
        keys
    }

    /// Whether an opened copy is held now (tests).
    pub fn is_open(&self) -> bool {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

pub async fn save(secrets: &Secrets, keys: &[SigningKey]) -> Result<(), GatewayError> {
    let json = zeroize::Zeroizing::new(serde_json::to_string(keys)?);
    secrets.set(SIGNING_KEYS, &json).await
}

/// A signing key as the admin API and CLI show it: never its secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    pub id: String,
    pub revoked: bool,
}

pub fn list(secrets: &Secrets) -> Vec<KeyInfo> {
    load(secrets)
        .iter()
        .map(|k| KeyInfo {
            id: k.id.clone(),
            revoked: k.revoked,
        })
        .collect()
}

/// Adds a signing key (Klarna's new key, before it signs with it: the overlap).
pub async fn add(secrets: &Secrets, id: &str, secret: &str) -> Result<(), GatewayError> {
    if !crate::webhook_verify::id_like(id) {
        return Err(GatewayError::invalid("id", "1–128 letters, digits or -_.:"));
    }
    if secret.len() < 16 {
        return Err(GatewayError::invalid("secret", "at least 16 characters"));
    }
    let mut keys = load(secrets);
    if keys.iter().any(|k| k.id == id) {
        return Err(GatewayError::Refused(format!(
            "signing key {id} exists already"
        )));
    }
    keys.push(SigningKey {
        id: id.to_owned(),
        secret: secret.to_owned(),
        revoked: false,
    });
    save(secrets, &keys).await?;
    tracing::info!(key_id = id, "webhook signing key added");
    Ok(())
}

/// Revokes a signing key: webhooks signed with it are refused from now on (on other
/// instances once they reload their secrets, within seconds).
pub async fn revoke(secrets: &Secrets, id: &str) -> Result<(), GatewayError> {
    let mut keys = load(secrets);
    let key = keys
        .iter_mut()
        .find(|k| k.id == id)
        .ok_or_else(|| GatewayError::Refused(format!("no signing key {id}")))?;
    key.revoked = true;
    save(secrets, &keys).await?;
    tracing::warn!(key_id = id, "webhook signing key revoked");
    Ok(())
}

/// Adds the keys given at start-up that the store does not hold yet.
pub async fn add_missing(
    secrets: &Secrets,
    given: &[(String, String)],
) -> Result<(), GatewayError> {
    let mut keys = load(secrets);
    let before = keys.len();
    for (id, secret) in given {
        if !keys.iter().any(|k| &k.id == id) {
            keys.push(SigningKey {
                id: id.clone(),
                secret: secret.clone(),
                revoked: false,
            });
        }
    }
    if keys.len() == before {
        return Ok(());
    }
    save(secrets, &keys).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::vault::Vault;

    async fn secrets(dir: &std::path::Path) -> Secrets {
        let db = Db::connect(&format!("sqlite://{}/gateway.db", dir.display()))
            .await
            .expect("db");
        let vault = Vault::open(None, dir).expect("vault");
        Secrets::load(db, vault).await.expect("secrets")
    }

    #[tokio::test]
    async fn the_opened_copy_is_shared_reopened_on_change_and_dropped_after_its_time() {
        let dir = tempfile::tempdir().expect("dir");
        let secrets = secrets(dir.path()).await;
        add(&secrets, "k1", "0123456789abcdef-1")
            .await
            .expect("add");
        let cache = KeyCache::new(Duration::from_millis(100));
        let first = cache.keys(&secrets);
        assert!(
            Arc::ptr_eq(&first, &cache.keys(&secrets)),
            "one opening serves both"
        );
        revoke(&secrets, "k1").await.expect("revoke");
        let after = cache.keys(&secrets);
        assert!(
            after[0].revoked,
            "a revocation is seen at once, not after the time"
        );
        drop((first, after));
        // The timer drops the copy without another request coming by.
        let deadline = Instant::now() + Duration::from_secs(10);
        while cache.is_open() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!cache.is_open(), "the opened keys outlived their time");
        let uncached = KeyCache::new(Duration::ZERO);
        let a = uncached.keys(&secrets);
        assert!(!Arc::ptr_eq(&a, &uncached.keys(&secrets)));
        assert!(!uncached.is_open());
    }
}
