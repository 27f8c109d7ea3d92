//! The widget in a real headless Chromium (wasm-bindgen-test): each test mounts a fresh
//! element, drives the component, and asserts on the DOM, the focus and the events it
//! dispatches. Klarna's SDK and the gateway are replaced by in-page fakes whose answers the
//! tests choose and whose calls they count, so every outcome can be produced on demand.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use js_sys::{Function, Reflect};
use klarna_widget::config::Options;
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

fn js_string(code: &str) -> String {
    js(code).as_string().unwrap_or_default()
}

/// A fake `Klarna.Payments`: counts calls, records options, answers `load` per category
/// from `__kp.loadResult` and `authorize`/`finalize` with `__kp.result`/`__kp.finalized`
/// after `__kp.delay` ms, or throws `__kp.throwName`.
const FAKE_SDK: &str = r#"
window.__kp = { init: 0, load: 0, authorize: 0, finalize: 0, loads: [], options: null, delay: 30,
  loadResult: {}, throwName: null,
  result: { approved: true, show_form: true, authorization_token: "tok-1" },
  finalized: { approved: true, show_form: true, authorization_token: "tok-final" } };
function named(name) { const e = new Error(name + " from the fake"); e.name = name; return e; }
window.Klarna = { Payments: {
  init(o) { __kp.init++; if (!o || typeof o.client_token !== "string") throw named("InvalidClientTokenError"); },
  load(o, d, cb) { if (typeof d === "function") cb = d; __kp.load++;
    const cat = o.payment_method_category; __kp.loads.push(cat);
    const f = document.createElement("iframe"); f.className = "fake-klarna"; f.title = "Klarna " + cat;
    o.container.replaceChildren(f);
    setTimeout(() => cb(__kp.loadResult[cat] || { show_form: true }), 0); },
  authorize(o, d, cb) { if (typeof d === "function") cb = d; __kp.authorize++; __kp.options = o;
    if (__kp.throwName) throw named(__kp.throwName);
    setTimeout(() => cb(__kp.result), __kp.delay); },
  finalize(o, d, cb) { if (typeof d === "function") cb = d; __kp.finalize++;
    setTimeout(() => cb(__kp.finalized), __kp.delay); },
} };
"#;

/// A fake gateway behind `window.fetch`.
const FAKE_GATEWAY: &str = r#"
const three = [
  { identifier: "pay_later", name: "Pay later.", asset_urls: { standard: "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E" } },
  { identifier: "pay_now", name: "Pay now.", asset_urls: {} },
  { identifier: "pay_over_time", name: "Financing.", asset_urls: {} } ];
window.__gw = { session: 0, authorize: 0, sessionStatus: 200, sessionDelay: 0, posted: null, tokens: [], signals: [],
  three, sessionBody: { session_id: "sess-1", client_token: "a.b.c", payment_method_categories: three },
  authorizeStatus: 200,
  authorizeBody: { outcome: "authorized", order_reference: "S00043", klarna_order_id: "ko-1", fraud_status: "ACCEPTED" } };
window.fetch = async (input, init) => {
  const url = typeof input === "string" ? input : input.url;
  const body = init && init.body ? init.body : (typeof input === "string" ? null : await input.text());
  const json = (status, value) => new Response(JSON.stringify(value),
    { status, headers: { "Content-Type": "application/json" } });
  const signal = typeof input === "string" ? init && init.signal : input.signal;
  if (url.endsWith("/klarna/session")) { __gw.session++; __gw.posted = JSON.parse(body); __gw.signals.push(signal);
    if (__gw.sessionDelay) await new Promise(r => setTimeout(r, __gw.sessionDelay));
    // As a browser's fetch does: an aborted request rejects instead of answering.
    if (signal && signal.aborted) throw new DOMException("The user aborted a request.", "AbortError");
    return __gw.sessionStatus === 200 ? json(200, __gw.sessionBody)
      : json(__gw.sessionStatus, __gw.sessionError || { code: "order_not_found", message: "no sale order matches this order reference and access token" }); }
  if (url.endsWith("/klarna/authorize")) { __gw.authorize++; __gw.tokens.push(JSON.parse(body).authorization_token);
    return json(__gw.authorizeStatus, __gw.authorizeBody); }
  return json(404, { code: "not_found", message: "no such route" });
};
"#;

fn fakes() {
    js(FAKE_SDK);
    js(FAKE_GATEWAY);
}

/// A fresh mount element with the data attributes an Odoo template renders.
fn element(sdk_url: &str, extra: &[(&str, &str)]) -> HtmlElement {
    let el: HtmlElement = document()
        .create_element("div")
        .expect("div")
        .dyn_into()
        .expect("html element");
    for (k, v) in [
        ("data-gateway-url", "https://gateway.test"),
        ("data-order-reference", "S00043"),
        ("data-access-token", "token-123"),
        ("data-sdk-url", sdk_url),
        ("data-timeout-ms", "2000"),
    ]
    .iter()
    .chain(extra)
    {
        el.set_attribute(k, v).expect("attribute");
    }
    document()
        .body()
        .expect("body")
        .append_child(&el)
        .expect("append");
    el
}

