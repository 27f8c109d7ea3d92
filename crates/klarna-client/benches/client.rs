//! The client's per-call overhead against the sandbox on loopback: create-session
//! requests per second and p50/p99 latency, sequential and 16 in flight, next to the
//! same request sent with bare reqwest (no auth header building, retries, logging or
//! typed decoding) so the difference is the client's own cost.
//!
//! `cargo xtask bench client` (or `cargo bench -p klarna-client --bench client`). Without
//! `--bench` (`cargo test --benches`) it makes a few calls only, to show that it works:
//! those figures mean nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use klarna_client::{Config, KlarnaClient};
use klarna_sandbox::SandboxConfig;
use klarna_types::klarna::{Address, LineType, OrderBody, OrderLine};

const CONCURRENCY: usize = 16;

fn body() -> OrderBody {
    let line = OrderLine {
        kind: Some(LineType::Physical),
        reference: Some("chair".into()),
        name: "Chair".into(),
        quantity: 2,
        quantity_unit: None,
        unit_price: 50_000,
        tax_rate: 2500,
        total_amount: 100_000,
        total_discount_amount: 0,
        total_tax_amount: 20_000,
    };
    OrderBody {
        purchase_country: "SE".into(),
        purchase_currency: "SEK".into(),
        locale: Some("sv-SE".into()),
        order_amount: 100_000,
        order_tax_amount: 20_000,
        order_lines: vec![line],
        billing_address: Some(Address {
            email: Some("anna@example.se".into()),
            country: Some("SE".into()),
            ..Address::default()
        }),
        shipping_address: None,
        customer: None,
        merchant_reference1: Some("S00001".into()),
        merchant_reference2: None,
        intent: Some("buy".into()),
        merchant_urls: None,
        auto_capture: None,
    }
}

struct Stats {
    label: &'static str,
    rps: f64,
    p50: Duration,
    p99: Duration,
}

fn stats(label: &'static str, mut latencies: Vec<Duration>, wall: Duration) -> Stats {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        label,
        rps: latencies.len() as f64 / wall.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

async fn sequential<F, Fut>(n: usize, call: F) -> (Vec<Duration>, Duration)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut latencies = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        call().await;
        latencies.push(t.elapsed());
    }
    (latencies, started.elapsed())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        println!("client: benchmark");
        return;
    }
    // Calls sequentially, and per task at 16 in flight: the full run and the quick one.
    let (seq_calls, per_task) = if args.iter().any(|a| a == "--bench") {
        (3_000, 400)
    } else {
        println!(
            "quick mode (no --bench): a few calls to show the bench runs; the figures mean nothing"
        );
        (30, 4)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let config = SandboxConfig::default();
        let (addr, sandbox) = klarna_sandbox::spawn(config.clone())
            .await
            .expect("sandbox");
        let url = format!("http://{addr}");
        let client = KlarnaClient::new(Config::basic(&url, &config.username, &config.password))
            .expect("client");
        let body = body();
        let json = serde_json::to_vec(&body).expect("json");
        let raw = reqwest::Client::new();
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", config.username, config.password))
        );
        let raw_call = || {
            let (raw, url, auth, json) = (raw.clone(), url.clone(), auth.clone(), json.clone());
            async move {
                let r = raw
                    .post(format!("{url}/payments/v1/sessions"))
                    .header("authorization", auth)
                    .header("content-type", "application/json")
                    .body(json)
                    .send()
                    .await
                    .expect("raw request");
                assert!(r.status().is_success());
                r.bytes().await.expect("raw body");
            }
        };
        let client_call = || {
            let (client, body) = (client.clone(), body.clone());
            async move {
                client.create_session(&body).await.expect("create_session");
            }
        };
        // Warm up connections and caches.
        sequential(seq_calls / 10, &client_call).await;
        sequential(seq_calls / 10, &raw_call).await;

        let mut results = Vec::new();
        let (l, w) = sequential(seq_calls, &raw_call).await;
        results.push(stats("bare reqwest, sequential", l, w));
        let (l, w) = sequential(seq_calls, &client_call).await;
        results.push(stats("KlarnaClient, sequential", l, w));

        for (label, use_client) in [
            ("bare reqwest, 16 in flight", false),
            ("KlarnaClient, 16 in flight", true),
        ] {
            let started = Instant::now();
            let tasks: Vec<_> = (0..CONCURRENCY)
                .map(|_| {
                    let client: Arc<KlarnaClient> = client.clone();
                    let (raw, url, auth, json, body) = (
                        raw.clone(),
                        url.clone(),
                        auth.clone(),
                        json.clone(),
                        body.clone(),
                    );
                    tokio::spawn(async move {
                        let mut lat = Vec::with_capacity(per_task);
                        for _ in 0..per_task {
                            let t = Instant::now();
                            if use_client {
                                client.create_session(&body).await.expect("create_session");
                            } else {
                                let r = raw
                                    .post(format!("{url}/payments/v1/sessions"))
                                    .header("authorization", auth.clone())
                                    .header("content-type", "application/json")
                                    .body(json.clone())
                                    .send()
                                    .await
                                    .expect("raw");
                                r.bytes().await.expect("raw body");
                            }
                            lat.push(t.elapsed());
                        }
                        lat
                    })
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.expect("task"));
            }
            results.push(stats(label, all, started.elapsed()));
        }

        println!(
            "\ncreate-session against klarna-sandbox on loopback ({} sessions made)",
            sandbox.state().sessions.len()
        );
        println!("{:<30} {:>10} {:>10} {:>10}", "", "req/s", "p50", "p99");
        for r in &results {
            println!(
                "{:<30} {:>10.0} {:>10.3?} {:>10.3?}",
                r.label, r.rps, r.p50, r.p99
            );
        }
        let overhead = results[1].p50.as_secs_f64() - results[0].p50.as_secs_f64();
        println!(
            "client overhead per call (p50, sequential): {:.1} µs",
            overhead * 1e6
        );
    });
}
