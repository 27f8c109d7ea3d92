//! The client on a bad day: the sandbox's fault injection makes Klarna slow, failing,
//! rate-limited or silent, and the client must retry exactly as its policy says.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{order_body, sandbox, sandbox_with};
use klarna_client::{Auth, ErrorKind, IdempotencyKey, KlarnaClient};
use klarna_sandbox::SandboxConfig;
use klarna_types::klarna::CaptureRequest;
use serde_json::json;

#[tokio::test]
async fn transient_failures_are_retried_with_bounded_backoff() {
    let s = sandbox().await;
    let client = s.client();
    s.fault("create_session", json!({"next": ["503", "500"]}))
        .await;
    let started = Instant::now();
    client
        .create_session(&order_body("a@example.se"))
        .await
        .expect("third attempt wins");
    let took = started.elapsed();
    assert_eq!(s.sandbox.faults.count("create_session"), 3);
    // Backoffs of 40 ms and 80 ms, each between half and all of it.
    assert!(took >= Duration::from_millis(60), "{took:?}");
    assert!(took < Duration::from_millis(1_000), "{took:?}");
    assert_eq!(client.requests_sent(), 3);

    // An outage outlasting the budget: exactly max_attempts tries, then a clear error.
    s.fault("create_session", json!({"error_rate": 1.0})).await;
    let e = client
        .create_session(&order_body("a@example.se"))
        .await
        .expect_err("gives up");
    assert_eq!((e.kind, e.attempts), (ErrorKind::Unavailable, 4));
    assert_eq!(s.sandbox.faults.count("create_session"), 7);
    assert!(e.to_string().contains("after 4 attempts"), "{e}");
}

#[tokio::test]
async fn rate_limits_wait_for_the_reset_klarna_names() {
    let s = sandbox().await;
    let client = s.client();
    s.fault("create_session", json!({"next": ["429:1"]})).await;
    let started = Instant::now();
    client
        .create_session(&order_body("a@example.se"))
        .await
        .expect("after the reset");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "waited {took:?}, Klarna said 1 s"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(s.sandbox.faults.count("create_session"), 2);
}

#[tokio::test]
async fn business_errors_are_not_retried() {
    let s = sandbox().await;
    let client = s.client();
    let mut bad = order_body("a@example.se");
    bad.order_amount += 1;
    client.create_session(&bad).await.expect_err("400");
    assert_eq!(s.sandbox.faults.count("create_session"), 1);
}

#[tokio::test]
async fn dropped_connections_and_timeouts_are_retried() {
    let s = sandbox().await;
    let mut config = s.config();
    config.timeout = Duration::from_millis(300);
    let client = KlarnaClient::new(config).expect("client");
    s.fault("create_session", json!({"next": ["drop", "timeout"]}))
        .await;
    client
        .create_session(&order_body("a@example.se"))
        .await
        .expect("third attempt");
    assert_eq!(s.sandbox.faults.count("create_session"), 3);
}

#[tokio::test]
async fn a_timed_out_capture_retried_with_its_key_captures_once() {
    let s = sandbox().await;
    let setup_client = s.client();
    let body = order_body("a@example.se");
    let session = setup_client.create_session(&body).await.expect("session");
    let token = s.approve(&session.session_id).await;
    let order = setup_client
        .create_order(&token, &body)
        .await
        .expect("order");

    let mut config = s.config();
    config.timeout = Duration::from_millis(300);
    let client = KlarnaClient::new(config).expect("client");
    // Klarna captures, and the answer is lost on the way back.
    s.fault("capture", json!({"next": ["lose_response"]})).await;
    let key = IdempotencyKey::new();
    let capture = CaptureRequest {
        captured_amount: 50_000,
        ..CaptureRequest::default()
    };
    let id = client
        .capture(&order.order_id, &capture, &key)
        .await
        .expect("the retry gets the answer");
    assert_eq!(
        s.sandbox.faults.count("capture"),
        2,
        "one timeout, one retry"
    );
    let captures = client
        .list_captures(&order.order_id)
        .await
        .expect("captures");
    assert_eq!(captures.len(), 1, "captured once");
    assert_eq!(captures[0].capture_id, id);
    assert_eq!(captures[0].captured_amount, 50_000);
}

