//! The widget's API layer against the gateway's real answers, in headless Chromium: every
//! body is a `klarna_types::contract` value serialized with serde_json, as the gateway's
//! handlers write it, served by a fake `fetch`; the widget's `api` module must read it back
//! as the same value (or the typed error it stands for). A field renamed or retyped on
//! either side fails here.
#![cfg(target_arch = "wasm32")]

use js_sys::Function;
use klarna_types::contract::{
    ApiError, AuthorizeRequest, AuthorizeResponse, ErrorCode, SessionRequest, SessionResponse,
};
use klarna_types::klarna::{AssetUrls, FraudStatus, PaymentMethodCategory};
use klarna_widget::api;
use klarna_widget::config::{Options, WidgetConfig};
use klarna_widget::error::WidgetError;
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// A fake `fetch` that answers every request with `__answer` (status and body text) and
/// keeps what it was sent in `__sent` (url, body text, whether its signal was aborted).
const FAKE_FETCH: &str = r#"
window.__sent = [];
window.fetch = async (input, init) => {
  const request = new Request(input, init);
  const sent = { url: request.url, body: await request.text(), aborted: request.signal.aborted };
  __sent.push(sent);
  if (request.signal.aborted) throw new DOMException("The user aborted a request.", "AbortError");
  return new Response(__answer.body, { status: __answer.status,
    headers: { "Content-Type": __answer.type || "application/json" } });
};
"#;

fn run(code: &str) -> JsValue {
    Function::new_no_args(code)
        .call0(&JsValue::NULL)
        .expect("harness script runs")
}

/// Installs the fake and sets its answer: `body` as the gateway would send it.
fn answer(status: u16, body: &str) {
    run(FAKE_FETCH);
    let answer = js_sys::Object::new();
    js_sys::Reflect::set(&answer, &"status".into(), &status.into()).expect("set");
    js_sys::Reflect::set(&answer, &"body".into(), &body.into()).expect("set");
    js_sys::Reflect::set(&js_sys::global(), &"__answer".into(), &answer).expect("set");
}

fn answer_json(status: u16, value: &impl serde::Serialize) {
    answer(status, &serde_json::to_string(value).expect("serializes"));
}

/// What the last request sent, parsed.
fn last_sent() -> (String, Value) {
    let sent = run("return __sent[__sent.length - 1]");
    let field = |k: &str| {
        js_sys::Reflect::get(&sent, &k.into())
            .expect("field")
            .as_string()
            .expect("a string")
    };
    (
        field("url"),
        serde_json::from_str(&field("body")).expect("the body is JSON"),
    )
}

fn cfg() -> WidgetConfig {
    Options {
        gateway_url: Some("https://gateway.test/".into()),
        order_reference: Some("S00043".into()),
        access_token: Some("access-tok".into()),
        ..Options::default()
    }
    .config()
    .expect("valid settings")
}

fn category(id: &str, standard: Option<&str>) -> PaymentMethodCategory {
    PaymentMethodCategory {
        identifier: id.into(),
        name: format!("{id} name"),
        asset_urls: AssetUrls {
            descriptive: standard.map(|s| format!("{s}/descriptive.svg")),
            standard: standard.map(str::to_owned),
        },
    }
}

fn session(categories: Vec<PaymentMethodCategory>) -> SessionResponse {
    SessionResponse {
        session_id: "sess-1".into(),
        client_token: "eyJhbGciOi.payload.sig".into(),
        payment_method_categories: categories,
    }
}

#[wasm_bindgen_test]
async fn a_session_with_one_category_reads_back_as_sent_and_the_request_is_the_contracts() {
    let sent = session(vec![category("pay_later", Some("https://x.test/pl.svg"))]);
    answer_json(200, &sent);
    let got = api::create_session(&cfg(), None).await;
    assert_eq!(got, Ok(sent));
    let (url, body) = last_sent();
    assert_eq!(url, "https://gateway.test/klarna/session");
    // The gateway refuses unknown fields (`deny_unknown_fields`): what the widget posts
    // must be exactly the contract's request.
    let request: SessionRequest = serde_json::from_value(body).expect("a SessionRequest");
    assert_eq!(
        request,
        SessionRequest {
            order_reference: "S00043".into(),
            access_token: "access-tok".into()
        }
    );
}

#[wasm_bindgen_test]
async fn a_session_with_three_categories_keeps_their_order_and_missing_asset_urls() {
    let sent = session(vec![
        category("pay_later", Some("https://x.test/pl.svg")),
        category("pay_now", None),
        category("pay_over_time", Some("https://x.test/pot.svg")),
    ]);
    answer_json(200, &sent);
    assert_eq!(api::create_session(&cfg(), None).await, Ok(sent));
}

#[wasm_bindgen_test]
async fn each_fraud_status_and_a_decline_read_back_as_sent() {
    for fraud_status in FraudStatus::ALL {
        let sent = AuthorizeResponse::Authorized {
            order_reference: "S00043".into(),
            klarna_order_id: "ko-1".into(),
            fraud_status,
        };
        answer_json(200, &sent);
        assert_eq!(
            api::authorize(&cfg(), "sess-1", "auth-tok").await,
            Ok(sent),
            "{fraud_status}"
        );
    }
    let (url, body) = last_sent();
    assert_eq!(url, "https://gateway.test/klarna/authorize");
    let request: AuthorizeRequest = serde_json::from_value(body).expect("an AuthorizeRequest");
    assert_eq!(
        request,
        AuthorizeRequest {
            session_id: "sess-1".into(),
            authorization_token: "auth-tok".into()
        }
    );

    let declined = AuthorizeResponse::Declined {
        reason: "Klarna could not approve this purchase".into(),
    };
    answer_json(200, &declined);
    assert_eq!(
        api::authorize(&cfg(), "sess-1", "auth-tok").await,
        Ok(declined)
    );
}

