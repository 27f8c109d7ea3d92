//! The gateway's settings, each written once: [`Settings`] is the command line's flags, the
//! environment variables and the keys of the TOML file (`--config gateway.toml`) at once.
//! A flag wins over its environment variable (clap's rule), either wins over the file
//! ([`Settings::over`], one rule for every setting), and the file wins over the default.
//! [`Settings::resolve`] then checks them and turns them into the runtime [`Config`]; the
//! secrets among them are not kept there but handed over to be sealed in the database.
//!
//! Adding a setting: a field here (its doc comment is its `--help` text, its name is its
//! TOML key), and a line in `resolve` that puts it into `Config`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use ipnet::IpNet;
use klarna_gateway::client_addr::{ForwardedHeader, TrustedProxies};
use klarna_gateway::config::{LogFormat, SANDBOX_URL};
use klarna_gateway::{Config, GatewayError, InitialSecrets};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Every setting but the secrets. Fields are `Option` (or an empty list, or an unset flag)
/// so that "not given" can be told apart and filled from the next layer; the defaults named
/// in the help texts are applied in [`Settings::resolve`].
#[derive(Args, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// A TOML file with any of these settings (secrets excepted).
    #[arg(long, global = true, env = "GATEWAY_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7080].
    #[arg(long, global = true, env = "GATEWAY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Prometheus /metrics on its own address, or `off` [default: 127.0.0.1:9464].
    #[arg(long, global = true, env = "GATEWAY_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Directory for the SQLite database and the master key file [default: ./data].
    #[arg(long, global = true, env = "GATEWAY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// sqlite://… or postgres://… [default: sqlite://<data-dir>/gateway.db].
    #[arg(long, global = true, env = "GATEWAY_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Klarna API base URL [default: the local klarna-sandbox, http://127.0.0.1:7070;
    /// a database that never had Klarna credentials then gets the sandbox's].
    #[arg(long, global = true, env = "KLARNA_API_URL")]
    pub klarna_url: Option<String>,
    /// Seconds one attempt of a request to Klarna may take [default: 10].
    #[arg(long, global = true, env = "GATEWAY_KLARNA_TIMEOUT_SECS")]
    pub klarna_timeout_secs: Option<u64>,
    /// Odoo base URL [default: the local sandbox's Odoo stand-in].
    #[arg(long, global = true, env = "ODOO_URL")]
    pub odoo_url: Option<String>,
    /// Odoo database [default: odoo].
    #[arg(long, global = true, env = "ODOO_DB")]
    pub odoo_db: Option<String>,
    /// Odoo login the gateway reads orders as [default: admin].
    #[arg(long, global = true, env = "ODOO_LOGIN")]
    pub odoo_login: Option<String>,
    /// Odoo's version, named to Klarna in the User-Agent [default: 18.0].
    #[arg(long, global = true, env = "GATEWAY_ODOO_VERSION")]
    pub odoo_version: Option<String>,
    /// Where payment updates go [default: <odoo-url>/payment/klarna/gateway].
    #[arg(long, global = true, env = "ODOO_NOTIFY_URL")]
    pub odoo_notify_url: Option<String>,
    /// A storefront origin allowed to call the widget API; repeat or comma-separate.
    #[arg(
        long = "allowed-origin",
        global = true,
        env = "GATEWAY_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,
    /// Default code of an Odoo product that is a fee (sent as `surcharge`); repeatable.
    #[arg(
        long = "surcharge-product-code",
        global = true,
        env = "GATEWAY_SURCHARGE_CODES",
        value_delimiter = ','
    )]
    pub surcharge_product_codes: Vec<String>,
    /// Seconds between reconcile runs, 0 for never [default: 900].
    #[arg(long, global = true, env = "GATEWAY_RECONCILE_INTERVAL_SECS")]
    pub reconcile_interval_secs: Option<u64>,
    /// Days after which addresses, e-mails and phones of settled payments are removed
    /// [default: 180].
    #[arg(long, global = true, env = "GATEWAY_PII_RETENTION_DAYS")]
    pub pii_retention_days: Option<u64>,
    /// Log format [default: json].
    #[arg(long, global = true, env = "GATEWAY_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// The gateway's address as Klarna reaches it; sessions then name the classic
    /// notification URL (with its secret token).
    #[arg(long, global = true, env = "GATEWAY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Webhooks older than this many hours are refused [default: 24].
    #[arg(long, global = true, env = "GATEWAY_WEBHOOK_HORIZON_HOURS")]
    pub webhook_horizon_hours: Option<u64>,
    /// How long an opened copy of the webhook signing keys is kept in (zeroizing) memory
    /// before it is opened again from the sealed store; 0 opens them for every webhook
    /// [default: 30].
    #[arg(long, global = true, env = "GATEWAY_SIGNING_KEYS_CACHE_SECS")]
    pub signing_keys_cache_secs: Option<u64>,
    /// Only these networks (CIDR) may post webhooks; repeatable [default: any].
    #[arg(
        long = "webhook-allow-cidr",
        global = true,
        env = "GATEWAY_WEBHOOK_ALLOW_CIDRS",
        value_delimiter = ','
    )]
    pub webhook_allow_cidrs: Vec<String>,
    /// A reverse proxy in front of the gateway (CIDR or address); repeatable. From such a
    /// peer the client is the right-most forwarding-header entry that is not one of these
    /// (nginx's `real_ip_recursive`) [default: none — the socket's peer is the client].
    #[arg(
        long = "trusted-proxies",
        global = true,
        env = "GATEWAY_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// The header the trusted proxies name the client in [default: x-forwarded-for].
    #[arg(long, global = true, env = "GATEWAY_FORWARDED_HEADER", value_enum)]
    pub forwarded_header: Option<ForwardedHeader>,
    /// Admin API requests per second and address [default: 50].
    #[arg(long, global = true, env = "GATEWAY_ADMIN_RATE")]
    pub admin_rate_per_second: Option<u32>,
    /// Addresses (IPv6: /64 networks) whose rate limits and failures are remembered at
    /// once; the least recently seen are forgotten first [default: 100000].
    #[arg(long, global = true, env = "GATEWAY_MAX_TRACKED_ADDRESSES")]
    pub max_tracked_addresses: Option<usize>,
    /// Seconds a client has to send a request's head — and the longest a kept-alive
    /// connection may sit idle [default: 10].
    #[arg(long, global = true, env = "GATEWAY_HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds a client has to send a request's body once its head is in [default: 15].
    #[arg(long, global = true, env = "GATEWAY_BODY_TIMEOUT_SECS")]
    pub body_timeout_secs: Option<u64>,
    /// Connections open at once on the public listener; more are answered 503 and closed
    /// [default: 512].
    #[arg(long, global = true, env = "GATEWAY_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Requests in flight at once on each of the widget, webhook and admin routes; more
    /// are answered 503 [default: 128].
    #[arg(long, global = true, env = "GATEWAY_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<usize>,
    /// Widget API requests per second and address [default: 20].
    #[arg(long, global = true, env = "GATEWAY_WIDGET_RATE")]
    pub widget_rate_per_second: Option<u32>,
    /// Webhook requests per second and address [default: 200].
    #[arg(long, global = true, env = "GATEWAY_WEBHOOK_RATE")]
    pub webhook_rate_per_second: Option<u32>,
    /// Verification failures in ten minutes that block an address [default: 20].
    #[arg(long, global = true, env = "GATEWAY_BLOCK_AFTER")]
    pub block_after_failures: Option<u32>,
    /// How long such an address stays blocked, in seconds [default: 900].
    #[arg(long, global = true, env = "GATEWAY_BLOCK_FOR_SECS")]
    pub block_for_secs: Option<u64>,
    /// Verification failures in five minutes that alert the operators [default: 50].
    #[arg(long, global = true, env = "GATEWAY_ALERT_THRESHOLD")]
    pub alert_threshold: Option<u32>,
    /// Where the alert goes (a small JSON document is posted there).
    #[arg(long, global = true, env = "GATEWAY_ALERT_URL")]
    pub alert_url: Option<String>,
    /// Serve without the job worker (run `klarna-gateway worker` elsewhere).
    #[arg(long, global = true, env = "GATEWAY_NO_WORKER")]
    pub no_worker: bool,
    /// Seconds a claimed job is one worker's before another may take it over (a worker
    /// that died mid-job) [default: 120].
    #[arg(long, global = true, env = "GATEWAY_JOB_LEASE_SECS")]
    pub job_lease_secs: Option<u64>,
    /// Never read from the file: a secret belongs in the environment or the database.
    #[command(flatten)]
    #[serde(skip)]
    pub secrets: SecretSettings,
}

