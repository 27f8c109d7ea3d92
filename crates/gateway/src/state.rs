//! The gateway's shared state: configuration, storage, secrets, the clients for Klarna
//! and Odoo, the front door, and the per-payment locks. Built once at start-up and
//! shared by every request handler and the job worker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use klarna_client::KlarnaClient;
use klarna_types::klarna::MerchantUrls;
use klarna_types::mapping::MappingOptions;
use tokio::sync::{Notify, OwnedMutexGuard};

use crate::config::Config;
use crate::db::{Db, now_ms};
use crate::error::GatewayError;
use crate::frontdoor::FrontDoor;
use crate::ingest::Ingest;
use crate::odoo::{OdooClient, OdooConfig, PasswordSource};
use crate::secrets::{self, CLASSIC_TOKEN, Secrets};
use crate::vault::Vault;
use crate::{metrics, signing_keys};

/// Secrets given at start-up (flags or environment); they are sealed into the database
/// and read from there afterwards.
#[derive(Default, Clone)]
pub struct InitialSecrets {
    pub klarna_username: Option<String>,
    pub klarna_password: Option<String>,
    pub admin_token: Option<String>,
    pub odoo_password: Option<String>,
    pub odoo_shared_secret: Option<String>,
    /// Webhook signing keys (id, secret) to add when absent.
    pub webhook_signing_keys: Vec<(String, String)>,
    /// The classic callbacks' URL token (generated on first start when absent).
    pub classic_callback_token: Option<String>,
}

impl std::fmt::Debug for InitialSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InitialSecrets(<redacted>)")
    }
}

pub struct Gateway {
    pub config: Config,
    pub db: Db,
    pub secrets: Arc<Secrets>,
    pub klarna: Arc<KlarnaClient>,
    pub odoo: OdooClient,
    /// For notifications to Odoo.
    pub http: reqwest::Client,
    pub worker_wakeup: Notify,
    pub frontdoor: Arc<FrontDoor>,
    /// Verified webhook events go through here: one writer, one commit per batch.
    pub ingest: Ingest,
    /// The webhook signing keys, opened for a short while (see [`signing_keys::KeyCache`]).
    pub signing_keys: signing_keys::KeyCache,
    locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    crash_at: Mutex<Option<&'static str>>,
    last_reconcile: AtomicI64,
}

impl Gateway {
    /// Opens the database (migrating it), the vault and the secrets, and the clients.
    pub async fn new(config: Config, initial: InitialSecrets) -> Result<Self, GatewayError> {
        let vault = Vault::open(config.master_keys.as_deref(), &config.data_dir)?;
        Self::with_vault(config, initial, vault).await
    }

