//! The gateway's runtime configuration: what the operator's settings (flags, environment,
//! TOML file — one type, `Settings`, in the binary; `klarna-gateway --help` explains each)
//! become once checked and completed with defaults. Secrets are not here: they are sealed
//! in the database.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use klarna_client::RetryPolicy;
use klarna_types::mapping::MappingOptions;
use serde::{Deserialize, Serialize};

/// The local sandbox: the defaults when nothing else is configured.
pub const SANDBOX_URL: &str = "http://127.0.0.1:7070";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Prometheus `/metrics` on its own port (`None`: off).
    pub metrics_listen: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// `GATEWAY_MASTER_KEYS` (`id:created_unix:base64,…`); else `<data_dir>/master.keys`.
    pub master_keys: Option<String>,
    pub klarna_url: String,
    pub klarna_timeout: Duration,
    pub klarna_retry: RetryPolicy,
    pub odoo_url: String,
    pub odoo_db: String,
    pub odoo_login: String,
    pub odoo_version: Option<String>,
    /// The addon's route for payment updates (see docs/odoo-contract.md).
    pub odoo_notify_url: String,
    /// Storefront origins whose pages may call the widget API (CORS).
    pub allowed_origins: Vec<String>,
    /// Default codes of Odoo products that are fees (sent to Klarna as `surcharge`).
    pub surcharge_codes: Vec<String>,
    /// Reuse a session for an unchanged cart (turned off only by benchmarks).
    pub session_reuse: bool,
    pub reconcile_interval: Duration,
    pub pii_retention: Duration,
    pub worker_poll: Duration,
    /// Multiplies the job queue's backoff (tests make it small).
    pub retry_scale: f64,
    pub run_worker: bool,
    pub log_format: LogFormat,
    /// How long a claimed job is one worker's before another may take it over.
    pub job_lease: Duration,
    /// The gateway's address as Klarna reaches it, for the classic notification URL.
    pub public_url: Option<String>,
    /// Webhooks older than this are refused (Klarna retries for about 21 hours).
    pub webhook_horizon: Duration,
    /// How long the webhook signing keys stay open in memory (zero: opened per webhook).
    pub signing_keys_cache: Duration,
    pub frontdoor: crate::frontdoor::FrontDoorConfig,
    /// Timeouts and the connection cap of the public listener (widget, webhooks, admin).
    pub listener: crate::listener::ListenerLimits,
    /// The same for the metrics listener, which serves one scraper.
    pub metrics_listener: crate::listener::ListenerLimits,
    /// Requests in flight at once on each of the widget, webhook and admin routes; one
    /// more is answered 503 `overloaded` at once rather than queued.
    pub max_in_flight: usize,
    /// How often the sealed secrets are re-read (changes by the CLI or other instances).
    pub secrets_refresh: Duration,
    /// An order still being placed after this long was lost by a crashed authorize; a
    /// webhook about its Klarna order then completes it.
    pub placing_grace: Duration,
}

impl Config {
    /// A gateway on `data_dir` talking to the sandbox at `sandbox_url` (tests, demo).
    pub fn sandbox(database_url: &str, data_dir: &Path, sandbox_url: &str) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7080)),
            metrics_listen: None,
            data_dir: data_dir.to_path_buf(),
            database_url: database_url.to_owned(),
            master_keys: None,
            klarna_url: sandbox_url.to_owned(),
            klarna_timeout: Duration::from_secs(10),
            klarna_retry: RetryPolicy::default(),
            odoo_url: sandbox_url.to_owned(),
            odoo_db: "odoo".into(),
            odoo_login: "admin".into(),
            odoo_version: Some("18.0".into()),
            odoo_notify_url: format!("{sandbox_url}/payment/klarna/gateway"),
            allowed_origins: vec![sandbox_url.to_owned()],
            surcharge_codes: Vec::new(),
            session_reuse: true,
            reconcile_interval: Duration::from_secs(15 * 60),
            pii_retention: Duration::from_secs(180 * 86_400),
            worker_poll: Duration::from_millis(500),
            retry_scale: 1.0,
            run_worker: true,
            log_format: LogFormat::Text,
            job_lease: Duration::from_secs(120),
            public_url: None,
            webhook_horizon: crate::webhook_verify::DEFAULT_HORIZON,
            signing_keys_cache: crate::signing_keys::DEFAULT_CACHE,
            frontdoor: crate::frontdoor::FrontDoorConfig::default(),
            listener: crate::listener::ListenerLimits::default(),
            metrics_listener: crate::listener::ListenerLimits::METRICS,
            max_in_flight: 128,
            secrets_refresh: Duration::from_secs(10),
            placing_grace: Duration::from_secs(120),
        }
    }

    /// How Odoo orders become Klarna bodies in this installation.
    pub fn mapping_options(&self) -> MappingOptions {
        crate::mapping::mapping_options(self.surcharge_codes.clone())
    }
}
