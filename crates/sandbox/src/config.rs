//! How a sandbox is set up: credentials it accepts, the Odoo database's login, where
//! webhooks go, rate limits and faults from the start. The command line in `main.rs`
//! and the tests build one of these.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::delivery::SigningKey;
use crate::faults::{FaultSpec, RateLimits};

/// Klarna's regions, each with its own API host and its own merchant credentials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Region {
    /// Europe: `api.playground.klarna.com`, the sandbox's `/`.
    #[default]
    Eu,
    /// North America: `api-na.playground.klarna.com`, the sandbox's `/na`.
    Na,
    /// Oceania: `api-oc.playground.klarna.com`, the sandbox's `/oc`.
    Oc,
}

/// How a sandbox is set up.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Klarna API credentials the sandbox accepts (HTTP Basic).
    pub username: String,
    pub password: String,
    /// Klarna's newer API key, accepted as `Authorization: Basic <key>`.
    pub api_key: String,
    /// The region the merchant account belongs to: Klarna's credentials are valid at one
    /// regional host only (EU at `/`, NA at `/na`, OC at `/oc` here).
    pub region: Region,
    /// Sandbox-only OAuth2 client credentials for `/oauth2/token`.
    pub oauth_client_id: String,
    pub oauth_client_secret: String,
    pub oauth_token_ttl: Duration,
    /// Sandbox-only: failed logins within ten minutes that lock the merchant (0: never).
    pub lockout_after: u32,
    /// Odoo database name, login and password (or API key) its JSON-RPC accepts.
    pub odoo_db: String,
    pub odoo_login: String,
    pub odoo_password: String,
    /// The secret the payment_klarna addon shares with the gateway (signs updates).
    pub odoo_shared_secret: String,
    /// Whether the Odoo user the gateway logs in as is in Invoicing/Billing, which reading
    /// `payment.transaction` takes (real Odoo answers `AccessError` otherwise).
    pub odoo_billing_group: bool,
    /// The built widget bundle (Trunk's dist directory) the storefront serves, if any.
    pub storefront_dir: Option<PathBuf>,
    /// The gateway URL the storefront hands to the widget.
    pub gateway_url: Option<String>,
    /// Where signed webhooks go, and the keys that sign them (the first is active).
    pub webhook_url: Option<String>,
    pub signing_keys: Vec<SigningKey>,
    /// Klarna's webhook retry schedule (10 s … 12 h) is multiplied by this.
    pub webhook_time_scale: f64,
    /// Classic notification URL for orders whose session named none.
    pub notification_url: Option<String>,
    pub rate_limits: RateLimits,
    /// Faults per endpoint from the start (`*` for all).
    pub faults: HashMap<String, FaultSpec>,
    /// Seed of the fault dice, for reproducible runs.
    pub seed: u64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            username: "sandbox-merchant".into(),
            password: "sandbox-password".into(),
            api_key: "klarna_test_api_sandbox".into(),
            region: Region::Eu,
            oauth_client_id: "sandbox-client".into(),
            oauth_client_secret: "sandbox-client-secret".into(),
            oauth_token_ttl: Duration::from_secs(3600),
            lockout_after: 5,
            odoo_db: "odoo".into(),
            odoo_login: "admin".into(),
            odoo_password: "admin".into(),
            odoo_shared_secret: "sandbox-odoo-secret".into(),
            odoo_billing_group: true,
            storefront_dir: None,
            gateway_url: None,
            webhook_url: None,
            signing_keys: Vec::new(),
            webhook_time_scale: 0.001,
            notification_url: None,
            rate_limits: RateLimits::Off,
            faults: HashMap::new(),
            seed: 1,
        }
    }
}
