//! `klarna-gateway doctor`: is this installation ready for its first shopper? Each check
//! does, harmlessly, what the gateway will do for real — log in to Odoo and read what it
//! reads, sign an update for the addon, call Klarna with its credentials, reach its own
//! public URL through the proxy — and says what to do when it fails. Nothing is written
//! anywhere but the gateway's own database, and only what `serve` would write on start.

use std::time::{Duration, SystemTime};

use klarna_client::{Environment, Region, base_url};
use serde::Serialize;
use serde_json::Value;

use crate::client_addr::ForwardedHeader;
use crate::config::Config;
use crate::db::{Backend, Db};
use crate::odoo::OdooError;
use crate::secrets;
use crate::state::{Gateway, InitialSecrets};
use crate::vault::Vault;

/// The addon versions this gateway speaks to (the addon's manifest version): the same
/// contract series, and at least the first one that answers the doctor's ping.
const ADDON_SERIES: &str = "18.0.1.";
const ADDON_FIRST_WITH_PING: &str = "18.0.1.1.0";

/// A clock further off than this is a failure: Odoo refuses updates signed more than 300 s
/// away from its clock, and a clock that drifted a minute keeps drifting.
const CLOCK_TOLERANCE: Duration = Duration::from_secs(60);

/// What the gateway reads in Odoo (`odoo.rs`), and what to grant when it may not (an
/// internal user in Invoicing: Billing reads them all, as tried on Odoo 18); the loyalty
/// models exist only when the Coupons & Loyalty module is installed.
const ODOO_READS: &[(&str, bool, &str)] = &[
    ("sale.order", false, "Invoicing: Billing"),
    ("sale.order.line", false, "Invoicing: Billing"),
    ("product.product", false, "Invoicing: Billing"),
    (
        "product.template.attribute.value",
        false,
        "Invoicing: Billing",
    ),
    ("account.tax", false, "Invoicing: Billing"),
    ("res.currency", false, "Internal User"),
    ("res.partner", false, "Internal User"),
    ("res.country.state", false, "Internal User"),
    ("payment.transaction", false, "Invoicing: Billing"),
    ("loyalty.reward", true, "Invoicing: Billing"),
    ("loyalty.program", true, "Invoicing: Billing"),
];

/// The groups that give a user exactly the reads above.
const ODOO_GROUPS_NEEDED: &str = "Invoicing: Billing (an internal user, no Sales group)";

/// A session id no merchant has: reading it is the harmless authenticated call.
const NO_SESSION: &str = "00000000-0000-4000-8000-000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = CheckStatus)]
pub enum Status {
    Pass,
    /// Works, but not as it should in production; does not fail the report.
    Warn,
    Fail,
    /// Not tried, because a check it depends on failed.
    Skip,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DoctorCheck)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do about a failure or a warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DoctorReport)]
pub struct Report {
    /// No check failed.
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Report {
    /// One line a check, `PASS`/`WARN`/`FAIL`/`SKIP` first, and the fix under it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let status = match c.status {
                Status::Pass => "PASS",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
                Status::Skip => "SKIP",
            };
            out.push_str(&format!("{status}  {:<18} {}\n", c.name, c.detail));
            if let Some(fix) = &c.fix {
                out.push_str(&format!("      {:<18} fix: {fix}\n", ""));
            }
        }
        let warnings = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Warn)
            .count();
        out.push_str(&match (self.ok, warnings) {
            (true, 0) => "ready: every check passed\n".to_owned(),
            (true, n) => format!("ready: no check failed; {n} warning(s) above\n"),
            (false, _) => "NOT READY: fix the failures above, then run doctor again\n".into(),
        });
        out
    }
}

#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn add(&mut self, name: &'static str, status: Status, detail: String, fix: Option<String>) {
        self.0.push(Check {
            name,
            status,
            detail,
            fix,
        });
    }
    fn pass(&mut self, name: &'static str, detail: String) {
        self.add(name, Status::Pass, detail, None);
    }
    fn fail(&mut self, name: &'static str, detail: String, fix: impl Into<String>) {
        self.add(name, Status::Fail, detail, Some(fix.into()));
    }
    fn skip(&mut self, names: &[&'static str], because: &str) {
        for name in names {
            self.add(name, Status::Skip, format!("not tried: {because}"), None);
        }
    }
    fn report(self) -> Report {
        Report {
            ok: self.0.iter().all(|c| c.status != Status::Fail),
            checks: self.0,
        }
    }
}

