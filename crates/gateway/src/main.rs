//! `klarna-gateway`: serve the gateway, operate on payments, or dry-run the mapping.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use klarna_gateway::config::{FileConfig, LogFormat, SANDBOX_URL};
use klarna_gateway::manage::{self, Command as Op};
use klarna_gateway::{
    Config, Gateway, GatewayError, InitialSecrets, mapping_options, reconcile, worker,
};
use klarna_types::mapping::map_order;
use klarna_types::odoo::OrderDocument;
use tokio::net::TcpListener;

/// The backend between Odoo, the Klarna checkout widget and Klarna.
///
/// Settings come from flags, then the environment, then `--config FILE` (TOML, same names
/// with underscores). Secrets (Klarna and Odoo passwords, the admin token, the Odoo shared
/// secret) given here are sealed into the database and read from there afterwards.
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
    },
    /// Refund (default: all that was captured and not refunded).
    Refund {
        payment: String,
        /// Minor units (cents).
        #[arg(long)]
        amount: Option<i64>,
        /// Refund from this capture (Klarna's capture id).
        #[arg(long)]
        capture: Option<String>,
    },
    /// Cancel an order with no captures.
    Cancel { payment: String },
    /// Release the authorization that will not be captured.
    Release { payment: String },
    /// Extend the authorization period.
    Extend { payment: String },
    /// The review queue: jobs that failed every attempt.
    Review {
        #[command(subcommand)]
        action: ReviewAction,
    },
    /// Compare our records with Klarna and Odoo, repair what is safe, report the rest.
    Reconcile,
    /// Add a new master key and re-seal every secret with it.
    RotateKeys,
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