/// Secrets given at start-up; they are sealed into the database and read from there
/// afterwards, so they need to be given only once.
#[derive(Args, Debug, Default)]
#[command(next_help_heading = "Secrets (sealed into the database)")]
pub struct SecretSettings {
    /// Klarna API username.
    #[arg(long, global = true, env = "KLARNA_USERNAME")]
    pub klarna_username: Option<String>,
    /// Klarna API password (prefer the environment).
    #[arg(long, global = true, env = "KLARNA_PASSWORD", hide_env_values = true)]
    pub klarna_password: Option<String>,
    /// Odoo password or API key.
    #[arg(long, global = true, env = "ODOO_PASSWORD", hide_env_values = true)]
    pub odoo_password: Option<String>,
    /// The secret shared with the Odoo addon, signing payment updates.
    #[arg(
        long,
        global = true,
        env = "ODOO_SHARED_SECRET",
        hide_env_values = true
    )]
    pub odoo_shared_secret: Option<String>,
    /// Bearer token of the admin API.
    #[arg(
        long,
        global = true,
        env = "GATEWAY_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// A webhook signing key as ID=SECRET, added when absent; repeatable.
    #[arg(
        long = "webhook-signing-key",
        global = true,
        env = "GATEWAY_WEBHOOK_SIGNING_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub webhook_signing_keys: Vec<String>,
    /// The secret token in the classic notification URL (generated when absent).
    #[arg(
        long,
        global = true,
        env = "GATEWAY_CLASSIC_CALLBACK_TOKEN",
        hide_env_values = true
    )]
    pub classic_callback_token: Option<String>,
}

