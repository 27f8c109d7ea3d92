//! Going live as a merchant does: `klarna-gateway init` writes the configuration and seals
//! the secrets, `serve` runs it, and `doctor` says whether it is ready — green for a good
//! set-up, and naming the fault for the three set-ups merchants get wrong most: an Odoo
//! user without a right the gateway needs, a shared secret that differs from Odoo's, and
//! Klarna credentials of another region.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::Arc;

use klarna_sandbox::{Region, Sandbox, SandboxConfig};
use serde_json::Value;
use tokio::net::TcpListener;

const BIN: &str = env!("CARGO_BIN_EXE_klarna-gateway");

fn command(args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(BIN);
    command
        .args(args)
        .stdin(Stdio::null())
        .env_remove("GATEWAY_MASTER_KEYS")
        .env_remove("GATEWAY_CONFIG")
        .env("RUST_LOG", "error");
    command
}

async fn run(mut command: std::process::Command) -> Output {
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("joined")
        .expect("run klarna-gateway")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `init` as a merchant runs it, with the sandbox as Odoo and as Klarna.
async fn init(dir: &Path, odoo_and_klarna: &str, gateway: SocketAddr, extra: &[&str]) -> Output {
    init_on(dir, odoo_and_klarna, "odoo", gateway, None, extra).await
}

async fn init_on(
    dir: &Path,
    odoo_and_klarna: &str,
    odoo_db: &str,
    gateway: SocketAddr,
    public: Option<&str>,
    extra: &[&str],
) -> Output {
    let config = dir.join("gateway.toml");
    let data = dir.join("data");
    let public = public.map_or_else(|| format!("http://{gateway}"), str::to_owned);
    let listen = gateway.to_string();
    let mut args = vec![
        "init",
        "--config",
        config.to_str().expect("utf-8"),
        "--data-dir",
        data.to_str().expect("utf-8"),
        "--listen",
        &listen,
        "--metrics-listen",
        "off",
        "--odoo-url",
        odoo_and_klarna,
        "--odoo-db",
        odoo_db,
        "--odoo-login",
        "admin",
        "--klarna-url",
        odoo_and_klarna,
        "--public-url",
        &public,
    ];
    args.extend_from_slice(extra);
    let mut c = command(&args);
    c.env("KLARNA_USERNAME", "sandbox-merchant")
        .env("KLARNA_PASSWORD", "sandbox-password")
        .env("ODOO_PASSWORD", "admin");
    run(c).await
}

fn shared_secret(init_output: &Output) -> String {
    String::from_utf8_lossy(&init_output.stdout)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Shared Secret")
                .map(|s| s.trim().to_owned())
        })
        .expect("init prints the shared secret")
}

