//! `klarna-sandbox`: a stateful stand-in for Klarna's Payments API and JS SDK, and for the
//! small part of Odoo's JSON-RPC and storefront that the gateway and widget touch.
//!
//! Tests, benchmarks and the demo run against it, so nobody needs a Klarna account. It
//! answers in Klarna's error format with Klarna's status codes; where it must guess how
//! Klarna behaves, `docs/klarna-sandbox.md` says what it chose.
//!
//! - [`payments`] — `/payments/v1/...` (sessions, authorizations → orders)
//! - [`sdk`] — `/kp/lib/v1/api.js` and the iframes it renders
//! - [`odoo`] — `/jsonrpc` over a small database of Odoo 18 sale orders
//! - [`storefront`] — an Odoo-like checkout page that embeds the widget bundle
//! - [`state`] — the sandbox's memory

pub mod odoo;
pub mod payments;
pub mod sdk;
pub mod state;
pub mod storefront;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

pub use state::Sandbox;

/// How a sandbox is set up.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Klarna API credentials the sandbox accepts (HTTP Basic).
    pub username: String,
    pub password: String,
    /// Odoo database name, login and password (or API key) its JSON-RPC accepts.
    pub odoo_db: String,
    pub odoo_login: String,
    pub odoo_password: String,
    /// The built widget bundle (Trunk's dist directory) the storefront serves, if any.
    pub storefront_dir: Option<PathBuf>,
    /// The gateway URL the storefront page hands to the widget.
    pub gateway_url: Option<String>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            username: "sandbox-merchant".into(),
            password: "sandbox-password".into(),
            odoo_db: "odoo".into(),
            odoo_login: "admin".into(),
            odoo_password: "admin".into(),
            storefront_dir: None,
            gateway_url: None,
        }
    }
}

/// All of the sandbox's routes.
pub fn router(sandbox: Arc<Sandbox>) -> Router {
    Router::new()
        .merge(payments::routes())
        .merge(sdk::routes())
        .merge(odoo::routes())
        .merge(storefront::routes(&sandbox.config))
        .with_state(sandbox)
}

/// A sandbox serving on a bound listener until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    sandbox: Arc<Sandbox>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(sandbox))
        .with_graceful_shutdown(shutdown)
        .await
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