fn mount(el: &HtmlElement) {
    klarna_widget::mount_on(el.clone(), Options::default()).expect("mount");
}

fn unmount(el: &HtmlElement) {
    klarna_widget::unmount(el);
    el.remove();
}

fn phase(el: &HtmlElement) -> String {
    el.query_selector(".kw")
        .ok()
        .flatten()
        .and_then(|k| k.get_attribute("data-phase"))
        .unwrap_or_default()
}

fn text(el: &HtmlElement) -> String {
    el.text_content().unwrap_or_default()
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
        text(el)
    );
}

async fn wait_until(what: &str, check: impl Fn() -> bool) {
    for _ in 0..300 {
        if check() {
            return;
        }
        TimeoutFuture::new(10).await;
    }
    panic!("timed out waiting for {what}");
}

fn find(root: &web_sys::Element, css: &str) -> HtmlElement {
    root.query_selector(css)
        .ok()
        .flatten()
        .and_then(|b| b.dyn_into::<HtmlElement>().ok())
        .unwrap_or_else(|| panic!("no {css}"))
}

fn click(el: &HtmlElement, css: &str) {
    find(el, css).click();
}

fn count(el: &HtmlElement, css: &str) -> u32 {
    el.query_selector_all(css).map(|n| n.length()).unwrap_or(0)
}

/// The containers that are showing (not `hidden`).
fn visible_containers(el: &HtmlElement) -> Vec<String> {
    let nodes = el.query_selector_all(".kw-container").expect("query");
    (0..nodes.length())
        .filter_map(|i| nodes.item(i)?.dyn_into::<HtmlElement>().ok())
        .filter(|c| !c.hidden())
        .filter_map(|c| c.get_attribute("data-category"))
        .collect()
}

/// Records the `detail` of every `name` event that bubbles from `target`.
fn record(target: &HtmlElement, name: &str) -> Rc<RefCell<Vec<JsValue>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    let listener = Closure::<dyn Fn(web_sys::CustomEvent)>::new(move |e: web_sys::CustomEvent| {
        sink.borrow_mut().push(e.detail());
    });
    target
        .add_event_listener_with_callback(name, listener.as_ref().unchecked_ref())
        .expect("listener");
    listener.forget();
    seen
}