struct Served {
    child: Child,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(config: &Path, addr: SocketAddr) -> Served {
    let child = command(&["serve", "--config", config.to_str().expect("utf-8")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let served = Served { child };
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return served;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the gateway did not start");
}

async fn sandbox(listener: TcpListener, config: SandboxConfig) {
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let sandbox = Arc::new(Sandbox::new(config, url));
    tokio::spawn(klarna_sandbox::serve(
        listener,
        sandbox,
        std::future::pending(),
    ));
}

/// One merchant's installation: init, then the sandbox set up as `broken` says (given the
/// shared secret init generated), then serve, then doctor; then, when the doctor is green,
/// the first test payment, which Odoo must see authorized.
async fn doctor_of(broken: impl FnOnce(&mut SandboxConfig, &str)) -> (Output, Value) {
    doctor_with(broken, None).await
}

/// [`doctor_of`], with the Odoo stand-in's settings (`PUT /_sandbox/odoo/settings`) changed
/// before the gateway starts.
async fn doctor_with(
    broken: impl FnOnce(&mut SandboxConfig, &str),
    odoo_settings: Option<Value>,
) -> (Output, Value) {
    let dir = tempfile::tempdir().expect("dir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let gateway: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let out = init(dir.path(), &url, gateway, &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let secret = shared_secret(&out);
    let mut config = SandboxConfig {
        odoo_shared_secret: secret.clone(),
        lockout_after: 0,
        ..SandboxConfig::default()
    };
    broken(&mut config, &secret);
    sandbox(listener, config).await;
    if let Some(settings) = odoo_settings {
        let answer = reqwest::Client::new()
            .put(format!("{url}/_sandbox/odoo/settings"))
            .json(&settings)
            .send()
            .await
            .expect("settings");
        assert!(answer.status().is_success(), "{settings}");
    }
    let file = dir.path().join("gateway.toml");
    let _served = serve(&file, gateway).await;
    let (out, report) = doctor_json(&file).await;
    if report["ok"] == true {
        let http = reqwest::Client::new();
        let gateway_url = format!("http://{gateway}");
        common::pay(&http, &gateway_url, &url, common::ORDER, common::TOKEN).await;
        common::wait_until("Odoo sees the payment authorized", async || {
            let txs = common::odoo_transactions(&http, &url, common::ORDER).await;
            match txs.first() {
                Some(tx) if tx["state"] == "authorized" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }
    (out, report)
}

async fn doctor_json(config: &Path) -> (Output, Value) {
    let out = run(command(&[
        "doctor",
        "--config",
        config.to_str().expect("utf-8"),
        "--json",
    ]))
    .await;
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}\n{}", text(&out)));
    (out, report)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

fn failed(report: &Value) -> Vec<&str> {
    report["checks"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter(|c| c["status"] == "fail")
                .filter_map(|c| c["name"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_good_set_up_is_green_and_each_broken_one_names_its_fault() {
    let (out, report) = doctor_of(|_, _| {}).await;
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["ok"], true, "{report:#}");
    for name in [
        "config",
        "database",
        "secrets",
        "odoo.login",
        "odoo.addon",
        "odoo.pdf",
        "klarna.credentials",
        "clock",
        "webhooks",
        "proxy",
    ] {
        assert_eq!(check(&report, name)["status"], "pass", "{report:#}");
    }
    // Plain HTTP on loopback works, but is not what Klarna calls back to.
    assert_eq!(check(&report, "public_url")["status"], "warn");
    // The sandbox's Odoo user is `admin`: it may read everything, which is more than it needs.
    let rights = check(&report, "odoo.rights");
    assert_eq!(rights["status"], "warn", "{rights}");
    assert!(
        rights["detail"]
            .as_str()
            .is_some_and(|d| d.contains("administrator"))
    );
    assert!(
        check(&report, "odoo.addon")["detail"]
            .as_str()
            .is_some_and(|d| d.contains("18.0.1.3.0"))
    );

    // An Odoo user without Invoicing / Billing may not read payment.transaction.
    let (out, report) = doctor_of(|c, _| c.odoo_billing_group = false).await;
    assert!(!out.status.success());
    assert_eq!(failed(&report), ["odoo.rights"], "{report:#}");
    let rights = check(&report, "odoo.rights");
    assert!(
        rights["detail"]
            .as_str()
            .is_some_and(|d| d.contains("payment.transaction"))
    );
    assert!(
        rights["fix"]
            .as_str()
            .is_some_and(|f| f.contains("Invoicing: Billing"))
    );

    // Odoo's provider holds another shared secret than the gateway's.
    let (out, report) = doctor_of(|c, _| c.odoo_shared_secret = "pasted-wrongly".into()).await;
    assert!(!out.status.success());
    assert_eq!(failed(&report), ["odoo.addon"], "{report:#}");
    assert!(
        check(&report, "odoo.addon")["detail"]
            .as_str()
            .is_some_and(|d| d.contains("shared secret differs"))
    );

    // The merchant account is in North America; klarna_url is the European host.
    let (out, report) = doctor_of(|c, _| c.region = Region::Na).await;
    assert!(!out.status.success());
    assert_eq!(failed(&report), ["klarna.credentials"], "{report:#}");
    let klarna = check(&report, "klarna.credentials");
    assert!(
        klarna["detail"]
            .as_str()
            .is_some_and(|d| d.contains("NA region")),
        "{klarna}"
    );
    assert!(
        klarna["fix"].as_str().is_some_and(|f| f.contains("/na\"")),
        "{klarna}"
    );

    // An Odoo without wkhtmltopdf cannot confirm an order whose confirmation carries the
    // PDF: a real Odoo 18 left the shopper waiting.
    let no_pdf = serde_json::json!({"wkhtmltopdf": "install"});
    let (out, report) = doctor_with(|_, _| {}, Some(no_pdf)).await;
    assert!(!out.status.success());
    assert_eq!(failed(&report), ["odoo.pdf"], "{report:#}");
    assert!(
        check(&report, "odoo.pdf")["fix"]
            .as_str()
            .is_some_and(|f| f.contains("install wkhtmltopdf"))
    );

    // The secret never reaches the report.
    let (_, report) = doctor_of(|_, _| {}).await;
    assert!(!report.to_string().contains("sandbox-password"));
}

#[tokio::test]
async fn init_is_idempotent_refuses_to_change_a_value_without_force_and_asks_for_what_is_missing() {
    let dir = tempfile::tempdir().expect("dir");
    let url = "http://127.0.0.1:9";
    let gateway: SocketAddr = ([127, 0, 0, 1], 7080).into();
    let file: PathBuf = dir.path().join("gateway.toml");

    // Without a terminal to ask at, missing settings are named and nothing is written.
    let out = run(command(&[
        "init",
        "--config",
        file.to_str().expect("utf-8"),
        "--odoo-url",
        url,
    ]))
    .await;
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("--odoo-db") && said.contains("--public-url"),
        "{said}"
    );
    assert!(!file.exists());

    let first = init(dir.path(), url, gateway, &[]).await;
    assert!(first.status.success(), "{}", text(&first));
    let written = std::fs::read(&file).expect("written");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the file is the owner's only");
        let keys = dir.path().join("data/master.keys");
        let mode = std::fs::metadata(keys).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // The data dir and the database it made are the owner's too, whatever the umask.
        for (path, want) in [("data", 0o700), ("data/gateway.db", 0o600)] {
            let mode = std::fs::metadata(dir.path().join(path))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, want, "{path}");
        }
    }
    let secret = shared_secret(&first);
    assert!(secret.len() >= 43, "256 bits: {secret}");
    assert!(text(&first).contains("odoo.shared_secret, admin.token generated"));
    // The admin token is shown once, when it is made.
    assert!(
        text(&first).contains("The admin API's token"),
        "{}",
        text(&first)
    );

    // Again, the same: nothing changes, the same secret is printed.
    let again = init(dir.path(), url, gateway, &[]).await;
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("gateway.toml: unchanged"),
        "{}",
        text(&again)
    );
    assert_eq!(std::fs::read(&file).expect("read"), written);
    assert_eq!(shared_secret(&again), secret);
    assert!(
        !text(&again).contains("The admin API's token"),
        "shown once"
    );

    // Another Odoo database: refused without --force, naming the key; nothing changes.
    let other = init_on(dir.path(), url, "other", gateway, None, &[]).await;
    assert!(!other.status.success());
    let said = text(&other);
    assert!(
        said.contains("odoo_db") && said.contains("--force"),
        "{said}"
    );
    assert_eq!(std::fs::read(&file).expect("read"), written);

    let forced = init_on(dir.path(), url, "other", gateway, None, &["--force"]).await;
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(
        text(&forced).contains("updated: odoo_db"),
        "{}",
        text(&forced)
    );
    let now = std::fs::read_to_string(&file).expect("read");
    assert!(now.contains("odoo_db = \"other\""), "{now}");
    assert_eq!(shared_secret(&forced), secret, "a generated secret is kept");
}

/// deploy/nginx/klarna-gateway.conf as it runs here: plain HTTP on `port` (the TLS lines
/// and the port-80 redirect are the only lines taken out), passing to `gateway`.
fn nginx_site_for_test(port: u16, gateway: SocketAddr) -> String {
    let site = include_str!("../../../deploy/nginx/klarna-gateway.conf");
    let main = site
        .split("\nserver {")
        .nth(1)
        .expect("the site's first server block");
    let main = main
        .lines()
        .filter(|l| !l.trim_start().starts_with("ssl_") && !l.contains("listen [::]"))
        .map(|l| {
            if l.trim_start().starts_with("listen 443 ssl;") {
                format!("    listen 127.0.0.1:{port};")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let upstream = site
        .split("\nserver {")
        .next()
        .expect("upstream")
        .replace("127.0.0.1:7080", &gateway.to_string());
    format!("{upstream}\nserver {{{main}")
}

#[tokio::test]
async fn through_a_real_nginx_the_doctor_finds_the_untrusted_proxy_and_admin_is_odoos_alone() {
    let Some(nginx) = common::tool("nginx") else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let gateway: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let conf = dir.path().join("nginx.conf");
    let prefix = dir.path().display().to_string();
    std::fs::write(
        &conf,
        format!(
            "pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\ndaemon off;\nevents {{}}\n\
             http {{\n access_log off;\n client_body_temp_path {prefix}/body;\n \
             proxy_temp_path {prefix}/proxy;\n fastcgi_temp_path {prefix}/fastcgi;\n \
             uwsgi_temp_path {prefix}/uwsgi;\n scgi_temp_path {prefix}/scgi;\n{}\n}}\n",
            nginx_site_for_test(port, gateway)
        ),
    )
    .expect("write");
    let _proxy = Nginx(
        std::process::Command::new(&nginx)
            .args(["-p", &prefix, "-c"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx"),
    );

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let public = format!("http://127.0.0.1:{port}");
    let out = init_on(dir.path(), &url, "odoo", gateway, Some(&public), &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let config = SandboxConfig {
        odoo_shared_secret: shared_secret(&out),
        lockout_after: 0,
        ..SandboxConfig::default()
    };
    sandbox(listener, config).await;
    let file = dir.path().join("gateway.toml");
    let doctor = || async {
        let (out, report) = doctor_json(&file).await;
        (out.status.success(), report)
    };

    {
        let _served = serve(&file, gateway).await;
        let (ok, report) = doctor().await;
        assert!(!ok);
        assert_eq!(failed(&report), ["proxy"], "{report:#}");
        let proxy_check = check(&report, "proxy");
        assert!(
            proxy_check["fix"]
                .as_str()
                .is_some_and(|f| f.contains("trusted_proxies = [\"127.0.0.1\"]")),
            "{proxy_check}"
        );

        // What nginx passes on, and what it keeps from everyone but Odoo's server.
        let http = reqwest::Client::new();
        let status = |path: &'static str| {
            let http = http.clone();
            let public = public.clone();
            async move {
                http.get(format!("{public}{path}"))
                    .send()
                    .await
                    .expect("through nginx")
                    .status()
                    .as_u16()
            }
        };
        assert_eq!(status("/healthz").await, 200);
        assert_eq!(
            check(&report, "webhooks")["status"],
            "pass",
            "through nginx"
        );
        assert_eq!(status("/admin/status").await, 403, "only Odoo's address");
        assert_eq!(status("/").await, 404);
        assert_eq!(status("/metrics").await, 404);
    }

    // The operator follows the fix; the doctor is then green through the proxy.
    let out = init_on(
        dir.path(),
        &url,
        "odoo",
        gateway,
        Some(&public),
        &["--trusted-proxies", "127.0.0.1"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let _served = serve(&file, gateway).await;
    let (ok, report) = doctor().await;
    assert!(ok, "{report:#}");
    assert_eq!(check(&report, "proxy")["status"], "pass");
}

/// nginx's master process, stopped as nginx is meant to be (SIGQUIT) so that its workers
/// stop with it; a killed master leaves them running.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-QUIT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// At a terminal, init asks for what the flags did not give — the passwords without
/// echoing them — and the answers end up where the flags' would have.
#[tokio::test]
async fn at_a_terminal_init_asks_for_what_is_missing() {
    let Some(script) = common::tool("script") else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("gateway.toml");
    let data = dir.path().join("data");
    let init = format!(
        "{BIN} init --config {} --data-dir {} --metrics-listen off",
        file.display(),
        data.display()
    );
    // The answers, one line each, in the order init asks: Klarna's region and environment,
    // the four settings, then Klarna's username and the two passwords.
    let answers = "na\nplayground\nhttps://odoo.example\nshop\ngateway\nhttps://pay.example\n\
                   PN12345_abc\nklarna-secret-pw\nodoo-secret-pw\n";
    let mut child = std::process::Command::new(script)
        .args(["-qec", &init, "/dev/null"])
        .env_remove("GATEWAY_MASTER_KEYS")
        .env_remove("KLARNA_PASSWORD")
        .env_remove("ODOO_PASSWORD")
        .env_remove("KLARNA_USERNAME")
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(answers.as_bytes()).expect("answers");
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("joined")
        .expect("init at a terminal");
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("Klarna API password"), "asked: {said}");
    assert!(said.contains("Klarna Region   North America"), "{said}");
    let written = std::fs::read_to_string(&file).expect("written");
    for line in [
        "klarna_url = \"https://api-na.playground.klarna.com\"",
        "odoo_url = \"https://odoo.example\"",
        "odoo_db = \"shop\"",
        "odoo_login = \"gateway\"",
        "public_url = \"https://pay.example\"",
    ] {
        assert!(written.contains(line), "{line} not in {written}");
    }
    assert!(!written.contains("secret-pw"), "a password in the file");
    let listed = run(command(&[
        "secrets",
        "list",
        "--config",
        file.to_str().expect("utf-8"),
    ]))
    .await;
    let listed = text(&listed);
    for name in ["klarna.username", "klarna.password", "odoo.password"] {
        assert!(listed.contains(name), "{name} not sealed: {listed}");
    }
}