impl Settings {
    /// The TOML file: every key optional; unknown keys (secrets among them) are an error
    /// that names them.
    pub fn load(path: &Path) -> Result<Self, GatewayError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| GatewayError::Config(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| GatewayError::Config(format!("{}: {e}", path.display())))
    }

    /// These settings wherever they have a value, `under`'s elsewhere. Done on the serde
    /// form so that it holds for every field without naming any; an unset flag and an
    /// empty list count as not given, because clap cannot tell them from absent.
    pub fn over(mut self, under: Self) -> Result<Self, GatewayError> {
        let config = self.config.take();
        let secrets = std::mem::take(&mut self.secrets);
        let mut merged = to_json(&under)?;
        if let (Value::Object(base), Value::Object(top)) = (&mut merged, to_json(&self)?) {
            for (key, value) in top {
                if is_given(&value) {
                    base.insert(key, value);
                }
            }
        }
        let merged: Self = serde_json::from_value(merged)
            .map_err(|e| GatewayError::Config(format!("settings: {e}")))?;
        Ok(Self {
            config,
            secrets,
            ..merged
        })
    }

    /// The runtime configuration these settings (with `--config`'s file under them) make,
    /// the secrets to seal, and whether Klarna is the local sandbox (no Klarna URL given).
    pub fn resolve(self) -> Result<(Config, InitialSecrets, bool), GatewayError> {
        let s = match &self.config {
            Some(path) => {
                let file = Self::load(path)?;
                self.over(file)?
            }
            None => self,
        };
        let data_dir = s.data_dir.unwrap_or_else(|| PathBuf::from("data"));
        std::fs::create_dir_all(&data_dir).map_err(|e| {
            GatewayError::Config(format!("cannot create {}: {e}", data_dir.display()))
        })?;
        let database_url = s
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("gateway.db").display()));
        let sandbox = s.klarna_url.is_none();
        let klarna_url = s.klarna_url.unwrap_or_else(|| SANDBOX_URL.to_owned());
        let odoo_url = s.odoo_url.unwrap_or_else(|| SANDBOX_URL.to_owned());
        let mut config = Config::sandbox(&database_url, &data_dir, &klarna_url);
        config.listen = s.listen.unwrap_or(config.listen);
        config.metrics_listen = match s.metrics_listen.as_deref() {
            Some("off") => None,
            Some(addr) => Some(addr.parse().map_err(|_| {
                GatewayError::Config(format!("metrics_listen: {addr:?} is not an address"))
            })?),
            None => Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
        };
        // The master keys stay out of `Settings` (and so out of `--help` and the file):
        // they decrypt every secret and are given to a server only through its environment.
        config.master_keys = std::env::var("GATEWAY_MASTER_KEYS").ok();
        config.odoo_notify_url = s.odoo_notify_url.unwrap_or_else(|| {
            format!("{}/payment/klarna/gateway", odoo_url.trim_end_matches('/'))
        });
        config.odoo_url = odoo_url;
        config.odoo_db = s.odoo_db.unwrap_or(config.odoo_db);
        config.odoo_login = s.odoo_login.unwrap_or(config.odoo_login);
        config.odoo_version = s.odoo_version.or(config.odoo_version);
        config.klarna_timeout = s
            .klarna_timeout_secs
            .map_or(config.klarna_timeout, Duration::from_secs);
        config.allowed_origins = s.allowed_origins;
        config.surcharge_codes = s.surcharge_product_codes;
        config.reconcile_interval = Duration::from_secs(s.reconcile_interval_secs.unwrap_or(900));
        config.pii_retention = Duration::from_secs(s.pii_retention_days.unwrap_or(180) * 86_400);
        config.log_format = s.log_format.unwrap_or(LogFormat::Json);
        config.public_url = s.public_url;
        config.run_worker = !s.no_worker;
        config.job_lease = s
            .job_lease_secs
            .map_or(config.job_lease, Duration::from_secs);
        config.webhook_horizon = Duration::from_secs(s.webhook_horizon_hours.unwrap_or(24) * 3600);
        config.signing_keys_cache = s
            .signing_keys_cache_secs
            .map_or(config.signing_keys_cache, Duration::from_secs);
        let door = &mut config.frontdoor;
        door.webhook_allow = s
            .webhook_allow_cidrs
            .iter()
            .map(|c| parse_network("webhook_allow_cidrs", c))
            .collect::<Result<_, _>>()?;
        door.trusted_proxies = TrustedProxies {
            networks: s
                .trusted_proxies
                .iter()
                .map(|c| parse_network("trusted_proxies", c))
                .collect::<Result<_, _>>()?,
            header: s.forwarded_header.unwrap_or_default(),
        };
        door.admin_per_second = s.admin_rate_per_second.unwrap_or(door.admin_per_second);
        door.max_tracked_addresses = s
            .max_tracked_addresses
            .unwrap_or(door.max_tracked_addresses);
        let limits = &mut config.listener;
        limits.header_timeout = s
            .header_timeout_secs
            .map_or(limits.header_timeout, Duration::from_secs);
        limits.body_timeout = s
            .body_timeout_secs
            .map_or(limits.body_timeout, Duration::from_secs);
        limits.max_connections = s.max_connections.unwrap_or(limits.max_connections);
        config.max_in_flight = s.max_in_flight.unwrap_or(config.max_in_flight);
        let door = &mut config.frontdoor;
        door.widget_per_second = s.widget_rate_per_second.unwrap_or(door.widget_per_second);
        door.webhook_per_second = s.webhook_rate_per_second.unwrap_or(door.webhook_per_second);
        door.block_after = s.block_after_failures.unwrap_or(door.block_after);
        door.block_for = s.block_for_secs.map_or(door.block_for, Duration::from_secs);
        door.alert_threshold = s.alert_threshold.unwrap_or(door.alert_threshold);
        door.alert_url = s.alert_url;
        Ok((config, s.secrets.into_initial()?, sandbox))
    }
}

