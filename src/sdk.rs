//! Klarna's JS SDK (`Klarna.Payments`): loading the script once per page, and async
//! wrappers around `init`, `load` and `authorize` that turn the SDK's callbacks into
//! futures and its named exceptions into [`WidgetError::Sdk`].

use std::cell::RefCell;

use js_sys::{Function, Object, Promise, Reflect};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Element, HtmlScriptElement};

use crate::error::WidgetError;
use crate::task;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["Klarna", "Payments"], js_name = init, catch)]
    fn kp_init(options: &JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(js_namespace = ["Klarna", "Payments"], js_name = load, catch)]
    fn kp_load(options: &JsValue, data: &JsValue, callback: &Function) -> Result<(), JsValue>;
    #[wasm_bindgen(js_namespace = ["Klarna", "Payments"], js_name = authorize, catch)]
    fn kp_authorize(options: &JsValue, data: &JsValue, callback: &Function) -> Result<(), JsValue>;
    #[wasm_bindgen(js_namespace = ["Klarna", "Payments"], js_name = finalize, catch)]
    fn kp_finalize(options: &JsValue, data: &JsValue, callback: &Function) -> Result<(), JsValue>;
}

thread_local! {
    /// The one load of the SDK script on this page — its URL, a promise of it, its
    /// element — shared by every widget instance.
    static SCRIPT: RefCell<Option<(String, Promise, HtmlScriptElement)>> = const { RefCell::new(None) };
}

fn sdk_present() -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    // A global that may not exist yet: looked up, not imported (an import would throw).
    Reflect::get(&window, &"Klarna".into())
        .and_then(|klarna| Reflect::get(&klarna, &"Payments".into()))
        .is_ok_and(|payments| payments.is_object())
}

/// Loads the SDK script unless the page has it already. However many widgets ask, the
/// script is requested once; a failed load is forgotten (and its element removed) so
/// that a retry starts afresh.
pub async fn ensure_loaded(url: &str) -> Result<(), WidgetError> {
    if sdk_present() {
        return Ok(());
    }
    let (promise, script) = SCRIPT.with(|slot| {
        let mut slot = slot.borrow_mut();
        match &*slot {
            Some((loading, p, el)) if loading == url => Ok((p.clone(), el.clone())),
            _ => {
                let (p, el) = load_script(url)?;
                *slot = Some((url.to_owned(), p.clone(), el.clone()));
                Ok((p, el))
            }
        }
    })?;
    let loaded = task::promise(promise).await.is_ok();
    if loaded && sdk_present() {
        return Ok(());
    }
    SCRIPT.with(|slot| *slot.borrow_mut() = None);
    script.remove();
    Err(WidgetError::SdkLoad)
}

/// The `<script>` for `url` — the host page's own if it has one, else a new one — and a
/// promise that settles when it has loaded or failed.
fn load_script(url: &str) -> Result<(Promise, HtmlScriptElement), WidgetError> {
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or(WidgetError::SdkLoad)?;
    let selector = format!("script[src=\"{}\"]", url.replace('"', "%22"));
    let existing = document.query_selector(&selector).ok().flatten();
    let script: HtmlScriptElement = match existing {
        Some(el) => el.dyn_into().map_err(|_| WidgetError::SdkLoad)?,
        None => {
            let el: HtmlScriptElement = document
                .create_element("script")
                .map_err(|_| WidgetError::SdkLoad)?
                .dyn_into()
                .map_err(|_| WidgetError::SdkLoad)?;
            el.set_src(url);
            el.set_async(true);
            let _ = el.set_attribute("data-klarna-sdk", "");
            let parent = document
                .head()
                .map(Element::from)
                .or_else(|| document.document_element())
                .ok_or(WidgetError::SdkLoad)?;
            parent.append_child(&el).map_err(|_| WidgetError::SdkLoad)?;
            el
        }
    };
    let promise = Promise::new(&mut |resolve: Function, reject: Function| {
        let _ = script.add_event_listener_with_callback("load", &resolve);
        let _ = script.add_event_listener_with_callback("error", &reject);
    });
    Ok((promise, script))
}

/// What the SDK throws (`InvalidClientTokenError`, ...): an `Error`, whose `name` comes
/// from its prototype (serde-wasm-bindgen reads fields as JS property lookups).
#[derive(Default, Deserialize)]
struct Thrown {
    name: Option<String>,
    message: Option<String>,
}

/// A thrown SDK exception as a widget error; one that is not an object is an `Error`.
fn sdk_error(e: &JsValue) -> WidgetError {
    let thrown: Thrown = serde_wasm_bindgen::from_value(e.clone()).unwrap_or_default();
    WidgetError::Sdk {
        name: thrown
            .name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "Error".into()),
        message: thrown.message.unwrap_or_default(),
    }
}