    pub async fn with_vault(
        config: Config,
        initial: InitialSecrets,
        vault: Vault,
    ) -> Result<Self, GatewayError> {
        // The Prometheus recorder, before anything records.
        metrics::handle();
        let db = Db::connect(&config.database_url).await?;
        let secrets = Arc::new(Secrets::load(db.clone(), vault).await?);
        for (name, value) in [
            (secrets::KLARNA_USERNAME, &initial.klarna_username),
            (secrets::KLARNA_PASSWORD, &initial.klarna_password),
            (secrets::ADMIN_TOKEN, &initial.admin_token),
            (secrets::ODOO_PASSWORD, &initial.odoo_password),
            (secrets::ODOO_SHARED_SECRET, &initial.odoo_shared_secret),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty())
                && secrets.get(name).as_deref().map(String::as_str) != Some(value)
            {
                secrets.set(name, value).await?;
            }
        }
        let mut klarna_config = klarna_client::Config::new(&config.klarna_url, {
            let s = secrets.clone();
            klarna_client::Auth::Dynamic(Arc::new(move || {
                let user = s.get(secrets::KLARNA_USERNAME)?;
                let password = s.get(secrets::KLARNA_PASSWORD)?;
                Some((
                    user.to_string(),
                    klarna_client::Secret::new(password.as_str()),
                ))
            }))
        });
        klarna_config.timeout = config.klarna_timeout;
        klarna_config.retry = config.klarna_retry;
        klarna_config.odoo_version = config.odoo_version.clone();
        let klarna = KlarnaClient::new(klarna_config)?;
        let odoo = OdooClient::new(OdooConfig {
            url: config.odoo_url.clone(),
            db: config.odoo_db.clone(),
            login: config.odoo_login.clone(),
            password: {
                let s = secrets.clone();
                PasswordSource::new(move || s.get(secrets::ODOO_PASSWORD))
            },
        })?;
        signing_keys::add_missing(&secrets, &initial.webhook_signing_keys).await?;
        match (&initial.classic_callback_token, secrets.get(CLASSIC_TOKEN)) {
            (Some(token), _) if !token.is_empty() => secrets.set(CLASSIC_TOKEN, token).await?,
            (_, None) => {
                secrets
                    .set(CLASSIC_TOKEN, &uuid::Uuid::new_v4().simple().to_string())
                    .await?
            }
            _ => {}
        }
        // A data dir without its master keys gets a fresh key (`Vault::open`), which opens
        // none of the secrets already sealed. Those given again at start-up were sealed
        // anew above; any other is refused by name rather than left unreadable (a
        // database moved or restored without its master.keys).
        let unopened = secrets.unopened();
        if !unopened.is_empty() {
            return Err(GatewayError::Config(format!(
                "the master keys do not open the secrets in the database: {}. Put back the master.keys they were sealed with (in the data dir, or GATEWAY_MASTER_KEYS), or give those secrets again",
                unopened.join(", ")
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| GatewayError::Config(e.to_string()))?;
        let frontdoor = Arc::new(FrontDoor::new(
            config.frontdoor.clone(),
            config.allowed_origins.clone(),
        ));
        let signing_keys = signing_keys::KeyCache::new(config.signing_keys_cache);
        let ingest = Ingest::start(db.clone());
        Ok(Self {
            config,
            db,
            secrets,
            klarna,
            odoo,
            http,
            worker_wakeup: Notify::new(),
            frontdoor,
            ingest,
            signing_keys,
            locks: Mutex::new(HashMap::new()),
            crash_at: Mutex::new(None),
            last_reconcile: AtomicI64::new(0),
        })
    }

    /// How orders are mapped for Klarna here: the configured options plus where Klarna's
    /// classic callbacks go (fraud notifications and the authorization callback, on
    /// secret-token URLs) when the gateway knows its public address.
    pub fn mapping_options(&self) -> MappingOptions {
        let mut options = self.config.mapping_options();
        if let (Some(base), Some(token)) =
            (&self.config.public_url, self.secrets.get(CLASSIC_TOKEN))
        {
            let base = base.trim_end_matches('/');
            options.merchant_urls = Some(MerchantUrls {
                notification: Some(format!("{base}/klarna/notification/{}", token.as_str())),
                authorization: Some(format!("{base}/klarna/authorization/{}", token.as_str())),
                ..MerchantUrls::default()
            });
        }
        options
    }

    /// The per-payment lock: two operations on one payment never interleave in this
    /// process (the database's row lock does the same across PostgreSQL instances).
    pub async fn lock_payment(&self, id: i64) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            locks.entry(id).or_default().clone()
        };
        lock.lock_owned().await
    }

    pub fn wake_worker(&self) {
        self.worker_wakeup.notify_one();
    }

    /// Tests only: the next time the work reaches `step`, it stops as a crash would.
    pub fn crash_at(&self, step: &'static str) {
        *self
            .crash_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(step);
    }

    /// Tests only: disarms [`Self::crash_at`] when the work never reached its step.
    pub fn clear_crash(&self) {
        *self
            .crash_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    pub(crate) fn checkpoint(&self, step: &'static str) -> Result<(), GatewayError> {
        let mut at = self
            .crash_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *at == Some(step) {
            *at = None;
            return Err(GatewayError::Crashed(step));
        }
        Ok(())
    }

    pub(crate) fn set_last_reconcile(&self) {
        self.last_reconcile.store(now_ms(), Ordering::Relaxed);
    }

    pub fn last_reconcile(&self) -> Option<i64> {
        Some(self.last_reconcile.load(Ordering::Relaxed)).filter(|t| *t > 0)
    }
}