/// A network like `192.0.2.0/24`, or one address (a /32 or /128).
fn parse_network(setting: &str, text: &str) -> Result<IpNet, GatewayError> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            GatewayError::Config(format!(
                "{setting}: {text:?} is not a network like 192.0.2.0/24 or an address"
            ))
        })
}

impl SecretSettings {
    pub fn into_initial(self) -> Result<InitialSecrets, GatewayError> {
        let webhook_signing_keys = self
            .webhook_signing_keys
            .iter()
            .map(|k| {
                k.split_once('=')
                    .map(|(id, secret)| (id.to_owned(), secret.to_owned()))
                    .ok_or_else(|| {
                        GatewayError::Config("a webhook signing key is ID=SECRET".into())
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(InitialSecrets {
            klarna_username: self.klarna_username,
            klarna_password: self.klarna_password,
            admin_token: self.admin_token,
            odoo_password: self.odoo_password,
            odoo_shared_secret: self.odoo_shared_secret,
            webhook_signing_keys,
            classic_callback_token: self.classic_callback_token,
        })
    }
}

/// Whether a setting's serde form holds a value: an unset flag and an empty list count as
/// not given, because clap cannot tell them from absent.
pub fn is_given(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => false,
        Value::Array(items) => !items.is_empty(),
        _ => true,
    }
}

impl Settings {
    /// The settings as a map from their keys (the file's) to their values.
    pub fn to_map(&self) -> Result<serde_json::Map<String, Value>, GatewayError> {
        match to_json(self)? {
            Value::Object(map) => Ok(map),
            _ => Err(GatewayError::Config("settings are not a table".into())),
        }
    }

    pub fn from_map(map: serde_json::Map<String, Value>) -> Result<Self, GatewayError> {
        serde_json::from_value(Value::Object(map))
            .map_err(|e| GatewayError::Config(format!("settings: {e}")))
    }
}

fn to_json(settings: &Settings) -> Result<Value, GatewayError> {
    // Fails only for a path that is not UTF-8, which the file could not have held either.
    serde_json::to_value(settings).map_err(|e| GatewayError::Config(format!("settings: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }

    fn parse(args: &[&str]) -> Settings {
        let argv = std::iter::once("klarna-gateway").chain(args.iter().copied());
        Cli::try_parse_from(argv).expect("parses").settings
    }

    #[test]
    fn the_file_names_unknown_keys() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("gateway.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nallowed_origins = [\"https://shop.example\"]\n",
        )
        .expect("write");
        let c = Settings::load(&path).expect("loads");
        assert_eq!(c.listen, Some("127.0.0.1:9000".parse().expect("addr")));
        std::fs::write(&path, "lissen = 1\n").expect("write");
        let e = Settings::load(&path).expect_err("typo");
        assert!(e.to_string().contains("lissen"), "{e}");
    }

    #[test]
    fn every_key_of_the_file_is_read_into_the_settings_and_reaches_the_config() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("gateway.toml");
        let data = dir.path().join("data");
        std::fs::write(
            &path,
            format!(
                r#"
listen = "127.0.0.1:9000"
metrics_listen = "off"
data_dir = "{data}"
database_url = "sqlite://{data}/other.db"
klarna_url = "https://api.playground.klarna.com"
klarna_timeout_secs = 3
odoo_url = "https://odoo.example/"
odoo_db = "shop"
odoo_login = "gateway"
odoo_version = "17.0"
odoo_notify_url = "https://odoo.example/notify"
allowed_origins = ["https://shop.example"]
surcharge_product_codes = ["FEE"]
reconcile_interval_secs = 60
pii_retention_days = 30
log_format = "text"
public_url = "https://gateway.example"
webhook_horizon_hours = 2
webhook_allow_cidrs = ["192.0.2.0/24"]
trusted_proxies = ["10.0.0.0/8", "2001:db8::7"]
forwarded_header = "forwarded"
admin_rate_per_second = 4
max_tracked_addresses = 11
header_timeout_secs = 12
body_timeout_secs = 13
max_connections = 14
max_in_flight = 15
widget_rate_per_second = 5
webhook_rate_per_second = 6
block_after_failures = 7
block_for_secs = 8
alert_threshold = 9
alert_url = "https://alerts.example"
no_worker = true
job_lease_secs = 10
"#,
                data = data.display()
            ),
        )
        .expect("write");
        let settings = Settings {
            config: Some(path),
            ..Settings::default()
        };
        let (c, _, sandbox) = settings.resolve().expect("resolves");
        assert!(!sandbox);
        assert_eq!(c.listen, "127.0.0.1:9000".parse().expect("addr"));
        assert_eq!(c.metrics_listen, None);
        assert_eq!(c.data_dir, data);
        assert_eq!(
            c.database_url,
            format!("sqlite://{}/other.db", data.display())
        );
        assert_eq!(c.klarna_url, "https://api.playground.klarna.com");
        assert_eq!(c.klarna_timeout, Duration::from_secs(3));
        assert_eq!(c.odoo_url, "https://odoo.example/");
        assert_eq!(
            (c.odoo_db.as_str(), c.odoo_login.as_str()),
            ("shop", "gateway")
        );
        assert_eq!(c.odoo_version.as_deref(), Some("17.0"));
        assert_eq!(c.odoo_notify_url, "https://odoo.example/notify");
        assert_eq!(c.allowed_origins, ["https://shop.example"]);
        assert_eq!(c.surcharge_codes, ["FEE"]);
        assert_eq!(c.reconcile_interval, Duration::from_secs(60));
        assert_eq!(c.pii_retention, Duration::from_secs(30 * 86_400));
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.public_url.as_deref(), Some("https://gateway.example"));
        assert_eq!(c.webhook_horizon, Duration::from_secs(2 * 3600));
        assert!(!c.run_worker);
        assert_eq!(c.job_lease, Duration::from_secs(10));
        let door = &c.frontdoor;
        assert_eq!(door.webhook_allow.len(), 1);
        assert_eq!(
            door.trusted_proxies.networks,
            [
                "10.0.0.0/8".parse::<IpNet>().expect("net"),
                "2001:db8::7/128".parse().expect("net")
            ]
        );
        assert_eq!(door.trusted_proxies.header, ForwardedHeader::Forwarded);
        assert_eq!(door.admin_per_second, 4);
        assert_eq!(door.max_tracked_addresses, 11);
        assert_eq!(c.listener.header_timeout, Duration::from_secs(12));
        assert_eq!(c.listener.body_timeout, Duration::from_secs(13));
        assert_eq!(c.listener.max_connections, 14);
        assert_eq!(c.max_in_flight, 15);
        assert_eq!((door.widget_per_second, door.webhook_per_second), (5, 6));
        assert_eq!(door.block_after, 7);
        assert_eq!(door.block_for, Duration::from_secs(8));
        assert_eq!(door.alert_threshold, 9);
        assert_eq!(door.alert_url.as_deref(), Some("https://alerts.example"));
    }

    #[test]
    fn a_trusted_proxy_that_is_not_a_network_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = Settings {
            data_dir: Some(dir.path().to_path_buf()),
            trusted_proxies: vec!["10.0.0.0/33".into()],
            ..Settings::default()
        };
        let Err(e) = settings.resolve() else {
            panic!("a /33 was accepted");
        };
        let e = e.to_string();
        assert!(e.contains("trusted_proxies: \"10.0.0.0/33\""), "{e}");
    }

    #[test]
    fn secrets_and_the_file_itself_are_not_keys_of_the_file() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("gateway.toml");
        for key in ["klarna_password = \"x\"", "config = \"other.toml\""] {
            std::fs::write(&path, key).expect("write");
            assert!(Settings::load(&path).is_err(), "{key} was accepted");
        }
    }

    #[test]
    fn a_flag_wins_over_the_environment_over_the_file_over_the_default() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("gateway.toml");
        std::fs::write(
            &path,
            "widget_rate_per_second = 3\nwebhook_rate_per_second = 3\nblock_after_failures = 3\n\
             allowed_origins = [\"https://file.example\"]\nsurcharge_product_codes = [\"FILE\"]\n\
             no_worker = true\n",
        )
        .expect("write");
        // SAFETY: no other test in this binary reads these two variables, and clap reads
        // the environment through std, which locks it.
        unsafe {
            std::env::set_var("GATEWAY_WIDGET_RATE", "2");
            std::env::set_var("GATEWAY_WEBHOOK_RATE", "2");
        }
        let settings = parse(&[
            "--config",
            &path.display().to_string(),
            "--data-dir",
            &dir.path().display().to_string(),
            "--widget-rate-per-second",
            "1",
            "--allowed-origin",
            "https://flag.example",
        ]);
        // SAFETY: as above.
        unsafe {
            std::env::remove_var("GATEWAY_WIDGET_RATE");
            std::env::remove_var("GATEWAY_WEBHOOK_RATE");
        }
        let (c, _, _) = settings.resolve().expect("resolves");
        let door = &c.frontdoor;
        assert_eq!(door.widget_per_second, 1, "the flag");
        assert_eq!(door.webhook_per_second, 2, "the environment");
        assert_eq!(door.block_after, 3, "the file");
        assert_eq!(door.alert_threshold, 50, "the default");
        assert_eq!(c.allowed_origins, ["https://flag.example"]);
        assert_eq!(c.surcharge_codes, ["FILE"], "an empty list is not given");
        assert!(!c.run_worker, "an unset flag is not given");
        assert_eq!(c.reconcile_interval, Duration::from_secs(900));
    }

