//! Crash safety with real processes and SIGKILL, on SQLite and PostgreSQL.
//!
//! Webhooks: the sandbox sends thousands of signed events while the gateway is killed and
//! restarted several times, then — apart — while only its job worker is killed mid-job.
//! Afterwards every event the sender saw acknowledged is stored once and applied exactly
//! once, and every payment shows what Klarna shows.
//!
//! A capture: the gateway is killed after it recorded the capture and Klarna did it, but
//! before it answered; the caller retries, under its key and (its side rolled back) under
//! a new one. Klarna, the gateway and Odoo's stand-in end with the one capture.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
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
    fn spawn(&self, mode: &str, extra: &[&str]) -> Child {
        let sandbox_keys = format!("{}={}", WEBHOOK_KEYS[0].0, WEBHOOK_KEYS[0].1);
        Command::new(env!("CARGO_BIN_EXE_klarna-gateway"))
            .arg(mode)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
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
            .expect("start klarna-gateway")
    }

    async fn serve(&self, extra: &[&str]) -> Child {
        let mut child = self.spawn("serve", extra);
        for _ in 0..200 {
            if self
                .http
                .get(format!("{}/healthz", self.url()))
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
        let r: Value = self
            .http
            .post(format!("{}/_sandbox/webhooks/burst", self.sandbox_url))
            .json(&json!({"count": count, "concurrency": 8}))
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

    /// The sandbox's view: event id → acknowledged.
    fn acknowledged(&self) -> HashMap<String, bool> {
        self.sandbox
            .webhooks
            .deliveries()
            .into_iter()
            .map(|d| (d.event_id, d.delivered))
            .collect()
    }
}

fn kill(child: &mut Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let config = SandboxConfig {
        webhook_url: Some(format!("http://127.0.0.1:{port}/klarna/webhook")),
        signing_keys: vec![SigningKey {
            id: WEBHOOK_KEYS[0].0.into(),
            secret: WEBHOOK_KEYS[0].1.into(),
        }],
        // Klarna's retry schedule (10 s … 12 h) in milliseconds.
        webhook_time_scale: 0.002,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_gateway_during_a_stream_of_events_loses_and_doubles_nothing() {
    sqlx::any::install_default_drivers();
    for db in databases().await {
        let h = harness(&db).await;
        let mut gateway = h.serve(&[]).await;
        payments(&h).await;

        let sent = h.burst(3_000).await;
        let mut kills = 0;
        let start = Instant::now();
        while kills < 4 && start.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(400 + 150 * kills)).await;
            kill(&mut gateway);
            kills += 1;
            tokio::time::sleep(Duration::from_millis(150)).await;
            gateway = h.serve(&[]).await;
        }
        assert_eq!(kills, 4);
        until(
            "every event acknowledged",
            Duration::from_secs(120),
            async || h.acknowledged().values().all(|d| *d),
        )
        .await;
        let pool = sqlx::AnyPool::connect(&h.db_url).await.expect("pool");
        until(
            "the queue to settle",
            Duration::from_secs(120),
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
            "[{}] {} events, {kills} SIGKILLs of the gateway, {statuses} events redelivered: each applied once",
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
