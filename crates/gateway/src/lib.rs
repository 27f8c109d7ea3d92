//! `klarna-gateway`: the backend between the checkout widget, Odoo and Klarna.
//!
//! - [`http`] — the widget API, health, readiness; [`admin`] — the admin API
//! - [`webhook`] — Klarna's webhooks and classic callbacks; [`frontdoor`] — rate limits,
//!   allow-list, blocking, security alerts
//! - [`checkout`] — session for an Odoo order → order placed from an authorization
//! - [`manage`] — capture, refund, cancel, release, extend: durable and idempotent
//! - [`worker`] — the job queue's worker; [`reconcile`] — our records vs Klarna and Odoo
//! - [`odoo`] — reading orders from Odoo; [`odoo_sync`] — telling Odoo what happened
//! - [`db`] and [`store`] — SQLite or PostgreSQL, one module per table family
//! - [`vault`] and [`secrets`] — secrets sealed at rest
//! - [`config`] — settings from flags, the environment and a TOML file
//! - [`metrics`] — Prometheus; [`phone`] — E.164; [`error`] — the one error type

pub mod admin;
pub mod checkout;
pub mod config;
pub mod db;
pub mod error;
pub mod frontdoor;
pub mod http;
pub mod manage;
pub mod metrics;
pub mod odoo;
pub mod odoo_sync;
pub mod phone;
pub mod reconcile;
pub mod secrets;
pub mod store;
pub mod vault;
pub mod webhook;
pub mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use klarna_client::KlarnaClient;
use klarna_types::mapping::MappingOptions;
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedMutexGuard, watch};

pub use config::Config;
pub use db::Db;
pub use error::GatewayError;
use odoo::{OdooClient, OdooConfig, PasswordSource};
use secrets::Secrets;
use vault::Vault;

/// The mapping options the gateway uses (also for `klarna-gateway map`).
pub fn mapping_options(surcharge_codes: Vec<String>) -> MappingOptions {
    MappingOptions {
        locale: None,
        surcharge_codes,
        phone: Some(phone::e164),
    }
}

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
    pub frontdoor: frontdoor::FrontDoor,
    locks: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    crash_at: Mutex<Option<&'static str>>,
    last_reconcile: AtomicI64,
}

impl Gateway {
    /// Opens the database (migrating it), the vault and the secrets, and the clients.
    pub async fn new(config: Config, initial: InitialSecrets) -> Result<Self, GatewayError> {
        let vault = match &config.master_keys {
            Some(keys) => Vault::open(Some(keys), &config.data_dir)?,
            None => Vault::open(None, &config.data_dir)?,
        };
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
        let mut keys = webhook::load_keys_from(&secrets);
        let before = keys.len();
        for (id, secret) in &initial.webhook_signing_keys {
            if !keys.iter().any(|k| &k.id == id) {
                keys.push(webhook::SigningKey {
                    id: id.clone(),
                    secret: secret.clone(),
                    revoked: false,
                });
            }
        }
        if keys.len() != before {
            webhook::save_keys_to(&secrets, &keys).await?;
        }
        match (
            &initial.classic_callback_token,
            secrets.get(webhook::CLASSIC_TOKEN),
        ) {
            (Some(token), _) if !token.is_empty() => {
                secrets.set(webhook::CLASSIC_TOKEN, token).await?
            }
            (_, None) => {
                secrets
                    .set(
                        webhook::CLASSIC_TOKEN,
                        &uuid::Uuid::new_v4().simple().to_string(),
                    )
                    .await?
            }
            _ => {}
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| GatewayError::Config(e.to_string()))?;
        let frontdoor = frontdoor::FrontDoor::new(config.frontdoor.clone());
        Ok(Self {
            config,
            db,
            secrets,
            klarna,
            odoo,
            http,
            worker_wakeup: Notify::new(),
            frontdoor,
            locks: Mutex::new(HashMap::new()),
            crash_at: Mutex::new(None),
            last_reconcile: AtomicI64::new(0),
        })
    }

    /// The body Klarna gets: the mapped order plus where Klarna's classic callbacks go
    /// (fraud notifications and the authorization callback, on secret-token URLs), when
    /// the gateway knows its public address. The stored session keeps the body without.
    pub fn with_urls(
        &self,
        body: &klarna_types::klarna::OrderBody,
    ) -> klarna_types::klarna::OrderBody {
        let mut body = body.clone();
        if let (Some(base), Some(token)) = (
            &self.config.public_url,
            self.secrets.get(webhook::CLASSIC_TOKEN),
        ) {
            let base = base.trim_end_matches('/');
            body.merchant_urls = Some(klarna_types::klarna::MerchantUrls {
                notification: Some(format!("{base}/klarna/notification/{}", token.as_str())),
                authorization: Some(format!("{base}/klarna/authorization/{}", token.as_str())),
                ..body.merchant_urls.unwrap_or_default()
            });
        }
        body
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
        self.last_reconcile.store(db::now_ms(), Ordering::Relaxed);
    }

    pub fn last_reconcile(&self) -> Option<i64> {
        Some(self.last_reconcile.load(Ordering::Relaxed)).filter(|t| *t > 0)
    }
}

/// A running gateway: its HTTP server and its worker, stopped together.
pub struct Running {
    pub addr: SocketAddr,
    pub gateway: Arc<Gateway>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops taking requests and jobs, and waits for the work in hand.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Serves the widget and admin API on `listener`, runs the worker, and resumes work left
/// pending, until `stop` is sent.
pub async fn start(listener: TcpListener, gateway: Arc<Gateway>) -> Result<Running, GatewayError> {
    let addr = listener
        .local_addr()
        .map_err(|e| GatewayError::Config(e.to_string()))?;
    let (stop, stopped) = watch::channel(false);
    manage::recover(&gateway).await?;
    let mut tasks = Vec::new();
    let server = {
        let gateway = gateway.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(
                listener,
                http::router(gateway).into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
            {
                tracing::error!("gateway server: {e}");
            }
        })
    };
    tasks.push(server);
    tasks.push(tokio::spawn(refresh_secrets(
        gateway.clone(),
        stopped.clone(),
    )));
    if gateway.config.run_worker {
        tasks.push(tokio::spawn(worker::run(gateway.clone(), stopped)));
    }
    Ok(Running {
        addr,
        gateway,
        stop,
        tasks,
    })
}

/// Re-reads the sealed secrets every few seconds, so a key revoked by the CLI or another
/// instance is refused here too.
async fn refresh_secrets(gateway: Arc<Gateway>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(gateway.config.secrets_refresh) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = gateway.secrets.reload().await {
            tracing::warn!("secrets could not be re-read: {e}");
        }
    }
}

/// Starts a gateway on an ephemeral loopback port in the background (for tests).
pub async fn spawn(config: Config, initial: InitialSecrets) -> Result<Running, GatewayError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| GatewayError::Config(format!("cannot bind: {e}")))?;
    let gateway = Arc::new(Gateway::new(config, initial).await?);
    start(listener, gateway).await
}