#[derive(Args, Debug)]
struct Settings {
    /// A TOML file with any of these settings.
    #[arg(long, global = true, env = "GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7080].
    #[arg(long, global = true, env = "GATEWAY_LISTEN")]
    listen: Option<SocketAddr>,
    /// Prometheus /metrics on its own address, or `off` [default: 127.0.0.1:9464].
    #[arg(long, global = true, env = "GATEWAY_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Directory for the SQLite database and the master key file [default: ./data].
    #[arg(long, global = true, env = "GATEWAY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// sqlite://… or postgres://… [default: sqlite://<data-dir>/gateway.db].
    #[arg(long, global = true, env = "GATEWAY_DATABASE_URL")]
    database_url: Option<String>,
    /// Klarna API base URL [default: the local klarna-sandbox, http://127.0.0.1:7070;
    /// a database that never had Klarna credentials then gets the sandbox's].
    #[arg(long, global = true, env = "KLARNA_API_URL")]
    klarna_url: Option<String>,
    /// Klarna API username (sealed into the database).
    #[arg(long, global = true, env = "KLARNA_USERNAME")]
    klarna_username: Option<String>,
    /// Klarna API password (sealed into the database; prefer the environment).
    #[arg(long, global = true, env = "KLARNA_PASSWORD", hide_env_values = true)]
    klarna_password: Option<String>,
    /// Odoo base URL [default: the local sandbox's Odoo stand-in].
    #[arg(long, global = true, env = "ODOO_URL")]
    odoo_url: Option<String>,
    /// Odoo database [default: odoo].
    #[arg(long, global = true, env = "ODOO_DB")]
    odoo_db: Option<String>,
    /// Odoo login the gateway reads orders as [default: admin].
    #[arg(long, global = true, env = "ODOO_LOGIN")]
    odoo_login: Option<String>,
    /// Odoo password or API key (sealed into the database).
    #[arg(long, global = true, env = "ODOO_PASSWORD", hide_env_values = true)]
    odoo_password: Option<String>,
    /// The secret shared with the Odoo addon, signing payment updates (sealed).
    #[arg(
        long,
        global = true,
        env = "ODOO_SHARED_SECRET",
        hide_env_values = true
    )]
    odoo_shared_secret: Option<String>,
    /// Where payment updates go [default: <odoo-url>/payment/klarna/gateway].
    #[arg(long, global = true, env = "ODOO_NOTIFY_URL")]
    odoo_notify_url: Option<String>,
    /// Bearer token of the admin API (sealed).
    #[arg(
        long,
        global = true,
        env = "GATEWAY_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// A storefront origin allowed to call the widget API; repeat or comma-separate.
    #[arg(
        long = "allowed-origin",
        global = true,
        env = "GATEWAY_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,
    /// Default code of an Odoo product that is a fee (sent as `surcharge`); repeatable.
    #[arg(
        long = "surcharge-product-code",
        global = true,
        env = "GATEWAY_SURCHARGE_CODES",
        value_delimiter = ','
    )]
    surcharge_codes: Vec<String>,
    /// Seconds between reconcile runs, 0 for never [default: 900].
    #[arg(long, global = true, env = "GATEWAY_RECONCILE_INTERVAL_SECS")]
    reconcile_interval_secs: Option<u64>,
    /// Days after which addresses, e-mails and phones of settled payments are removed
    /// [default: 180].
    #[arg(long, global = true, env = "GATEWAY_PII_RETENTION_DAYS")]
    pii_retention_days: Option<u64>,
    /// Log format [default: json].
    #[arg(long, global = true, env = "GATEWAY_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// The gateway's address as Klarna reaches it; sessions then name the classic
    /// notification URL (with its secret token).
    #[arg(long, global = true, env = "GATEWAY_PUBLIC_URL")]
    public_url: Option<String>,
    /// A webhook signing key as ID=SECRET, added (sealed) when absent; repeatable.
    #[arg(
        long = "webhook-signing-key",
        global = true,
        env = "GATEWAY_WEBHOOK_SIGNING_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    webhook_signing_keys: Vec<String>,
    /// The secret token in the classic notification URL (generated when absent).
    #[arg(
        long,
        global = true,
        env = "GATEWAY_CLASSIC_CALLBACK_TOKEN",
        hide_env_values = true
    )]
    classic_callback_token: Option<String>,
    /// Webhooks older than this many hours are refused [default: 24].
    #[arg(long, global = true, env = "GATEWAY_WEBHOOK_HORIZON_HOURS")]
    webhook_horizon_hours: Option<u64>,
    /// Only these networks (CIDR) may post webhooks; repeatable [default: any].
    #[arg(
        long = "webhook-allow-cidr",
        global = true,
        env = "GATEWAY_WEBHOOK_ALLOW_CIDRS",
        value_delimiter = ','
    )]
    webhook_allow_cidrs: Vec<String>,
    /// Take the client address from X-Forwarded-For (only behind a proxy you trust).
    #[arg(long, global = true, env = "GATEWAY_TRUST_FORWARDED_FOR")]
    trust_forwarded_for: bool,
    /// Widget API requests per second and address [default: 20].
    #[arg(long, global = true, env = "GATEWAY_WIDGET_RATE")]
    widget_rate_per_second: Option<u32>,
    /// Webhook requests per second and address [default: 200].
    #[arg(long, global = true, env = "GATEWAY_WEBHOOK_RATE")]
    webhook_rate_per_second: Option<u32>,
    /// Verification failures in ten minutes that block an address [default: 20].
    #[arg(long, global = true, env = "GATEWAY_BLOCK_AFTER")]
    block_after_failures: Option<u32>,
    /// How long such an address stays blocked, in seconds [default: 900].
    #[arg(long, global = true, env = "GATEWAY_BLOCK_FOR_SECS")]
    block_for_secs: Option<u64>,
    /// Verification failures in five minutes that alert the operators [default: 50].
    #[arg(long, global = true, env = "GATEWAY_ALERT_THRESHOLD")]
    alert_threshold: Option<u32>,
    /// Serve without the job worker (run `klarna-gateway worker` elsewhere).
    #[arg(long, global = true, env = "GATEWAY_NO_WORKER")]
    no_worker: bool,
    /// Seconds a claimed job is one worker's before another may take it over (a worker
    /// that died mid-job) [default: 120].
    #[arg(long, global = true, env = "GATEWAY_JOB_LEASE_SECS")]
    job_lease_secs: Option<u64>,
    /// Where the alert goes (a small JSON document is posted there).
    #[arg(long, global = true, env = "GATEWAY_ALERT_URL")]
    alert_url: Option<String>,
}

/// Klarna's username first: its presence marks a database set up for a shop.
const SANDBOX_SECRETS: [(&str, &str); 5] = [
    ("klarna.username", "sandbox-merchant"),
    ("klarna.password", "sandbox-password"),
    ("odoo.password", "admin"),
    ("odoo.shared_secret", "sandbox-odoo-secret"),
    ("admin.token", "sandbox-admin-token"),
];