const AFTER_DATABASE: &[&str] = &[
    "secrets",
    "odoo.login",
    "odoo.rights",
    "odoo.addon",
    "odoo.pdf",
    "klarna.credentials",
    "clock",
    "public_url",
    "webhooks",
    "proxy",
];

/// Runs every check against this configuration (`klarna-gateway doctor`): the gateway is
/// opened as `serve` opens it.
pub async fn run(config: Config) -> Report {
    let mut checks = Checks::default();
    config_line(&config, &mut checks);
    if let Err(why) = database(&config, &mut checks).await {
        checks.skip(AFTER_DATABASE, &why);
        return checks.report();
    }
    let gateway = match open(&config, &mut checks).await {
        Ok(gw) => gw,
        Err(why) => {
            checks.skip(&AFTER_DATABASE[1..], &why);
            return checks.report();
        }
    };
    the_rest(&gateway, checks).await
}

/// The same checks from inside a running gateway (`GET /admin/doctor`, the addon's
/// "Check gateway" button): its database, its secrets, then the rest.
pub async fn run_in(gateway: &Gateway) -> Report {
    let mut checks = Checks::default();
    config_line(&gateway.config, &mut checks);
    if let Err(why) = schema(&gateway.db, &mut checks).await {
        checks.skip(AFTER_DATABASE, &why);
        return checks.report();
    }
    if let Err(why) = secrets_present(gateway, &mut checks) {
        checks.skip(&AFTER_DATABASE[1..], &why);
        return checks.report();
    }
    the_rest(gateway, checks).await
}

fn config_line(config: &Config, checks: &mut Checks) {
    // The database URL may hold a password: only its kind is named.
    let kind = Backend::of_url(&config.database_url).map_or("unknown", Backend::name);
    checks.pass(
        "config",
        format!(
            "settings read; data dir {}, {kind} database",
            config.data_dir.display()
        ),
    );
}

async fn the_rest(gateway: &Gateway, mut checks: Checks) -> Report {
    // The client the gateway talks to Odoo with: the same timeouts, one connection pool.
    let http = &gateway.http;
    let mut clocks = Vec::new();
    odoo(gateway, http, &mut checks, &mut clocks).await;
    klarna(gateway, http, &mut checks, &mut clocks).await;
    clock(&clocks, &mut checks);
    public_url(&gateway.config, http, &mut checks).await;
    checks.report()
}

async fn database(config: &Config, checks: &mut Checks) -> Result<(), String> {
    match Db::open(&config.database_url).await {
        Ok(db) => schema(&db, checks).await,
        Err(e) => {
            checks.fail(
                "database",
                format!("cannot open the database: {e}"),
                "check database_url and that the database server runs and lets this user in",
            );
            Err("the database cannot be opened".into())
        }
    }
}

async fn schema(db: &Db, checks: &mut Checks) -> Result<(), String> {
    let known = Db::known_schema(db.backend);
    let kind = db.backend.name();
    match db.schema_version().await {
        Ok(v) if v == known => {
            checks.pass("database", format!("{kind} answers; schema {v}, current"));
            Ok(())
        }
        Ok(0) => {
            checks.fail(
                "database",
                format!("{kind} answers but holds no gateway tables"),
                "run `klarna-gateway init` (or start `serve` once) with this configuration",
            );
            Err("the database is empty".into())
        }
        Ok(v) if v < known => {
            checks.fail(
                "database",
                format!("schema {v}; this gateway's is {known}"),
                "back it up (`klarna-gateway backup`), then start this version's `serve` once: it migrates forward",
            );
            Err("the database needs migrating".into())
        }
        Ok(v) => {
            checks.fail(
                "database",
                format!("schema {v} is newer than this gateway's {known}"),
                "run the gateway version that last wrote this database, or a newer one",
            );
            Err("the database is newer than this gateway".into())
        }
        Err(e) => {
            checks.fail(
                "database",
                format!("cannot read the schema version: {e}"),
                "check database_url",
            );
            Err("the database cannot be read".into())
        }
    }
}

