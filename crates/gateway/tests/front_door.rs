//! The front door against the running gateway: behind a reverse proxy that appends the
//! address it saw, under clients that send half a request and wait, and against online
//! guessing of the admin API's credentials.

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, WEBHOOK_KEYS, databases, sqlite, system_with, system_with_webhooks};
use hmac::{Hmac, Mac};
use klarna_gateway::client_addr::{ForwardedHeader, TrustedProxies};
use klarna_gateway::listener::ListenerLimits;
use klarna_sandbox::SandboxConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::Row;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn event(event_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "metadata": {
            "event_type": "payment.request.state-change.completed",
            "event_id": event_id,
            "occurred_at": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        },
        "payload": {"order_id": "o-unknown-1"},
    }))
    .expect("json")
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A webhook as the proxy forwards it: `X-Forwarded-For` as the proxy left it.
async fn webhook(
    s: &common::System,
    forwarded_for: &str,
    body: Vec<u8>,
    signature: &str,
) -> (StatusCode, Value) {
    let r = s
        .http
        .post(format!("{}/klarna/webhook", s.url))
        .header("content-type", "application/json")
        .header("klarna-signing-key-id", WEBHOOK_KEYS[0].0)
        .header("klarna-signature", signature)
        .header("x-forwarded-for", forwarded_for)
        .body(body)
        .send()
        .await
        .expect("send");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn events(s: &common::System) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM webhook_events")
        .fetch_one(&s.gw().db.pool)
        .await
        .expect("count")
        .get("n")
}

#[tokio::test]
async fn behind_an_appending_proxy_a_forged_address_neither_passes_nor_gets_others_blocked() {
    for db in databases().await {
        // The gateway behind nginx on loopback: nginx appends the address it saw.
        let s = system_with_webhooks(&db, SandboxConfig::default(), |c| {
            c.frontdoor.trusted_proxies = TrustedProxies {
                networks: vec!["127.0.0.1/32".parse().expect("net")],
                header: ForwardedHeader::XForwardedFor,
            };
            c.frontdoor.webhook_allow = vec![
                "192.0.2.0/24".parse().expect("net"),
                "203.0.113.0/24".parse().expect("net"),
            ];
            c.frontdoor.block_after = 20;
        })
        .await;
        let before = events(&s).await;

        // Outside the allow-list, claiming Klarna's address on the left: refused at the
        // door for its real address, before the signature is even looked at.
        let (status, body) = webhook(&s, "192.0.2.50, 198.51.100.7", event("e-0"), "00").await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{body}"
        );

        // Inside it (a host of 203.0.113.0/24 gone bad), 21 bad signatures each claiming
        // another address, 192.0.2.50 among them: the sender's own address is blocked...
        let mut codes = Vec::new();
        for i in 0..21 {
            let claimed = if i % 2 == 0 {
                "192.0.2.50".to_owned()
            } else {
                format!("192.0.2.{}", 100 + i)
            };
            let (status, body) = webhook(
                &s,
                &format!("{claimed}, 203.0.113.9"),
                event(&format!("e-bad-{i}")),
                &"0".repeat(64),
            )
            .await;
            codes.push((status, body["code"].as_str().unwrap_or("").to_owned()));
        }
        assert!(
            codes[..20]
                .iter()
                .all(|(s, c)| *s == StatusCode::BAD_REQUEST && c == "bad_signature"),
            "{codes:?}"
        );
        assert_eq!(
            codes[20],
            (StatusCode::FORBIDDEN, "blocked".to_owned()),
            "the sender's real address is blocked whatever it claims"
        );
        // ... and Klarna's is not: its correctly signed event is taken.
        let body = event("e-genuine");
        let signature = sign(WEBHOOK_KEYS[0].1, &body);
        let (status, answer) = webhook(&s, "192.0.2.50", body, &signature).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(
            events(&s).await,
            before + 1,
            "only the genuine event is stored"
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}

/// Reads what the server sends until it closes the connection (or `limit` passes).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(
            limit.saturating_sub(started.elapsed()),
            stream.read(&mut buf),
        )
        .await
        {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "still open after {limit:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn slow_heads_and_bodies_are_cut_off_idle_connections_closed_and_connections_capped() {
    let db = sqlite();
    let limits = ListenerLimits {
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        max_connections: 4,
    };
    let s = system_with(&db, SandboxConfig::default(), |c| c.listener = limits).await;
    s.settle().await;
    let addr = s.running.addr;
    let before = events(&s).await;
    let within = Duration::from_secs(4);

    // A head that never ends.
    let mut head = TcpStream::connect(addr).await.expect("connect");
    head.write_all(
        b"POST /klarna/webhook HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n",
    )
    .await
    .expect("write");
    let (_, took) = read_until_closed(&mut head, within).await;
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );

    // A body that never ends: the head promises 100 bytes, 10 come.
    let mut body = TcpStream::connect(addr).await.expect("connect");
    body.write_all(
        b"POST /klarna/webhook HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n\
          Klarna-Signing-Key-Id: key-1\r\nKlarna-Signature: 00\r\nContent-Length: 100\r\n\r\n{\"metadata",
    )
    .await
    .expect("write");
    let (answer, took) = read_until_closed(&mut body, within).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"body_timeout\""), "{answer}");
    assert!(
        took >= Duration::from_millis(900),
        "cut too early: {took:?}"
    );
    assert_eq!(events(&s).await, before, "nothing stored");

    // A kept-alive connection that goes quiet after a request.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .expect("write");
    let (answer, took) = read_until_closed(&mut idle, within).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );

    // Four connections holding half-sent heads take every slot: a fifth is told so at
    // once, and once they time out the gateway serves again.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .expect("write");
        held.push(c);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fifth = TcpStream::connect(addr).await.expect("connect");
    fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .expect("write");
    let (answer, took) = read_until_closed(&mut fifth, within).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("\"code\":\"overloaded\""), "{answer}");
    assert!(
        took < Duration::from_millis(900),
        "answered at once: {took:?}"
    );
    for mut c in held {
        read_until_closed(&mut c, within).await;
    }
    let r = s
        .http
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), StatusCode::OK);
    s.shutdown().await;
}

