//! Secrets at rest: XChaCha20-Poly1305 under master keys that rotate without downtime.
//!
//! Each stored value names the key that sealed it, so several keys can be in use at once;
//! the first key is the active one, and `klarna-gateway rotate-keys` adds a new active key
//! and re-seals everything with it. Keys come from `GATEWAY_MASTER_KEYS`
//! (`id:created_unix:base64,…`) or from `<data dir>/master.keys` (created on first start,
//! mode 0600). Plaintext lives in `Zeroizing` buffers, wiped when dropped.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::error::GatewayError;

/// A key older than this is reported at start-up.
pub const KEY_MAX_AGE_DAYS: u64 = 90;

pub struct MasterKey {
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    key: Zeroizing<[u8; 32]>,
}

/// A sealed value: which key, the nonce, the ciphertext (base64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: String,
    pub ciphertext: String,
}

pub struct Vault {
    keys: Vec<MasterKey>,
    file: Option<PathBuf>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// 32 random bytes from the operating system, URL-safe base64: a new shared secret or
/// admin token.
pub fn random_secret() -> Zeroizing<String> {
    let bytes = XChaCha20Poly1305::generate_key(&mut OsRng);
    Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn new_key() -> MasterKey {
    let key = XChaCha20Poly1305::generate_key(&mut OsRng);
    let mut bytes = Zeroizing::new([0u8; 32]);
    bytes.copy_from_slice(&key);
    MasterKey {
        id: format!("k{}", unix_now()),
        created: unix_now(),
        key: bytes,
    }
}

fn parse_keys(text: &str) -> Result<Vec<MasterKey>, GatewayError> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|entry| {
            let mut parts = entry.splitn(3, ':');
            let (Some(id), Some(created), Some(b64)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(GatewayError::Config(
                    "a master key is id:created_unix:base64".into(),
                ));
            };
            let raw = Zeroizing::new(
                STANDARD
                    .decode(b64.trim())
                    .map_err(|_| GatewayError::Config(format!("master key {id}: not base64")))?,
            );
            let mut key = Zeroizing::new([0u8; 32]);
            if raw.len() != 32 {
                return Err(GatewayError::Config(format!(
                    "master key {id}: must be 32 bytes"
                )));
            }
            key.copy_from_slice(&raw);
            Ok(MasterKey {
                id: id.to_owned(),
                created: created.parse().map_err(|_| {
                    GatewayError::Config(format!("master key {id}: bad creation time"))
                })?,
                key,
            })
        })
        .collect()
}

fn render(keys: &[MasterKey]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::from(
        "# klarna-gateway master keys: id:created_unix:base64, active first\n",
    ));
    for k in keys {
        out.push_str(&format!(
            "{}:{}:{}\n",
            k.id,
            k.created,
            STANDARD.encode(*k.key)
        ));
    }
    out
}

impl Vault {
    /// [`Vault::open`], but never making a key: a fresh key opens nothing already sealed,
    /// so a restore or a check of an existing installation without its keys is refused.
    pub fn open_existing(env: Option<&str>, data_dir: &Path) -> Result<Self, GatewayError> {
        let from_env = env.is_some_and(|t| !t.trim().is_empty());
        let file = data_dir.join("master.keys");
        if !from_env && !file.exists() {
            return Err(GatewayError::Config(format!(
                "no master keys: neither GATEWAY_MASTER_KEYS nor {}; copy the master.keys the secrets were sealed with there",
                file.display()
            )));
        }
        Self::open(env, data_dir)
    }

    /// Keys from `env` (the value of GATEWAY_MASTER_KEYS) or from the key file in
    /// `data_dir`, which is created with a fresh key when there is none.
    pub fn open(env: Option<&str>, data_dir: &Path) -> Result<Self, GatewayError> {
        if let Some(text) = env.filter(|t| !t.trim().is_empty()) {
            let keys = parse_keys(text)?;
            if keys.is_empty() {
                return Err(GatewayError::Config(
                    "GATEWAY_MASTER_KEYS holds no key".into(),
                ));
            }
            return Ok(Self { keys, file: None });
        }
        let file = data_dir.join("master.keys");
        let keys = match std::fs::read_to_string(&file) {
            Ok(text) => parse_keys(&text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let keys = vec![new_key()];
                write_private(&file, &render(&keys))?;
                tracing::info!(file = %file.display(), "created a master key for secrets at rest");
                keys
            }
            Err(e) => {
                return Err(GatewayError::Config(format!(
                    "cannot read {}: {e}",
                    file.display()
                )));
            }
        };
        if keys.is_empty() {
            return Err(GatewayError::Config(format!(
                "{} holds no key",
                file.display()
            )));
        }
        Ok(Self {
            keys,
            file: Some(file),
        })
    }

    /// A vault with one fresh key and no file (tests).
    pub fn ephemeral() -> Self {
        Self {
            keys: vec![new_key()],
            file: None,
        }
    }

