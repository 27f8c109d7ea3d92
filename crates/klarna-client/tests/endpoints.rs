//! The client against the sandbox: every endpoint's happy path and each refusal Klarna
//! documents for it.

mod common;

use common::{order_body, sandbox, sandbox_with};
use klarna_client::{ErrorKind, IdempotencyKey};
use klarna_sandbox::SandboxConfig;
use klarna_types::klarna::{
    CaptureRequest, CustomerTokenRequest, FraudStatus, OrderBody, OrderStatus, RefundRequest,
    ShippingInfo, TokenOrder, TokenStatus, UpdateAuthorization,
};

#[tokio::test]
async fn sessions_create_read_update() {
    let s = sandbox().await;
    let client = s.client();
    let body = order_body("anna@example.se");
    let created = client.create_session(&body).await.expect("create");
    assert_eq!(created.client_token.split('.').count(), 3);
    assert!(!created.payment_method_categories.is_empty());
    let read = client
        .read_session(&created.session_id)
        .await
        .expect("read");
    assert_eq!(read.status, "incomplete");
    assert_eq!(read.order.order_amount, body.order_amount);
    let mut changed = body.clone();
    changed.order_lines[0].quantity = 3;
    changed.order_lines[0].total_amount = 150_000;
    changed.order_lines[0].total_tax_amount = 30_000;
    changed.order_amount = 154_900;
    changed.order_tax_amount = 30_980;
    client
        .update_session(&created.session_id, &changed)
        .await
        .expect("update");
    let read = client
        .read_session(&created.session_id)
        .await
        .expect("read");
    assert_eq!(read.order.order_amount, 154_900);

    // Klarna's refusals: a body that breaks the amount rules, an unknown session, and a
    // session past its 48 hours.
    let mut bad = body.clone();
    bad.order_amount += 1;
    let e = client.create_session(&bad).await.expect_err("refused");
    assert_eq!(e.kind, ErrorKind::Validation);
    assert_eq!(e.error_code.as_deref(), Some("BAD_VALUE"));
    assert!(e.fields().iter().any(|f| f == "order_amount"), "{e}");
    let e = client
        .read_session("no-such-session")
        .await
        .expect_err("404");
    assert_eq!(e.kind, ErrorKind::NotFound);
    s.advance(49 * 3600).await;
    let e = client
        .read_session(&created.session_id)
        .await
        .expect_err("expired");
    assert_eq!(e.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn orders_are_placed_once_from_an_authorization_for_exactly_its_cart() {
    let s = sandbox().await;
    let client = s.client();
    let body = order_body("anna@example.se");
    let session = client.create_session(&body).await.expect("session");

    // The cart changed after authorize: Klarna's 409 "Not matching fields".
    let token = s.approve(&session.session_id).await;
    let mut changed = body.clone();
    changed.order_lines[1].unit_price = 5_000;
    changed.order_lines[1].total_amount = 5_000;
    changed.order_lines[1].total_tax_amount = 1_000;
    changed.order_amount = 105_000;
    changed.order_tax_amount = 21_000;
    let e = client
        .create_order(&token, &changed)
        .await
        .expect_err("409");
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(e.messages[0].contains("order_amount"), "{e}");

    let placed = client.create_order(&token, &body).await.expect("placed");
    assert_eq!(placed.fraud_status, FraudStatus::Accepted);
    assert_eq!(
        placed
            .authorized_payment_method
            .as_ref()
            .map(|m| m.kind().to_owned()),
        Some("invoice".into())
    );
    // The token is spent.
    let e = client.create_order(&token, &body).await.expect_err("spent");
    assert_eq!(e.kind, ErrorKind::NotFound);
    let read = client
        .read_session(&session.session_id)
        .await
        .expect("read");
    assert_eq!(read.status, "complete");
    let e = client
        .create_order("unknown-token", &body)
        .await
        .expect_err("unknown");
    assert_eq!(e.kind, ErrorKind::NotFound);

    // Tokens last 60 minutes.
    let session = client.create_session(&body).await.expect("session");
    let token = s.approve(&session.session_id).await;
    s.advance(61 * 60).await;
    let e = client
        .create_order(&token, &body)
        .await
        .expect_err("expired");
    assert_eq!(e.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn authorizations_can_be_cancelled_or_tokenized() {
    let s = sandbox().await;
    let client = s.client();
    let body = order_body("anna@example.se");
    let session = client.create_session(&body).await.expect("session");
    let token = s.approve(&session.session_id).await;
    client.cancel_authorization(&token).await.expect("cancel");
    let e = client.cancel_authorization(&token).await.expect_err("gone");
    assert_eq!(e.kind, ErrorKind::NotFound);
    let e = client
        .create_order(&token, &body)
        .await
        .expect_err("cancelled");
    assert_eq!(e.kind, ErrorKind::NotFound);

    let body = OrderBody {
        intent: Some("tokenize".into()),
        ..body
    };
    let session = client.create_session(&body).await.expect("session");
    let token = s.approve(&session.session_id).await;
    let request = CustomerTokenRequest {
        purchase_country: "SE".into(),
        purchase_currency: "SEK".into(),
        locale: "sv-SE".into(),
        description: "Coffee subscription".into(),
        intended_use: "SUBSCRIPTION".into(),
        billing_address: None,
        customer: None,
    };
    let created = client
        .create_customer_token(&token, &request)
        .await
        .expect("token");
    assert!(!created.token_id.is_empty());
    let mut wrong = request.clone();
    wrong.purchase_currency = "EUR".into();
    let session = client.create_session(&body).await.expect("session");
    let token = s.approve(&session.session_id).await;
    let e = client
        .create_customer_token(&token, &wrong)
        .await
        .expect_err("409");
    assert_eq!(e.kind, ErrorKind::Conflict);
}

async fn placed_order(s: &common::Setup, email: &str) -> String {
    let client = s.client();
    let body = order_body(email);
    let session = client.create_session(&body).await.expect("session");
    let token = s.approve(&session.session_id).await;
    client
        .create_order(&token, &body)
        .await
        .expect("order")
        .order_id
}

#[tokio::test]
async fn captures_refunds_and_their_limits() {
    let s = sandbox().await;
    let client = s.client();
    let id = placed_order(&s, "anna@example.se").await;
    let order = client.get_order(&id).await.expect("order");
    assert_eq!(
        (order.status, order.remaining_authorized_amount),
        (OrderStatus::Authorized, 104_900)
    );

    let e = client
        .refund(
            &id,
            &RefundRequest {
                refunded_amount: 100,
                ..RefundRequest::default()
            },
            &IdempotencyKey::new(),
        )
        .await
        .expect_err("no captures");
    assert_eq!(e.kind, ErrorKind::RefundNotAllowed);

    // One shipment: the chairs, with tracking.
    let first = CaptureRequest {
        captured_amount: 100_000,
        reference: Some("shipment-1".into()),
        order_lines: vec![order.order_lines[0].clone()],
        shipping_info: vec![ShippingInfo {
            shipping_company: Some("PostNord".into()),
            shipping_method: Some("Home".into()),
            tracking_number: Some("RR123456789SE".into()),
            ..ShippingInfo::default()
        }],
        ..CaptureRequest::default()
    };
    let capture_id = client
        .capture(&id, &first, &IdempotencyKey::new())
        .await
        .expect("capture");
    let capture = client
        .get_capture(&id, &capture_id)
        .await
        .expect("get capture");
    assert_eq!(capture.captured_amount, 100_000);
    assert_eq!(
        capture.shipping_info[0].tracking_number.as_deref(),
        Some("RR123456789SE")
    );
    assert_eq!(client.list_captures(&id).await.expect("list").len(), 1);
    assert_eq!(
        client.get_order(&id).await.expect("order").status,
        OrderStatus::PartCaptured
    );

    let too_much = CaptureRequest {
        captured_amount: 5_000,
        ..CaptureRequest::default()
    };
    let e = client
        .capture(&id, &too_much, &IdempotencyKey::new())
        .await
        .expect_err("over");
    assert_eq!(e.kind, ErrorKind::CaptureNotAllowed);
    assert!(e.to_string().contains("remaining authorized amount"), "{e}");

    // Beyond Order Management's schema (texts of 255, shipping fields of 100, a fixed
    // list of shipping methods): refused, each field named, nothing captured.
    let malformed = CaptureRequest {
        captured_amount: 100,
        description: Some("d".repeat(300)),
        shipping_info: vec![ShippingInfo {
            shipping_company: Some("c".repeat(120)),
            shipping_method: Some("Drone".into()),
            tracking_number: Some("t".repeat(120)),
            ..ShippingInfo::default()
        }],
        ..CaptureRequest::default()
    };
    let e = client
        .capture(&id, &malformed, &IdempotencyKey::new())
        .await
        .expect_err("malformed");
    assert_eq!(e.kind, ErrorKind::Validation);
    for field in [
        "description",
        "shipping_info[0].shipping_company",
        "shipping_info[0].shipping_method",
        "shipping_info[0].tracking_number",
    ] {
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    assert_eq!(client.list_captures(&id).await.expect("list").len(), 1);
    let e = client
        .get_capture(&id, "nope")
        .await
        .expect_err("no capture");
    assert_eq!(e.kind, ErrorKind::NotFound);

    let e = client
        .cancel_order(&id, &IdempotencyKey::new())
        .await
        .expect_err("captured");
    assert_eq!(e.kind, ErrorKind::CancelNotAllowed);

    let refund_id = client
        .refund(
            &id,
            &RefundRequest {
                refunded_amount: 50_000,
                description: Some("one chair back".into()),
                ..RefundRequest::default()
            },
            &IdempotencyKey::new(),
        )
        .await
        .expect("refund");
    assert_eq!(
        client
            .get_refund(&id, &refund_id)
            .await
            .expect("refund")
            .refunded_amount,
        50_000
    );
    let e = client
        .refund(
            &id,
            &RefundRequest {
                refunded_amount: 50_001,
                ..RefundRequest::default()
            },
            &IdempotencyKey::new(),
        )
        .await
        .expect_err("over");
    assert_eq!(e.kind, ErrorKind::RefundNotAllowed);

    // The shipping will not ship: release the rest.
    client
        .release_remaining_authorization(&id, &IdempotencyKey::new())
        .await
        .expect("release");
    let order = client.get_order(&id).await.expect("order");
    assert_eq!(
        (
            order.status,
            order.remaining_authorized_amount,
            order.order_amount
        ),
        (OrderStatus::Captured, 0, 100_000)
    );
    let e = client
        .release_remaining_authorization(&id, &IdempotencyKey::new())
        .await
        .expect_err("nothing left");
    assert_eq!(e.kind, ErrorKind::NotAllowed);
    let e = client.get_order("no-such-order").await.expect_err("404");
    assert_eq!(
        (e.kind, e.error_code.as_deref()),
        (ErrorKind::NotFound, Some("NO_SUCH_ORDER"))
    );
}

#[tokio::test]
async fn cancel_extend_and_update_before_capture() {
    let s = sandbox().await;
    let client = s.client();
    let id = placed_order(&s, "anna@example.se").await;
    let before = client.get_order(&id).await.expect("order").expires_at;
    s.advance(3 * 24 * 3600).await;
    client
        .extend_authorization_time(&id, &IdempotencyKey::new())
        .await
        .expect("extend");
    let after = client.get_order(&id).await.expect("order").expires_at;
    assert!(after > before, "{before:?} → {after:?}");

    let lower = UpdateAuthorization {
        order_amount: 100_000,
        description: None,
        order_lines: Vec::new(),
    };
    client
        .update_authorization(&id, &lower, &IdempotencyKey::new())
        .await
        .expect("lower");
    assert_eq!(
        client
            .get_order(&id)
            .await
            .expect("order")
            .remaining_authorized_amount,
        100_000
    );
    let much_higher = UpdateAuthorization {
        order_amount: 500_000,
        description: None,
        order_lines: Vec::new(),
    };
    let e = client
        .update_authorization(&id, &much_higher, &IdempotencyKey::new())
        .await
        .expect_err("risk");
    assert_eq!(e.kind, ErrorKind::NotAllowed);

    client
        .cancel_order(&id, &IdempotencyKey::new())
        .await
        .expect("cancel");
    assert_eq!(
        client.get_order(&id).await.expect("order").status,
        OrderStatus::Cancelled
    );
    let e = client
        .capture(
            &id,
            &CaptureRequest {
                captured_amount: 1,
                ..CaptureRequest::default()
            },
            &IdempotencyKey::new(),
        )
        .await
        .expect_err("cancelled");
    assert_eq!(e.kind, ErrorKind::CaptureNotAllowed);
    let e = client
        .extend_authorization_time(&id, &IdempotencyKey::new())
        .await
        .expect_err("cancelled");
    assert_eq!(e.kind, ErrorKind::NotAllowed);

    // 28 days after placing, an uncaptured authorization expires.
    let id = placed_order(&s, "anna@example.se").await;
    s.advance(29 * 24 * 3600).await;
    assert_eq!(
        client.get_order(&id).await.expect("order").status,
        OrderStatus::Expired
    );
    let e = client
        .capture(
            &id,
            &CaptureRequest {
                captured_amount: 1,
                ..CaptureRequest::default()
            },
            &IdempotencyKey::new(),
        )
        .await
        .expect_err("expired");
    assert_eq!(e.kind, ErrorKind::CaptureNotAllowed);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer() {
    let s = sandbox().await;
    let client = s.client();
    let id = placed_order(&s, "anna@example.se").await;
    let key = IdempotencyKey::new();
    let capture = CaptureRequest {
        captured_amount: 10_000,
        ..CaptureRequest::default()
    };
    let a = client.capture(&id, &capture, &key).await.expect("capture");
    let b = client
        .capture(&id, &capture, &key)
        .await
        .expect("same capture");
    assert_eq!(a, b);
    assert_eq!(client.list_captures(&id).await.expect("list").len(), 1);
}

#[tokio::test]
async fn scenarios_ride_on_the_email() {
    let s = sandbox().await;
    let client = s.client();
    // +reject: Klarna refuses to place the order.
    let body = order_body("anna+reject@example.se");
    let session = client.create_session(&body).await.expect("session");
    let token = s.approve(&session.session_id).await;
    let e = client
        .create_order(&token, &body)
        .await
        .expect_err("rejected");
    assert_eq!(e.kind, ErrorKind::Rejected);

    // +denied: the SDK never approves.
    let session = client
        .create_session(&order_body("anna+denied@example.se"))
        .await
        .expect("session");
    let answer = s.decide(&session.session_id, "approve").await;
    assert_eq!(
        answer,
        serde_json::json!({"approved": false, "show_form": false})
    );

    // +pend-accept-5: PENDING, no capture until Klarna decides 5 minutes later.
    let id = placed_order(&s, "anna+pend-accept-5@example.se").await;
    assert_eq!(
        client.get_order(&id).await.expect("order").fraud_status,
        FraudStatus::Pending
    );
    let e = client
        .capture(
            &id,
            &CaptureRequest {
                captured_amount: 100,
                ..CaptureRequest::default()
            },
            &IdempotencyKey::new(),
        )
        .await
        .expect_err("pending");
    assert_eq!(e.kind, ErrorKind::CaptureNotAllowed);
    s.advance(5 * 60).await;
    assert_eq!(
        client.get_order(&id).await.expect("order").fraud_status,
        FraudStatus::Accepted
    );
    client
        .capture(
            &id,
            &CaptureRequest {
                captured_amount: 100,
                ..CaptureRequest::default()
            },
            &IdempotencyKey::new(),
        )
        .await
        .expect("accepted now");

    let id = placed_order(&s, "anna+pend-reject-1@example.se").await;
    s.advance(60).await;
    let order = client.get_order(&id).await.expect("order");
    assert_eq!(
        (order.fraud_status, order.status),
        (FraudStatus::Rejected, OrderStatus::Cancelled)
    );
}

#[tokio::test]
async fn api_keys_authenticate_and_wrong_credentials_are_named() {
    let s = sandbox_with(SandboxConfig::default()).await;
    let mut config = s.config();
    config.auth = klarna_client::Auth::ApiKey(s.config.api_key.as_str().into());
    let client = klarna_client::KlarnaClient::new(config).expect("client");
    client
        .create_session(&order_body("anna@example.se"))
        .await
        .expect("API key accepted");

    let mut config = s.config();
    config.auth = klarna_client::Auth::Basic {
        username: s.config.username.clone(),
        password: "wrong".into(),
    };
    let client = klarna_client::KlarnaClient::new(config).expect("client");
    let e = client.get_order("x").await.expect_err("401");
    assert_eq!(e.kind, ErrorKind::InvalidCredentials);
    assert!(!e.to_string().contains("wrong"));
}

#[tokio::test]
async fn requests_name_the_integration_and_carry_their_idempotency_key() {
    use axum::http::HeaderMap;
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let sink = seen.clone();
    let app = axum::Router::new().route(
        "/ordermanagement/v1/orders/{id}/captures",
        axum::routing::post(move |headers: HeaderMap| {
            let sink = sink.clone();
            async move {
                sink.lock().expect("headers").push(headers);
                (axum::http::StatusCode::CREATED, [("capture-id", "cap-1")])
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config = klarna_client::Config::basic(&url, "merchant", "secret");
    config.odoo_version = Some("18.0".into());
    let client = klarna_client::KlarnaClient::new(config).expect("client");
    let key = IdempotencyKey::from_stored("5f0c6a1e-2b7d-4c7e-9a3e-1f2d3c4b5a69");
    let id = client
        .capture(
            "order-1",
            &CaptureRequest {
                captured_amount: 1,
                ..CaptureRequest::default()
            },
            &key,
        )
        .await
        .expect("capture");
    assert_eq!(id, "cap-1");
    let headers = seen.lock().expect("headers")[0].clone();
    let ua = headers["user-agent"].to_str().expect("ascii");
    assert!(
        ua.starts_with("klarna-odoo/") && ua.contains("Rust") && ua.contains("Odoo/18.0"),
        "{ua}"
    );
    assert!(ua.contains(std::env::consts::OS), "{ua}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["accept"], "application/json");
    assert_eq!(headers["klarna-idempotency-key"], key.as_str());
    assert!(
        headers["authorization"]
            .to_str()
            .expect("ascii")
            .starts_with("Basic ")
    );
}

fn token_request() -> CustomerTokenRequest {
    CustomerTokenRequest {
        purchase_country: "SE".into(),
        purchase_currency: "SEK".into(),
        locale: "sv-SE".into(),
        description: "Coffee subscription".into(),
        intended_use: "SUBSCRIPTION".into(),
        billing_address: None,
        customer: None,
    }
}

/// A charge of `body`'s cart to a customer token.
fn charge(body: &OrderBody) -> TokenOrder {
    TokenOrder {
        purchase_currency: body.purchase_currency.clone(),
        order_amount: body.order_amount,
        order_tax_amount: body.order_tax_amount,
        order_lines: body.order_lines.clone(),
        locale: body.locale.clone(),
        merchant_reference1: Some("S00100".into()),
        merchant_reference2: None,
        merchant_urls: None,
        auto_capture: None,
        shipping_address: None,
    }
}

/// A session made to buy and save the payment method.
async fn buy_and_tokenize(s: &common::Setup, email: &str) -> (OrderBody, String) {
    let body = OrderBody {
        intent: Some("buy_and_tokenize".into()),
        ..order_body(email)
    };
    let session = s.client().create_session(&body).await.expect("session");
    (body, s.approve(&session.session_id).await)
}

#[tokio::test]
async fn a_customer_token_is_charged_until_it_is_cancelled() {
    let s = sandbox().await;
    let client = s.client();

    // One authorization, with buy_and_tokenize: the order and the token, each once.
    let (body, authorization) = buy_and_tokenize(&s, "anna@example.se").await;
    client
        .create_order(&authorization, &body)
        .await
        .expect("the shopper's order");
    let token = client
        .create_customer_token(&authorization, &token_request())
        .await
        .expect("the token")
        .token_id;
    let e = client
        .create_customer_token(&authorization, &token_request())
        .await
        .expect_err("one token per authorization");
    assert_eq!(e.kind, ErrorKind::NotFound);
    let read = client.get_customer_token(&token).await.expect("read");
    assert_eq!(
        (read.status, read.payment_method_type.as_str()),
        (TokenStatus::Active, "INVOICE")
    );

    // Charged with no shopper present: once per idempotency key; the order is Klarna's
    // like any other.
    let key = IdempotencyKey::new();
    let first = client
        .create_token_order(&token, &charge(&body), &key)
        .await
        .expect("first charge");
    let again = client
        .create_token_order(&token, &charge(&body), &key)
        .await
        .expect("the same charge again");
    assert_eq!(first.order_id, again.order_id);
    let second = client
        .create_token_order(&token, &charge(&body), &IdempotencyKey::new())
        .await
        .expect("second charge");
    assert_ne!(first.order_id, second.order_id);
    let order = client.get_order(&second.order_id).await.expect("order");
    assert_eq!(
        (
            order.status,
            order.order_amount,
            order.merchant_reference1.as_deref()
        ),
        (OrderStatus::Authorized, body.order_amount, Some("S00100"))
    );

    // Refused before anything is charged: another currency, lines that do not add up.
    let mut euros = charge(&body);
    euros.purchase_currency = "EUR".into();
    let mut short = charge(&body);
    short.order_amount -= 1;
    for bad in [euros, short] {
        let e = client
            .create_token_order(&token, &bad, &IdempotencyKey::new())
            .await
            .expect_err("refused");
        assert_eq!(e.kind, ErrorKind::Validation, "{e}");
    }

    // Suspended (the payment method stopped working): refused until it is active again.
    let http = reqwest::Client::new();
    let set = |status: &'static str| {
        let (http, url) = (
            http.clone(),
            format!("{}/_sandbox/tokens/{token}/status", s.url),
        );
        async move {
            http.post(url)
                .json(&serde_json::json!({"status": status}))
                .send()
                .await
                .expect("control")
                .status()
        }
    };
    assert!(set("SUSPENDED").await.is_success());
    let e = client
        .create_token_order(&token, &charge(&body), &IdempotencyKey::new())
        .await
        .expect_err("suspended");
    assert_eq!(e.kind, ErrorKind::NotAllowed, "{e}");
    assert!(set("ACTIVE").await.is_success());

    // Cancelled for good: read as such, every charge refused, cancelling again harmless.
    client.cancel_customer_token(&token).await.expect("cancel");
    client.cancel_customer_token(&token).await.expect("again");
    let read = client.get_customer_token(&token).await.expect("read");
    assert_eq!(read.status, TokenStatus::Cancelled);
    let e = client
        .create_token_order(&token, &charge(&body), &IdempotencyKey::new())
        .await
        .expect_err("cancelled");
    assert_eq!(e.kind, ErrorKind::NotAllowed, "{e}");
    assert!(!set("ACTIVE").await.is_success(), "cancelled is for good");

    let e = client
        .get_customer_token("no-such-token")
        .await
        .expect_err("unknown");
    assert_eq!(e.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn a_declined_shopper_s_token_charges_fail_and_a_buy_session_saves_nothing() {
    let s = sandbox().await;
    let client = s.client();
    let (body, authorization) = buy_and_tokenize(&s, "anna+reject@example.se").await;
    let token = client
        .create_customer_token(&authorization, &token_request())
        .await
        .expect("the token")
        .token_id;
    let e = client
        .create_token_order(&token, &charge(&body), &IdempotencyKey::new())
        .await
        .expect_err("declined");
    assert_eq!(e.kind, ErrorKind::Rejected, "{e}");

    let body = order_body("anna@example.se");
    let session = client.create_session(&body).await.expect("session");
    let authorization = s.approve(&session.session_id).await;
    let e = client
        .create_customer_token(&authorization, &token_request())
        .await
        .expect_err("intent buy");
    assert_eq!(e.kind, ErrorKind::Validation, "{e}");
}
