//! The widget in a real headless Chromium (wasm-bindgen-test): each test mounts a fresh
//! element, drives the component, and asserts on the DOM and the events it dispatches.
//! Klarna's SDK and the gateway are replaced by in-page fakes whose call counts the tests
//! read back, so every outcome can be produced on demand.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use js_sys::{Function, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;
use web_sys::{Blob, BlobPropertyBag, Document, HtmlElement, Url};

wasm_bindgen_test_configure!(run_in_browser);

fn document() -> Document {
    web_sys::window()
        .and_then(|w| w.document())
        .expect("document")
}

/// Runs a snippet of test-harness JavaScript and returns its value.
fn js(code: &str) -> JsValue {
    Function::new_no_args(code)
        .call0(&JsValue::NULL)
        .expect("harness script runs")
}

fn js_number(code: &str) -> f64 {
    js(code).as_f64().expect("a number")
}

/// A fake `Klarna.Payments` that counts calls and answers `authorize` with
/// `window.__kp.result`.
const FAKE_SDK: &str = r#"
window.__kp = { init: 0, load: 0, authorize: 0,
  result: { approved: true, show_form: true, authorization_token: "tok-1" } };
window.Klarna = { Payments: {
  init(o) { __kp.init++; if (!o || typeof o.client_token !== "string") {
    const e = new Error("bad token"); e.name = "InvalidClientTokenError"; throw e; } },
  load(o, d, cb) { if (typeof d === "function") cb = d; __kp.load++;
    const f = document.createElement("iframe"); f.className = "fake-klarna"; o.container.appendChild(f);
    setTimeout(() => cb({ show_form: true }), 0); },
  authorize(o, d, cb) { if (typeof d === "function") cb = d; __kp.authorize++;
    setTimeout(() => cb(__kp.result), 30); },
} };
"#;

/// A fake gateway behind `window.fetch`.
const FAKE_GATEWAY: &str = r#"
window.__gw = { session: 0, authorize: 0, sessionStatus: 200, posted: null,
  sessionBody: { session_id: "sess-1", client_token: "a.b.c", payment_method_categories: [
    { identifier: "pay_later", name: "Pay later.", asset_urls: { standard: "data:image/svg+xml,<svg/>" } },
    { identifier: "pay_now", name: "Pay now.", asset_urls: {} },
    { identifier: "pay_over_time", name: "Financing.", asset_urls: {} } ] },
  authorizeBody: { outcome: "authorized", order_reference: "S00043", klarna_order_id: "ko-1", fraud_status: "ACCEPTED" } };
window.fetch = async (input, init) => {
  const url = typeof input === "string" ? input : input.url;
  const body = init && init.body ? init.body : (typeof input === "string" ? null : await input.text());
  const json = (status, value) => new Response(JSON.stringify(value),
    { status, headers: { "Content-Type": "application/json" } });
  if (url.endsWith("/klarna/session")) { __gw.session++; __gw.posted = JSON.parse(body);
    return __gw.sessionStatus === 200 ? json(200, __gw.sessionBody)
      : json(__gw.sessionStatus, { code: "order_not_found", message: "no sale order matches this order reference and access token" }); }
  if (url.endsWith("/klarna/authorize")) { __gw.authorize++; return json(200, __gw.authorizeBody); }
  return json(404, { code: "not_found", message: "no such route" });
};
"#;

fn fakes() {
    js(FAKE_SDK);
    js(FAKE_GATEWAY);
}

/// A fresh mount element with the data attributes an Odoo template renders.
fn mount_element(sdk_url: &str) -> HtmlElement {
    let el: HtmlElement = document()
        .create_element("div")
        .expect("div")
        .dyn_into()
        .expect("html element");
    for (k, v) in [
        ("data-klarna-widget", ""),
        ("data-gateway-url", "https://gateway.test"),
        ("data-order-reference", "S00043"),
        ("data-access-token", "token-123"),
        ("data-sdk-url", sdk_url),
        ("data-timeout-ms", "2000"),
    ] {
        el.set_attribute(k, v).expect("attribute");
    }
    document()
        .body()
        .expect("body")
        .append_child(&el)
        .expect("append");
    el
}

