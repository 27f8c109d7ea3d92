//! Webhook ingest on loopback: signed events posted by a load generator (this file) to
//! `klarna-gateway serve` — verified, checked, stored with their job, acknowledged — on
//! SQLite and PostgreSQL, and, in the same run, to the baseline: a minimal Python
//! werkzeug handler doing what the original design's Odoo controller does (HMAC with
//! `hmac.compare_digest`, JSON parse, SQLite insert, commit; `webhook_baseline.py`).
//!
//! Both servers are child processes; the gateway runs without its job worker so both
//! measure the same thing: how fast an event is durably acknowledged.
//!
//! `cargo xtask bench webhooks` (it finds or installs a Python with werkzeug and passes it
//! as `WEBHOOK_BASELINE_PYTHON`). PostgreSQL: `GATEWAY_TEST_PG_URL` or the local server.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use sqlx::Connection;

const KEY_ID: &str = "bench-key";
const SECRET: &str = "bench-webhook-secret-0123456789";
const LOADED: usize = 4_000;
const SEQUENTIAL: usize = 400;
const IN_FLIGHT: usize = 16;

struct Shot {
    body: Vec<u8>,
    signature: String,
}

fn shots(prefix: &str, n: usize) -> Vec<Shot> {
    (0..n)
        .map(|i| {
            let body = serde_json::to_vec(&json!({
                "metadata": {
                    "event_type": "payment.request.state-change.completed",
                    "event_id": format!("{prefix}-{i}"),
                    "event_version": "v2",
                    "occurred_at": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
                    "correlation_id": format!("corr-{i}"),
                },
                "payload": {"order_id": format!("order-{}", i % 97), "status": "CAPTURED", "captured_amount": 70_028, "currency": "EUR"},
            }))
            .expect("json");
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
            mac.update(&body);
            Shot {
                signature: hex::encode(mac.finalize().into_bytes()),
                body,
            }
        })
        .collect()
}

