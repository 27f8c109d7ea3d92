//! `klarna-gateway`: serve the gateway, or dry-run the Odoo → Klarna mapping.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use klarna_gateway::odoo::OdooConfig;
use klarna_gateway::{Config, Gateway, mapping_options, serve};
use klarna_types::mapping::map_order;
use klarna_types::odoo::OrderDocument;
use tokio::net::TcpListener;

/// The backend between Odoo, the Klarna checkout widget and Klarna.
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
    /// Serve the widget API (the default).
    Serve,
    /// Print the Klarna session body an Odoo order (JSON, the documented input shape)
    /// would become, or every validation error; exits non-zero on errors.
    Map {
        /// The order document; `-` reads standard input.
        order: PathBuf,
    },
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7080", env = "GATEWAY_LISTEN")]
    listen: SocketAddr,
    /// Directory for the SQLite database (created on first start).
    #[arg(long, default_value = "data", env = "GATEWAY_DATA_DIR")]
    data_dir: PathBuf,
    /// Database URL; defaults to `sqlite://<data-dir>/gateway.db`.
    #[arg(long, env = "GATEWAY_DATABASE_URL")]
    database_url: Option<String>,
    /// Klarna API base URL (a regional host, the playground, or the sandbox).
    #[arg(
        long,
        default_value = "https://api.playground.klarna.com",
        env = "KLARNA_API_URL"
    )]
    klarna_url: String,
    /// Klarna API username.
    #[arg(long, env = "KLARNA_USERNAME", default_value = "")]
    klarna_username: String,
    /// Klarna API password (prefer the environment variable).
    #[arg(
        long,
        env = "KLARNA_PASSWORD",
        default_value = "",
        hide_env_values = true,
        hide_default_value = true
    )]
    klarna_password: String,
    /// Odoo base URL.
    #[arg(long, default_value = "http://127.0.0.1:8069", env = "ODOO_URL")]
    odoo_url: String,
    /// Odoo database name.
    #[arg(long, default_value = "odoo", env = "ODOO_DB")]
    odoo_db: String,
    /// Odoo login of the user the gateway reads orders as.
    #[arg(long, default_value = "admin", env = "ODOO_LOGIN")]
    odoo_login: String,
    /// Odoo password or API key (prefer the environment variable).
    #[arg(
        long,
        env = "ODOO_PASSWORD",
        default_value = "",
        hide_env_values = true,
        hide_default_value = true
    )]
    odoo_password: String,
    /// A storefront origin allowed to call the widget API; repeat for several.
    #[arg(
        long = "allowed-origin",
        env = "GATEWAY_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,
    #[command(flatten)]
    mapping: MappingArgs,
}

#[derive(Args, Debug)]
struct MappingArgs {
    /// Default code of an Odoo product that is a fee (sent to Klarna as `surcharge`);
    /// repeat for several.
    #[arg(
        long = "surcharge-product-code",
        env = "GATEWAY_SURCHARGE_CODES",
        value_delimiter = ','
    )]
    surcharge_codes: Vec<String>,
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
    match cli.command {
        Some(Command::Map { order }) => map(&order, cli.serve.mapping.surcharge_codes),
        Some(Command::Serve) | None => match run(cli.serve).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("klarna-gateway: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn run(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let database_url = match args.database_url {
        Some(url) => url,
        None => {
            std::fs::create_dir_all(&args.data_dir)?;
            format!("sqlite://{}", args.data_dir.join("gateway.db").display())
        }
    };
    let mut klarna = klarna_client::Config::basic(
        args.klarna_url,
        &args.klarna_username,
        &args.klarna_password,
    );
    klarna.timeout = Duration::from_secs(10);
    let config = Config {
        database_url,
        klarna,
        odoo: OdooConfig {
            url: args.odoo_url,
            db: args.odoo_db,
            login: args.odoo_login,
            password: args.odoo_password,
        },
        allowed_origins: args.allowed_origins,
        surcharge_codes: args.mapping.surcharge_codes,
    };
    let listener = TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let gateway = Arc::new(Gateway::new(config).await?);
    tracing::info!("klarna-gateway on http://{addr}");
    serve(listener, gateway, shutdown_signal()).await?;
    tracing::info!("klarna-gateway stopped");
    Ok(())
}

fn map(path: &PathBuf, surcharge_codes: Vec<String>) -> ExitCode {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let doc: OrderDocument = match serde_json::from_str(&text) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{}: not an order document: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    match map_order(&doc, &mapping_options(surcharge_codes)) {
        Ok(body) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&body).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            for v in e.violations() {
                eprintln!("{v}");
            }
            ExitCode::FAILURE
        }
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