/// The gateway as `serve` opens it: the master keys open the secrets, and every secret it
/// needs is there.
async fn open(config: &Config, checks: &mut Checks) -> Result<Gateway, String> {
    let opened = Vault::open_existing(config.master_keys.as_deref(), &config.data_dir);
    let gateway = match opened {
        Ok(vault) => Gateway::with_vault(config.clone(), InitialSecrets::default(), vault).await,
        Err(e) => Err(e),
    };
    let gateway = match gateway {
        Ok(gw) => gw,
        Err(e) => {
            checks.fail(
                "secrets",
                e.to_string(),
                "put back the master.keys the secrets were sealed with (or GATEWAY_MASTER_KEYS), or run `klarna-gateway init`",
            );
            return Err("the secrets cannot be opened".into());
        }
    };
    secrets_present(&gateway, checks)?;
    Ok(gateway)
}

fn secrets_present(gateway: &Gateway, checks: &mut Checks) -> Result<(), String> {
    let missing: Vec<&str> = [
        secrets::KLARNA_USERNAME,
        secrets::KLARNA_PASSWORD,
        secrets::ODOO_PASSWORD,
        secrets::ODOO_SHARED_SECRET,
        secrets::ADMIN_TOKEN,
    ]
    .into_iter()
    .filter(|name| gateway.secrets.get(name).is_none())
    .collect();
    let unopened = gateway.secrets.unopened();
    if !unopened.is_empty() {
        checks.fail(
            "secrets",
            format!("the master keys do not open {}", unopened.join(", ")),
            "put back the master keys they were sealed with, or give those secrets again",
        );
        Err("secrets cannot be opened".into())
    } else if missing.is_empty() {
        checks.pass(
            "secrets",
            format!(
                "the master keys open all {} secrets; none missing",
                gateway.secrets.names().len()
            ),
        );
        Ok(())
    } else {
        checks.fail(
            "secrets",
            format!("not set: {}", missing.join(", ")),
            "run `klarna-gateway init`, or `klarna-gateway secrets set NAME` with the value on standard input",
        );
        Err("secrets are missing".into())
    }
}

