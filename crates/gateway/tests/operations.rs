//! Running the gateway: health, readiness, metrics, request ids in JSON logs, the TOML
//! file, and a graceful stop — the real binary, against the sandbox.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ORDER, TOKEN, databases, system};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    for db in databases().await {
        let s = system(&db).await;
        let r = s
            .http
            .get(format!("{}/healthz", s.url))
            .send()
            .await
            .expect("healthz");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers().get("x-request-id").is_some(),
            "every answer names its request"
        );
        let r = s
            .http
            .get(format!("{}/readyz", s.url))
            .send()
            .await
            .expect("readyz");
        assert_eq!(r.status(), StatusCode::OK, "[{}]", s.db);
        s.paid(ORDER, TOKEN).await;
        s.settle().await;
        let text = klarna_gateway::metrics::render(&s.gw().db).await;
        for series in [
            "gateway_http_request_seconds",
            "klarna_request_seconds",
            "klarna_requests_total",
            "gateway_jobs_waiting",
            "gateway_jobs_oldest_waiting_seconds",
            "gateway_jobs_stuck",
            "gateway_review_queue",
            "gateway_authorizations_total",
        ] {
            assert!(text.contains(series), "[{}] /metrics lacks {series}", s.db);
        }
        // Readiness fails, and says why, when Klarna credentials are missing.
        sqlx::query("DELETE FROM secrets")
            .execute(&s.gw().db.pool)
            .await
            .expect("delete");
        let fresh = klarna_gateway::Gateway::new(
            common::config(&db, &s.sandbox_url, s.data_dir.path()),
            Default::default(),
        )
        .await
        .expect("gateway");
        let app = klarna_gateway::http::router(std::sync::Arc::new(fresh));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let r = s
            .http
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .expect("readyz");
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = r.json().await.expect("json");
        assert!(body.to_string().contains("Klarna credentials"), "{body}");
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_logs_json_with_request_ids_reads_toml_and_stops_gracefully() {
    let (sandbox_addr, _sandbox) = klarna_sandbox::spawn(klarna_sandbox::SandboxConfig::default())
        .await
        .expect("sandbox");
    let dir = tempfile::tempdir().expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let toml = dir.path().join("gateway.toml");
    std::fs::write(
        &toml,
        format!(
            "listen = \"127.0.0.1:{port}\"\nmetrics_listen = \"off\"\nklarna_url = \"http://{sandbox_addr}\"\nodoo_url = \"http://{sandbox_addr}\"\nlog_format = \"json\"\n"
        ),
    )
    .expect("toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_klarna-gateway"))
        .args(["--config"])
        .arg(&toml)
        .arg("--data-dir")
        .arg(dir.path())
        .env("KLARNA_USERNAME", "sandbox-merchant")
        .env("KLARNA_PASSWORD", "sandbox-password")
        .env("ODOO_PASSWORD", "admin")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the gateway");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the gateway did not start");
    let r = http
        .post(format!("http://127.0.0.1:{port}/klarna/session"))
        .header("x-request-id", "req-4711")
        .json(&serde_json::json!({"order_reference": ORDER, "access_token": TOKEN}))
        .send()
        .await
        .expect("session");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-request-id"], "req-4711");
    // SIGTERM: it finishes and exits cleanly.
    // SAFETY-free: `kill` is a plain command here.
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    let status = tokio::task::spawn_blocking(move || {
        let status = child.wait().expect("wait");
        let lines: Vec<String> = BufReader::new(child.stderr.take().expect("stderr"))
            .lines()
            .map_while(Result::ok)
            .collect();
        (status, lines)
    })
    .await
    .expect("join");
    let (status, lines) = status;
    assert!(status.success(), "exit {status}: {lines:?}");
    let json_lines: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        !json_lines.is_empty() && json_lines.len() == lines.len(),
        "every log line is JSON: {lines:?}"
    );
    assert!(
        json_lines.iter().any(|l| l.to_string().contains("req-4711")
            && l.to_string().contains("klarna session created")),
        "the session's log line carries its request id: {lines:?}"
    );
    assert!(lines.iter().any(|l| l.contains("stopped")), "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.contains("sandbox-password")),
        "no secret in the logs"
    );
    let _ = databases;
    let _ = system;
}
