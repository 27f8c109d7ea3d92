//! The gateway's test harness: every test runs against SQLite and PostgreSQL, with the
//! sandbox playing Klarna and Odoo.
//!
//! PostgreSQL: `GATEWAY_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`)
//! must let us create a database per test. `cargo xtask test` probes it once and passes
//! its decision down in `GATEWAY_TEST_PG` (`required` or `skip`), and says so in its own
//! output, because a notice printed here is captured inside a passing test. Without that
//! decision (a plain `cargo test`), a PostgreSQL that does not answer fails the test under
//! CI (`CI` set) and is skipped on a developer machine.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use klarna_gateway::store::{Operation, Transaction};
use klarna_gateway::{Config, Gateway, InitialSecrets, Running};
use klarna_sandbox::{Sandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Connection;

pub const ADMIN_TOKEN: &str = "test-admin-token";
/// S00043 (EUR, Germany, a real Odoo 18 fixture) and its portal access token.
pub const ORDER: &str = "S00043";
pub const TOKEN: &str = "b0222ee7-6d99-405f-9975-3e3e17dfd0c4";
pub const ORDER_TOTAL: i64 = 70_028;
/// S09001 (SEK, a Swedish consumer, the hand-made demo order).
pub const SE_ORDER: &str = "S09001";
pub const SE_TOKEN: &str = "8f1f0c2e-3c1b-4c8e-9a61-2d7f6b9f0a01";

/// The webhook signing keys the test gateway trusts (the sandbox signs with the first).
pub const WEBHOOK_KEYS: [(&str, &str); 2] =
    [("key-1", "whsec-test-one"), ("key-2", "whsec-test-two")];
/// The classic notification URL's secret token.
pub const CLASSIC_TOKEN: &str = "classic-test-token-0123456789";

/// One database for one test.
pub struct TestDb {
    pub name: &'static str,
    pub url: String,
    pg: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn cleanup(self) {
        if let Some((admin, db)) = &self.pg
            && let Ok(mut c) = sqlx::PgConnection::connect(admin).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .execute(&mut c)
                .await;
        }
    }
}

/// A fresh SQLite database in a temporary directory.
pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    TestDb {
        name: "sqlite",
        url: format!("sqlite://{}", dir.path().join("gateway.db").display()),
        pg: None,
        _dir: dir,
    }
}

/// SQLite always; PostgreSQL when it answers (required under CI).
pub async fn databases() -> Vec<TestDb> {
    let sqlite = sqlite();
    let admin = std::env::var("GATEWAY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut out = vec![sqlite];
    let decided = std::env::var("GATEWAY_TEST_PG").ok();
    if decided.as_deref() == Some("skip") {
        return out;
    }
    match sqlx::PgConnection::connect(&admin).await {
        Ok(mut c) => {
            let db = format!("gw_test_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE DATABASE {db}"))
                .execute(&mut c)
                .await
                .expect("create test database");
            let base = admin
                .rsplit_once('/')
                .map_or(admin.as_str(), |(b, _)| b)
                .to_owned();
            out.push(TestDb {
                name: "postgres",
                url: format!("{base}/{db}"),
                pg: Some((admin.clone(), db)),
                _dir: tempfile::tempdir().expect("tempdir"),
            });
        }
        Err(e) => {
            if decided.as_deref() == Some("required") {
                panic!("PostgreSQL at {admin} answered xtask's probe but not this test: {e}");
            }
            if std::env::var_os("CI").is_some() {
                panic!("CI requires PostgreSQL at {admin}, which does not answer: {e}");
            }
            eprintln!(
                "\n*** PostgreSQL at {admin} does not answer ({e}): the PostgreSQL half of this test is SKIPPED ***\n"
            );
        }
    }
    out
}

pub struct System {
    pub db: &'static str,
    pub sandbox: Arc<Sandbox>,
    pub sandbox_url: String,
    pub running: Running,
    pub url: String,
    pub http: reqwest::Client,
    pub data_dir: tempfile::TempDir,
}

pub fn config(db: &TestDb, sandbox_url: &str, data_dir: &std::path::Path) -> Config {
    let mut config = Config::sandbox(&db.url, data_dir, sandbox_url);
    config.allowed_origins = vec!["https://shop.example".into(), sandbox_url.to_owned()];
    config.klarna_retry = klarna_client::RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        max_elapsed: Duration::from_secs(5),
    };
    config.klarna_timeout = Duration::from_secs(3);
    // The job queue's schedule (10 s, 1 min, 2 min, 15 min, …) in milliseconds: 10, 60,
    // 120, 900 ms. A test that needs every attempt used up makes it smaller still.
    config.retry_scale = 0.001;
    config.worker_poll = Duration::from_millis(20);
    config.reconcile_interval = Duration::ZERO;
    config
}

