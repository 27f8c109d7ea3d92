//! Start-up and shut-down: the HTTP server and the job worker of one gateway, run
//! together and stopped together; work left pending by a crash is resumed first.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::error::GatewayError;
use crate::state::{Gateway, InitialSecrets};
use crate::{http, listener, manage, worker};

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
            let limits = gateway.config.listener;
            listener::serve(listener, http::router(gateway), limits, shutdown).await;
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
