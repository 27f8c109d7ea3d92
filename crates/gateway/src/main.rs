//! `klarna-gateway`: serve the gateway, operate on payments, or dry-run the mapping.

mod init;
mod settings;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use klarna_gateway::config::{LogFormat, SANDBOX_URL};
use klarna_gateway::manage::{self, Command as Op, Expected};
use klarna_gateway::vault::Vault;
use klarna_gateway::{
    Config, Gateway, GatewayError, InitialSecrets, backup, mapping_options, reconcile, worker,
};
use klarna_types::mapping::map_order;
use klarna_types::odoo::OrderDocument;
use settings::Settings;
use tokio::net::TcpListener;

// The webhook path allocates and frees small buffers on both runtime threads and the
// database's: under load glibc's malloc took an eighth of the gateway's CPU (perf), its
// free lists consolidated over and over; mimalloc's per-thread pages do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The backend between Odoo, the Klarna checkout widget and Klarna.
///
/// Settings come from flags, then the environment, then `--config FILE` (TOML: the flags'
/// names with underscores, lists in the plural, e.g. `allowed_origins = ["https://…"]`).
/// Secrets (never in the file) given here are sealed into the database and read from there
/// afterwards.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the widget API, the admin API and the job worker (the default).
    Serve,
    /// Write a commented configuration file (owner-only), seal the secrets — generating
    /// the shared secret and the admin token — and print what Odoo's Klarna provider needs.
    /// Asks at a terminal for what is missing; run again, it changes nothing already set.
    Init(init::InitArgs),
    /// Check that this installation is ready: configuration, database, secrets, Odoo (login,
    /// rights, addon and shared secret), Klarna's credentials and region, the clock, the
    /// public URL and the proxy. Exits non-zero when a check fails.
    Doctor {
        /// The report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run only the job worker (more workers, or a worker apart from the web servers).
    Worker,
    /// Print the Klarna session body an Odoo order (JSON, docs/money.md) would become, or
    /// every problem with its field path; exits non-zero on problems.
    Map {
        /// The order document; `-` reads standard input.
        order: PathBuf,
    },
    /// Show a payment (Klarna order id or Odoo order reference) with its timeline.
    Show { payment: String },
    /// Capture (default: all that remains).
    Capture {
        payment: String,
        /// Minor units (cents).
        #[arg(long)]
        amount: Option<i64>,
        #[command(flatten)]
        expected: Expected,
    },
    /// Refund (default: all that was captured and not refunded).
    Refund {
        payment: String,
        /// Minor units (cents).
        #[arg(long)]
        amount: Option<i64>,
        /// Refund from this capture: the gateway's operation id (a number, as in
        /// `show`), or Klarna's capture id.
        #[arg(long)]
        capture: Option<String>,
        #[command(flatten)]
        expected: Expected,
    },
    /// Cancel an order with no captures.
    Cancel {
        payment: String,
        #[command(flatten)]
        expected: Expected,
    },
    /// Release the authorization that will not be captured.
    Release {
        payment: String,
        #[command(flatten)]
        expected: Expected,
    },
    /// Extend the authorization period.
    Extend { payment: String },
    /// Update the authorization to the order as Odoo has it now (edited before it
    /// shipped): its amount and lines. Klarna may refuse an increase; then nothing changes.
    UpdateAuthorization {
        payment: String,
        /// What changed, for Klarna's records.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        expected: Expected,
    },
    /// The review queue: jobs that failed every attempt.
    Review {
        #[command(subcommand)]
        action: ReviewAction,
    },
    /// Compare our records with Klarna and Odoo, repair what is safe, report the rest.
    Reconcile,
    /// Add a new master key and re-seal every secret with it.
    RotateKeys,
    /// Copy the SQLite database to FILE (a new file, owner-only) while the gateway runs.
    /// The secrets in it stay sealed: keep a copy of the master keys apart from it.
    Backup { file: PathBuf },
    /// Put the backup FILE in place as this data dir's database, which must not exist yet,
    /// after checking it is whole and that the master keys (the data dir's master.keys or
    /// GATEWAY_MASTER_KEYS) open every secret in it.
    Restore { file: PathBuf },
    /// Personal data: export or erase what we hold about an e-mail address.
    Gdpr {
        #[command(subcommand)]
        action: GdprAction,
    },
    /// Secrets: `secrets set NAME` reads the value from standard input; `secrets list`.
    Secrets {
        #[command(subcommand)]
        action: SecretAction,
    },
    /// Webhook signing keys: `add ID` (secret on standard input), `revoke ID`, `list`.
    WebhookKeys {
        #[command(subcommand)]
        action: KeyAction,
    },
}