async fn odoo(
    gw: &Gateway,
    http: &reqwest::Client,
    checks: &mut Checks,
    clocks: &mut Vec<(&'static str, SystemTime)>,
) {
    let c = &gw.config;
    let logged_in = match gw.odoo.login().await {
        Ok(uid) => {
            checks.pass(
                "odoo.login",
                format!(
                    "logged in to {} (database {:?}) as {:?}, user id {uid}",
                    c.odoo_url, c.odoo_db, c.odoo_login
                ),
            );
            true
        }
        Err(e @ OdooError::Login { .. }) => {
            checks.fail(
                "odoo.login",
                e.to_string(),
                "check odoo_db and odoo_login, and give the password (or an API key) with `klarna-gateway secrets set odoo.password`",
            );
            checks.skip(&["odoo.rights"], "no login");
            false
        }
        Err(e) => {
            checks.fail(
                "odoo.login",
                format!("{e} at {}", c.odoo_url),
                "check odoo_url, and that Odoo runs and is reachable from this machine",
            );
            checks.skip(&["odoo.rights"], "no login");
            false
        }
    };
    if logged_in {
        rights(gw, checks).await;
    }
    addon(gw, http, checks, clocks).await;
    if logged_in {
        pdf(gw, checks).await;
    } else {
        checks.skip(&["odoo.pdf"], "no login");
    }
}

/// An order paid with Klarna is confirmed by Odoo, which e-mails the confirmation with its
/// PDF: without wkhtmltopdf Odoo refuses to confirm, and the shopper waits on "your payment
/// has not been processed yet" (seen on a real Odoo 18).
async fn pdf(gw: &Gateway, checks: &mut Checks) {
    match gw.odoo.pdf_state().await.as_deref() {
        Ok("ok") => checks.pass("odoo.pdf", "Odoo renders PDFs (wkhtmltopdf ok)".into()),
        Ok("workers") => checks.add(
            "odoo.pdf",
            Status::Warn,
            "Odoo runs with one worker: rendering a PDF can stall it".into(),
            Some("run Odoo with workers = 0 (threaded) or 2 and more".into()),
        ),
        Ok(state) => checks.fail(
            "odoo.pdf",
            format!(
                "Odoo cannot render PDFs (wkhtmltopdf: {state}): orders paid with Klarna stay quotations when the confirmation e-mail carries the PDF"
            ),
            "install wkhtmltopdf (0.12.6, patched Qt) on Odoo's server and restart Odoo",
        ),
        Err(e) => checks.add(
            "odoo.pdf",
            Status::Warn,
            format!("could not ask Odoo whether it renders PDFs: {e}"),
            Some("check that wkhtmltopdf is installed on Odoo's server".into()),
        ),
    }
}

async fn rights(gw: &Gateway, checks: &mut Checks) {
    let mut refused = Vec::new();
    let mut groups = Vec::new();
    let mut absent = Vec::new();
    for &(model, optional, group) in ODOO_READS {
        match gw.odoo.try_read(model).await {
            Ok(()) => {}
            Err(OdooError::Server { name, .. }) if name.ends_with("AccessError") => {
                refused.push(model);
                if !groups.contains(&group) {
                    groups.push(group);
                }
            }
            Err(_) if optional => absent.push(model),
            Err(e) => {
                refused.push(model);
                groups.push("(see the error)");
                tracing::warn!(model, "doctor: reading failed: {e}");
            }
        }
    }
    let login = &gw.config.odoo_login;
    if refused.is_empty() {
        let mut detail = format!(
            "{login:?} may read all {} models the gateway reads",
            ODOO_READS.len() - absent.len()
        );
        if !absent.is_empty() {
            detail.push_str(&format!(
                " ({} not installed, not needed)",
                absent.join(", ")
            ));
        }
        // The gateway reads, and writes nothing through this user: an administrator's
        // password on a second machine opens all of Odoo for nothing in return.
        if gw
            .odoo
            .has_group("base.group_system")
            .await
            .unwrap_or(false)
        {
            checks.add(
                "odoo.rights",
                Status::Warn,
                format!("{detail}, and is an Odoo administrator: far more than it needs"),
                Some(format!(
                    "make a user for the gateway with only {ODOO_GROUPS_NEEDED}, and run init with its login"
                )),
            );
            return;
        }
        checks.pass("odoo.rights", detail);
    } else {
        checks.fail(
            "odoo.rights",
            format!("{login:?} may not read {}", refused.join(", ")),
            format!(
                "in Odoo, Settings > Users > {login}: add {}",
                groups.join(", ")
            ),
        );
    }
}

async fn addon(
    gw: &Gateway,
    http: &reqwest::Client,
    checks: &mut Checks,
    clocks: &mut Vec<(&'static str, SystemTime)>,
) {
    let url = &gw.config.odoo_notify_url;
    let Some(secret) = gw.secrets.get(secrets::ODOO_SHARED_SECRET) else {
        checks.skip(&["odoo.addon"], "no shared secret");
        return;
    };
    let ping = br#"{"event":"ping"}"#.to_vec();
    let response = match crate::odoo_sync::signed_update(http, url, &secret, ping)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            checks.fail(
                "odoo.addon",
                format!("cannot reach {url}: {}", cause(e)),
                "check odoo_url (or odoo_notify_url)",
            );
            return;
        }
    };
    if let Some(date) = date_of(&response) {
        clocks.push(("Odoo", date));
    }
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    let message = answer["message"].as_str().unwrap_or("");
    match (status, answer["status"].as_str()) {
        (200, Some("pong")) => {
            let version = answer["version"].as_str().unwrap_or("");
            if version.starts_with(ADDON_SERIES) {
                checks.pass(
                    "odoo.addon",
                    format!("payment_klarna {version} answers; the shared secret matches"),
                );
            } else {
                checks.fail(
                    "odoo.addon",
                    format!("payment_klarna {version:?} answers, but this gateway speaks to {ADDON_SERIES}x"),
                    "install the payment_klarna that came with this gateway (Apps > Upgrade)",
                );
            }
        }
        (401, _) if message.contains("does not match") => checks.fail(
            "odoo.addon",
            "the addon refused the signature: the shared secret differs from the Klarna provider's in Odoo"
                .into(),
            "paste the gateway's shared secret (printed by `klarna-gateway init`) into the Klarna provider's Shared Secret, and enable the provider (or Test mode)",
        ),
        (401, _) => checks.fail(
            "odoo.addon",
            format!("the addon refused the signature: {message}"),
            "check that the Klarna provider is enabled (or in Test mode) with a shared secret, and this machine's clock",
        ),
        (404, _) => checks.fail(
            "odoo.addon",
            format!("no addon route at {url} (404)"),
            "install payment_klarna in Odoo (Apps), or correct odoo_notify_url",
        ),
        (200 | 400, _) => checks.fail(
            "odoo.addon",
            format!("the shared secret matches, but the addon is older than {ADDON_FIRST_WITH_PING}"),
            "upgrade payment_klarna to the version that came with this gateway (Apps > Upgrade)",
        ),
        _ => checks.fail(
            "odoo.addon",
            format!("the addon answered HTTP {status}: {message}"),
            "look at Odoo's log for the request to /payment/klarna/gateway",
        ),
    }
}