#[tokio::test]
async fn guessing_admin_credentials_blocks_the_address_even_for_the_right_ones() {
    for db in databases().await {
        let s = system_with(&db, SandboxConfig::default(), |c| {
            c.frontdoor.block_after = 20;
            c.frontdoor.trusted_proxies = TrustedProxies {
                networks: vec!["127.0.0.1/32".parse().expect("net")],
                header: ForwardedHeader::XForwardedFor,
            };
        })
        .await;
        let get = |token: &str, from: &str| {
            s.http
                .get(format!("{}/admin/status", s.url))
                .bearer_auth(token)
                .header("x-forwarded-for", from)
                .send()
        };
        let r = get(ADMIN_TOKEN, "198.51.100.7").await.expect("get");
        assert_eq!(r.status(), StatusCode::OK, "the right token works");
        for i in 0..19 {
            let r = get(&format!("guess-{i}"), "198.51.100.7")
                .await
                .expect("get");
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
        // Odoo's way in counts too: a stale signature is the twentieth failure.
        let r = s
            .http
            .post(format!("{}/admin/payments/x/captures", s.url))
            .header("x-forwarded-for", "198.51.100.7")
            .header("x-klarna-gateway-signature", "v1=00")
            .header("x-klarna-gateway-timestamp", "1")
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = get(ADMIN_TOKEN, "198.51.100.7").await.expect("get");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["code"], "blocked", "{body}");
        // Another address is not.
        let r = get(ADMIN_TOKEN, "192.0.2.8").await.expect("get");
        assert_eq!(r.status(), StatusCode::OK);
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn the_admin_api_is_rate_limited_per_address() {
    let db = sqlite();
    let s = system_with(&db, SandboxConfig::default(), |c| {
        c.frontdoor.admin_per_second = 5;
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(s.admin_get("/admin/status").await.0);
    }
    assert_eq!(statuses[0], StatusCode::OK);
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn requests_over_the_in_flight_cap_are_refused_at_once_and_other_routes_still_served() {
    let db = sqlite();
    let s = system_with(&db, SandboxConfig::default(), |c| {
        c.max_in_flight = 2;
        c.frontdoor.widget_per_second = 1_000;
    })
    .await;
    s.settle().await;
    // Odoo answers slowly: widget requests pile up behind it.
    let r = s
        .http
        .put(format!("{}/_sandbox/faults/odoo_jsonrpc", s.sandbox_url))
        .json(&json!({"latency_ms": 1500}))
        .send()
        .await
        .expect("fault");
    assert!(r.status().is_success());
    let session = || {
        s.http
            .post(format!("{}/klarna/session", s.url))
            .json(&json!({"order_reference": common::ORDER, "access_token": common::TOKEN}))
            .send()
    };
    let started = Instant::now();
    let (a, b, c) = tokio::join!(session(), session(), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = session().await.expect("third");
        (
            r.status(),
            r.json::<Value>().await.unwrap_or(Value::Null),
            started.elapsed(),
        )
    });
    let (status, body, took) = c;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("overloaded")),
        "{body}"
    );
    assert!(
        took < Duration::from_millis(1200),
        "refused at once, not queued: {took:?}"
    );
    // The admin routes have their own cap.
    let (status, body) = s.admin_get("/admin/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(a.expect("first").status().is_success());
    assert!(b.expect("second").status().is_success());
    s.shutdown().await;
}