#[tokio::test]
async fn placing_an_order_is_not_replayed_after_a_lost_answer() {
    let s = sandbox().await;
    let body = order_body("a@example.se");
    let session = s.client().create_session(&body).await.expect("session");
    let token = s.approve(&session.session_id).await;
    let mut config = s.config();
    config.timeout = Duration::from_millis(300);
    let client = KlarnaClient::new(config).expect("client");
    s.fault("create_order", json!({"next": ["lose_response"]}))
        .await;
    let e = client
        .create_order(&token, &body)
        .await
        .expect_err("not replayed");
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert!(e.is_retryable());
    assert_eq!(s.sandbox.faults.count("create_order"), 1);
    assert_eq!(
        s.sandbox.state().orders.len(),
        1,
        "Klarna did place it; the caller must look"
    );
}

#[tokio::test]
async fn a_401_stops_every_further_call() {
    let s = sandbox().await;
    let mut config = s.config();
    config.auth = Auth::Basic {
        username: s.config.username.clone(),
        password: "wrong password".into(),
    };
    let client = KlarnaClient::new(config).expect("client");
    let e = client
        .create_session(&order_body("a@example.se"))
        .await
        .expect_err("401");
    assert_eq!(e.kind, ErrorKind::InvalidCredentials);
    for _ in 0..5 {
        let e = client.get_order("x").await.expect_err("paused");
        assert_eq!(e.kind, ErrorKind::AuthLocked);
        assert!(e.to_string().contains("paused"), "{e}");
    }
    assert_eq!(client.requests_sent(), 1, "nothing sent after the 401");
    assert_eq!(s.sandbox.auth_failures(), 1, "Klarna saw one failed login");
    assert_eq!(s.sandbox.faults.count("get_order"), 0);
    // New credentials lift the pause (here: the same wrong ones, so one more failure).
    client.credentials_replaced();
    client.get_order("x").await.expect_err("401 again");
    assert_eq!(s.sandbox.auth_failures(), 2);
}

#[tokio::test]
async fn oauth2_tokens_are_cached_and_refreshed_once_for_fifty_callers() {
    // A token lives 63 s and is refreshed 60 s ahead: stale after 3 s.
    let s = sandbox_with(SandboxConfig {
        oauth_token_ttl: Duration::from_secs(63),
        ..SandboxConfig::default()
    })
    .await;
    let mut config = s.config();
    config.auth = Auth::OAuth2 {
        token_url: format!("{}/oauth2/token", s.url),
        client_id: s.config.oauth_client_id.clone(),
        client_secret: s.config.oauth_client_secret.as_str().into(),
        scope: None,
    };
    let client: Arc<KlarnaClient> = KlarnaClient::new(config).expect("client");
    client
        .get_order("warm-up")
        .await
        .expect_err("404, but authenticated");
    assert_eq!(client.token_refreshes(), 1);
    for _ in 0..5 {
        client.get_order("cached").await.expect_err("404");
    }
    assert_eq!(client.token_refreshes(), 1, "the token is reused");
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move {
                c.get_order("concurrent")
                    .await
                    .map(|_| ())
                    .map_err(|e| e.kind)
            })
        })
        .collect();
    for call in calls {
        assert_eq!(
            call.await.expect("task"),
            Err(ErrorKind::NotFound),
            "authenticated, order unknown"
        );
    }
    assert_eq!(client.token_refreshes(), 2, "one refresh for fifty callers");
    assert_eq!(s.sandbox.state().token_requests, 2);
}

#[tokio::test]
async fn playground_rate_limits_are_enforced_and_survived() {
    let s = sandbox_with(SandboxConfig {
        rate_limits: klarna_sandbox::RateLimits::Playground,
        ..SandboxConfig::default()
    })
    .await;
    let client = s.client();
    // Eight sessions in a burst against a limit of five per second: some get 429 and wait.
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move {
                c.create_session(&order_body("a@example.se"))
                    .await
                    .map(|_| ())
            })
        })
        .collect();
    for call in calls {
        call.await.expect("task").expect("eventually created");
    }
    assert!(
        s.sandbox.faults.count("create_session") > 8,
        "some were refused and retried"
    );
    assert_eq!(s.sandbox.state().sessions.len(), 8);
}