#[derive(Subcommand, Debug)]
enum KeyAction {
    Add { id: String },
    Revoke { id: String },
    List,
}

#[derive(Subcommand, Debug)]
enum ReviewAction {
    List,
    Show { id: i64 },
    Replay { id: i64 },
}

#[derive(Subcommand, Debug)]
enum GdprAction {
    Export {
        #[arg(long)]
        email: String,
    },
    Erase {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand, Debug)]
enum SecretAction {
    /// klarna.username, klarna.password, admin.token, odoo.password, odoo.shared_secret
    Set {
        name: String,
    },
    List,
}

/// Klarna's username first: its presence marks a database set up for a shop.
const SANDBOX_SECRETS: [(&str, &str); 5] = [
    ("klarna.username", "sandbox-merchant"),
    ("klarna.password", "sandbox-password"),
    ("odoo.password", "admin"),
    ("odoo.shared_secret", "sandbox-odoo-secret"),
    ("admin.token", "sandbox-admin-token"),
];

fn init_logs(format: LogFormat) {
    klarna_gateway::logs::init(format, std::io::stderr);
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Map { order }) = &cli.command {
        return map(order, cli.settings.surcharge_product_codes.clone());
    }
    if let Some(Command::Init(args)) = cli.command {
        // Before the settings are resolved: the file it writes may not exist yet.
        init_logs(LogFormat::Text);
        return match init::run(cli.settings, args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("klarna-gateway init: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::Doctor { json }) = cli.command {
        let (config, _, _) = match cli.settings.resolve() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("klarna-gateway doctor: FAIL config: {e}");
                return ExitCode::FAILURE;
            }
        };
        init_logs(LogFormat::Text);
        let report = klarna_gateway::doctor::run(config).await;
        if json {
            print(&report);
        } else {
            print!("{}", report.render());
        }
        return if report.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let (config, initial, sandbox) = match cli.settings.resolve() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("klarna-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logs(
        if matches!(cli.command, None | Some(Command::Serve | Command::Worker)) {
            config.log_format
        } else {
            LogFormat::Text
        },
    );
    match run(
        cli.command.unwrap_or(Command::Serve),
        config,
        initial,
        sandbox,
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("klarna-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print(value: &impl serde::Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

async fn open(
    config: Config,
    initial: InitialSecrets,
    sandbox: bool,
) -> Result<Arc<Gateway>, GatewayError> {
    let gateway = Gateway::new(config, initial).await?;
    if sandbox {
        // Only a database that never had Klarna credentials gets the sandbox's: a shop's
        // database opened without its settings (an operator running `show` with only
        // `--data-dir`, say) must not be given the sandbox's well-known admin token.
        let mut defaulted = Vec::new();
        if gateway.secrets.get(SANDBOX_SECRETS[0].0).is_none() {
            for (name, value) in SANDBOX_SECRETS {
                if gateway.secrets.get(name).is_none() {
                    gateway.secrets.set(name, value).await?;
                    defaulted.push(name);
                }
            }
        }
        tracing::warn!(
            "SANDBOX DEFAULTS: Klarna and Odoo are the local klarna-sandbox at {SANDBOX_URL}{}. Set --klarna-url and the credentials for a real shop.",
            if defaulted.is_empty() {
                String::new()
            } else {
                format!("; sandbox credentials set for {}", defaulted.join(", "))
            }
        );
    }
    Ok(Arc::new(gateway))
}

async fn run(
    command: Command,
    config: Config,
    initial: InitialSecrets,
    sandbox: bool,
) -> Result<(), GatewayError> {
    let op = |payment: &str| payment.to_owned();
    match command {
        Command::Serve => serve(config, initial, sandbox).await,
        Command::Worker => {
            let gw = open(config, initial, sandbox).await?;
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let worker = tokio::spawn(klarna_gateway::worker::run(gw, stopped));
            tracing::info!("klarna-gateway worker running");
            shutdown_signal().await;
            let _ = stop.send(true);
            let _ = worker.await;
            Ok(())
        }
        Command::Map { .. } | Command::Init(_) | Command::Doctor { .. } => Ok(()),
        Command::Show { payment } => {
            let gw = open(config, initial, sandbox).await?;
            print(&manage::view(&gw, &payment).await?);
            Ok(())
        }
        Command::Capture {
            payment,
            amount,
            expected,
        } => {
            let capture = Op::Capture(manage::CaptureArgs {
                amount,
                ..Default::default()
            });
            operate(config, initial, sandbox, &op(&payment), capture, expected).await
        }
        Command::Refund {
            payment,
            amount,
            capture,
            expected,
        } => {
            // Klarna's capture ids are UUIDs, never a bare number.
            let operation = capture.as_deref().and_then(|c| c.parse::<i64>().ok());
            let refund = Op::Refund(manage::RefundArgs {
                amount,
                capture_id: capture.filter(|_| operation.is_none()),
                capture_operation_id: operation,
                ..Default::default()
            });
            operate(config, initial, sandbox, &op(&payment), refund, expected).await
        }
        Command::Cancel { payment, expected } => {
            operate(config, initial, sandbox, &payment, Op::Cancel, expected).await
        }
        Command::Release { payment, expected } => {
            operate(config, initial, sandbox, &payment, Op::Release, expected).await
        }
        Command::Extend { payment } => {
            let none = Expected::default();
            operate(config, initial, sandbox, &payment, Op::Extend, none).await
        }
        Command::UpdateAuthorization {
            payment,
            description,
            expected,
        } => {
            let edit = Op::UpdateAuthorization(manage::EditArgs {
                odoo_records: None,
                description,
            });
            operate(config, initial, sandbox, &payment, edit, expected).await
        }
        Command::Review { action } => {
            let gw = open(config, initial, sandbox).await?;
            match action {
                ReviewAction::List => print(&gw.db.jobs_in("review").await?),
                ReviewAction::Show { id } => print(&gw.db.job(id).await?),
                ReviewAction::Replay { id } => {
                    if !gw.db.replay_job(id).await? {
                        return Err(GatewayError::Refused(format!(
                            "job {id} is not in the review queue"
                        )));
                    }
                    worker::drain(&gw).await?;
                    print(&gw.db.job(id).await?);
                }
            }
            Ok(())
        }
        Command::Reconcile => {
            let gw = open(config, initial, sandbox).await?;
            let report = reconcile::run(&gw).await?;
            worker::drain(&gw).await?;
            print(&report);
            Ok(())
        }
        Command::RotateKeys => {
            let gw = open(config, initial, sandbox).await?;
            let id = gw.secrets.rotate().await?;
            println!(
                "active master key is now {id}; {} secrets re-sealed",
                gw.secrets.names().len()
            );
            Ok(())
        }
        Command::Backup { file } => {
            print(&backup::backup(&config.database_url, &file).await?);
            Ok(())
        }
        Command::Restore { file } => restore(config, &file).await,
        Command::Gdpr { action } => {
            let gw = open(config, initial, sandbox).await?;
            match action {
                GdprAction::Export { email } => print(&gw.db.gdpr_export(&email).await?),
                GdprAction::Erase { email } => {
                    let n = gw.db.gdpr_erase(&email).await?;
                    println!("personal data of {n} sessions erased");
                }
            }
            Ok(())
        }
        Command::WebhookKeys { action } => {
            let gw = open(config, initial, false).await?;
            match action {
                KeyAction::Add { id } => {
                    let mut secret = zeroize::Zeroizing::new(String::new());
                    std::io::stdin()
                        .read_to_string(&mut secret)
                        .map_err(|e| GatewayError::Config(e.to_string()))?;
                    klarna_gateway::signing_keys::add(
                        &gw.secrets,
                        &id,
                        secret.trim_end_matches(['\n', '\r']),
                    )
                    .await?;
                    println!("signing key {id} added");
                }
                KeyAction::Revoke { id } => {
                    klarna_gateway::signing_keys::revoke(&gw.secrets, &id).await?;
                    println!(
                        "signing key {id} revoked: webhooks signed with it are refused from now on"
                    );
                }
                KeyAction::List => {
                    for k in klarna_gateway::signing_keys::list(&gw.secrets) {
                        println!("{}\t{}", k.id, if k.revoked { "revoked" } else { "active" });
                    }
                }
            }
            Ok(())
        }
        Command::Secrets { action } => {
            let gw = open(config, initial, false).await?;
            match action {
                SecretAction::Set { name } => {
                    let mut value = String::new();
                    std::io::stdin()
                        .read_to_string(&mut value)
                        .map_err(|e| GatewayError::Config(e.to_string()))?;
                    let value =
                        zeroize::Zeroizing::new(value.trim_end_matches(['\n', '\r']).to_owned());
                    gw.secrets.set(&name, &value).await?;
                    println!(
                        "{name} sealed with key {}",
                        gw.secrets.key_ids().get(&name).cloned().unwrap_or_default()
                    );
                }
                SecretAction::List => {
                    let mut names: Vec<_> = gw.secrets.key_ids().into_iter().collect();
                    names.sort();
                    for (name, key) in names {
                        println!("{name}\tsealed with {key}");
                    }
                }
            }
            Ok(())
        }
    }
}

async fn restore(config: Config, file: &std::path::Path) -> Result<(), GatewayError> {
    let vault = Vault::open_existing(config.master_keys.as_deref(), &config.data_dir)?;
    let summary = backup::restore(file, &config.database_url, &vault).await?;
    // Opened as `serve` opens it: the schema brought forward, every secret opened.
    let gateway = Gateway::new(config, InitialSecrets::default()).await?;
    let schema_version = gateway.db.schema_version().await?;
    print(&serde_json::json!({"restored": summary, "schema_version_now": schema_version}));
    Ok(())
}

async fn operate(
    config: Config,
    initial: InitialSecrets,
    sandbox: bool,
    payment: &str,
    op: Op,
    expected: Expected,
) -> Result<(), GatewayError> {
    let gw = open(config, initial, sandbox).await?;
    let outcome = manage::run(&gw, payment, op, expected, "cli", None).await?;
    worker::drain(&gw).await?;
    print(&outcome);
    Ok(())
}

async fn serve(config: Config, initial: InitialSecrets, sandbox: bool) -> Result<(), GatewayError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| GatewayError::Config(format!("cannot listen on {}: {e}", config.listen)))?;
    let metrics_listen = config.metrics_listen;
    let metrics_limits = config.metrics_listener;
    let gateway = open(config, initial, sandbox).await?;
    let running = klarna_gateway::start(listener, gateway.clone()).await?;
    tracing::info!("klarna-gateway on http://{}", running.addr);
    let metrics_task = match metrics_listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr).await.map_err(|e| {
                GatewayError::Config(format!("cannot listen on {addr} for metrics: {e}"))
            })?;
            tracing::info!("metrics on http://{addr}/metrics");
            let router = klarna_gateway::metrics::router(gateway.db.clone());
            Some(tokio::spawn(async move {
                klarna_gateway::listener::serve(
                    listener,
                    router,
                    metrics_limits,
                    std::future::pending(),
                )
                .await;
            }))
        }
        None => None,
    };
    shutdown_signal().await;
    tracing::info!("shutting down: finishing the work in hand");
    running.shutdown().await;
    if let Some(t) = metrics_task {
        t.abort();
    }
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
