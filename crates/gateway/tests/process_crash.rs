//! Crash safety with real processes and SIGKILL, on SQLite and PostgreSQL.
//!
//! Webhooks: the sandbox sends 20,000 signed events while the gateway is killed and
//! restarted twenty times, then — apart — while only its job worker is killed mid-job.
//! Afterwards every event the sender saw acknowledged is stored once and applied exactly
//! once, and every payment shows what Klarna shows.
//!
//! Several instances on one PostgreSQL: two servers and two workers, every event delivered
//! to both, one of each killed mid-stream; captures and refunds asked of both at once.
//!
//! A capture: the gateway is killed after it recorded the capture and Klarna did it, but
//! before it answered; the caller retries, under its key and (its side rolled back) under
//! a new one. Klarna, the gateway and Odoo's stand-in end with the one capture.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, ORDER, SE_ORDER, SE_TOKEN, TOKEN, TestDb, WEBHOOK_KEYS, databases};
use klarna_client::{IdempotencyKey, KlarnaClient};
use klarna_sandbox::{Sandbox, SandboxConfig, SigningKey};
use klarna_types::klarna::CaptureRequest;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

const US_ORDER: &str = "S09002";
const US_TOKEN: &str = "8f1f0c2e-3c1b-4c8e-9a61-2d7f6b9f0a02";

struct Harness {
    db_url: String,
    data: tempfile::TempDir,
    sandbox: Arc<Sandbox>,
    sandbox_url: String,
    port: u16,
    http: reqwest::Client,
}

impl Harness {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `klarna-gateway <mode>` as a child process.
    fn spawn(&self, mode: &str, extra: &[&str]) -> Running {
        self.spawn_at(self.port, mode, extra)
    }

