//! The gateway's own cost, on SQLite and PostgreSQL, against the sandbox on loopback:
//!
//! - `POST /klarna/session` (a new Klarna session each time) next to the same work done
//!   directly — reading the order over Odoo JSON-RPC and creating the session with the
//!   client — so the difference is the gateway's overhead (p50, p99);
//! - `POST /klarna/authorize` throughput, 16 in flight (Odoo re-read, order placed,
//!   transaction, audit entry and Odoo notification committed).
//!
//! `cargo xtask bench gateway`. PostgreSQL: `GATEWAY_TEST_PG_URL` or the local server.
//! Without `--bench` (`cargo test --benches`) it runs a few requests only, to show that it
//! works: those figures mean nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use klarna_gateway::odoo::{OdooClient, OdooConfig, PasswordSource};
use klarna_gateway::{Config, InitialSecrets, mapping_options};
use klarna_sandbox::SandboxConfig;
use serde_json::{Value, json};
use sqlx::Connection;

/// Sessions timed, and orders placed: the full run and the quick one.
const FULL: (usize, usize) = (300, 400);
const QUICK: (usize, usize) = (10, 32);
const IN_FLIGHT: usize = 16;
const ORDER: &str = "S09001";
const TOKEN: &str = "8f1f0c2e-3c1b-4c8e-9a61-2d7f6b9f0a01";

fn pct(mut v: Vec<Duration>, q: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

async fn databases() -> Vec<(&'static str, String, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("dir");
    let mut out = vec![(
        "sqlite",
        format!("sqlite://{}", dir.path().join("bench.db").display()),
        dir,
    )];
    let admin = std::env::var("GATEWAY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    match sqlx::PgConnection::connect(&admin).await {
        Ok(mut c) => {
            let name = format!("gw_bench_{}", std::process::id());
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
            out.push((
                "postgres",
                format!("{base}/{name}"),
                tempfile::tempdir().expect("dir"),
            ));
        }
        Err(e) => eprintln!("PostgreSQL not reachable ({e}): benchmarking SQLite only"),
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        println!("gateway: benchmark");
        return;
    }
    let (sessions, authorizations) = if args.iter().any(|a| a == "--bench") {
        FULL
    } else {
        println!(
            "quick mode (no --bench): a few requests to show the bench runs; the figures mean nothing"
        );
        QUICK
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!("\n{:<10} {:>14} {:>14} {:>14} {:>14} {:>16}", "database", "direct p50", "gateway p50", "overhead p50", "overhead p99", "authorize req/s");
        for (name, url, dir) in databases().await {
            let sandbox_config = SandboxConfig::default();
            let (addr, sandbox) = klarna_sandbox::spawn(sandbox_config.clone()).await.expect("sandbox");
            let sandbox_url = format!("http://{addr}");
            let mut config = Config::sandbox(&url, dir.path(), &sandbox_url);
            config.session_reuse = false;
            config.frontdoor.widget_per_second = 1_000_000;
            config.reconcile_interval = Duration::ZERO;
            config.worker_poll = Duration::from_millis(50);
            let secrets = InitialSecrets {
                klarna_username: Some(sandbox_config.username.clone()),
                klarna_password: Some(sandbox_config.password.clone()),
                admin_token: Some("bench".into()),
                odoo_password: Some(sandbox_config.odoo_password.clone()),
                odoo_shared_secret: Some(sandbox_config.odoo_shared_secret.clone()),
                ..InitialSecrets::default()
            };
            let running = klarna_gateway::spawn(config, secrets).await.expect("gateway");
            let gateway_url = format!("http://{}", running.addr);
            let http = reqwest::Client::new();

            // The same work without the gateway: Odoo read + mapping + Klarna session.
            let odoo = OdooClient::new(OdooConfig {
                url: sandbox_url.clone(),
                db: "odoo".into(),
                login: "admin".into(),
                password: PasswordSource::fixed(&sandbox_config.odoo_password),
            })
            .expect("odoo");
            let klarna = klarna_client::KlarnaClient::new(klarna_client::Config::basic(&sandbox_url, &sandbox_config.username, &sandbox_config.password)).expect("klarna");
            let direct_once = || async {
                let doc = odoo.read_order(ORDER).await.expect("read").expect("order");
                let body = klarna_types::mapping::map_order(&doc, &mapping_options(Vec::new())).expect("map");
                klarna.create_session(&body).await.expect("session");
            };
            let session_once = || async {
                let r = http
                    .post(format!("{gateway_url}/klarna/session"))
                    .json(&json!({"order_reference": ORDER, "access_token": TOKEN}))
                    .send()
                    .await
                    .expect("session");
                assert!(r.status().is_success(), "{}", r.status());
                r.json::<Value>().await.expect("json")
            };
            for _ in 0..sessions.min(30) {
                direct_once().await;
                session_once().await;
            }
            let mut direct = Vec::new();
            let mut gateway = Vec::new();
            for _ in 0..sessions {
                let t = Instant::now();
                direct_once().await;
                direct.push(t.elapsed());
                let t = Instant::now();
                session_once().await;
                gateway.push(t.elapsed());
            }
            let (d50, d99) = (pct(direct.clone(), 0.5), pct(direct, 0.99));
            let (g50, g99) = (pct(gateway.clone(), 0.5), pct(gateway, 0.99));

            // Authorize throughput: sessions approved up front, then placed 16 at a time.
            let mut work = Vec::with_capacity(authorizations);
            for _ in 0..authorizations {
                let session = session_once().await;
                let id = session["session_id"].as_str().expect("id").to_owned();
                let decision: Value = http
                    .post(format!("{sandbox_url}/kp/frame/decision"))
                    .json(&json!({"session_id": id, "category": "pay_later", "outcome": "approve"}))
                    .send()
                    .await
                    .expect("approve")
                    .json()
                    .await
                    .expect("json");
                work.push(json!({"session_id": id, "authorization_token": decision["authorization_token"]}));
            }
            let queue = Arc::new(tokio::sync::Mutex::new(work));
            let started = Instant::now();
            let tasks: Vec<_> = (0..IN_FLIGHT)
                .map(|_| {
                    let (queue, http, url) = (queue.clone(), http.clone(), gateway_url.clone());
                    tokio::spawn(async move {
                        loop {
                            let Some(body) = queue.lock().await.pop() else { break };
                            let r = http.post(format!("{url}/klarna/authorize")).json(&body).send().await.expect("authorize");
                            assert!(r.status().is_success(), "{}", r.status());
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
            let rps = authorizations as f64 / started.elapsed().as_secs_f64();
            assert_eq!(sandbox.state().orders.len(), authorizations);
            println!(
                "{name:<10} {d50:>14.2?} {g50:>14.2?} {:>14.2?} {:>14.2?} {rps:>16.0}",
                g50.saturating_sub(d50),
                g99.saturating_sub(d99)
            );
            running.shutdown().await;
            if name == "postgres"
                && let Some((base, db)) = url.rsplit_once('/')
                && let Ok(mut c) = sqlx::PgConnection::connect(&format!("{base}/postgres")).await
            {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).execute(&mut c).await;
            }
        }
    });
}
