//! How an event reaches the merchant: the signing keys and the `Klarna-Signature` HMAC,
//! Klarna's retry schedule, and the log of deliveries that `/_sandbox/webhooks` and tests
//! read. `webhooks.rs` decides what to send; this holds what sending needs, and
//! imports nothing of the sandbox, so the sandbox's state can own it.

use std::sync::Mutex;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

/// Klarna's retry delays after a failed delivery, in seconds.
pub const SCHEDULE: [u64; 6] = [10, 120, 900, 10_800, 21_600, 43_200];

/// A signing key: Klarna names it by id in `Klarna-Signing-Key-Id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub id: String,
    pub secret: String,
}

impl std::str::FromStr for SigningKey {
    type Err = String;
    /// `ID=SECRET`
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (id, secret) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not ID=SECRET"))?;
        if id.is_empty() || secret.is_empty() {
            return Err("a signing key needs an id and a secret".into());
        }
        Ok(Self {
            id: id.to_owned(),
            secret: secret.to_owned(),
        })
    }
}

/// One event sent (or being sent), for `/_sandbox/webhooks` and tests.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub event_id: String,
    pub event_type: String,
    pub signed: bool,
    pub url: String,
    pub statuses: Vec<u16>,
    pub delivered: bool,
}

pub struct Webhooks {
    http: reqwest::Client,
    log: Mutex<Vec<Delivery>>,
    active_key: Mutex<Option<String>>,
}

impl Webhooks {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            log: Mutex::new(Vec::new()),
            active_key: Mutex::new(None),
        }
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.log).clone()
    }

    /// Signs with another configured key from now on (key rotation).
    pub fn activate_key(&self, id: &str) {
        *lock(&self.active_key) = Some(id.to_owned());
    }

    /// The key that signs now: the activated one, else the first of `keys`.
    pub fn signing_key(&self, keys: &[SigningKey]) -> Option<SigningKey> {
        let active = lock(&self.active_key).clone();
        active
            .and_then(|id| keys.iter().find(|k| k.id == id).cloned())
            .or_else(|| keys.first().cloned())
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Logs a delivery about to be attempted; the index names it in [`Self::attempted`].
    pub fn start(&self, delivery: Delivery) -> usize {
        let mut log = lock(&self.log);
        log.push(delivery);
        log.len() - 1
    }

    /// Logs one attempt's HTTP status (0: no answer).
    pub fn attempted(&self, index: usize, status: u16, delivered: bool) {
        if let Some(d) = lock(&self.log).get_mut(index) {
            d.statuses.push(status);
            d.delivered = delivered;
        }
    }
}

impl Default for Webhooks {
    fn default() -> Self {
        Self::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Hex HMAC-SHA256 of `body` with `secret`: the `Klarna-Signature` value.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hex_hmac_sha256_of_the_raw_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signing_keys_parse_as_id_equals_secret() {
        let k: SigningKey = "key-1=s3cret".parse().expect("parses");
        assert_eq!((k.id.as_str(), k.secret.as_str()), ("key-1", "s3cret"));
        assert!("nokey".parse::<SigningKey>().is_err());
    }
}