/// Klarna's hosts for the environment `url` is in, one a region: Klarna's own when `url`
/// is one of them, else (the sandbox) `url`, `url/na` and `url/oc`.
fn regional_hosts(url: &str) -> Vec<(Region, String)> {
    let url = url.trim_end_matches('/');
    let regions = [Region::Eu, Region::Na, Region::Oc];
    for environment in [Environment::Live, Environment::Playground] {
        if regions.iter().any(|&r| base_url(r, environment) == url) {
            return regions
                .iter()
                .map(|&r| (r, base_url(r, environment).to_owned()))
                .collect();
        }
    }
    let base = url
        .strip_suffix("/na")
        .or_else(|| url.strip_suffix("/oc"))
        .unwrap_or(url);
    vec![
        (Region::Eu, base.to_owned()),
        (Region::Na, format!("{base}/na")),
        (Region::Oc, format!("{base}/oc")),
    ]
}

/// The region whose host `url` is (Klarna's hosts, or the sandbox's `/na` and `/oc`).
pub fn region_of(url: &str) -> Region {
    let url = url.trim_end_matches('/');
    regional_hosts(url)
        .into_iter()
        .find(|(_, host)| host == url)
        .map_or(Region::Eu, |(region, _)| region)
}

fn region_name(region: Region) -> &'static str {
    match region {
        Region::Eu => "EU",
        Region::Na => "NA",
        Region::Oc => "OC",
    }
}

/// The status of reading a session nobody has: 404 once Klarna knows the credentials.
async fn klarna_probe(
    http: &reqwest::Client,
    url: &str,
    username: &str,
    password: &str,
) -> Result<(u16, Option<SystemTime>), String> {
    let response = http
        .get(format!("{url}/payments/v1/sessions/{NO_SESSION}"))
        .basic_auth(username, Some(password))
        .send()
        .await
        .map_err(cause)?;
    Ok((response.status().as_u16(), date_of(&response)))
}