pub fn secrets(sandbox: &SandboxConfig) -> InitialSecrets {
    InitialSecrets {
        klarna_username: Some(sandbox.username.clone()),
        klarna_password: Some(sandbox.password.clone()),
        admin_token: Some(ADMIN_TOKEN.into()),
        odoo_password: Some(sandbox.odoo_password.clone()),
        odoo_shared_secret: Some(sandbox.odoo_shared_secret.clone()),
        webhook_signing_keys: WEBHOOK_KEYS
            .iter()
            .map(|(id, secret)| ((*id).to_owned(), (*secret).to_owned()))
            .collect(),
        classic_callback_token: Some(CLASSIC_TOKEN.into()),
    }
}

/// Sandbox and gateway, the sandbox sending its signed webhooks to the gateway (keys
/// [`WEBHOOK_KEYS`]) and naming the classic notification URL on new orders.
pub async fn system_with_webhooks(
    db: &TestDb,
    mut sandbox_config: SandboxConfig,
    tweak: impl FnOnce(&mut Config),
) -> System {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    sandbox_config.webhook_url = Some(format!("{url}/klarna/webhook"));
    if sandbox_config.signing_keys.is_empty() {
        sandbox_config.signing_keys = WEBHOOK_KEYS
            .iter()
            .map(|(id, secret)| klarna_sandbox::webhooks::SigningKey {
                id: (*id).to_owned(),
                secret: (*secret).to_owned(),
            })
            .collect();
    }
    let (addr, sandbox) = klarna_sandbox::spawn(sandbox_config.clone())
        .await
        .expect("sandbox");
    let sandbox_url = format!("http://{addr}");
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut config = config(db, &sandbox_url, data_dir.path());
    config.public_url = Some(url.clone());
    tweak(&mut config);
    let gateway = Arc::new(
        Gateway::new(config, secrets(&sandbox_config))
            .await
            .expect("gateway"),
    );
    let running = klarna_gateway::start(listener, gateway)
        .await
        .expect("gateway");
    System {
        db: db.name,
        url,
        sandbox,
        sandbox_url,
        running,
        http: reqwest::Client::new(),
        data_dir,
    }
}

/// Sandbox and gateway (with its worker) on loopback ports.
pub async fn system(db: &TestDb) -> System {
    system_with(db, SandboxConfig::default(), |_| {}).await
}

pub async fn system_with(
    db: &TestDb,
    sandbox_config: SandboxConfig,
    tweak: impl FnOnce(&mut Config),
) -> System {
    let (addr, sandbox) = klarna_sandbox::spawn(sandbox_config.clone())
        .await
        .expect("sandbox");
    let sandbox_url = format!("http://{addr}");
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut config = config(db, &sandbox_url, data_dir.path());
    tweak(&mut config);
    let running = klarna_gateway::spawn(config, secrets(&sandbox_config))
        .await
        .expect("gateway");
    System {
        db: db.name,
        url: format!("http://{}", running.addr),
        sandbox,
        sandbox_url,
        running,
        http: reqwest::Client::new(),
        data_dir,
    }
}

/// Sends a request; its status and JSON body (null when the body is not JSON).
async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = request.send().await.expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

