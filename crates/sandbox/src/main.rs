//! `klarna-sandbox`: run the Klarna + Odoo stand-in, or `trigger` a webhook on a running one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use klarna_sandbox::{FaultSpec, RateLimits, Region, Sandbox, SandboxConfig, SigningKey, serve};
use tokio::net::TcpListener;

/// A stateful stand-in for Klarna's Payments and Order Management APIs, its JS SDK and
/// its webhooks, and for Odoo's JSON-RPC and storefront — for tests and demos. No real
/// payment is ever made. See docs/klarna-sandbox.md.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send one webhook or notification for an order of a running sandbox, like
    /// `stripe trigger`: e.g. `trigger authorized --order <id>`,
    /// `trigger payment.request.state-change.completed --order <id>`,
    /// `trigger FRAUD_RISK_ACCEPTED --order <id>` (classic callback).
    Trigger {
        /// `authorized`, `completed`, `canceled`, `expired`, `declined`, a full
        /// `payment.request.state-change.*` type, or FRAUD_RISK_ACCEPTED/REJECTED/STOPPED.
        event: String,
        /// The Klarna order id.
        #[arg(long)]
        order: String,
        /// The running sandbox.
        #[arg(long, default_value = "http://127.0.0.1:7070", env = "SANDBOX_URL")]
        sandbox_url: String,
    },
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7070", env = "SANDBOX_LISTEN")]
    listen: SocketAddr,
    /// Klarna API username the sandbox accepts (HTTP Basic).
    #[arg(long, default_value = "sandbox-merchant", env = "SANDBOX_USERNAME")]
    username: String,
    /// Klarna API password the sandbox accepts.
    #[arg(long, default_value = "sandbox-password", env = "SANDBOX_PASSWORD")]
    password: String,
    /// Klarna API key the sandbox accepts (`Authorization: Basic <key>`).
    #[arg(
        long,
        default_value = "klarna_test_api_sandbox",
        env = "SANDBOX_API_KEY"
    )]
    api_key: String,
    /// The region of the merchant account: its credentials work at that region's host only
    /// (EU at /, NA at /na, OC at /oc), as at Klarna.
    #[arg(long, value_enum, default_value = "eu", env = "SANDBOX_KLARNA_REGION")]
    klarna_region: Region,
    /// Sandbox-only OAuth2 client id for /oauth2/token.
    #[arg(long, default_value = "sandbox-client")]
    oauth_client_id: String,
    /// Sandbox-only OAuth2 client secret for /oauth2/token.
    #[arg(long, default_value = "sandbox-client-secret")]
    oauth_client_secret: String,
    /// Lifetime of a sandbox OAuth2 token, in seconds.
    #[arg(long, default_value_t = 3600)]
    oauth_token_ttl: u64,
    /// Sandbox-only: failed logins within ten minutes that lock the merchant for 15
    /// minutes (0: never).
    #[arg(long, default_value_t = 5)]
    lockout_after: u32,
    /// Odoo database name for /jsonrpc.
    #[arg(long, default_value = "odoo")]
    odoo_db: String,
    /// Odoo login for /jsonrpc.
    #[arg(long, default_value = "admin")]
    odoo_login: String,
    /// Odoo password (or API key) for /jsonrpc.
    #[arg(long, default_value = "admin", env = "SANDBOX_ODOO_PASSWORD")]
    odoo_password: String,
    /// The secret the payment addon shares with the gateway (signs payment updates).
    #[arg(
        long,
        default_value = "sandbox-odoo-secret",
        env = "SANDBOX_ODOO_SHARED_SECRET"
    )]
    odoo_shared_secret: String,
    /// The Odoo user the gateway logs in as is not in Invoicing/Billing: reading
    /// `payment.transaction` answers `AccessError`, as in a real Odoo.
    #[arg(long)]
    odoo_without_billing: bool,
    /// Trunk's dist directory: serve the storefront with the widget bundle from here.
    #[arg(long)]
    storefront_dir: Option<PathBuf>,
    /// The gateway URL the storefront hands to the widget.
    #[arg(long)]
    gateway_url: Option<String>,
    /// Send signed webhooks (payment.request.state-change.*) here.
    #[arg(long, env = "SANDBOX_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// A webhook signing key as ID=SECRET; repeat for several (the first is active).
    #[arg(long = "signing-key", value_parser = |s: &str| s.parse::<SigningKey>())]
    signing_keys: Vec<SigningKey>,
    /// Multiplies Klarna's webhook retry schedule (10 s … 12 h); 0.001 makes it 10 ms … 43 s.
    #[arg(long, default_value_t = 0.001)]
    webhook_time_scale: f64,
    /// Classic notification URL for orders whose session named none.
    #[arg(long)]
    notification_url: Option<String>,
    /// Klarna's rate limits: off, playground (5/s sessions, 50/s others) or production.
    #[arg(long, value_enum, default_value = "off")]
    rate_limits: RateLimits,
    /// Faults for an endpoint, as OP:SETTINGS, e.g.
    /// `create_session:latency_ms=100`, `capture:next=lose_response`,
    /// `*:error_rate=0.05`; repeat for several. Settings: latency_ms, error_rate,
    /// error_status, rate_limited_rate, reset_seconds, timeout_rate, drop_rate,
    /// lose_response_rate, next (faults joined by +: ok, timeout, drop, lose_response,
    /// 429, 429:SECONDS, 5xx).
    #[arg(long = "fault", value_parser = parse_fault)]
    faults: Vec<(String, FaultSpec)>,
    /// Seed of the fault dice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn parse_fault(s: &str) -> Result<(String, FaultSpec), String> {
    let (op, spec) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not OP:SETTINGS"))?;
    Ok((op.to_owned(), FaultSpec::parse(spec)?))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Trigger {
            event,
            order,
            sandbox_url,
        }) => trigger(&sandbox_url, &event, &order).await,
        None => run(cli.serve).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("klarna-sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: ServeArgs) -> Result<(), String> {
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let config = SandboxConfig {
        username: args.username,
        password: args.password,
        api_key: args.api_key,
        region: args.klarna_region,
        oauth_client_id: args.oauth_client_id,
        oauth_client_secret: args.oauth_client_secret,
        oauth_token_ttl: Duration::from_secs(args.oauth_token_ttl),
        lockout_after: args.lockout_after,
        odoo_db: args.odoo_db,
        odoo_login: args.odoo_login,
        odoo_password: args.odoo_password,
        odoo_shared_secret: args.odoo_shared_secret,
        odoo_billing_group: !args.odoo_without_billing,
        storefront_dir: args.storefront_dir,
        gateway_url: args.gateway_url,
        webhook_url: args.webhook_url,
        signing_keys: args.signing_keys,
        webhook_time_scale: args.webhook_time_scale,
        notification_url: args.notification_url,
        rate_limits: args.rate_limits,
        faults: args.faults.into_iter().collect::<HashMap<_, _>>(),
        seed: args.seed,
    };
    eprintln!(
        "klarna-sandbox on http://{addr}\n  Klarna API (Basic): {} / {}   API key: {}\n  OAuth2 (sandbox-only): POST /oauth2/token client {} / {}\n  Odoo /jsonrpc: db {} login {} password {}\n  rate limits: {:?}; faults: {}; webhooks: {}",
        config.username,
        config.password,
        config.api_key,
        config.oauth_client_id,
        config.oauth_client_secret,
        config.odoo_db,
        config.odoo_login,
        config.odoo_password,
        config.rate_limits,
        if config.faults.is_empty() {
            "none".to_owned()
        } else {
            config.faults.keys().cloned().collect::<Vec<_>>().join(", ")
        },
        config.webhook_url.as_deref().unwrap_or("off"),
    );
    let sandbox = Arc::new(Sandbox::new(config, format!("http://{addr}")));
    serve(listener, sandbox, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("klarna-sandbox stopped");
    Ok(())
}

async fn trigger(sandbox_url: &str, event: &str, order: &str) -> Result<(), String> {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/_sandbox/trigger",
            sandbox_url.trim_end_matches('/')
        ))
        .json(&serde_json::json!({"event": event, "order_id": order}))
        .send()
        .await
        .map_err(|e| format!("cannot reach the sandbox at {sandbox_url}: {e}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.is_success() {
        println!("{body}");
        Ok(())
    } else {
        Err(format!("the sandbox refused ({status}): {body}"))
    }
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