async fn klarna(
    gw: &Gateway,
    http: &reqwest::Client,
    checks: &mut Checks,
    clocks: &mut Vec<(&'static str, SystemTime)>,
) {
    let url = gw.config.klarna_url.trim_end_matches('/');
    let (Some(username), Some(password)) = (
        gw.secrets.get(secrets::KLARNA_USERNAME),
        gw.secrets.get(secrets::KLARNA_PASSWORD),
    ) else {
        checks.skip(&["klarna.credentials"], "no Klarna credentials");
        return;
    };
    let hosts = regional_hosts(url);
    let here = region_name(region_of(url));
    match klarna_probe(http, url, &username, &password).await {
        Ok((404, date)) => {
            if let Some(date) = date {
                clocks.push(("Klarna", date));
            }
            checks.pass(
                "klarna.credentials",
                format!("Klarna accepts the credentials at {url} ({here})"),
            );
        }
        Ok((401 | 403, date)) => {
            if let Some(date) = date {
                clocks.push(("Klarna", date));
            }
            // Credentials belong to one region: find the one that knows them.
            for (region, host) in hosts.iter().filter(|(_, h)| h != url) {
                if let Ok((404, _)) = klarna_probe(http, host, &username, &password).await {
                    checks.fail(
                        "klarna.credentials",
                        format!(
                            "the credentials are for Klarna's {} region, but klarna_url is the {here} host {url}",
                            region_name(*region)
                        ),
                        if url.ends_with(".klarna.com") {
                            format!(
                                "set klarna_url = \"{host}\" (or run `klarna-gateway init --klarna-region {} --force`)",
                                region_name(*region).to_lowercase()
                            )
                        } else {
                            format!("set klarna_url = \"{host}\"")
                        },
                    );
                    return;
                }
            }
            checks.fail(
                "klarna.credentials",
                format!("Klarna refused the credentials at {url} ({here}) in every region"),
                "check klarna.username and klarna.password (`klarna-gateway secrets set`): playground credentials do not work in production, nor the other way round",
            );
        }
        Ok((status, _)) => checks.fail(
            "klarna.credentials",
            format!("Klarna answered HTTP {status} at {url}"),
            "check klarna_url: it is Klarna's API host for your region and environment",
        ),
        Err(e) => checks.fail(
            "klarna.credentials",
            format!("cannot reach Klarna at {url}: {e}"),
            "check klarna_url, DNS and the outbound firewall (HTTPS to Klarna)",
        ),
    }
}

/// A transport error with its causes (`error sending request: … Connection refused`),
/// without the URL, which the message names beside it.
fn cause(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn date_of(response: &reqwest::Response) -> Option<SystemTime> {
    let value = response.headers().get(reqwest::header::DATE)?;
    httpdate::parse_http_date(value.to_str().ok()?).ok()
}

fn clock(clocks: &[(&'static str, SystemTime)], checks: &mut Checks) {
    if clocks.is_empty() {
        checks.skip(&["clock"], "no answer from Klarna or Odoo carried a Date");
        return;
    }
    let now = SystemTime::now();
    let mut worst = (0_i64, "");
    let mut seen = Vec::new();
    for &(peer, date) in clocks {
        // Date has whole seconds: a difference under two seconds is none.
        let off = match now.duration_since(date) {
            Ok(ahead) => i64::try_from(ahead.as_secs()).unwrap_or(i64::MAX),
            Err(behind) => -i64::try_from(behind.duration().as_secs()).unwrap_or(i64::MAX),
        };
        seen.push(format!("{off:+} s against {peer}"));
        if off.abs() > worst.0.abs() {
            worst = (off, peer);
        }
    }
    let tolerance = i64::try_from(CLOCK_TOLERANCE.as_secs()).unwrap_or(60);
    if worst.0.abs() <= tolerance {
        checks.pass(
            "clock",
            format!(
                "this machine's clock is {} (tolerance {tolerance} s)",
                seen.join(", ")
            ),
        );
    } else {
        checks.fail(
            "clock",
            format!(
                "this machine's clock is {} s off {}'s (tolerance {tolerance} s)",
                worst.0, worst.1
            ),
            "keep the clock synchronised (systemd-timesyncd or chrony); Odoo refuses updates signed 300 s off its clock",
        );
    }
}

async fn public_url(config: &Config, http: &reqwest::Client, checks: &mut Checks) {
    let Some(public) = config
        .public_url
        .as_deref()
        .map(|u| u.trim_end_matches('/'))
    else {
        checks.add(
            "public_url",
            Status::Warn,
            "public_url is not set: sessions name no notification URL, and the proxy cannot be checked".into(),
            Some("set public_url to the https:// address Klarna and shoppers reach the gateway at".into()),
        );
        checks.skip(&["webhooks", "proxy"], "no public_url");
        return;
    };
    let health = http.get(format!("{public}/healthz")).send().await;
    match health {
        Ok(r) if r.status().is_success() => {
            if public.starts_with("https://") {
                checks.pass("public_url", format!("{public}/healthz answers"));
            } else {
                checks.add(
                    "public_url",
                    Status::Warn,
                    format!("{public}/healthz answers, over plain HTTP"),
                    Some("Klarna calls back over HTTPS only: put the gateway behind a TLS proxy and name its https:// address".into()),
                );
            }
        }
        Ok(r) => {
            checks.fail(
                "public_url",
                format!("{public}/healthz answered HTTP {}", r.status().as_u16()),
                "check that the proxy passes /healthz and /klarna/ to the gateway",
            );
            checks.skip(
                &["webhooks", "proxy"],
                "the public URL does not reach the gateway",
            );
            return;
        }
        Err(e) => {
            checks.fail(
                "public_url",
                format!("cannot reach {public}/healthz: {}", cause(e)),
                "start `klarna-gateway serve` (or its service), then run doctor again; behind a proxy, check DNS and the proxy",
            );
            checks.skip(
                &["webhooks", "proxy"],
                "the public URL does not reach the gateway",
            );
            return;
        }
    }
    webhooks(public, http, checks).await;
    let seen: Value = match http.get(format!("{public}/healthz/client")).send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    proxy(config, &seen, checks);
}

/// Klarna's webhooks reach the gateway through the public URL: an unsigned, empty event is
/// refused by the gateway itself (its JSON refusal has a `code`), not by the proxy.
async fn webhooks(public: &str, http: &reqwest::Client, checks: &mut Checks) {
    let url = format!("{public}/klarna/webhook");
    let answer = http
        .post(&url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await;
    match answer {
        Ok(r) => {
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if body["code"].is_string() {
                checks.pass(
                    "webhooks",
                    format!(
                        "{url} reaches the gateway (an unsigned test event: {status} {})",
                        body["code"]
                    ),
                );
            } else {
                checks.fail(
                    "webhooks",
                    format!("{url} answered HTTP {status}, and not from the gateway"),
                    "pass /klarna/ to the gateway in the proxy (deploy/nginx/klarna-gateway.conf)",
                );
            }
        }
        Err(e) => checks.fail(
            "webhooks",
            format!("cannot reach {url}: {}", cause(e)),
            "pass /klarna/ to the gateway in the proxy (deploy/nginx/klarna-gateway.conf)",
        ),
    }
}

/// Compares what a request through the public URL showed the gateway with the settings.
fn proxy(config: &Config, seen: &Value, checks: &mut Checks) {
    let Some(peer) = seen["peer"].as_str() else {
        checks.skip(&["proxy"], "the gateway did not say what it saw");
        return;
    };
    let trusted = seen["peer_is_trusted_proxy"].as_bool().unwrap_or(false);
    let (xff, fwd) = (
        seen["x_forwarded_for"].as_bool().unwrap_or(false),
        seen["forwarded"].as_bool().unwrap_or(false),
    );
    let header = config.frontdoor.trusted_proxies.header;
    let (named, name) = match header {
        ForwardedHeader::XForwardedFor => (xff, "X-Forwarded-For"),
        ForwardedHeader::Forwarded => (fwd, "Forwarded"),
    };
    let client = seen["client"].as_str().unwrap_or("?");
    match (trusted, xff || fwd) {
        (false, false) => checks.pass(
            "proxy",
            format!("no proxy between here and the gateway: the caller {peer} is the client"),
        ),
        (false, true) => checks.fail(
            "proxy",
            format!(
                "requests reach the gateway through a proxy at {peer}, which is not in trusted_proxies: every shopper would count as {peer} (one rate limit and one block for all)"
            ),
            format!("add trusted_proxies = [\"{peer}\"]"),
        ),
        (true, _) if !named => checks.fail(
            "proxy",
            format!("the proxy at {peer} is trusted but sends no {name} header"),
            if xff || fwd {
                format!(
                    "set forwarded_header = \"{}\" to the header the proxy sends",
                    if xff { "x-forwarded-for" } else { "forwarded" }
                )
            } else {
                "make the proxy send it (nginx: proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for)".into()
            },
        ),
        (true, _) => checks.pass(
            "proxy",
            format!("through the trusted proxy at {peer} ({name}): the gateway sees this caller as {client}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn klarnas_own_hosts_map_to_their_siblings_and_others_to_path_prefixes() {
        let na = regional_hosts("https://api-na.playground.klarna.com/");
        assert_eq!(na[0].1, "https://api.playground.klarna.com");
        assert_eq!(na[2].1, "https://api-oc.playground.klarna.com");
        let live = regional_hosts("https://api.klarna.com");
        assert_eq!(live[1].1, "https://api-na.klarna.com");
        let sandbox = regional_hosts("http://127.0.0.1:7070/na");
        assert_eq!(
            sandbox.iter().map(|(_, h)| h.as_str()).collect::<Vec<_>>(),
            [
                "http://127.0.0.1:7070",
                "http://127.0.0.1:7070/na",
                "http://127.0.0.1:7070/oc"
            ]
        );
    }

    fn proxy_check(trusted: &[&str], seen: Value) -> Check {
        let mut config = Config::sandbox("sqlite::memory:", std::path::Path::new("."), "x");
        config.frontdoor.trusted_proxies.networks = trusted
            .iter()
            .map(|t| t.parse().expect("network"))
            .collect();
        let mut checks = Checks::default();
        proxy(&config, &seen, &mut checks);
        checks.0.remove(0)
    }

    #[test]
    fn the_proxy_check_names_the_untrusted_proxy_and_the_missing_header() {
        let direct = json!({"peer": "203.0.113.9", "peer_is_trusted_proxy": false,
            "x_forwarded_for": false, "forwarded": false, "client": "203.0.113.9"});
        assert_eq!(proxy_check(&[], direct).status, Status::Pass);

        let untrusted = json!({"peer": "10.0.0.5", "peer_is_trusted_proxy": false,
            "x_forwarded_for": true, "forwarded": false, "client": "10.0.0.5"});
        let c = proxy_check(&[], untrusted);
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("10.0.0.5"), "{}", c.detail);
        assert_eq!(
            c.fix.as_deref(),
            Some("add trusted_proxies = [\"10.0.0.5\"]")
        );

        let wrong_header = json!({"peer": "10.0.0.5", "peer_is_trusted_proxy": true,
            "x_forwarded_for": false, "forwarded": true, "client": "10.0.0.5"});
        let c = proxy_check(&["10.0.0.0/8"], wrong_header);
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.fix
                .as_deref()
                .is_some_and(|f| f.contains("\"forwarded\""))
        );

        let good = json!({"peer": "10.0.0.5", "peer_is_trusted_proxy": true,
            "x_forwarded_for": true, "forwarded": false, "client": "198.51.100.7"});
        let c = proxy_check(&["10.0.0.0/8"], good);
        assert_eq!(c.status, Status::Pass);
        assert!(c.detail.contains("198.51.100.7"));
    }

    #[test]
    fn a_clock_a_minute_and_a_half_off_fails_and_names_the_peer() {
        let mut checks = Checks::default();
        let now = SystemTime::now();
        clock(
            &[("Klarna", now), ("Odoo", now - Duration::from_secs(90))],
            &mut checks,
        );
        let c = &checks.0[0];
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("Odoo"), "{}", c.detail);
        let mut checks = Checks::default();
        clock(&[("Klarna", now + Duration::from_secs(3))], &mut checks);
        assert_eq!(checks.0[0].status, Status::Pass);
    }

    #[test]
    fn a_warning_does_not_fail_the_report_and_a_failure_does() {
        let mut checks = Checks::default();
        checks.add("public_url", Status::Warn, "w".into(), None);
        checks.skip(&["proxy"], "x");
        assert!(checks.report().ok);
        let mut checks = Checks::default();
        checks.fail("clock", "off".into(), "sync");
        let report = checks.report();
        assert!(!report.ok);
        assert!(report.render().contains("FAIL  clock"));
        assert!(report.render().contains("fix: sync"));
    }
}