    #[test]
    fn secrets_given_as_flags_are_handed_over_to_be_sealed() {
        let dir = tempfile::tempdir().expect("dir");
        let settings = parse(&[
            "--data-dir",
            &dir.path().display().to_string(),
            "--admin-token",
            "t0ken",
            "--webhook-signing-key",
            "k1=s1,k2=s2",
        ]);
        let (_, initial, sandbox) = settings.resolve().expect("resolves");
        assert!(sandbox);
        assert_eq!(initial.admin_token.as_deref(), Some("t0ken"));
        assert_eq!(
            initial.webhook_signing_keys,
            [("k1".into(), "s1".into()), ("k2".into(), "s2".into())]
        );
        let settings = parse(&["--webhook-signing-key", "no-secret"]);
        assert!(settings.secrets.into_initial().is_err());
    }

    #[test]
    fn help_explains_every_key_of_the_file() {
        let help = Cli::command().render_long_help().to_string();
        let Value::Object(keys) = to_json(&Settings::default()).expect("json") else {
            panic!("settings are not a map");
        };
        let flags: Vec<&str> = help
            .lines()
            .filter_map(|l| l.trim_start().split(' ').next())
            .collect();
        for key in keys.keys() {
            let flag = format!("--{}", key.replace('_', "-"));
            // A list's flag names one item: `--allowed-origin` for `allowed_origins`.
            let one = flag.trim_end_matches('s');
            assert!(
                flags.contains(&flag.as_str()) || flags.contains(&one),
                "{key} has no flag"
            );
        }
        assert!(
            help.contains("Secrets (sealed into the database)"),
            "{help}"
        );
    }
}