impl System {
    pub fn gw(&self) -> &Arc<Gateway> {
        &self.running.gateway
    }

    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        answer(self.http.post(format!("{}{path}", self.url)).json(body)).await
    }

    pub async fn admin(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        answer(
            self.http
                .post(format!("{}{path}", self.url))
                .bearer_auth(ADMIN_TOKEN)
                .json(body),
        )
        .await
    }

    /// An admin POST with an `Idempotency-Key`.
    pub async fn admin_keyed(&self, path: &str, key: &str, body: &Value) -> (StatusCode, Value) {
        answer(
            self.http
                .post(format!("{}{path}", self.url))
                .bearer_auth(ADMIN_TOKEN)
                .header("Idempotency-Key", key)
                .json(body),
        )
        .await
    }

    /// The gateway's payment (by Klarna order id or order reference) and its operations.
    pub async fn payment(&self, key: &str) -> (Transaction, Vec<Operation>) {
        let db = &self.gw().db;
        let t = db
            .find_transaction(key)
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("[{}] no payment {key}", self.db));
        let ops = db.operations(t.id).await.expect("operations");
        (t, ops)
    }

    pub async fn admin_get(&self, path: &str) -> (StatusCode, Value) {
        answer(
            self.http
                .get(format!("{}{path}", self.url))
                .bearer_auth(ADMIN_TOKEN),
        )
        .await
    }

    pub async fn session(&self, order: &str, token: &str) -> Value {
        let (status, body) = self
            .post(
                "/klarna/session",
                &json!({"order_reference": order, "access_token": token}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "[{}] {body}", self.db);
        body
    }

    /// What the SDK stand-in does when the shopper clicks "Buy" in Klarna's dialog.
    pub async fn approve(&self, session_id: &str) -> String {
        approve(&self.http, &self.sandbox_url, session_id).await
    }

    /// A paid order: session, approval, authorization. Returns the Klarna order id.
    pub async fn paid(&self, order: &str, token: &str) -> String {
        pay(&self.http, &self.url, &self.sandbox_url, order, token).await
    }

    /// Odoo JSON-RPC `execute_kw` on the sandbox's Odoo.
    pub async fn odoo(&self, model: &str, method: &str, args: Value, kwargs: Value) -> Value {
        odoo(&self.http, &self.sandbox_url, model, method, args, kwargs).await
    }

    /// Odoo's payment transactions for an order (source first, then children).
    pub async fn odoo_transactions(&self, order: &str) -> Vec<Value> {
        odoo_transactions(&self.http, &self.sandbox_url, order).await
    }

    /// Waits until every webhook the sandbox has begun sending has had its first answer
    /// (the gateway answers once the event and its job are stored), then until the job
    /// queue is idle.
    pub async fn settle(&self) {
        let db = self.db;
        wait_until(
            &format!("[{db}] every webhook the sandbox sent to have its first answer"),
            async || {
                let unanswered: Vec<String> = self
                    .sandbox
                    .webhooks
                    .deliveries()
                    .into_iter()
                    .filter(|d| d.statuses.is_empty())
                    .map(|d| format!("{} ({})", d.event_id, d.event_type))
                    .collect();
                if unanswered.is_empty() {
                    Ok(())
                } else {
                    Err(format!("unanswered: {unanswered:?}"))
                }
            },
        )
        .await;
        // The queue drains at the worker's pace: a test that streamed thousands of events
        // waits longer than a test that sent a few, on a slow machine longer still.
        wait_until_within(
            QUEUE_WAIT,
            &format!("[{db}] the job queue to be idle (nothing waiting, nothing running)"),
            async || {
                let q = self.gw().db.queue_stats().await.expect("stats");
                if q.waiting == 0 && q.running == 0 {
                    Ok(())
                } else {
                    Err(format!("{} waiting, {} running", q.waiting, q.running))
                }
            },
        )
        .await;
    }

    /// Waits until the worker has run the job of the stored webhook event `event_id` at
    /// least once and is not inside it, so whatever that event would change has changed
    /// (it finished, went to review, or was put back with the reason it waits).
    pub async fn event_job_tried(&self, event_id: &str) {
        let db = self.db;
        wait_until(
            &format!("[{db}] the worker to have tried the job of event {event_id}"),
            async || {
                let mut seen = Vec::new();
                for state in ["queued", "running", "done", "review"] {
                    let jobs = self.gw().db.jobs_in(state).await.expect("jobs");
                    for job in jobs.iter().filter(|j| j.payload["event_id"] == event_id) {
                        let tried = match job.state.as_str() {
                            "done" | "review" => true,
                            "queued" => job.last_error.is_some(),
                            _ => false,
                        };
                        if tried {
                            return Ok(());
                        }
                        seen.push(format!(
                            "{} (attempts {}, last error {:?})",
                            job.state, job.attempts, job.last_error
                        ));
                    }
                }
                Err(if seen.is_empty() {
                    "no job for the event".to_owned()
                } else {
                    seen.join(", ")
                })
            },
        )
        .await;
    }

    /// A webhook signed with the first of [`WEBHOOK_KEYS`]: Klarna's `authorized` event
    /// `event_id` for `order_id`. The gateway's status and answer.
    pub async fn signed_webhook(&self, event_id: &str, order_id: &str) -> (StatusCode, Value) {
        use hmac::{Hmac, Mac};
        let body = serde_json::to_vec(&json!({
            "metadata": {
                "event_type": "payment.request.state-change.authorized",
                "event_id": event_id,
                "event_version": "v2",
                "occurred_at": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            },
            "payload": {"order_id": order_id},
        }))
        .expect("json");
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_KEYS[0].1.as_bytes()).expect("key");
        mac.update(&body);
        answer(
            self.http
                .post(format!("{}/klarna/webhook", self.url))
                .header("content-type", "application/json")
                .header("klarna-signing-key-id", WEBHOOK_KEYS[0].0)
                .header("klarna-signature", hex::encode(mac.finalize().into_bytes()))
                .body(body),
        )
        .await
    }

    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

