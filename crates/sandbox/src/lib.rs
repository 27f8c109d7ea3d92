//! `klarna-sandbox`: a stateful stand-in for Klarna's Payments and Order Management APIs,
//! its JS SDK and its webhooks, and for the small part of Odoo's JSON-RPC and storefront
//! that the gateway and widget touch.
//!
//! Tests, benchmarks and the demo run against it, so nobody needs a Klarna account. It
//! answers in Klarna's error format with Klarna's status codes; where it must guess how
//! Klarna behaves, `docs/klarna-sandbox.md` says what it chose.
//!
//! - [`payments`] — `/payments/v1/...`: sessions, orders from authorizations, tokens
//! - [`ordermanagement`] — `/ordermanagement/v1/...`: captures, refunds, cancel, ...
//! - [`sdk`] — `/kp/lib/v1/api.js` and the iframes it renders
//! - [`webhooks`] — signed webhooks and classic callbacks, sent to the merchant
//! - [`faults`] — latency, errors, timeouts, dropped connections, rate limits
//! - [`control`] — `/_sandbox/...`: the clock, faults, `trigger`, what happened
//! - [`oauth`] — a sandbox-only OAuth2 token endpoint
//! - [`odoo`] — `/jsonrpc` over a small database of Odoo 18 sale orders
//! - [`storefront`] — an Odoo-like checkout page that embeds the widget bundle
//! - [`api`], [`state`], [`clock`] — what the endpoints share

pub mod api;
pub mod clock;
pub mod control;
pub mod faults;
pub mod oauth;
pub mod odoo;
pub mod ordermanagement;
pub mod payments;
pub mod sdk;
pub mod state;
pub mod storefront;
pub mod webhooks;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

pub use faults::{FaultSpec, RateLimits};
pub use state::Sandbox;
pub use webhooks::SigningKey;

/// How a sandbox is set up.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Klarna API credentials the sandbox accepts (HTTP Basic).
    pub username: String,
    pub password: String,
    /// Klarna's newer API key, accepted as `Authorization: Basic <key>`.
    pub api_key: String,
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
            oauth_client_id: "sandbox-client".into(),
            oauth_client_secret: "sandbox-client-secret".into(),
            oauth_token_ttl: Duration::from_secs(3600),
            lockout_after: 5,
            odoo_db: "odoo".into(),
            odoo_login: "admin".into(),
            odoo_password: "admin".into(),
            odoo_shared_secret: "sandbox-odoo-secret".into(),
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

/// All of the sandbox's routes, with the fault layer in front of Klarna's.
pub fn router(sandbox: Arc<Sandbox>) -> Router {
    Router::new()
        .merge(payments::routes())
        .merge(ordermanagement::routes())
        .merge(oauth::routes())
        .merge(sdk::routes())
        .merge(control::routes())
        .merge(odoo::routes())
        .merge(storefront::routes(&sandbox.config))
        .layer(axum::middleware::from_fn_with_state(
            sandbox.clone(),
            faults::layer,
        ))
        .with_state(sandbox)
}

/// Serves a sandbox on a bound listener until `shutdown` resolves, with Klarna's clock
/// (fraud decisions, expiries) running beside it.
pub async fn serve(
    listener: TcpListener,
    sandbox: Arc<Sandbox>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ticker = {
        let sandbox = sandbox.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(ordermanagement::TICK);
            loop {
                every.tick().await;
                ordermanagement::tick(&sandbox);
            }
        })
    };
    let served = axum::serve(listener, router(sandbox))
        .with_graceful_shutdown(shutdown)
        .await;
    ticker.abort();
    served
}

/// Starts a sandbox on an ephemeral loopback port in the background (for tests).
pub async fn spawn(config: SandboxConfig) -> std::io::Result<(SocketAddr, Arc<Sandbox>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let sandbox = Arc::new(Sandbox::new(config, format!("http://{addr}")));
    let served = sandbox.clone();
    tokio::spawn(async move {
        if let Err(e) = serve(listener, served, std::future::pending()).await {
            tracing::error!("sandbox stopped: {e}");
        }
    });
    Ok((addr, sandbox))
}
