//! The webhook signing keys: sealed among the secrets, several active at once so that
//! Klarna's key can be rotated with an overlap, revoked one by one. Their secrets are
//! never shown: the admin API and the CLI see [`KeyInfo`].

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

pub async fn save(secrets: &Secrets, keys: &[SigningKey]) -> Result<(), GatewayError> {
    let json = zeroize::Zeroizing::new(serde_json::to_string(keys)?);
    secrets.set(SIGNING_KEYS, &json).await
}

/// A signing key as the admin API and CLI show it: never its secret.
#[derive(Debug, Clone, Serialize)]
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