    pub fn active_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Days since the active key was made.
    pub fn active_age_days(&self) -> u64 {
        unix_now().saturating_sub(self.keys[0].created) / 86_400
    }

    /// Adds a new active key (and saves the key file, when there is one).
    pub fn add_key(&mut self) -> Result<&str, GatewayError> {
        let mut key = new_key();
        while self.keys.iter().any(|k| k.id == key.id) {
            key.id.push('x');
        }
        self.keys.insert(0, key);
        if let Some(file) = &self.file {
            write_private(file, &render(&self.keys))?;
        }
        Ok(&self.keys[0].id)
    }

    /// Seals `plaintext` under the active key; `name` is bound in as associated data, so
    /// a sealed value cannot be moved to another secret's slot.
    pub fn seal(&self, name: &str, plaintext: &[u8]) -> Result<Sealed, GatewayError> {
        let key = &self.keys[0];
        let cipher = XChaCha20Poly1305::new(key.key.as_ref().into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| GatewayError::Config("encryption failed".into()))?;
        Ok(Sealed {
            key_id: key.id.clone(),
            nonce: STANDARD.encode(nonce),
            ciphertext: STANDARD.encode(ciphertext),
        })
    }

    /// The secrets of `sealed` these keys do not open, each with the key that sealed it,
    /// sorted by name.
    pub fn unopened<'a>(
        &self,
        sealed: impl IntoIterator<Item = (&'a String, &'a Sealed)>,
    ) -> Vec<String> {
        let mut out: Vec<String> = sealed
            .into_iter()
            .filter(|(name, s)| self.open_sealed(name, s).is_err())
            .map(|(name, s)| format!("{name} (sealed with key {})", s.key_id))
            .collect();
        out.sort();
        out
    }

    pub fn open_sealed(
        &self,
        name: &str,
        sealed: &Sealed,
    ) -> Result<Zeroizing<String>, GatewayError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| {
                GatewayError::Config(format!(
                    "secret {name} is sealed with key {}, which is not configured",
                    sealed.key_id
                ))
            })?;
        let nonce = STANDARD
            .decode(&sealed.nonce)
            .ok()
            .filter(|n| n.len() == 24)
            .ok_or_else(|| GatewayError::Config(format!("secret {name}: bad nonce")))?;
        let ciphertext = STANDARD
            .decode(&sealed.ciphertext)
            .map_err(|_| GatewayError::Config(format!("secret {name}: bad ciphertext")))?;
        let cipher = XChaCha20Poly1305::new(key.key.as_ref().into());
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: &ciphertext,
                        aad: name.as_bytes(),
                    },
                )
                .map_err(|_| {
                    GatewayError::Config(format!(
                        "secret {name} does not decrypt (wrong key or tampered)"
                    ))
                })?,
        );
        String::from_utf8(plain.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| GatewayError::Config(format!("secret {name} is not text")))
    }
}

/// Writes `text` to a file only its owner can read (0600), through a file beside it that is
/// flushed and renamed into place, so no reader sees half of it (the key file, `init`'s
/// configuration).
pub fn write_private(path: &Path, text: &str) -> Result<(), GatewayError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| GatewayError::Config(format!("cannot create {}: {e}", dir.display())))?;
    }
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options
            .open(&tmp)
            .map_err(|e| GatewayError::Config(format!("cannot write {}: {e}", tmp.display())))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| GatewayError::Config(format!("cannot write {}: {e}", tmp.display())))?;
    }
    std::fs::rename(&tmp, path)
        .map_err(|e| GatewayError::Config(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_slot_and_survive_rotation() {
        let dir = tempfile::tempdir().expect("dir");
        let mut vault = Vault::open(None, dir.path()).expect("vault");
        let sealed = vault.seal("klarna.password", b"hunter2").expect("seal");
        assert!(!sealed.ciphertext.contains("hunter2"));
        assert_eq!(
            vault
                .open_sealed("klarna.password", &sealed)
                .expect("open")
                .as_str(),
            "hunter2"
        );
        assert!(
            vault.open_sealed("admin.token", &sealed).is_err(),
            "bound to its name"
        );
        let old = vault.active_id().to_owned();
        vault.add_key().expect("rotate");
        assert_ne!(vault.active_id(), old);
        assert_eq!(
            vault
                .open_sealed("klarna.password", &sealed)
                .expect("old key still opens")
                .as_str(),
            "hunter2"
        );
        // The key file keeps both keys.
        let reopened = Vault::open(None, dir.path()).expect("reopen");
        assert_eq!(
            reopened
                .open_sealed("klarna.password", &sealed)
                .expect("open")
                .as_str(),
            "hunter2"
        );
        let text = std::fs::read_to_string(dir.path().join("master.keys")).expect("file");
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.keys"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
