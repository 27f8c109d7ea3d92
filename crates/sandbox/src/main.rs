//! `klarna-sandbox`: run the Klarna + Odoo stand-in on a loopback port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use klarna_sandbox::{Sandbox, SandboxConfig, serve};
use tokio::net::TcpListener;

/// A stateful stand-in for Klarna's Payments API and JS SDK, and for Odoo's JSON-RPC
/// and storefront, for tests and demos. No real payment is ever made.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7070", env = "SANDBOX_LISTEN")]
    listen: SocketAddr,
    /// Klarna API username the sandbox accepts (HTTP Basic).
    #[arg(long, default_value = "sandbox-merchant", env = "SANDBOX_USERNAME")]
    username: String,
    /// Klarna API password the sandbox accepts.
    #[arg(
        long,
        default_value = "sandbox-password",
        env = "SANDBOX_PASSWORD",
        hide_env_values = true
    )]
    password: String,
    /// Odoo database name for `/jsonrpc`.
    #[arg(long, default_value = "odoo")]
    odoo_db: String,
    /// Odoo login for `/jsonrpc`.
    #[arg(long, default_value = "admin")]
    odoo_login: String,
    /// Odoo password (or API key) for `/jsonrpc`.
    #[arg(
        long,
        default_value = "admin",
        env = "SANDBOX_ODOO_PASSWORD",
        hide_env_values = true
    )]
    odoo_password: String,
    /// Trunk's dist directory: serve the storefront with the widget bundle from here.
    #[arg(long)]
    storefront_dir: Option<PathBuf>,
    /// The gateway URL the storefront hands to the widget.
    #[arg(long)]
    gateway_url: Option<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let listener = TcpListener::bind(cli.listen).await?;
    let addr = listener.local_addr()?;
    let config = SandboxConfig {
        username: cli.username,
        password: cli.password,
        odoo_db: cli.odoo_db,
        odoo_login: cli.odoo_login,
        odoo_password: cli.odoo_password,
        storefront_dir: cli.storefront_dir,
        gateway_url: cli.gateway_url,
    };
    tracing::info!(
        "klarna-sandbox on http://{addr} (Klarna user {:?}, Odoo db {:?} login {:?})",
        config.username,
        config.odoo_db,
        config.odoo_login
    );
    let sandbox = Arc::new(Sandbox::new(config, format!("http://{addr}")));
    serve(listener, sandbox, shutdown_signal()).await?;
    tracing::info!("klarna-sandbox stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