    /// `klarna-gateway <mode>` listening on `port` (several instances, one database).
    fn spawn_at(&self, port: u16, mode: &str, extra: &[&str]) -> Running {
        let sandbox_keys = format!("{}={}", WEBHOOK_KEYS[0].0, WEBHOOK_KEYS[0].1);
        Command::new(env!("CARGO_BIN_EXE_klarna-gateway"))
            .arg(mode)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", &self.db_url])
            .arg("--data-dir")
            .arg(self.data.path())
            .args(["--klarna-url", &self.sandbox_url])
            .args(["--odoo-url", &self.sandbox_url])
            .args(["--allowed-origin", &self.sandbox_url])
            .args(["--metrics-listen", "off"])
            .args(["--job-lease-secs", "1"])
            .args(["--webhook-rate-per-second", "100000"])
            .args(["--reconcile-interval-secs", "0"])
            .args(["--log-format", "text"])
            .args(extra)
            .env("KLARNA_USERNAME", "sandbox-merchant")
            .env("KLARNA_PASSWORD", "sandbox-password")
            .env("ODOO_PASSWORD", "admin")
            .env("ODOO_SHARED_SECRET", "sandbox-odoo-secret")
            .env("GATEWAY_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("GATEWAY_WEBHOOK_SIGNING_KEYS", sandbox_keys)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(Running)
            .expect("start klarna-gateway")
    }

    async fn serve(&self, extra: &[&str]) -> Running {
        self.serve_at(self.port, extra).await
    }

    async fn serve_at(&self, port: u16, extra: &[&str]) -> Running {
        let mut child = self.spawn_at(port, "serve", extra);
        for _ in 0..200 {
            if self
                .http
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
                .is_ok()
            {
                return child;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        kill(&mut child);
        panic!("the gateway did not start");
    }

    async fn pay(&self, order: &str, token: &str) -> String {
        common::pay(&self.http, &self.url(), &self.sandbox_url, order, token).await
    }

    async fn burst(&self, count: usize) -> Vec<String> {
        self.burst_to(count, &[]).await
    }

    /// A burst whose every event goes to each of `urls` (the webhook URL when empty).
    async fn burst_to(&self, count: usize, urls: &[String]) -> Vec<String> {
        self.burst_with(count, 8, urls).await
    }

    async fn burst_with(&self, count: usize, concurrency: usize, urls: &[String]) -> Vec<String> {
        let r: Value = self
            .http
            .post(format!("{}/_sandbox/webhooks/burst", self.sandbox_url))
            .json(&json!({"count": count, "concurrency": concurrency, "urls": urls}))
            .send()
            .await
            .expect("burst")
            .json()
            .await
            .expect("json");
        r["event_ids"]
            .as_array()
            .expect("ids")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }

    /// The sandbox's view: event id → every delivery of it acknowledged.
    fn acknowledged(&self) -> HashMap<String, bool> {
        let mut acked: HashMap<String, bool> = HashMap::new();
        for d in self.sandbox.webhooks.deliveries() {
            *acked.entry(d.event_id).or_insert(true) &= d.delivered;
        }
        acked
    }
}

/// A gateway process, SIGKILLed when dropped: a test that fails leaves none behind.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kill(child: &mut Running) {
    child.0.kill().expect("SIGKILL");
    child.0.wait().expect("reaped");
}

async fn until(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Every acknowledged event stored once and applied exactly once; the payments as Klarna
/// has them; nothing in review.
async fn check_exactly_once(pool: &sqlx::AnyPool, h: &Harness, sent: &[String], label: &str) {
    let acked = h.acknowledged();
    let rows = sqlx::query("SELECT event_id, state FROM webhook_events")
        .fetch_all(pool)
        .await
        .expect("events");
    let stored: HashMap<String, String> = rows
        .iter()
        .map(|r| (r.get::<String, _>("event_id"), r.get::<String, _>("state")))
        .collect();
    let audit = sqlx::query("SELECT detail FROM audit_log WHERE action = 'webhook_applied'")
        .fetch_all(pool)
        .await
        .expect("audit");
    let mut applications: HashMap<String, usize> = HashMap::new();
    for r in &audit {
        let detail: String = r.get("detail");
        let id = detail
            .strip_prefix("event ")
            .and_then(|d| d.split(' ').next())
            .unwrap_or("")
            .to_owned();
        *applications.entry(id).or_default() += 1;
    }
    for id in sent {
        assert_eq!(
            acked.get(id),
            Some(&true),
            "[{label}] {id} was never acknowledged"
        );
        assert_eq!(
            stored.get(id).map(String::as_str),
            Some("applied"),
            "[{label}] {id}"
        );
        assert_eq!(applications.get(id), Some(&1), "[{label}] {id} applied");
    }
    // Nothing applied that was not sent, nothing applied twice.
    assert!(
        applications.values().all(|n| *n == 1),
        "[{label}] an event was applied more than once"
    );
    let review: i64 = sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE state = 'review'")
        .fetch_one(pool)
        .await
        .expect("review")
        .get("n");
    assert_eq!(review, 0, "[{label}] nothing in review");
    // Payments as Klarna has them.
    let orders: Vec<_> = h
        .sandbox
        .state()
        .orders
        .values()
        .map(|o| o.order.clone())
        .collect();
    for o in orders {
        let placeholder = if h.db_url.starts_with("postgres") {
            "$1"
        } else {
            "?"
        };
        let row = sqlx::query(&format!(
            "SELECT state, captured_amount, refunded_amount FROM transactions WHERE klarna_order_id = {placeholder}"
        ))
        .bind(&o.order_id)
        .fetch_one(pool)
        .await
        .expect("payment");
        let state: String = row.get("state");
        let expected = match o.status {
            klarna_types::klarna::OrderStatus::Cancelled => "cancelled",
            klarna_types::klarna::OrderStatus::PartCaptured => "part_captured",
            klarna_types::klarna::OrderStatus::Captured => "captured",
            _ => "authorized",
        };
        assert_eq!(
            (
                state.as_str(),
                row.get::<i64, _>("captured_amount"),
                row.get::<i64, _>("refunded_amount")
            ),
            (expected, o.captured_amount, o.refunded_amount),
            "[{label}] {}",
            o.order_id
        );
    }
}

async fn harness(db: &TestDb) -> Harness {
    // Klarna's retry schedule (10 s … 12 h) in milliseconds.
    harness_scaled(db, 0.002).await
}

/// A harness whose sandbox retries on Klarna's schedule times `time_scale`.
async fn harness_scaled(db: &TestDb, time_scale: f64) -> Harness {
    let port = free_port();
    let config = SandboxConfig {
        webhook_url: Some(format!("http://127.0.0.1:{port}/klarna/webhook")),
        signing_keys: vec![SigningKey {
            id: WEBHOOK_KEYS[0].0.into(),
            secret: WEBHOOK_KEYS[0].1.into(),
        }],
        webhook_time_scale: time_scale,
        ..SandboxConfig::default()
    };
    let (addr, sandbox) = klarna_sandbox::spawn(config).await.expect("sandbox");
    Harness {
        db_url: db.url.clone(),
        data: tempfile::tempdir().expect("data"),
        sandbox,
        sandbox_url: format!("http://{addr}"),
        port,
        http: reqwest::Client::new(),
    }
}

/// Three payments in different states at Klarna, so events have something to apply.
async fn payments(h: &Harness) {
    let a = h.pay(ORDER, TOKEN).await;
    let b = h.pay(SE_ORDER, SE_TOKEN).await;
    h.pay(US_ORDER, US_TOKEN).await;
    let cfg = SandboxConfig::default();
    let direct = KlarnaClient::new(klarna_client::Config::basic(
        &h.sandbox_url,
        &cfg.username,
        &cfg.password,
    ))
    .expect("client");
    direct
        .capture(
            &a,
            &CaptureRequest {
                captured_amount: 12_345,
                ..CaptureRequest::default()
            },
            &IdempotencyKey::new(),
        )
        .await
        .expect("capture");
    direct
        .cancel_order(&b, &IdempotencyKey::new())
        .await
        .expect("cancel");
}

async fn settled(pool: &sqlx::AnyPool) -> bool {
    let n: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM jobs WHERE state IN ('queued', 'running') AND kind = 'webhook_event'",
    )
    .fetch_one(pool)
    .await
    .map(|r| r.get("n"))
    .unwrap_or(1);
    n == 0
}

/// Events in the stream, and SIGKILLs of the gateway during it (group commit: each kill
/// loses whatever batch was being written, unacknowledged).
const EVENTS: usize = 20_000;
const KILLS: u32 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_gateway_during_a_stream_of_events_loses_and_doubles_nothing() {
    sqlx::any::install_default_drivers();
    for db in databases().await {
        // Klarna's schedule (10 s, 2 min, 15 min, 3 h, 6 h, 12 h) scaled to 2 ms … 8.6 s:
        // twenty restarts' worth of refused deliveries come back within seconds.
        let h = harness_scaled(&db, 0.0002).await;
        let mut gateway = h.serve(&[]).await;
        payments(&h).await;

        let started = Instant::now();
        let sent = h.burst_with(EVENTS, 32, &[]).await;
        let mut kills = 0;
        let mut during_stream = 0;
        while kills < KILLS {
            tokio::time::sleep(Duration::from_millis(250 + 20 * u64::from(kills))).await;
            let acked = h.acknowledged().values().filter(|d| **d).count();
            kill(&mut gateway);
            kills += 1;
            during_stream += u32::from(acked < sent.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
            gateway = h.serve(&[]).await;
        }
        assert!(
            during_stream >= KILLS / 2,
            "[{}] only {during_stream} of the kills fell during the stream",
            db.name
        );
        until(
            "every event acknowledged",
            Duration::from_secs(240),
            async || h.acknowledged().values().all(|d| *d),
        )
        .await;
        let streamed = started.elapsed();
        let pool = sqlx::AnyPool::connect(&h.db_url).await.expect("pool");
        // Applying 20,000 events (each re-reads its order at Klarna) takes a debug build
        // about two minutes here: room for a slower machine.
        until(
            "the queue to settle",
            Duration::from_secs(600),
            async || settled(&pool).await,
        )
        .await;
        let statuses: usize = h
            .sandbox
            .webhooks
            .deliveries()
            .iter()
            .filter(|d| d.statuses.len() > 1)
            .count();
        assert!(
            statuses > 0,
            "[{}] the kills made some deliveries fail and retry",
            db.name
        );
        check_exactly_once(&pool, &h, &sent, db.name).await;
        eprintln!(
            "[{}] {} events, {kills} SIGKILLs of the gateway ({during_stream} during the stream), \
             {statuses} events redelivered, all acknowledged after {streamed:.1?}: each applied once",
            db.name,
            sent.len()
        );
        kill(&mut gateway);
        pool.close().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_worker_mid_job_loses_and_doubles_nothing() {
    sqlx::any::install_default_drivers();
    for db in databases().await {
        let h = harness(&db).await;
        let mut gateway = h.serve(&["--no-worker"]).await;
        let mut worker = h.spawn("worker", &[]);
        payments(&h).await;
        // Klarna answers slowly, so the worker is inside a job most of the time.
        h.http
            .put(format!("{}/_sandbox/faults/get_order", h.sandbox_url))
            .json(&json!({"latency_ms": 15}))
            .send()
            .await
            .expect("fault");
        let pool = sqlx::AnyPool::connect(&h.db_url).await.expect("pool");
        let sent = h.burst(1_500).await;
        let mut kills = 0;
        let mut mid_job = 0;
        while kills < 4 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let running: i64 =
                sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE state = 'running'")
                    .fetch_one(&pool)
                    .await
                    .expect("running")
                    .get("n");
            kill(&mut worker);
            kills += 1;
            mid_job += usize::from(running > 0);
            tokio::time::sleep(Duration::from_millis(200)).await;
            worker = h.spawn("worker", &[]);
        }
        assert!(
            mid_job > 0,
            "[{}] a kill caught the worker inside a job",
            db.name
        );
        until(
            "every event acknowledged",
            Duration::from_secs(120),
            async || h.acknowledged().values().all(|d| *d),
        )
        .await;
        until(
            "the queue to settle",
            Duration::from_secs(180),
            async || settled(&pool).await,
        )
        .await;
        check_exactly_once(&pool, &h, &sent, db.name).await;
        eprintln!(
            "[{}] {} events, {kills} SIGKILLs of the worker ({mid_job} inside a job): each applied once",
            db.name,
            sent.len()
        );
        kill(&mut worker);
        kill(&mut gateway);
        pool.close().await;
        db.cleanup().await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// An admin POST with an idempotency key to the gateway on `port`.
async fn admin_keyed(
    h: &Harness,
    port: u16,
    path: &str,
    key: &str,
    body: Value,
) -> (StatusCode, Value) {
    let r = h
        .http
        .post(format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .expect("admin request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// What the caller of the admin API saw done, per Klarna order: the amounts of the
/// captures and of the refunds it was answered 200 or 202 for, each under its own key.
#[derive(Default, Debug)]
struct Ledger {
    captures: Vec<i64>,
    refunds: Vec<i64>,
    /// The gateway's ids of those operations.
    operations: Vec<i64>,
}

/// How an admin request under one `Idempotency-Key` ended, after retries.
enum Ended {
    Done(i64),
    Refused(Value),
}

/// Sends one admin operation under `key` to `ports[first]`, and again under the same key —
/// alternating instances — while an instance is down (no connection, 5xx) or the key is
/// still in flight elsewhere (`409 in_progress`: a request that died holds it until its
/// lease ends). Returns the operation's id when it was done (or accepted), the refusal
/// otherwise.
async fn operate_until_answered(
    h: &Harness,
    ports: [u16; 2],
    first: usize,
    path: &str,
    key: &str,
    body: Value,
) -> Ended {
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut at = first;
    loop {
        assert!(Instant::now() < deadline, "{key}: no answer in 240 s");
        let sent = h
            .http
            .post(format!("http://127.0.0.1:{}{path}", ports[at]))
            .bearer_auth(ADMIN_TOKEN)
            .header("Idempotency-Key", key)
            .timeout(Duration::from_secs(30))
            .json(&body)
            .send()
            .await;
        let answer = match sent {
            Ok(r) => Some((r.status(), r.json::<Value>().await.unwrap_or(Value::Null))),
            Err(_) => None,
        };
        match answer {
            Some((StatusCode::OK | StatusCode::ACCEPTED, body)) => {
                return Ended::Done(body["operation"]["id"].as_i64().expect("operation id"));
            }
            Some((status, body))
                if !status.is_server_error() && body["code"] != json!("in_progress") =>
            {
                return Ended::Refused(body);
            }
            _ => {
                at = 1 - at;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Payments to spread the random operations over: the fixture orders (as a real Odoo 18
/// computed them) that the sandbox's Klarna takes, paid alternately through each instance.
async fn fixture_payments(h: &Harness, ports: [u16; 2], want: usize) -> Vec<String> {
    let mut paid = Vec::new();
    for line in include_str!("../../../fixtures/odoo18-orders.jsonl").lines() {
        let fixture: Value = serde_json::from_str(line).expect("fixture");
        let (Some(name), Some(token)) = (
            fixture["order"]["name"].as_str(),
            fixture["order"]["access_token"].as_str(),
        ) else {
            continue;
        };
        let url = format!("http://127.0.0.1:{}", ports[paid.len() % 2]);
        if let Ok(order) = common::try_pay(&h.http, &url, &h.sandbox_url, name, token).await {
            paid.push(order);
            if paid.len() == want {
                break;
            }
        }
    }
    assert_eq!(paid.len(), want, "fixture orders Klarna takes");
    paid
}

/// A stream of random captures and refunds on `orders`, each to a random instance under a
/// key of its own, retried until answered; `ledger` records what was done.
async fn random_operations(
    h: &Harness,
    ports: [u16; 2],
    orders: &[(String, i64)],
    seed: u64,
    count: usize,
    ledger: &std::sync::Mutex<HashMap<String, Ledger>>,
) -> usize {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut refused = 0;
    for n in 0..count {
        let (order, total) = &orders[rng.random_range(0..orders.len())];
        let (captured, refunded) = {
            let ledger = ledger.lock().expect("ledger");
            let l = ledger.get(order);
            (
                l.map_or(0, |l| l.captures.iter().sum::<i64>()),
                l.map_or(0, |l| l.refunds.iter().sum::<i64>()),
            )
        };
        // Mostly amounts that fit what the caller saw; now and then one that does not,
        // which must be refused and change nothing.
        let refund = captured > refunded && rng.random_bool(0.4);
        let room = if refund {
            captured - refunded
        } else {
            total - captured
        };
        if room <= 0 {
            continue;
        }
        let amount = if rng.random_bool(0.1) {
            room + 1
        } else {
            rng.random_range(1..=room.min(room / 3 + 1))
        };
        let (kind, path) = if refund {
            ("refund", format!("/admin/payments/{order}/refunds"))
        } else {
            ("capture", format!("/admin/payments/{order}/captures"))
        };
        let key = format!("{kind}-{seed}-{n}");
        let first = rng.random_range(0..2);
        match operate_until_answered(h, ports, first, &path, &key, json!({"amount": amount})).await
        {
            Ended::Done(operation) => {
                let mut ledger = ledger.lock().expect("ledger");
                let l = ledger.entry(order.clone()).or_default();
                l.operations.push(operation);
                if refund {
                    l.refunds.push(amount);
                } else {
                    l.captures.push(amount);
                }
            }
            Ended::Refused(body) => {
                assert!(
                    amount > room || body["code"] != json!("invalid"),
                    "{key} ({amount} of {room}) refused: {body}"
                );
                refused += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(5..40))).await;
    }
    refused
}

/// Several instances share only PostgreSQL: two `serve` and two `worker` processes on one
/// database. The same capture asked of both at once is done once; two refunds that cannot
/// both fit, one on each, at once: one is done. Then, at once: every event delivered to
/// both instances (each a duplicate of the other), random captures and refunds on several
/// payments sent to either instance, and one server and one worker SIGKILLed at a random
/// moment and restarted. Every event is stored once and applied once, every operation the
/// caller was answered for is done once at Klarna, and Klarna's amounts equal ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_and_two_workers_on_one_postgres_do_everything_once_and_survive_losing_one() {
    use rand::{Rng, SeedableRng};
    sqlx::any::install_default_drivers();
    for db in databases().await {
        if db.name != "postgres" {
            // SQLite is one process's database: several instances need PostgreSQL.
            db.cleanup().await;
            continue;
        }
        let seed: u64 = std::env::var("GATEWAY_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random);
        eprintln!("[two instances] seed {seed} (GATEWAY_TEST_SEED={seed} repeats it)");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let h = harness(&db).await;
        let (a, b) = (h.port, free_port());
        let ports = [a, b];
        let mut serve_a = h.serve(&["--no-worker"]).await;
        let mut serve_b = h.serve_at(b, &["--no-worker"]).await;
        let mut worker_1 = h.spawn("worker", &[]);
        let mut worker_2 = h.spawn("worker", &[]);
        let order = h.pay(ORDER, TOKEN).await;
        let ledger = std::sync::Mutex::new(HashMap::<String, Ledger>::new());

        // One capture, asked of both instances at once under one key.
        let captures = format!("/admin/payments/{order}/captures");
        let (on_a, on_b) = tokio::join!(
            admin_keyed(&h, a, &captures, "capture-both", json!({"amount": 30_000})),
            admin_keyed(&h, b, &captures, "capture-both", json!({"amount": 30_000})),
        );
        assert_eq!(
            (on_a.0, on_b.0),
            (StatusCode::OK, StatusCode::OK),
            "{on_a:?} {on_b:?}"
        );
        assert_eq!(
            on_a.1["operation"]["id"], on_b.1["operation"]["id"],
            "one operation"
        );
        // Two refunds of 20,000 from 30,000 captured, under different keys, one per
        // instance, at once: the per-payment lock spans processes, so one is refused.
        let refunds = format!("/admin/payments/{order}/refunds");
        let (r_a, r_b) = tokio::join!(
            admin_keyed(&h, a, &refunds, "refund-a", json!({"amount": 20_000})),
            admin_keyed(&h, b, &refunds, "refund-b", json!({"amount": 20_000})),
        );
        let mut statuses = [r_a.0, r_b.0];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CONFLICT],
            "{r_a:?} {r_b:?}"
        );
        {
            let state = h.sandbox.state();
            let klarna = &state.orders.get(&order).expect("order").order;
            assert_eq!(
                (klarna.captured_amount, klarna.refunded_amount),
                (30_000, 20_000),
                "Klarna captured and refunded once"
            );
        }
        ledger.lock().expect("ledger").insert(
            order.clone(),
            Ledger {
                captures: vec![30_000],
                refunds: vec![20_000],
                operations: Vec::new(),
            },
        );

        // Payments for the random operations, as Klarna has them (amount to capture).
        let mut orders = vec![(order.clone(), common::ORDER_TOTAL)];
        for id in fixture_payments(&h, ports, 4).await {
            let total = h.sandbox.state().orders[&id].order.order_amount;
            orders.push((id, total));
        }

        // At once: every event to both instances, two streams of random operations, and
        // one of each kind of process lost at a random moment.
        let urls = [
            format!("http://127.0.0.1:{a}/klarna/webhook"),
            format!("http://127.0.0.1:{b}/klarna/webhook"),
        ];
        let kill_after = Duration::from_millis(rng.random_range(200..1_200));
        let (seed_1, seed_2) = (rng.random(), rng.random());
        let (sent, refused_1, refused_2, ()) = tokio::join!(
            h.burst_to(1_500, &urls),
            random_operations(&h, ports, &orders, seed_1, 30, &ledger),
            random_operations(&h, ports, &orders, seed_2, 30, &ledger),
            async {
                tokio::time::sleep(kill_after).await;
                kill(&mut serve_a);
                kill(&mut worker_1);
                tokio::time::sleep(Duration::from_millis(300)).await;
                serve_a = h.serve(&["--no-worker"]).await;
                worker_1 = h.spawn("worker", &[]);
            },
        );
        until(
            "every delivery to both instances acknowledged",
            Duration::from_secs(180),
            async || h.acknowledged().values().all(|d| *d),
        )
        .await;
        let pool = sqlx::AnyPool::connect(&h.db_url).await.expect("pool");
        until(
            "the queue to settle",
            Duration::from_secs(180),
            async || settled(&pool).await && operations_settled(&pool).await,
        )
        .await;
        let deliveries = h.sandbox.webhooks.deliveries();
        for url in &urls {
            assert!(
                deliveries.iter().any(|d| &d.url == url && d.delivered),
                "{url} acknowledged events"
            );
        }
        let retried = deliveries
            .iter()
            .filter(|d| d.url == urls[0] && d.statuses.len() > 1)
            .count();
        check_exactly_once(&pool, &h, &sent, "two instances").await;

        // Every operation the caller was answered for, done once at Klarna; nothing else.
        let ledger = ledger.into_inner().expect("ledger");
        let at_klarna: HashMap<String, (Vec<i64>, Vec<i64>)> = {
            let state = h.sandbox.state();
            orders
                .iter()
                .map(|(id, _)| {
                    let o = &state.orders[id].order;
                    let mut captures: Vec<i64> =
                        o.captures.iter().map(|c| c.captured_amount).collect();
                    let mut refunds: Vec<i64> =
                        o.refunds.iter().map(|r| r.refunded_amount).collect();
                    captures.sort_unstable();
                    refunds.sort_unstable();
                    (id.clone(), (captures, refunds))
                })
                .collect()
        };
        let mut done = 0;
        for (id, _) in &orders {
            let ours = ledger.get(id);
            let mut captures = ours.map(|l| l.captures.clone()).unwrap_or_default();
            let mut refunds = ours.map(|l| l.refunds.clone()).unwrap_or_default();
            captures.sort_unstable();
            refunds.sort_unstable();
            assert_eq!(
                at_klarna[id],
                (captures.clone(), refunds.clone()),
                "{id}: Klarna's captures and refunds are the ones answered, once each"
            );
            done += captures.len() + refunds.len();
            for op in ours.map(|l| l.operations.as_slice()).unwrap_or_default() {
                let state: String = sqlx::query("SELECT state FROM operations WHERE id = $1")
                    .bind(op)
                    .fetch_one(&pool)
                    .await
                    .expect("operation")
                    .get("state");
                assert_eq!(state, "succeeded", "{id}: operation {op}");
            }
        }
        eprintln!(
            "[two instances] {} events × 2 deliveries and {done} captures and refunds over {} \
             payments ({} refused), one server and one worker SIGKILLed after {kill_after:?} \
             ({retried} deliveries to it retried): each event stored and applied once, each \
             operation done once",
            sent.len(),
            orders.len(),
            refused_1 + refused_2,
        );
        for child in [&mut serve_a, &mut serve_b, &mut worker_1, &mut worker_2] {
            kill(child);
        }
        pool.close().await;
        db.cleanup().await;
    }
}

/// No operation is still waiting for Klarna's answer.
async fn operations_settled(pool: &sqlx::AnyPool) -> bool {
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM operations WHERE state = 'pending'")
        .fetch_one(pool)
        .await
        .map(|r| r.get("n"))
        .unwrap_or(1);
    n == 0
}

/// Odoo's (the sandbox stand-in's) payment transactions of an order: (operation, state,
/// amount).
async fn odoo_transactions(h: &Harness, order: &str) -> Vec<(String, String, f64)> {
    common::odoo_transactions(&h.http, &h.sandbox_url, order)
        .await
        .iter()
        .map(|t| {
            (
                t["operation"].as_str().unwrap_or_default().to_owned(),
                t["state"].as_str().unwrap_or_default().to_owned(),
                t["amount"].as_f64().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_gateway_mid_capture_then_retrying_captures_once() {
    sqlx::any::install_default_drivers();
    for db in databases().await {
        let h = harness(&db).await;
        let mut gateway = h.serve(&[]).await;
        let order_id = h.pay(ORDER, TOKEN).await;
        let pool = sqlx::AnyPool::connect(&h.db_url).await.expect("pool");
        // Klarna does the capture but its answer never comes back: the gateway waits.
        let r = h
            .http
            .put(format!("{}/_sandbox/faults/capture", h.sandbox_url))
            .json(&json!({"next": ["lose_response"]}))
            .send()
            .await
            .expect("fault");
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let path = format!("/admin/payments/{order_id}/captures");
        let capture = |key: &'static str| {
            h.http
                .post(format!("{}{path}", h.url()))
                .bearer_auth(ADMIN_TOKEN)
                .header("Idempotency-Key", key)
                .json(&json!({"amount": 30_000, "expected_captured": 0, "expected_refunded": 0}))
                .send()
        };
        let first = tokio::spawn(capture("odoo-capture-P-S00043-1"));
        let captured_at_klarna = || h.sandbox.state().orders[&order_id].order.captures.len();
        until(
            "Klarna to have the capture",
            Duration::from_secs(10),
            async || captured_at_klarna() == 1,
        )
        .await;
        kill(&mut gateway);
        let lost = first.await.expect("task");
        assert!(
            lost.is_err(),
            "[{}] the caller got no answer: {lost:?}",
            db.name
        );

        // The restart finishes what was recorded; the caller retries.
        let mut gateway = h.serve(&[]).await;
        until("the capture to be recorded", Duration::from_secs(20), async || {
            let n: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM operations WHERE kind = 'capture' AND state = 'succeeded'",
            )
            .fetch_one(&pool)
            .await
            .map(|r| r.get("n"))
            .unwrap_or(0);
            n == 1
        })
        .await;
        // Under a new key (the caller's side rolled back, its figures without the
        // capture): refused, with the gateway's figures.
        let r = capture("odoo-capture-P-S00043-2").await.expect("retry");
        let status = r.status();
        let answer: Value = r.json().await.expect("json");
        assert_eq!(
            (
                status,
                answer["code"].as_str(),
                answer["payment"]["captured"].as_i64()
            ),
            (StatusCode::CONFLICT, Some("state_changed"), Some(30_000)),
            "[{}] {answer}",
            db.name
        );
        // Under its key: the first request's capture.
        let r = capture("odoo-capture-P-S00043-1").await.expect("retry");
        let status = r.status();
        let answer: Value = r.json().await.expect("json");
        assert_eq!(
            (status, answer["operation"]["state"].as_str()),
            (StatusCode::OK, Some("succeeded")),
            "[{}] {answer}",
            db.name
        );
        let order = h.sandbox.state().orders[&order_id].order.clone();
        assert_eq!(
            (order.captures.len(), order.captured_amount),
            (1, 30_000),
            "[{}] one capture at Klarna",
            db.name
        );
        until(
            "Odoo to show the capture",
            Duration::from_secs(20),
            async || {
                odoo_transactions(&h, ORDER)
                    .await
                    .iter()
                    .any(|(op, state, amount)| {
                        op == "online_direct" && state == "done" && *amount == 300.0
                    })
            },
        )
        .await;
        let odoo = odoo_transactions(&h, ORDER).await;
        let odoo_captured: f64 = odoo
            .iter()
            // Partial captures are the payment's children, of its operation.
            .skip(1)
            .filter(|(op, state, _)| op == "online_direct" && state == "done")
            .map(|(_, _, amount)| amount)
            .sum();
        assert_eq!(odoo_captured, 300.0, "[{}] Odoo agrees: {odoo:?}", db.name);
        kill(&mut gateway);
        pool.close().await;
        db.cleanup().await;
    }
}
