//! The logs of a full flow — session with personal data, order, capture, refund, and a
//! failed login — hold what an operator needs and none of the secrets or personal data.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine;
use common::{order_body, sandbox};
use klarna_client::{Auth, IdempotencyKey, KlarnaClient};
use klarna_types::klarna::{CaptureRequest, RefundRequest};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_name_the_calls_and_never_the_secrets_or_the_shopper() {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let s = sandbox().await;
    let client = s.client();
    let body = order_body("anna.secret@example.se");
    let session = client.create_session(&body).await.expect("session");
    let token = s.approve(&session.session_id).await;
    let order = client.create_order(&token, &body).await.expect("order");
    let key = IdempotencyKey::new();
    client
        .capture(
            &order.order_id,
            &CaptureRequest {
                captured_amount: 104_900,
                ..CaptureRequest::default()
            },
            &key,
        )
        .await
        .expect("capture");
    client
        .refund(
            &order.order_id,
            &RefundRequest {
                refunded_amount: 4_900,
                ..RefundRequest::default()
            },
            &IdempotencyKey::new(),
        )
        .await
        .expect("refund");
    let mut wrong = s.config();
    wrong.auth = Auth::Basic {
        username: s.config.username.clone(),
        password: "Wr0ng-Passw0rd".into(),
    };
    let e = KlarnaClient::new(wrong)
        .expect("client")
        .get_order(&order.order_id)
        .await
        .expect_err("401");

    let text = String::from_utf8(logs.0.lock().expect("logs").clone()).expect("utf-8");
    // What an operator needs is there ...
    for needed in [
        "/payments/v1/sessions",
        "/ordermanagement/v1/orders/{id}/captures",
        &order.order_id,
        key.as_str(),
        "status=201",
        "attempt=1",
    ] {
        assert!(
            text.contains(needed),
            "the logs should name {needed:?}:\n{text}"
        );
    }
    // ... and no secret or personal datum is, in the logs or in the error.
    let pair = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", s.config.username, s.config.password));
    let address = body.billing_address.as_ref().expect("address");
    let forbidden = [
        s.config.password.as_str(),
        "Wr0ng-Passw0rd",
        pair.as_str(),
        session.client_token.as_str(),
        token.as_str(),
        "anna.secret@example.se",
        address.family_name.as_deref().unwrap_or("-"),
        address.street_address.as_deref().unwrap_or("-"),
        address.phone.as_deref().unwrap_or("-"),
    ];
    for secret in forbidden {
        assert!(!text.contains(secret), "the logs leak {secret:?}");
        assert!(
            !e.to_string().contains(secret),
            "the error leaks {secret:?}"
        );
    }
}