fn phase(el: &HtmlElement) -> String {
    el.query_selector(".kw")
        .ok()
        .flatten()
        .and_then(|k| k.get_attribute("data-phase"))
        .unwrap_or_default()
}

async fn wait_phase(el: &HtmlElement, want: &str) {
    for _ in 0..300 {
        if phase(el) == want {
            return;
        }
        TimeoutFuture::new(10).await;
    }
    panic!(
        "phase stayed {:?}, wanted {want:?}; text: {:?}",
        phase(el),
        el.text_content()
    );
}

fn click(el: &HtmlElement, css: &str) {
    el.query_selector(css)
        .ok()
        .flatten()
        .and_then(|b| b.dyn_into::<HtmlElement>().ok())
        .unwrap_or_else(|| panic!("no {css}"))
        .click();
}

/// Records the `detail` of every `name` event that bubbles to the document.
fn record(name: &str) -> Rc<RefCell<Vec<JsValue>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    let listener = Closure::<dyn Fn(web_sys::CustomEvent)>::new(move |e: web_sys::CustomEvent| {
        sink.borrow_mut().push(e.detail());
    });
    document()
        .add_event_listener_with_callback(name, listener.as_ref().unchecked_ref())
        .expect("listener");
    listener.forget();
    seen
}

fn get(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

#[wasm_bindgen_test]
fn missing_settings_are_named_on_the_page() {
    let el = mount_element("unused");
    el.remove_attribute("data-gateway-url").expect("remove");
    let err = klarna_widget::mount_on(el.clone()).expect_err("must refuse");
    assert_eq!(
        err.to_string(),
        "the widget is missing its data-gateway-url setting"
    );
    assert!(
        el.text_content()
            .unwrap_or_default()
            .contains("data-gateway-url")
    );
}

#[wasm_bindgen_test]
async fn ready_with_three_categories_and_a_double_click_authorizes_once() {
    fakes();
    let authorized = record("klarna:authorized");
    let el = mount_element("https://sdk.test/ready.js");
    klarna_widget::mount_on(el.clone()).expect("mount");
    // Mounting the same element again must not start a second widget.
    klarna_widget::mount_on(el.clone()).expect("second mount is a no-op");
    wait_phase(&el, "ready").await;
    assert_eq!(
        el.query_selector_all(".kw").map(|n| n.length()).ok(),
        Some(1)
    );
    assert_eq!(
        el.query_selector_all(".kw-category")
            .map(|n| n.length())
            .ok(),
        Some(3)
    );
    assert!(el.text_content().unwrap_or_default().contains("Financing."));
    assert!(
        el.query_selector(".kw-container iframe")
            .ok()
            .flatten()
            .is_some()
    );
    // The gateway got the order reference and access token, never an amount.
    assert_eq!(
        js("return JSON.stringify(__gw.posted)")
            .as_string()
            .as_deref(),
        Some(r#"{"order_reference":"S00043","access_token":"token-123"}"#)
    );

    click(&el, ".kw-pay");
    click(&el, ".kw-pay");
    leptos::task::tick().await;
    click(&el, ".kw-pay");
    wait_phase(&el, "authorized").await;
    assert_eq!(js_number("return __kp.authorize"), 1.0);
    assert_eq!(js_number("return __gw.authorize"), 1.0);
    assert!(el.text_content().unwrap_or_default().contains("confirmed"));
    let events = authorized.borrow();
    let last = events.last().expect("klarna:authorized was dispatched");
    assert_eq!(
        get(last, "klarna_order_id").as_string().as_deref(),
        Some("ko-1")
    );
    assert_eq!(
        get(last, "fraud_status").as_string().as_deref(),
        Some("ACCEPTED")
    );
    el.remove();
}

#[wasm_bindgen_test]
async fn a_declined_order_is_said_and_reported() {
    fakes();
    js(r#"__gw.authorizeBody = { outcome: "declined", reason: "Klarna declined the purchase" };"#);
    let declined = record("klarna:declined");
    let el = mount_element("https://sdk.test/declined.js");
    klarna_widget::mount_on(el.clone()).expect("mount");
    wait_phase(&el, "ready").await;
    click(&el, ".kw-pay");
    wait_phase(&el, "declined").await;
    assert!(
        el.text_content()
            .unwrap_or_default()
            .contains("could not approve")
    );
    assert!(!declined.borrow().is_empty());
    el.remove();
}

#[wasm_bindgen_test]
async fn show_form_false_hides_klarna_and_says_so() {
    fakes();
    js("__kp.result = { approved: false, show_form: false };");
    let el = mount_element("https://sdk.test/hidden.js");
    klarna_widget::mount_on(el.clone()).expect("mount");
    wait_phase(&el, "ready").await;
    click(&el, ".kw-pay");
    wait_phase(&el, "unavailable").await;
    assert!(
        el.text_content()
            .unwrap_or_default()
            .contains("not available")
    );
    assert_eq!(js_number("return __gw.authorize"), 0.0, "nothing posted");
    el.remove();
}

#[wasm_bindgen_test]
async fn a_gateway_error_is_shown_and_retry_recovers() {
    fakes();
    js("__gw.sessionStatus = 404;");
    let errors = record("klarna:error");
    let el = mount_element("https://sdk.test/retry.js");
    klarna_widget::mount_on(el.clone()).expect("mount");
    wait_phase(&el, "failed").await;
    assert!(
        el.text_content()
            .unwrap_or_default()
            .contains("no sale order matches")
    );
    assert!(!errors.borrow().is_empty());
    js("__gw.sessionStatus = 200;");
    click(&el, ".kw-retry");
    wait_phase(&el, "ready").await;
    assert_eq!(js_number("return __gw.session"), 2.0);
    el.remove();
}

/// A script URL whose body is `code`, so the SDK loader has a real `<script>` to load.
fn script_url(code: &str) -> String {
    let parts = js_sys::Array::of1(&JsValue::from_str(code));
    let options = BlobPropertyBag::new();
    options.set_type("text/javascript");
    let blob = Blob::new_with_str_sequence_and_options(&parts, &options).expect("blob");
    Url::create_object_url_with_blob(&blob).expect("object url")
}

#[wasm_bindgen_test]
async fn two_widgets_load_the_sdk_script_once() {
    js(FAKE_GATEWAY);
    js("delete window.Klarna;");
    let url = script_url(FAKE_SDK);
    let a = mount_element(&url);
    let b = mount_element(&url);
    klarna_widget::mount_all();
    wait_phase(&a, "ready").await;
    wait_phase(&b, "ready").await;
    let scripts = document()
        .query_selector_all(&format!("script[src=\"{url}\"]"))
        .expect("query");
    assert_eq!(scripts.length(), 1, "one script element for two widgets");
    a.remove();
    b.remove();
}

#[wasm_bindgen_test]
async fn an_sdk_that_cannot_load_fails_clearly_while_the_session_was_still_requested() {
    js(FAKE_GATEWAY);
    js("delete window.Klarna;");
    let url = script_url("throw new Error('never defines Klarna');");
    Url::revoke_object_url(&url).expect("revoke");
    let el = mount_element(&url);
    klarna_widget::mount_on(el.clone()).expect("mount");
    wait_phase(&el, "failed").await;
    assert!(
        el.text_content()
            .unwrap_or_default()
            .contains("Klarna could not be loaded")
    );
    assert_eq!(
        js_number("return __gw.session"),
        1.0,
        "session requested in parallel"
    );
    assert!(el.query_selector(".kw-retry").ok().flatten().is_some());
    el.remove();
}
