//! WebDriver plumbing shared by the end-to-end browser tests: chromedriver on a free port
//! and a headless Chromium session.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// chromedriver on a free port, killed when dropped.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start_driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let program = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let child = Command::new(&program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e} (run `cargo xtask setup`)"));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

fn which(program: &str) -> Option<String> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

/// A headless Chromium of `width` × 900 with a fresh profile.
pub async fn browser(driver: &Driver, profile: &std::path::Path, width: u32) -> Client {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let binary = which(&chromium).unwrap_or(chromium);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": binary,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--disable-sync", format!("--window-size={width},900"),
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    // The browser console, read back by `console_errors`.
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("WebDriver session")
}

pub async fn wait_for(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("waiting for {css}: {e}"))
}

/// chromedriver's console log endpoint (`POST /session/{id}/se/log`).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

/// Every console message at SEVERE level since the last call (errors, uncaught
/// exceptions, CSP violations, failed loads).
pub async fn console_errors(client: &Client) -> Vec<String> {
    let log = client.issue_cmd(BrowserLog).await.expect("browser log");
    log.as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["level"] == "SEVERE")
        .map(|entry| entry["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Where the end-to-end tests leave their screenshots.
pub fn screenshot_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e-screenshots");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Saves a screenshot of the page as `<name>.png` and returns its path.
pub async fn screenshot(client: &Client, name: &str) -> std::path::PathBuf {
    let png = client.screenshot().await.expect("screenshot");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write screenshot");
    path
}

/// The database one end-to-end run's gateway uses: a SQLite file in a temporary directory,
/// or a freshly created PostgreSQL database, dropped by [`Database::drop_database`].
pub struct Database {
    /// `sqlite` or `postgres`, for messages.
    pub name: &'static str,
    pub url: String,
    postgres: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Database {
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self {
            name: "sqlite",
            url: format!("sqlite://{}", dir.path().join("gateway.db").display()),
            postgres: None,
            _dir: dir,
        }
    }

    /// A new, uniquely named database on the PostgreSQL the gateway's tests use
    /// (`GATEWAY_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`), with
    /// their rules: `GATEWAY_TEST_PG=skip` (xtask found no PostgreSQL and said so) gives
    /// `None`; `required`, or `CI` set, makes a PostgreSQL that does not answer fail the test;
    /// otherwise it is skipped with a notice.
    pub async fn postgres() -> Option<Self> {
        use sqlx::Connection;

        let decided = std::env::var("GATEWAY_TEST_PG").ok();
        if decided.as_deref() == Some("skip") {
            return None;
        }
        let admin = std::env::var("GATEWAY_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(conn) => conn,
            Err(e) if decided.as_deref() == Some("required") => {
                panic!("PostgreSQL at {admin} answered xtask's probe but not this test: {e}")
            }
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("CI requires PostgreSQL at {admin}, which does not answer: {e}")
            }
            Err(e) => {
                eprintln!("\n*** PostgreSQL at {admin} does not answer ({e}): SKIPPED ***\n");
                return None;
            }
        };
        // Unique across runs and concurrent checkouts: this process and this instant.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let db = format!("e2e_{}_{nanos}", std::process::id());
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(&mut conn)
            .await
            .expect("create the end-to-end database");
        let base = admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(b, _)| b)
            .to_owned();
        Some(Self {
            name: "postgres",
            url: format!("{base}/{db}"),
            postgres: Some((admin, db)),
            _dir: tempfile::tempdir().expect("tempdir"),
        })
    }

    /// Drops the PostgreSQL database (even with the gateway's connections still open).
    pub async fn drop_database(self) {
        use sqlx::Connection;

        if let Some((admin, db)) = &self.postgres
            && let Ok(mut conn) = sqlx::PgConnection::connect(admin).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .execute(&mut conn)
                .await;
        }
    }
}