fn pct(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

struct Result {
    rps: f64,
    p50: Duration,
    p99: Duration,
    seq_p50: Duration,
    seq_p99: Duration,
}

/// Posts every shot, `in_flight` at a time; every answer must be 200.
async fn load(url: &str, shots: Vec<Shot>, in_flight: usize) -> (f64, Vec<Duration>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(in_flight)
        .build()
        .expect("client");
    let shots = Arc::new(shots);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..in_flight)
        .map(|_| {
            let (client, shots, next, url) =
                (client.clone(), shots.clone(), next.clone(), url.to_owned());
            tokio::spawn(async move {
                let mut times = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(shot) = shots.get(i) else { break };
                    let t = Instant::now();
                    let r = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("klarna-signing-key-id", KEY_ID)
                        .header("klarna-signature", &shot.signature)
                        .body(shot.body.clone())
                        .send()
                        .await
                        .expect("send");
                    let status = r.status();
                    let _ = r.bytes().await;
                    assert_eq!(status.as_u16(), 200, "{url}");
                    times.push(t.elapsed());
                }
                times
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    (all.len() as f64 / start.elapsed().as_secs_f64(), all)
}

async fn measure(name: &str, url: &str) -> Result {
    // Warm up connections and caches.
    load(url, shots(&format!("{name}-warm"), 200), IN_FLIGHT).await;
    let (_, mut seq) = load(url, shots(&format!("{name}-seq"), SEQUENTIAL), 1).await;
    let (rps, mut loaded) = load(url, shots(&format!("{name}-load"), LOADED), IN_FLIGHT).await;
    Result {
        rps,
        p50: pct(&mut loaded, 0.50),
        p99: pct(&mut loaded, 0.99),
        seq_p50: pct(&mut seq, 0.50),
        seq_p99: pct(&mut seq, 0.99),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

async fn wait_up(port: u16, child: &mut Child) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the server exited: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not start on {port}");
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn gateway(db_url: &str, sandbox_url: &str) -> (Killed, u16, tempfile::TempDir) {
    let port = free_port();
    let data = tempfile::tempdir().expect("dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_klarna-gateway"))
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", db_url])
        .arg("--data-dir")
        .arg(data.path())
        .args(["--klarna-url", sandbox_url, "--odoo-url", sandbox_url])
        .args([
            "--metrics-listen",
            "off",
            "--no-worker",
            "--reconcile-interval-secs",
            "0",
        ])
        .args(["--webhook-rate-per-second", "1000000"])
        .env("KLARNA_USERNAME", "sandbox-merchant")
        .env("KLARNA_PASSWORD", "sandbox-password")
        .env("ODOO_PASSWORD", "admin")
        .env("GATEWAY_WEBHOOK_SIGNING_KEYS", format!("{KEY_ID}={SECRET}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("klarna-gateway");
    wait_up(port, &mut child).await;
    (Killed(child), port, data)
}

async fn postgres() -> Option<(String, String, String)> {
    let admin = std::env::var("GATEWAY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut c = match sqlx::PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("PostgreSQL not reachable ({e}): benchmarking SQLite only");
            return None;
        }
    };
    let name = format!("gw_bench_wh_{}", std::process::id());
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut c)
        .await;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .expect("create");
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(b, _)| b)
        .to_owned();
    Some((format!("{base}/{name}"), admin, name))
}

fn report(name: &str, r: &Result) {
    println!(
        "{name:<34} {:>8.0} ev/s   p50 {:>8.2?}  p99 {:>8.2?}   (one at a time: p50 {:>8.2?}  p99 {:>8.2?})",
        r.rps, r.p50, r.p99, r.seq_p50, r.seq_p99
    );
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("webhooks: benchmark");
        return;
    }
    let (sandbox_addr, _sandbox) = klarna_sandbox::spawn(klarna_sandbox::SandboxConfig::default())
        .await
        .expect("sandbox");
    let sandbox_url = format!("http://{sandbox_addr}");
    let mut results = Vec::new();

    let dir = tempfile::tempdir().expect("dir");
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    {
        let (_g, port, _data) = gateway(&sqlite, &sandbox_url).await;
        let r = measure("sqlite", &format!("http://127.0.0.1:{port}/klarna/webhook")).await;
        results.push(("klarna-gateway, SQLite", r));
    }
    if let Some((url, admin, name)) = postgres().await {
        {
            let (_g, port, _data) = gateway(&url, &sandbox_url).await;
            let r = measure(
                "postgres",
                &format!("http://127.0.0.1:{port}/klarna/webhook"),
            )
            .await;
            results.push(("klarna-gateway, PostgreSQL", r));
        }
        if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut c)
                .await;
        }
    }

    let python = std::env::var("WEBHOOK_BASELINE_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/webhook_baseline.py");
    let port = free_port();
    let spawned = Command::new(&python)
        .arg(script)
        .arg(port.to_string())
        .arg(dir.path().join("baseline.db"))
        .arg(SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let baseline = match spawned {
        Ok(mut child) => {
            wait_up(port, &mut child).await;
            let _guard = Killed(child);
            Some(measure("python", &format!("http://127.0.0.1:{port}/klarna/webhook")).await)
        }
        Err(e) => {
            eprintln!(
                "the Python baseline could not start ({python}: {e}); run `cargo xtask bench webhooks`"
            );
            None
        }
    };

    println!(
        "\nsigned webhook ingest on loopback, {LOADED} events at {IN_FLIGHT} in flight, {SEQUENTIAL} one at a time"
    );
    for (name, r) in &results {
        report(name, r);
    }
    if let Some(b) = &baseline {
        report("Python werkzeug + SQLite baseline", b);
        for (name, r) in &results {
            println!(
                "{name}: {:.1}× the baseline's throughput, p50 {:.1}× faster, p99 {:.1}× faster",
                r.rps / b.rps,
                b.p50.as_secs_f64() / r.p50.as_secs_f64(),
                b.p99.as_secs_f64() / r.p99.as_secs_f64()
            );
        }
    }
}