/// An SDK callback's value that does not have the documented shape: named, like a
/// thrown SDK error, so the host's `klarna:error` says what Klarna sent.
fn callback_value<T: DeserializeOwned>(v: JsValue) -> Result<T, WidgetError> {
    serde_wasm_bindgen::from_value(v).map_err(|e| WidgetError::Sdk {
        name: "UnexpectedCallbackValue".into(),
        message: e.to_string(),
    })
}

/// Converts an options object for the SDK; its fields are strings, booleans and an
/// element, which always convert.
fn options(o: &impl Serialize) -> JsValue {
    serde_wasm_bindgen::to_value(o).unwrap_or(JsValue::UNDEFINED)
}

#[derive(Serialize)]
struct InitOptions<'a> {
    client_token: &'a str,
}

/// `load`'s, `authorize`'s and `finalize`'s first argument.
#[derive(Serialize)]
struct CategoryOptions<'a> {
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "element")]
    container: Option<&'a Element>,
    payment_method_category: &'a str,
    /// Only ever sent as `false` (Klarna's default is `true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    auto_finalize: Option<bool>,
}

/// The container element itself, not a copy of its fields.
fn element<S: serde::Serializer>(e: &Option<&Element>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => serde_wasm_bindgen::preserve::serialize(*e, s),
        None => s.serialize_none(),
    }
}

pub fn init(client_token: &str) -> Result<(), WidgetError> {
    kp_init(&options(&InitOptions { client_token })).map_err(|e| sdk_error(&e))
}

/// `load`'s callback value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct LoadResult {
    pub show_form: bool,
}

/// `authorize`'s (and `finalize`'s) callback value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "AuthorizeCallback")]
pub struct AuthorizeResult {
    pub approved: bool,
    pub show_form: bool,
    pub authorization_token: Option<String>,
    pub finalize_required: bool,
    /// `error.invalid_fields`: what the shopper must fix.
    pub invalid_fields: Vec<String>,
}

/// The callback value as Klarna sends it; missing fields (and `null`s where Klarna may
/// send them) read as not set.
#[derive(Default, Deserialize)]
#[serde(default)]
struct AuthorizeCallback {
    approved: bool,
    show_form: bool,
    authorization_token: Option<String>,
    finalize_required: Option<bool>,
    error: Option<CallbackError>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct CallbackError {
    invalid_fields: Vec<String>,
}

impl From<AuthorizeCallback> for AuthorizeResult {
    fn from(c: AuthorizeCallback) -> Self {
        Self {
            approved: c.approved,
            show_form: c.show_form,
            authorization_token: c.authorization_token.filter(|t| !t.is_empty()),
            finalize_required: c.finalize_required.unwrap_or(false),
            invalid_fields: c.error.map(|e| e.invalid_fields).unwrap_or_default(),
        }
    }
}

/// Calls an SDK function that answers through a callback, and awaits that answer. A
/// named exception thrown by the call becomes [`WidgetError::Sdk`].
async fn with_callback(
    call: impl FnOnce(&Function) -> Result<(), JsValue>,
) -> Result<JsValue, WidgetError> {
    let mut call = Some(call);
    let mut thrown = None;
    let promise = Promise::new(&mut |resolve: Function, _reject: Function| {
        if let Some(call) = call.take()
            && let Err(e) = call(&resolve)
        {
            thrown = Some(e);
        }
    });
    if let Some(e) = thrown {
        return Err(sdk_error(&e));
    }
    task::promise(promise).await.map_err(|e| sdk_error(&e))
}

pub async fn load(container: &Element, category: &str) -> Result<LoadResult, WidgetError> {
    let options = options(&CategoryOptions {
        container: Some(container),
        payment_method_category: category,
        auto_finalize: None,
    });
    let v = with_callback(|cb| kp_load(&options, &Object::new(), cb)).await?;
    callback_value(v)
}

/// `authorize`; with `auto_finalize` false Klarna may answer `finalize_required`.
pub async fn authorize(
    category: &str,
    auto_finalize: bool,
) -> Result<AuthorizeResult, WidgetError> {
    let options = options(&CategoryOptions {
        container: None,
        payment_method_category: category,
        auto_finalize: (!auto_finalize).then_some(false),
    });
    let v = with_callback(|cb| kp_authorize(&options, &Object::new(), cb)).await?;
    callback_value(v)
}

/// `finalize`, after the shopper confirmed a `finalize_required` approval.
pub async fn finalize(category: &str) -> Result<AuthorizeResult, WidgetError> {
    let options = options(&CategoryOptions {
        container: None,
        payment_method_category: category,
        auto_finalize: None,
    });
    let v = with_callback(|cb| kp_finalize(&options, &Object::new(), cb)).await?;
    callback_value(v)
}