#[wasm_bindgen_test]
async fn every_error_code_becomes_the_typed_gateway_error() {
    for &code in ErrorCode::ALL {
        let mut sent = ApiError::new(code, format!("{} happened", code.as_str()), None);
        if code == ErrorCode::OrderNotPayable {
            sent.fields = vec![
                "purchase_currency".into(),
                "billing_address.postal_code".into(),
            ];
        }
        if code == ErrorCode::InvalidRequest {
            sent.field = Some("access_token".into());
        }
        let status = if code == ErrorCode::OrderNotFound {
            404
        } else {
            422
        };
        answer_json(status, &sent);
        let got = api::create_session(&cfg(), None).await;
        let Err(error) = got else {
            panic!("{code:?}: an error answer read as {got:?}");
        };
        assert_eq!(error.gateway_code(), Some(code));
        assert_eq!(
            error,
            WidgetError::Gateway(Box::new(sent.clone())),
            "{code:?}"
        );
        assert_eq!(error.to_string(), sent.message);
    }
    // A code a newer gateway may send still reads, as the untyped code.
    let newer = ApiError {
        code: "something_new".into(),
        ..ApiError::new(ErrorCode::InvalidRequest, "new", None)
    };
    answer_json(400, &newer);
    let got = api::create_session(&cfg(), None).await;
    assert_eq!(got, Err(WidgetError::Gateway(Box::new(newer))));
    assert_eq!(got.err().and_then(|e| e.gateway_code()), None);
}

#[wasm_bindgen_test]
async fn unknown_extra_fields_are_ignored() {
    let sent = session(vec![category("pay_now", None)]);
    let mut body = serde_json::to_value(&sent).expect("serializes");
    body["expires_at"] = "2026-12-06T04:00:00Z".into();
    body["payment_method_categories"][0]["badge"] = serde_json::json!({"kind": "new"});
    answer_json(200, &body);
    assert_eq!(api::create_session(&cfg(), None).await, Ok(sent));

    let mut authorized = serde_json::to_value(AuthorizeResponse::Authorized {
        order_reference: "S00043".into(),
        klarna_order_id: "ko-1".into(),
        fraud_status: FraudStatus::Pending,
    })
    .expect("serializes");
    authorized["redirect_url"] = "https://x.test/thanks".into();
    answer_json(200, &authorized);
    assert!(matches!(
        api::authorize(&cfg(), "sess-1", "auth-tok").await,
        Ok(AuthorizeResponse::Authorized {
            fraud_status: FraudStatus::Pending,
            ..
        })
    ));
}

/// The widget's error for an answer without `key` (or with it mistyped), which must name
/// the field.
async fn read_without(key: &str, mut body: Value, session: bool) -> String {
    body.as_object_mut().expect("an object").remove(key);
    answer_json(200, &body);
    let got = if session {
        api::create_session(&cfg(), None).await.map(drop)
    } else {
        api::authorize(&cfg(), "sess-1", "auth-tok").await.map(drop)
    };
    match got {
        Err(WidgetError::Answer(message)) => message,
        other => panic!("an answer without {key} read as {other:?}"),
    }
}

#[wasm_bindgen_test]
async fn a_missing_required_field_is_a_clear_error_naming_it() {
    let sent = serde_json::to_value(session(vec![category("pay_now", None)])).expect("json");
    for key in ["session_id", "client_token", "payment_method_categories"] {
        let message = read_without(key, sent.clone(), true).await;
        assert!(message.contains(key), "{key}: {message}");
    }
    let authorized = serde_json::to_value(AuthorizeResponse::Authorized {
        order_reference: "S00043".into(),
        klarna_order_id: "ko-1".into(),
        fraud_status: FraudStatus::Accepted,
    })
    .expect("json");
    for key in ["klarna_order_id", "fraud_status"] {
        let message = read_without(key, authorized.clone(), false).await;
        assert!(message.contains(key), "{key}: {message}");
    }
    // An outcome this build does not know is not read as either.
    let mut unknown = authorized.clone();
    unknown["outcome"] = "pending_review".into();
    answer_json(200, &unknown);
    assert!(matches!(
        api::authorize(&cfg(), "sess-1", "auth-tok").await,
        Err(WidgetError::Answer(_))
    ));
    // A mistyped field: a number where the contract has a string.
    let mut mistyped = sent;
    mistyped["client_token"] = 42.into();
    answer_json(200, &mistyped);
    match api::create_session(&cfg(), None).await {
        Err(WidgetError::Answer(m)) => assert!(m.contains("string"), "{m}"),
        other => panic!("a numeric client_token read as {other:?}"),
    }
}

#[wasm_bindgen_test]
async fn a_body_that_is_not_the_gateways_is_a_network_error() {
    // A proxy's HTML error page, and a 502 whose JSON is not the gateway's error shape.
    answer(502, "<html><body>Bad Gateway</body></html>");
    assert_eq!(
        api::create_session(&cfg(), None).await,
        Err(WidgetError::Network)
    );
    answer(503, r#"{"error":"upstream"}"#);
    assert_eq!(
        api::create_session(&cfg(), None).await,
        Err(WidgetError::Network)
    );
}

#[wasm_bindgen_test]
async fn an_aborted_request_ends_as_a_network_error() {
    answer_json(200, &session(vec![category("pay_now", None)]));
    let controller = web_sys::AbortController::new().expect("controller");
    controller.abort();
    assert_eq!(
        api::create_session(&cfg(), Some(&controller.signal())).await,
        Err(WidgetError::Network)
    );
}