fn settings(s: &Settings) -> Result<(Config, InitialSecrets, bool), GatewayError> {
    let file = match &s.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let data_dir = s
        .data_dir
        .clone()
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from("data"));
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| GatewayError::Config(format!("cannot create {}: {e}", data_dir.display())))?;
    let database_url = s
        .database_url
        .clone()
        .or(file.database_url)
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("gateway.db").display()));
    let klarna_url = s.klarna_url.clone().or(file.klarna_url);
    let sandbox = klarna_url.is_none();
    let klarna_url = klarna_url.unwrap_or_else(|| SANDBOX_URL.to_owned());
    let odoo_url = s
        .odoo_url
        .clone()
        .or(file.odoo_url)
        .unwrap_or_else(|| SANDBOX_URL.to_owned());
    let mut config = Config::sandbox(&database_url, &data_dir, &klarna_url);
    config.listen = s.listen.or(file.listen).unwrap_or(config.listen);
    config.metrics_listen = match s.metrics_listen.clone().or(file.metrics_listen).as_deref() {
        Some("off") => None,
        Some(addr) => Some(addr.parse().map_err(|_| {
            GatewayError::Config(format!("metrics_listen: {addr:?} is not an address"))
        })?),
        None => Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
    };
    config.master_keys = std::env::var("GATEWAY_MASTER_KEYS").ok();
    config.odoo_notify_url = s
        .odoo_notify_url
        .clone()
        .or(file.odoo_notify_url)
        .unwrap_or_else(|| format!("{}/payment/klarna/gateway", odoo_url.trim_end_matches('/')));
    config.odoo_url = odoo_url;
    config.odoo_db = s.odoo_db.clone().or(file.odoo_db).unwrap_or(config.odoo_db);
    config.odoo_login = s
        .odoo_login
        .clone()
        .or(file.odoo_login)
        .unwrap_or(config.odoo_login);
    config.odoo_version = file.odoo_version.or(config.odoo_version);
    config.klarna_timeout = file
        .klarna_timeout_secs
        .map_or(config.klarna_timeout, Duration::from_secs);
    config.allowed_origins = if s.allowed_origins.is_empty() {
        file.allowed_origins.unwrap_or_default()
    } else {
        s.allowed_origins.clone()
    };
    config.surcharge_codes = if s.surcharge_codes.is_empty() {
        file.surcharge_product_codes.unwrap_or_default()
    } else {
        s.surcharge_codes.clone()
    };
    config.reconcile_interval = Duration::from_secs(
        s.reconcile_interval_secs
            .or(file.reconcile_interval_secs)
            .unwrap_or(900),
    );
    config.pii_retention = Duration::from_secs(
        s.pii_retention_days
            .or(file.pii_retention_days)
            .unwrap_or(180)
            * 86_400,
    );
    config.log_format = s.log_format.or(file.log_format).unwrap_or(LogFormat::Json);
    let initial = InitialSecrets {
        klarna_username: s.klarna_username.clone(),
        klarna_password: s.klarna_password.clone(),
        admin_token: s.admin_token.clone(),
        odoo_password: s.odoo_password.clone(),
        odoo_shared_secret: s.odoo_shared_secret.clone(),
        webhook_signing_keys: s
            .webhook_signing_keys
            .iter()
            .map(|k| {
                k.split_once('=')
                    .map(|(id, secret)| (id.to_owned(), secret.to_owned()))
                    .ok_or_else(|| {
                        GatewayError::Config("a webhook signing key is ID=SECRET".into())
                    })
            })
            .collect::<Result<_, _>>()?,
        classic_callback_token: s.classic_callback_token.clone(),
    };
    config.public_url = s.public_url.clone().or(file.public_url);
    config.run_worker = !(s.no_worker || file.no_worker.unwrap_or(false));
    config.job_lease = s
        .job_lease_secs
        .or(file.job_lease_secs)
        .map_or(config.job_lease, Duration::from_secs);
    config.webhook_horizon = Duration::from_secs(
        s.webhook_horizon_hours
            .or(file.webhook_horizon_hours)
            .unwrap_or(24)
            * 3600,
    );
    let cidrs = if s.webhook_allow_cidrs.is_empty() {
        file.webhook_allow_cidrs.unwrap_or_default()
    } else {
        s.webhook_allow_cidrs.clone()
    };
    let door = &mut config.frontdoor;
    door.webhook_allow = cidrs
        .iter()
        .map(|c| {
            c.parse().map_err(|_| {
                GatewayError::Config(format!(
                    "webhook_allow_cidrs: {c:?} is not a network like 192.0.2.0/24"
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    door.trust_forwarded_for = s.trust_forwarded_for || file.trust_forwarded_for.unwrap_or(false);
    door.widget_per_second = s
        .widget_rate_per_second
        .or(file.widget_rate_per_second)
        .unwrap_or(door.widget_per_second);
    door.webhook_per_second = s
        .webhook_rate_per_second
        .or(file.webhook_rate_per_second)
        .unwrap_or(door.webhook_per_second);
    door.block_after = s
        .block_after_failures
        .or(file.block_after_failures)
        .unwrap_or(door.block_after);
    door.block_for = s
        .block_for_secs
        .or(file.block_for_secs)
        .map_or(door.block_for, Duration::from_secs);
    door.alert_threshold = s
        .alert_threshold
        .or(file.alert_threshold)
        .unwrap_or(door.alert_threshold);
    door.alert_url = s.alert_url.clone().or(file.alert_url);
    Ok((config, initial, sandbox))
}

fn init_logs(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Map { order }) = &cli.command {
        return map(order, cli.settings.surcharge_codes.clone());
    }
    let (config, initial, sandbox) = match settings(&cli.settings) {
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
        Command::Map { .. } => Ok(()),
        Command::Show { payment } => {
            let gw = open(config, initial, sandbox).await?;
            print(&manage::view(&gw, &payment).await?);
            Ok(())
        }
        Command::Capture { payment, amount } => {
            operate(
                config,
                initial,
                sandbox,
                &op(&payment),
                Op::Capture {
                    amount,
                    order_lines: Vec::new(),
                    shipping_info: Vec::new(),
                    description: None,
                },
            )
            .await
        }
        Command::Refund {
            payment,
            amount,
            capture,
        } => {
            operate(
                config,
                initial,
                sandbox,
                &op(&payment),
                Op::Refund {
                    amount,
                    capture_id: capture,
                    order_lines: Vec::new(),
                    description: None,
                },
            )
            .await
        }
        Command::Cancel { payment } => {
            operate(config, initial, sandbox, &payment, Op::Cancel).await
        }
        Command::Release { payment } => {
            operate(config, initial, sandbox, &payment, Op::Release).await
        }
        Command::Extend { payment } => {
            operate(config, initial, sandbox, &payment, Op::Extend).await
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
                    klarna_gateway::webhook::add_key(
                        &gw,
                        &id,
                        secret.trim_end_matches(['\n', '\r']),
                    )
                    .await?;
                    println!("signing key {id} added");
                }
                KeyAction::Revoke { id } => {
                    klarna_gateway::webhook::revoke_key(&gw, &id).await?;
                    println!(
                        "signing key {id} revoked: webhooks signed with it are refused from now on"
                    );
                }
                KeyAction::List => {
                    for k in klarna_gateway::webhook::list_keys(&gw) {
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

async fn operate(
    config: Config,
    initial: InitialSecrets,
    sandbox: bool,
    payment: &str,
    op: Op,
) -> Result<(), GatewayError> {
    let gw = open(config, initial, sandbox).await?;
    let outcome = manage::run(&gw, payment, op, "cli").await?;
    worker::drain(&gw).await?;
    print(&outcome);
    Ok(())
}

async fn serve(config: Config, initial: InitialSecrets, sandbox: bool) -> Result<(), GatewayError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| GatewayError::Config(format!("cannot listen on {}: {e}", config.listen)))?;
    let metrics_listen = config.metrics_listen;
    let gateway = open(config, initial, sandbox).await?;
    let running = klarna_gateway::start(listener, gateway.clone()).await?;
    tracing::info!("klarna-gateway on http://{}", running.addr);
    let metrics_task = match metrics_listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr).await.map_err(|e| {
                GatewayError::Config(format!("cannot listen on {addr} for metrics: {e}"))
            })?;
            tracing::info!("metrics on http://{addr}/metrics");
            let router = klarna_gateway::metrics::router(gateway);
            Some(tokio::spawn(async move {
                let _ = axum::serve(listener, router).await;
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