/// A `retry_scale` that runs the job queue's whole schedule (34 h) in about 1.2 s: for
/// tests that need a job to use up its attempts.
pub const ALL_ATTEMPTS_FAST: f64 = 0.000_01;

/// How long a test waits for something the system does by itself before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// How long [`System::settle`] waits for the job queue to drain.
pub const QUEUE_WAIT: Duration = Duration::from_secs(60);

/// Polls `check` every 20 ms until it says `Ok`; when [`WAIT`] has passed, fails the test
/// with what it waited for and what `check` saw last, so a stuck wait never passes by.
pub async fn wait_until<T>(what: &str, check: impl AsyncFnMut() -> Result<T, String>) -> T {
    wait_until_within(WAIT, what, check).await
}

/// [`wait_until`], giving up after `wait`.
pub async fn wait_until_within<T>(
    wait: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let seen = match check().await {
            Ok(done) => return done,
            Err(seen) => seen,
        };
        if tokio::time::Instant::now() >= deadline {
            panic!("gave up after {wait:?} waiting for {what}; last seen: {seen}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the SDK stand-in does when the shopper clicks "Buy" in Klarna's dialog: the
/// authorization token.
pub async fn approve(http: &reqwest::Client, sandbox_url: &str, session_id: &str) -> String {
    let r: Value = http
        .post(format!("{sandbox_url}/kp/frame/decision"))
        .json(&json!({"session_id": session_id, "category": "pay_later", "outcome": "approve"}))
        .send()
        .await
        .expect("approve")
        .json()
        .await
        .expect("json");
    r["authorization_token"].as_str().expect("token").to_owned()
}

/// An order paid through the gateway at `gateway_url`: session, approval in the sandbox,
/// authorization. Returns the Klarna order id.
pub async fn pay(
    http: &reqwest::Client,
    gateway_url: &str,
    sandbox_url: &str,
    order: &str,
    token: &str,
) -> String {
    match try_pay(http, gateway_url, sandbox_url, order, token).await {
        Ok(order_id) => order_id,
        Err(refusal) => panic!("{order}: {refusal}"),
    }
}

/// [`pay`], or the step that refused and its answer.
pub async fn try_pay(
    http: &reqwest::Client,
    gateway_url: &str,
    sandbox_url: &str,
    order: &str,
    token: &str,
) -> Result<String, String> {
    let (status, session) = answer(
        http.post(format!("{gateway_url}/klarna/session"))
            .json(&json!({"order_reference": order, "access_token": token})),
    )
    .await;
    if status != StatusCode::OK {
        return Err(format!("session: {status} {session}"));
    }
    let session_id = session["session_id"].as_str().expect("session id");
    let auth = approve(http, sandbox_url, session_id).await;
    let (status, body) = answer(
        http.post(format!("{gateway_url}/klarna/authorize"))
            .json(&json!({"session_id": session_id, "authorization_token": auth})),
    )
    .await;
    if status != StatusCode::OK {
        return Err(format!("authorize: {status} {body}"));
    }
    Ok(body["klarna_order_id"]
        .as_str()
        .expect("order id")
        .to_owned())
}

/// Odoo JSON-RPC `execute_kw` on a sandbox's Odoo.
pub async fn odoo(
    http: &reqwest::Client,
    sandbox_url: &str,
    model: &str,
    method: &str,
    args: Value,
    kwargs: Value,
) -> Value {
    let (_, r) = answer(http.post(format!("{sandbox_url}/jsonrpc")).json(
        &json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": "object", "method": "execute_kw",
            "args": ["odoo", 2, "admin", model, method, args, kwargs]}}),
    ))
    .await;
    assert!(r.get("error").is_none(), "{r}");
    r["result"].clone()
}

/// Odoo's payment transactions for an order (source first, then children).
pub async fn odoo_transactions(
    http: &reqwest::Client,
    sandbox_url: &str,
    order: &str,
) -> Vec<Value> {
    let all = odoo(
        http,
        sandbox_url,
        "payment.transaction",
        "search_read",
        json!([[["sale_order_name", "=", order]]]),
        json!({}),
    )
    .await;
    all.as_array().cloned().unwrap_or_default()
}

/// A program of this machine's (on the PATH, or in /usr/sbin where Debian puts nginx), for
/// the tests that check a file against the real tool. In CI a missing one fails the test
/// (`cargo xtask setup` installs them); elsewhere the test says so and is skipped.
pub fn tool(name: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([std::path::PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is missing (cargo xtask setup installs it)"
        );
        eprintln!("skipped: no {name} here");
    }
    found
}
