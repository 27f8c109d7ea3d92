//! `klarna-gateway`: the backend between the checkout widget, Odoo and Klarna.
//!
//! - [`http`] — the routes, their limits and CORS
//! - [`checkout`] — session for an Odoo order → order placed from an authorization
//! - [`odoo`] — the Odoo JSON-RPC connector (the only source of amounts)
//! - [`phone`] — phone numbers to E.164 for Klarna
//! - [`store`] — SQLite storage and its migrations
//! - [`error`] — the one error type and its mapping to HTTP

pub mod checkout;
pub mod error;
pub mod http;
pub mod odoo;
pub mod phone;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use klarna_client::KlarnaClient;
use klarna_types::mapping::MappingOptions;
use tokio::net::TcpListener;

pub use error::GatewayError;
use odoo::{OdooClient, OdooConfig};
use store::Store;

#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://path/to/gateway.db`
    pub database_url: String,
    pub klarna: klarna_client::Config,
    pub odoo: OdooConfig,
    /// Storefront origins whose pages may call the widget API (CORS).
    pub allowed_origins: Vec<String>,
    /// Default codes of Odoo products that are fees (sent to Klarna as `surcharge`).
    pub surcharge_codes: Vec<String>,
}

impl Config {
    /// How Odoo orders become Klarna bodies in this installation.
    pub fn mapping_options(&self) -> MappingOptions {
        mapping_options(self.surcharge_codes.clone())
    }
}

/// The mapping options the gateway uses (also for `klarna-gateway map`).
pub fn mapping_options(surcharge_codes: Vec<String>) -> MappingOptions {
    MappingOptions {
        locale: None,
        surcharge_codes,
        phone: Some(phone::e164),
    }
}

pub struct Gateway {
    pub config: Config,
    pub store: Store,
    pub klarna: Arc<KlarnaClient>,
    pub odoo: OdooClient,
}

impl Gateway {
    pub async fn new(config: Config) -> Result<Self, GatewayError> {
        let store = Store::connect(&config.database_url).await?;
        let klarna = KlarnaClient::new(config.klarna.clone())?;
        let odoo = OdooClient::new(config.odoo.clone())?;
        Ok(Self {
            config,
            store,
            klarna,
            odoo,
        })
    }
}

/// Serves the gateway on a bound listener until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, http::router(gateway))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Starts a gateway on an ephemeral loopback port in the background (for tests).
pub async fn spawn(config: Config) -> Result<(SocketAddr, Arc<Gateway>), GatewayError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| GatewayError::Config(format!("cannot bind: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| GatewayError::Config(e.to_string()))?;
    let gateway = Arc::new(Gateway::new(config).await?);
    let served = gateway.clone();
    tokio::spawn(async move {
        if let Err(e) = serve(listener, served, std::future::pending()).await {
            tracing::error!("gateway stopped: {e}");
        }
    });
    Ok((addr, gateway))
}
