//! Start-up: the sandbox's routes put together behind the fault layer, served on a
//! listener with Klarna's clock ticking beside them. The only module that knows every
//! endpoint module.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use crate::config::{Region, SandboxConfig};
use crate::state::Sandbox;
use crate::{
    control, faults, oauth, odoo, odoo_backoffice, ordermanagement, payments, sdk, storefront,
    tokens,
};

/// All of the sandbox's routes, with the fault layer in front of Klarna's.
pub fn router(sandbox: Arc<Sandbox>) -> Router {
    Router::new()
        .merge(klarna_api(Region::Eu))
        .nest("/na", klarna_api(Region::Na))
        .nest("/oc", klarna_api(Region::Oc))
        .merge(sdk::routes())
        .merge(control::routes())
        .merge(tokens::control_routes())
        .merge(odoo::routes())
        .merge(odoo_backoffice::routes())
        .merge(storefront::routes(&sandbox.config))
        .layer(axum::middleware::from_fn_with_state(
            sandbox.faults.clone(),
            faults::layer,
        ))
        .with_state(sandbox)
}

/// Klarna's REST APIs as one region's host serves them.
fn klarna_api(region: Region) -> Router<Arc<Sandbox>> {
    Router::new()
        .merge(payments::routes())
        .merge(ordermanagement::routes())
        .merge(tokens::routes())
        .merge(oauth::routes())
        .layer(axum::Extension(region))
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