fn get(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn active_class() -> String {
    document()
        .active_element()
        .map(|e| e.class_name())
        .unwrap_or_default()
}

fn key(target: &web_sys::Element, key: &str, shift: bool) {
    let init = web_sys::KeyboardEventInit::new();
    init.set_key(key);
    init.set_shift_key(shift);
    init.set_bubbles(true);
    init.set_cancelable(true);
    let event =
        web_sys::KeyboardEvent::new_with_keyboard_event_init_dict("keydown", &init).expect("event");
    target.dispatch_event(&event).expect("dispatch");
}

#[wasm_bindgen_test]
fn missing_settings_are_named_on_the_page() {
    let el = element("unused", &[]);
    el.remove_attribute("data-gateway-url").expect("remove");
    let errors = record(&el, "klarna:error");
    let Err(err) = klarna_widget::mount_on(el.clone(), Options::default()) else {
        panic!("must refuse");
    };
    assert_eq!(
        err.to_string(),
        "the widget is missing its gateway-url setting"
    );
    assert!(text(&el).contains("gateway-url"));
    assert_eq!(
        get(&errors.borrow()[0], "code").as_string().as_deref(),
        Some("missing_setting")
    );
    el.remove();
}

#[wasm_bindgen_test]
async fn a_skeleton_shows_while_loading_then_one_category_is_ready() {
    fakes();
    js("__gw.sessionDelay = 150; __gw.sessionBody.payment_method_categories = [__gw.three[0]];");
    let el = element("https://sdk.test/one.js", &[]);
    let ready = record(&el, "klarna:ready");
    mount(&el);
    TimeoutFuture::new(30).await;
    assert_eq!(phase(&el), "loading");
    assert_eq!(count(&el, ".kw-skeleton"), 1, "a skeleton, not a blank box");
    assert_eq!(
        find(&el, ".kw-status").text_content().as_deref(),
        Some("Loading Klarna…")
    );
    assert_eq!(
        find(&el, ".kw-status")
            .get_attribute("aria-live")
            .as_deref(),
        Some("polite")
    );
    wait_phase(&el, "ready").await;
    assert_eq!(count(&el, ".kw-skeleton"), 0);
    assert_eq!(count(&el, ".kw-option"), 1);
    assert_eq!(visible_containers(&el), ["pay_later"]);
    assert_eq!(
        count(&el, ".kw-icon"),
        1,
        "the category's icon from asset_urls"
    );
    let ready = ready.borrow();
    assert_eq!(
        get(&ready[0], "category").as_string().as_deref(),
        Some("pay_later")
    );
    assert!(get(&ready[0], "elapsed_ms").as_f64().unwrap_or(-1.0) >= 150.0);
    unmount(&el);
}

#[wasm_bindgen_test]
async fn three_categories_one_form_visible_and_the_preferred_one_first() {
    fakes();
    let el = element(
        "https://sdk.test/three.js",
        &[("data-category", "pay_over_time")],
    );
    mount(&el);
    wait_phase(&el, "ready").await;
    assert_eq!(count(&el, ".kw-option"), 3);
    assert!(text(&el).contains("Financing."));
    assert_eq!(
        visible_containers(&el),
        ["pay_over_time"],
        "the preferred category"
    );
    assert_eq!(
        js_string("return __kp.loads.join(',')"),
        "pay_over_time",
        "only the shown one loaded"
    );
    // Picking another category loads its form; exactly one stays visible.
    click(&el, "input[value=pay_now]");
    wait_until("pay_now loaded", || {
        js_string("return __kp.loads.join(',')") == "pay_over_time,pay_now"
    })
    .await;
    wait_phase(&el, "ready").await;
    assert_eq!(visible_containers(&el), ["pay_now"]);
    // Back again: already loaded, not loaded twice.
    click(&el, "input[value=pay_over_time]");
    wait_until("pay_over_time shown", || {
        visible_containers(&el) == ["pay_over_time"]
    })
    .await;
    assert_eq!(js_number("return __kp.load"), 2.0);
    // The gateway got the order reference and access token, never an amount.
    assert_eq!(
        js_string("return JSON.stringify(__gw.posted)"),
        r#"{"order_reference":"S00043","access_token":"token-123"}"#
    );
    unmount(&el);
}

#[wasm_bindgen_test]
async fn a_double_click_authorizes_once_and_the_gateways_outcome_is_reported() {
    fakes();
    let el = element("https://sdk.test/double.js", &[]);
    let authorized = record(&el, "klarna:authorized");
    mount(&el);
    // Mounting the same element again must not start a second widget.
    mount(&el);
    wait_phase(&el, "ready").await;
    assert_eq!(count(&el, ".kw"), 1);
    click(&el, ".kw-pay");
    click(&el, ".kw-pay");
    TimeoutFuture::new(5).await;
    click(&el, ".kw-pay");
    wait_phase(&el, "authorized").await;
    assert_eq!(js_number("return __kp.authorize"), 1.0);
    assert_eq!(js_number("return __gw.authorize"), 1.0);
    assert!(text(&el).contains("confirmed"));
    let events = authorized.borrow();
    assert_eq!(events.len(), 1);
    assert_eq!(
        get(&events[0], "klarna_order_id").as_string().as_deref(),
        Some("ko-1")
    );
    assert_eq!(
        get(&events[0], "fraud_status").as_string().as_deref(),
        Some("ACCEPTED")
    );
    unmount(&el);
}

#[wasm_bindgen_test]
async fn finalize_required_asks_the_shopper_to_confirm_then_finalizes() {
    fakes();
    js("__kp.result = { approved: true, show_form: true, finalize_required: true };");
    let el = element(
        "https://sdk.test/finalize.js",
        &[("data-auto-finalize", "false")],
    );
    mount(&el);
    wait_phase(&el, "ready").await;
    click(&el, ".kw-pay");
    wait_phase(&el, "confirm").await;
    assert!(
        js("return __kp.options.auto_finalize === false")
            .as_bool()
            .unwrap_or(false)
    );
    assert_eq!(
        js_number("return __gw.authorize"),
        0.0,
        "nothing posted before finalize"
    );
    assert!(text(&el).contains("Confirm it"));
    click(&el, ".kw-confirm");
    wait_phase(&el, "authorized").await;
    assert_eq!(js_number("return __kp.finalize"), 1.0);
    assert_eq!(js_string("return __gw.tokens.join(',')"), "tok-final");
    unmount(&el);
}

#[wasm_bindgen_test]
async fn invalid_fields_are_named_in_words_and_the_form_stays() {
    fakes();
    js(r#"__kp.result = { approved: false, show_form: true,
        error: { invalid_fields: ["billing_address.email", "billing_address.phone"] } };"#);
    let el = element("https://sdk.test/invalid.js", &[]);
    let reported = record(&el, "klarna:invalid_fields");
    mount(&el);
    wait_phase(&el, "ready").await;
    click(&el, ".kw-pay");
    wait_until("the notice", || !find(&el, ".kw-notice").hidden()).await;
    assert_eq!(phase(&el), "ready");
    assert_eq!(
        find(&el, ".kw-notice").text_content().as_deref(),
        Some("Please check these details: e-mail address, phone number.")
    );
    assert_eq!(js_number("return __gw.authorize"), 0.0);
    // The host hears it, with the fields and the words, so that it gives its form back.
    assert_eq!(reported.borrow().len(), 1);
    let detail = reported.borrow()[0].clone();
    let detail = &detail;
    assert_eq!(
        js_sys::Array::from(&get(detail, "fields"))
            .iter()
            .filter_map(|f| f.as_string())
            .collect::<Vec<_>>(),
        ["billing_address.email", "billing_address.phone"]
    );
    assert!(
        get(detail, "message")
            .as_string()
            .is_some_and(|m| m.contains("e-mail address"))
    );
    assert_eq!(
        get(detail, "category").as_string().as_deref(),
        Some("pay_later")
    );
    assert_eq!(visible_containers(&el), ["pay_later"], "the form stays");
    // Fixed: the next attempt goes through.
    js("__kp.result = { approved: true, show_form: true, authorization_token: 'tok-2' };");
    click(&el, ".kw-pay");
    wait_phase(&el, "authorized").await;
    unmount(&el);
}

#[wasm_bindgen_test]
async fn show_form_false_hides_that_category_and_moves_on_then_says_klarna_is_unavailable() {
    fakes();
    js("__kp.result = { approved: false, show_form: false };");
    let el = element("https://sdk.test/hidden.js", &[]);
    let declined = record(&el, "klarna:declined");
    mount(&el);
    wait_phase(&el, "ready").await;
    click(&el, ".kw-pay");
    wait_until("the next category", || {
        visible_containers(&el) == ["pay_now"]
    })
    .await;
    wait_phase(&el, "ready").await;
    assert!(find(&el, "input[value=pay_later]").has_attribute("disabled"));
    assert!(text(&el).contains("This Klarna option is not available"));
    assert_eq!(js_number("return __gw.authorize"), 0.0, "nothing posted");
    assert_eq!(
        get(&declined.borrow()[0], "category")
            .as_string()
            .as_deref(),
        Some("pay_later")
    );
    // Klarna refuses the other two as well: Klarna is hidden for this purchase.
    click(&el, ".kw-pay");
    wait_until("the last category", || {
        visible_containers(&el) == ["pay_over_time"]
    })
    .await;
    wait_phase(&el, "ready").await;
    click(&el, ".kw-pay");
    wait_phase(&el, "unavailable").await;
    assert!(text(&el).contains("Klarna is not available for this purchase"));
    assert_eq!(count(&el, ".kw-pay"), 0);
    unmount(&el);
}

#[wasm_bindgen_test]
async fn a_category_klarna_will_not_load_is_skipped() {
    fakes();
    js("__kp.loadResult = { pay_later: { show_form: false } };");
    let el = element("https://sdk.test/load-false.js", &[]);
    mount(&el);
    wait_phase(&el, "ready").await;
    assert_eq!(visible_containers(&el), ["pay_now"]);
    assert!(find(&el, ".kw-option").class_list().contains("kw-off"));
    unmount(&el);
}

#[wasm_bindgen_test]
async fn an_sdk_exception_is_an_error_state_never_uncaught() {
    fakes();
    js(r#"__kp.throwName = "ApplicationNotLoadedError";"#);
    let el = element("https://sdk.test/throws.js", &[]);
    let errors = record(&el, "klarna:error");
    mount(&el);
    wait_phase(&el, "ready").await;
    click(&el, ".kw-pay");
    wait_phase(&el, "failed").await;
    assert!(text(&el).contains("Something went wrong with Klarna"));
    assert_eq!(
        get(&errors.borrow()[0], "code").as_string().as_deref(),
        Some("ApplicationNotLoadedError")
    );
    assert_eq!(count(&el, ".kw-retry"), 1);
    unmount(&el);
}

#[wasm_bindgen_test]
async fn a_callback_value_of_another_shape_is_a_named_error_and_nothing_is_posted() {
    fakes();
    js(r#"__kp.result = { approved: "yes", show_form: true, authorization_token: 42 };"#);
    let el = element("https://sdk.test/odd-callback.js", &[]);
    let errors = record(&el, "klarna:error");
    mount(&el);
    wait_phase(&el, "ready").await;
    click(&el, ".kw-pay");
    wait_phase(&el, "failed").await;
    let error = &errors.borrow()[0];
    assert_eq!(
        get(error, "code").as_string().as_deref(),
        Some("UnexpectedCallbackValue")
    );
    let message = get(error, "message").as_string().unwrap_or_default();
    assert!(message.contains("boolean"), "{message}");
    assert_eq!(js_number("return __gw.authorize"), 0.0);
    unmount(&el);
}

#[wasm_bindgen_test]
async fn a_declined_order_is_said_and_reported() {
    fakes();
    js(r#"__gw.authorizeBody = { outcome: "declined", reason: "Klarna declined the purchase" };"#);
    let el = element("https://sdk.test/declined.js", &[]);
    let declined = record(&el, "klarna:declined");
    mount(&el);
    wait_phase(&el, "ready").await;
    click(&el, ".kw-pay");
    wait_phase(&el, "declined").await;
    assert!(text(&el).contains("could not approve"));
    assert_eq!(
        get(&declined.borrow()[0], "reason").as_string().as_deref(),
        Some("Klarna declined the purchase")
    );
    unmount(&el);
}

#[wasm_bindgen_test]
async fn a_session_failure_is_shown_and_retry_recovers() {
    fakes();
    js(r#"__gw.sessionStatus = 503;
        __gw.sessionError = { code: "odoo_unavailable", message: "the shop did not answer" };"#);
    let el = element("https://sdk.test/retry.js", &[]);
    let errors = record(&el, "klarna:error");
    mount(&el);
    wait_phase(&el, "failed").await;
    assert!(text(&el).contains("could not be reached"), "{}", text(&el));
    assert_eq!(
        get(&errors.borrow()[0], "code").as_string().as_deref(),
        Some("odoo_unavailable")
    );
    js("__gw.sessionStatus = 200;");
    click(&el, ".kw-retry");
    wait_phase(&el, "ready").await;
    assert_eq!(js_number("return __gw.session"), 2.0);
    unmount(&el);
}

#[wasm_bindgen_test]
async fn an_order_klarna_cannot_take_says_why_and_offers_no_retry_that_cannot_work() {
    fakes();
    // A SEK cart billed to a US address: Klarna takes USD there. Trying again cannot help;
    // another payment method or billing address can.
    js(
        r#"__gw.sessionStatus = 422; __gw.sessionError = { code: "order_not_payable",
        message: "the order cannot be paid with Klarna: purchase_currency: Klarna takes USD in US, not SEK",
        fields: ["purchase_currency"] };"#,
    );
    let el = element("https://sdk.test/not-payable.js", &[]);
    let errors = record(&el, "klarna:error");
    mount(&el);
    wait_phase(&el, "failed").await;
    assert!(
        text(&el).contains("does not take this currency in your billing country"),
        "{}",
        text(&el)
    );
    assert_eq!(count(&el, ".kw-retry"), 0, "no retry that cannot work");
    assert_eq!(
        get(&errors.borrow()[0], "code").as_string().as_deref(),
        Some("order_not_payable")
    );
    unmount(&el);

    // An address Klarna would refuse: the details are named, still no retry.
    js(
        r#"__gw.sessionError = { code: "order_not_payable", message: "…",
        fields: ["billing_address.postal_code", "billing_address.phone"] };"#,
    );
    let el = element("https://sdk.test/not-payable-address.js", &[]);
    mount(&el);
    wait_phase(&el, "failed").await;
    assert!(
        text(&el).contains("cannot be paid with Klarna"),
        "{}",
        text(&el)
    );
    assert_eq!(
        find(&el, ".kw-notice").text_content().as_deref(),
        Some("Please check these details: postal code, phone number.")
    );
    assert_eq!(count(&el, ".kw-retry"), 0);
    unmount(&el);
}

#[wasm_bindgen_test]
async fn a_hang_becomes_a_timeout_message_with_retry() {
    fakes();
    js("__gw.sessionDelay = 5000;");
    let el = element("https://sdk.test/hang.js", &[("data-timeout-ms", "200")]);
    mount(&el);
    wait_phase(&el, "failed").await;
    assert!(text(&el).contains("taking too long"));
    assert_eq!(
        js("return __gw.signals[0].aborted").as_bool(),
        Some(true),
        "the timed-out session request is aborted"
    );
    js("__gw.sessionDelay = 0;");
    click(&el, ".kw-retry");
    wait_phase(&el, "ready").await;
    unmount(&el);
}

#[wasm_bindgen_test]
async fn a_session_request_a_newer_cart_superseded_is_aborted() {
    fakes();
    js("__gw.sessionDelay = 300;");
    let el = element("https://sdk.test/abort.js", &[]);
    mount(&el);
    wait_until("the first session request", || {
        js_number("return __gw.session") == 1.0
    })
    .await;
    // The cart changes while the first request is still out.
    el.set_attribute("data-cart-version", "2").expect("attr");
    wait_until("the second session request", || {
        js_number("return __gw.session") == 2.0
    })
    .await;
    assert_eq!(
        js("return __gw.signals.map(s => s.aborted).join()").as_string(),
        Some("true,false".into()),
        "the superseded request is aborted, the new one is not"
    );
    wait_phase(&el, "ready").await;
    assert_eq!(
        js_number("return __kp.load"),
        1.0,
        "loaded once, for the new cart"
    );
    unmount(&el);
    assert_eq!(
        js("return __gw.signals[1].aborted").as_bool(),
        Some(false),
        "an answered request has nothing to abort"
    );
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
    let a = element(&url, &[]);
    let b = element(&url, &[]);
    mount(&a);
    mount(&b);
    wait_phase(&a, "ready").await;
    wait_phase(&b, "ready").await;
    let scripts = document()
        .query_selector_all(&format!("script[src=\"{url}\"]"))
        .expect("query");
    assert_eq!(scripts.length(), 1, "one script element for two widgets");
    unmount(&a);
    unmount(&b);
}

#[wasm_bindgen_test]
async fn an_sdk_already_on_the_page_is_not_loaded_again() {
    fakes();
    let url = "https://sdk.test/already-here.js";
    let el = element(url, &[]);
    mount(&el);
    wait_phase(&el, "ready").await;
    assert_eq!(
        count_scripts(url),
        0,
        "Klarna.Payments was there: no script added"
    );
    unmount(&el);
}

fn count_scripts(url: &str) -> u32 {
    document()
        .query_selector_all(&format!("script[src=\"{url}\"]"))
        .map(|n| n.length())
        .unwrap_or(0)
}

#[wasm_bindgen_test]
async fn an_sdk_that_cannot_load_fails_clearly_while_the_session_was_still_requested() {
    js(FAKE_GATEWAY);
    js("delete window.Klarna;");
    let url = script_url("throw new Error('never defines Klarna');");
    Url::revoke_object_url(&url).expect("revoke");
    let el = element(&url, &[]);
    mount(&el);
    wait_phase(&el, "failed").await;
    assert!(text(&el).contains("Klarna could not be loaded"));
    assert_eq!(
        js_number("return __gw.session"),
        1.0,
        "session requested in parallel"
    );
    assert_eq!(count(&el, ".kw-retry"), 1);
    unmount(&el);
}

#[wasm_bindgen_test]
async fn a_cart_update_reloads_klarna_and_an_approval_for_the_old_cart_is_never_posted() {
    fakes();
    let el = element("https://sdk.test/update.js", &[]);
    mount(&el);
    wait_phase(&el, "ready").await;
    assert_eq!(
        (
            js_number("return __gw.session"),
            js_number("return __kp.load")
        ),
        (1.0, 1.0)
    );
    // The host page says the cart changed (Odoo bumps data-cart-version).
    el.set_attribute("data-cart-version", "2").expect("attr");
    wait_until("a new session", || js_number("return __gw.session") == 2.0).await;
    wait_until("load again", || js_number("return __kp.load") == 2.0).await;
    wait_phase(&el, "ready").await;
    // The shopper is in Klarna's dialog when the cart changes again (through the JS API):
    // Klarna's approval arrives for the old cart and is dropped.
    js("__kp.delay = 300;");
    click(&el, ".kw-pay");
    TimeoutFuture::new(50).await;
    let handle = klarna_widget::Handle::for_element(el.clone());
    let update = js_sys::JSON::parse(r#"{"accessToken": "token-456"}"#).expect("json");
    handle.update(update);
    wait_until("the third session", || {
        js_number("return __gw.session") == 3.0
    })
    .await;
    TimeoutFuture::new(400).await;
    wait_phase(&el, "ready").await;
    assert_eq!(
        js_number("return __gw.authorize"),
        0.0,
        "the old approval was not posted"
    );
    assert_eq!(js_string("return __gw.posted.access_token"), "token-456");
    // Paying now authorizes the new cart.
    js("__kp.delay = 10;");
    click(&el, ".kw-pay");
    wait_phase(&el, "authorized").await;
    assert_eq!(js_number("return __gw.authorize"), 1.0);
    unmount(&el);
}

#[wasm_bindgen_test]
async fn a_cart_changed_answer_reloads_and_tells_the_shopper() {
    fakes();
    js(
        r#"__gw.authorizeStatus = 409; __gw.authorizeBody = { code: "cart_changed", message: "the order changed" };"#,
    );
    let el = element("https://sdk.test/cart-changed.js", &[]);
    let changed = record(&el, "klarna:cart_changed");
    mount(&el);
    wait_phase(&el, "ready").await;
    click(&el, ".kw-pay");
    wait_until("a new session", || js_number("return __gw.session") == 2.0).await;
    wait_phase(&el, "ready").await;
    assert!(text(&el).contains("Your cart changed"));
    assert_eq!(changed.borrow().len(), 1, "the host hears it");
    assert_eq!(js_number("return __kp.load"), 2.0, "Klarna loaded again");
    unmount(&el);
}

#[wasm_bindgen_test]
async fn closing_klarna_or_an_expired_approval_is_reported_and_the_form_stays_usable() {
    fakes();
    // The shopper closed Klarna's dialog: not approved, the form still offered, nothing
    // to correct.
    js("__kp.result = { approved: false, show_form: true };");
    let el = element("https://sdk.test/closed.js", &[]);
    let closed = record(&el, "klarna:closed");
    let expired = record(&el, "klarna:expired");
    mount(&el);
    wait_phase(&el, "ready").await;
    click(&el, ".kw-pay");
    wait_until("klarna:closed", || closed.borrow().len() == 1).await;
    assert_eq!(phase(&el), "ready");
    assert_eq!(
        get(&closed.borrow()[0], "by").as_string().as_deref(),
        Some("klarna")
    );
    assert_eq!(js_number("return __gw.authorize"), 0.0);
    // Approved, but Klarna forgot the approval before the gateway placed the order.
    js(
        r#"__kp.result = { approved: true, show_form: true, authorization_token: "tok-old" };
        __gw.authorizeStatus = 410;
        __gw.authorizeBody = { code: "authorization_expired", message: "Klarna no longer knows this authorization" };"#,
    );
    click(&el, ".kw-pay");
    wait_until("klarna:expired", || expired.borrow().len() == 1).await;
    assert_eq!(phase(&el), "ready");
    assert!(text(&el).contains("expired"), "{}", text(&el));
    // And the next attempt pays.
    js(r#"__gw.authorizeStatus = 200;
        __gw.authorizeBody = { outcome: "authorized", order_reference: "S00043", klarna_order_id: "ko-1", fraud_status: "ACCEPTED" };"#);
    click(&el, ".kw-pay");
    wait_phase(&el, "authorized").await;
    unmount(&el);
}

/// The widget's stylesheet, under a host page's CSS that hides `[hidden]` for good, as
/// Bootstrap's (Odoo's) does.
fn host_styles() {
    if document().get_element_by_id("host-styles").is_some() {
        return;
    }
    let style = document().create_element("style").expect("style");
    style.set_id("host-styles");
    style.set_text_content(Some(&format!(
        "[hidden] {{ display: none !important; }}\n{}",
        include_str!("../static/widget.css")
    )));
    document()
        .head()
        .expect("head")
        .append_child(&style)
        .expect("append");
}

#[wasm_bindgen_test]
async fn a_host_button_opens_the_modal_whose_own_button_pays_and_closing_it_is_reported() {
    fakes();
    let el = element(
        "https://sdk.test/host-modal.js",
        &[("data-mode", "modal"), ("data-pay-button", "false")],
    );
    host_styles();
    let closed = record(&el, "klarna:closed");
    let authorized = record(&el, "klarna:authorized");
    let handle = klarna_widget::Handle::for_element(el.clone());
    mount(&el);
    wait_phase(&el, "ready").await;
    assert_eq!(
        find(&el, ".kw-open").offset_parent(),
        None,
        "one way to pay: the host's button"
    );
    let backdrop = find(
        &document().document_element().expect("root"),
        ".kw-backdrop",
    );
    assert!(backdrop.has_attribute("data-closed"));
    let visibility = || {
        web_sys::window()
            .and_then(|w| w.get_computed_style(&backdrop).ok().flatten())
            .and_then(|c| c.get_property_value("visibility").ok())
            .unwrap_or_default()
    };
    assert_eq!(visibility(), "hidden");
    // Closed, the dialog keeps its layout even under the host's CSS, so Klarna's form
    // loaded into it gets its size (0 px under `display: none`).
    let frame = find(&backdrop, ".kw-container:not([hidden]) iframe");
    assert!(frame.get_bounding_client_rect().width() > 0.0);
    assert!(handle.pay(), "the host's button opens the dialog");
    wait_until("open", || !backdrop.has_attribute("data-closed")).await;
    assert_eq!(visibility(), "visible");
    assert_eq!(
        js_number("return __kp.authorize"),
        0.0,
        "opening pays nothing"
    );
    let dialog = find(&backdrop, ".kw-dialog");
    assert_eq!(
        count(&dialog, ".kw-pay"),
        1,
        "the dialog has its own pay button"
    );
    // The shopper closes it: the host hears it and gets its form back.
    click(&dialog, ".kw-close");
    wait_until("klarna:closed", || closed.borrow().len() == 1).await;
    assert_eq!(
        get(&closed.borrow()[0], "by").as_string().as_deref(),
        Some("dialog")
    );
    wait_until("closed", || backdrop.has_attribute("data-closed")).await;
    // Again, and this time pay inside.
    assert!(handle.pay());
    wait_until("open again", || !backdrop.has_attribute("data-closed")).await;
    click(&dialog, ".kw-pay");
    wait_phase(&el, "authorized").await;
    assert_eq!(authorized.borrow().len(), 1);
    assert_eq!(closed.borrow().len(), 1, "paying is not closing");
    assert_eq!(js_number("return __kp.authorize"), 1.0);
    unmount(&el);
    if let Some(style) = document().get_element_by_id("host-styles") {
        style.remove();
    }
}

#[wasm_bindgen_test]
async fn the_modal_traps_focus_closes_on_escape_and_gives_focus_back() {
    fakes();
    let outside: HtmlElement = document()
        .create_element("button")
        .expect("button")
        .dyn_into()
        .expect("html");
    outside.set_class_name("outside");
    document()
        .body()
        .expect("body")
        .append_child(&outside)
        .expect("append");
    let el = element("https://sdk.test/modal.js", &[("data-mode", "modal")]);
    mount(&el);
    wait_phase(&el, "ready").await;
    let backdrop = find(
        &document().document_element().expect("root"),
        ".kw-backdrop",
    );
    assert!(backdrop.has_attribute("data-closed"), "closed at first");
    let trigger = find(&el, ".kw-open");
    trigger.focus().expect("focus");
    trigger.click();
    wait_until("focus in the dialog", || {
        document()
            .active_element()
            .is_some_and(|a| a.closest(".kw-dialog").ok().flatten().is_some())
    })
    .await;
    assert!(!backdrop.has_attribute("data-closed"));
    let dialog = find(&backdrop, ".kw-dialog");
    assert_eq!(dialog.get_attribute("role").as_deref(), Some("dialog"));
    assert_eq!(dialog.get_attribute("aria-modal").as_deref(), Some("true"));
    assert_eq!(
        active_class(),
        "",
        "the selected category's radio has focus"
    );
    assert_eq!(
        visible_containers(&dialog),
        ["pay_later"],
        "the same content, in the dialog"
    );
    // The page behind is inert: focus cannot go there.
    assert!(outside.closest("[inert]").ok().flatten().is_some());
    outside.focus().expect("focus");
    assert!(
        document().active_element().is_some_and(|a| a
            .closest(".kw-dialog")
            .ok()
            .flatten()
            .is_some())
    );
    // Tab from the last element wraps to the first, Shift+Tab from the first to the last.
    find(&dialog, ".kw-pay").focus().expect("focus");
    key(&dialog, "Tab", false);
    assert_eq!(active_class(), "kw-close");
    key(&dialog, "Tab", true);
    assert_eq!(active_class(), "kw-pay");
    // Escape closes; focus returns to the button that opened it; the page is live again.
    key(&dialog, "Escape", false);
    wait_until("closed", || backdrop.has_attribute("data-closed")).await;
    assert_eq!(active_class(), "kw-open");
    assert!(outside.closest("[inert]").ok().flatten().is_none());
    // Paying in the dialog works like inline.
    trigger.click();
    wait_until("open again", || !backdrop.has_attribute("data-closed")).await;
    find(&dialog, ".kw-pay").click();
    wait_phase(&el, "authorized").await;
    assert!(
        dialog
            .text_content()
            .unwrap_or_default()
            .contains("confirmed")
    );
    unmount(&el);
    assert!(
        document()
            .query_selector(".kw-backdrop")
            .ok()
            .flatten()
            .is_none(),
        "the dialog left with the widget"
    );
    outside.remove();
}

#[wasm_bindgen_test]
async fn texts_follow_the_locale() {
    fakes();
    for (locale, pay, lang) in [
        ("de-DE", "Mit Klarna bezahlen", "de"),
        ("sv-SE", "Betala med Klarna", "sv"),
        ("nb-NO", "Betal med Klarna", "nb"),
        ("fi-FI", "Maksa Klarnalla", "fi"),
        ("da-DK", "Betal med Klarna", "da"),
        ("nl-NL", "Betalen met Klarna", "nl"),
        ("fr-FR", "Payer avec Klarna", "fr"),
        ("es-ES", "Pagar con Klarna", "es"),
    ] {
        let el = element(
            &format!("https://sdk.test/{locale}.js"),
            &[("data-locale", locale)],
        );
        mount(&el);
        wait_phase(&el, "ready").await;
        assert_eq!(
            find(&el, ".kw-pay").text_content().as_deref(),
            Some(pay),
            "{locale}"
        );
        assert_eq!(
            find(&el, ".kw").get_attribute("lang").as_deref(),
            Some(lang)
        );
        unmount(&el);
    }
}

#[wasm_bindgen_test]
async fn the_js_api_mounts_once_updates_and_unmounts() {
    fakes();
    let el: HtmlElement = document()
        .create_element("div")
        .expect("div")
        .dyn_into()
        .expect("html");
    document()
        .body()
        .expect("body")
        .append_child(&el)
        .expect("append");
    let heights = record(&el, "klarna:height");
    let options = js_sys::JSON::parse(
        r##"{"gatewayUrl": "https://gateway.test", "orderReference": "S00043",
            "accessToken": "token-123", "sdkUrl": "https://sdk.test/api.js", "accent": "#123456"}"##,
    )
    .expect("json");
    let handle = klarna_widget::mount(el.clone(), options.clone()).expect("mount");
    let again = klarna_widget::mount(el.clone(), options).expect("second mount");
    wait_phase(&el, "ready").await;
    assert_eq!(
        count(&el, ".kw"),
        1,
        "one widget however often it is mounted"
    );
    assert_eq!(js_number("return __gw.session"), 1.0);
    assert_eq!(
        find(&el, ".kw")
            .style()
            .get_property_value("--kw-accent")
            .ok()
            .as_deref(),
        Some("#123456"),
        "theme colours"
    );
    wait_until("a height event", || !heights.borrow().is_empty()).await;
    assert!(get(&heights.borrow()[0], "height").as_f64().unwrap_or(0.0) > 0.0);
    drop(again);
    handle.unmount();
    assert_eq!(count(&el, ".kw"), 0);
    assert!(!el.has_attribute("data-klarna-mounted"));
    el.remove();
}

#[wasm_bindgen_test]
async fn a_crash_replaces_the_widget_with_a_way_out() {
    fakes();
    let el = element("https://sdk.test/crash.js", &[]);
    let errors = record(&el, "klarna:error");
    mount(&el);
    wait_phase(&el, "ready").await;
    klarna_widget::show_crash("panicked at src/checkout.rs");
    assert_eq!(
        find(&el, ".kw-crashed").get_attribute("role").as_deref(),
        Some("alert")
    );
    assert!(text(&el).contains("stopped working"));
    assert_eq!(find(&el, ".kw-reload").tag_name(), "A");
    assert_eq!(
        get(&errors.borrow()[0], "code").as_string().as_deref(),
        Some("panic")
    );
    unmount(&el);
}

#[wasm_bindgen_test]
async fn a_host_with_its_own_button_pays_through_the_handle() {
    fakes();
    let el = element(
        "https://sdk.test/host-button.js",
        &[("data-pay-button", "false")],
    );
    let authorized = record(&el, "klarna:authorized");
    let handle = klarna_widget::Handle::for_element(el.clone());
    assert!(!handle.pay(), "nothing mounted yet");
    mount(&el);
    assert!(!handle.pay(), "not ready yet: the host is told");
    wait_phase(&el, "ready").await;
    assert_eq!(count(&el, ".kw-pay"), 0, "no button of the widget's own");
    assert!(handle.pay());
    assert!(!handle.pay(), "a second press while paying is ignored");
    wait_phase(&el, "authorized").await;
    assert_eq!(authorized.borrow().len(), 1);
    assert_eq!(js_number("return __gw.authorize"), 1.0);
    unmount(&el);
}
