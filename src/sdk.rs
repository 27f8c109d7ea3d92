//! Klarna's JS SDK (`Klarna.Payments`): loading the script once per page, and async
//! wrappers around `init`, `load` and `authorize` that turn the SDK's callbacks into
//! futures and its named exceptions into [`WidgetError::Sdk`].

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;

use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::Shared;
use js_sys::{Function, Object, Reflect};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Element, HtmlScriptElement};

use crate::error::WidgetError;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = ["Klarna", "Payments"], js_name = init, catch)]
    fn kp_init(options: &JsValue) -> Result<(), JsValue>;
    #[wasm_bindgen(js_namespace = ["Klarna", "Payments"], js_name = load, catch)]
    fn kp_load(options: &JsValue, data: &JsValue, callback: &Function) -> Result<(), JsValue>;
    #[wasm_bindgen(js_namespace = ["Klarna", "Payments"], js_name = authorize, catch)]
    fn kp_authorize(options: &JsValue, data: &JsValue, callback: &Function) -> Result<(), JsValue>;
}

type LoadFuture = Shared<Pin<Box<dyn Future<Output = Result<(), WidgetError>>>>>;

thread_local! {
    /// The one load of the SDK script on this page, shared by every widget instance.
    static SCRIPT: RefCell<Option<(String, LoadFuture)>> = const { RefCell::new(None) };
}

fn sdk_present() -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    Reflect::get(&window, &"Klarna".into())
        .ok()
        .filter(|k| k.is_object())
        .and_then(|k| Reflect::get(&k, &"Payments".into()).ok())
        .is_some_and(|p| p.is_object())
}

/// Loads the SDK script unless the page has it already. However many widgets ask, the
/// script is requested once.
pub fn ensure_loaded(url: &str) -> impl Future<Output = Result<(), WidgetError>> + use<> {
    let shared = SCRIPT.with(|slot| {
        let mut slot = slot.borrow_mut();
        match &*slot {
            Some((loading, fut)) if loading == url => fut.clone(),
            _ => {
                let fut: Pin<Box<dyn Future<Output = Result<(), WidgetError>>>> =
                    Box::pin(load_script(url.to_owned()));
                let fut = fut.shared();
                *slot = Some((url.to_owned(), fut.clone()));
                fut
            }
        }
    });
    async move {
        let result = shared.await;
        if result.is_err() {
            // A failed load may be retried: forget it so the next call starts afresh.
            SCRIPT.with(|slot| *slot.borrow_mut() = None);
        }
        result
    }
}

async fn load_script(url: String) -> Result<(), WidgetError> {
    if sdk_present() {
        return Ok(());
    }
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or(WidgetError::SdkLoad)?;
    // The host page may have put the script there itself; wait for it instead.
    let selector = format!("script[src=\"{}\"]", url.replace('"', "%22"));
    let script: HtmlScriptElement = match document.query_selector(&selector).ok().flatten() {
        Some(el) => el.dyn_into().map_err(|_| WidgetError::SdkLoad)?,
        None => {
            let el: HtmlScriptElement = document
                .create_element("script")
                .map_err(|_| WidgetError::SdkLoad)?
                .dyn_into()
                .map_err(|_| WidgetError::SdkLoad)?;
            el.set_src(&url);
            el.set_async(true);
            el.set_attribute("data-klarna-sdk", "")
                .map_err(|_| WidgetError::SdkLoad)?;
            let parent = document
                .head()
                .map(Element::from)
                .or_else(|| document.document_element())
                .ok_or(WidgetError::SdkLoad)?;
            parent.append_child(&el).map_err(|_| WidgetError::SdkLoad)?;
            el
        }
    };
    let (tx, rx) = oneshot::channel::<bool>();
    let tx = RefCell::new(Some(tx));
    let done = Closure::<dyn Fn(web_sys::Event)>::new(move |e: web_sys::Event| {
        if let Some(tx) = tx.borrow_mut().take() {
            let _ = tx.send(e.type_() == "load");
        }
    });
    script
        .add_event_listener_with_callback("load", done.as_ref().unchecked_ref())
        .map_err(|_| WidgetError::SdkLoad)?;
    script
        .add_event_listener_with_callback("error", done.as_ref().unchecked_ref())
        .map_err(|_| WidgetError::SdkLoad)?;
    // A script that finished before we listened fires nothing more.
    if sdk_present() {
        return Ok(());
    }
    let loaded = rx.await.unwrap_or(false);
    let _ = script.remove_event_listener_with_callback("load", done.as_ref().unchecked_ref());
    let _ = script.remove_event_listener_with_callback("error", done.as_ref().unchecked_ref());
    drop(done);
    if loaded && sdk_present() {
        Ok(())
    } else {
        if !loaded {
            script.remove();
        }
        Err(WidgetError::SdkLoad)
    }
}

/// A thrown SDK exception (`InvalidClientTokenError`, ...) as a widget error.
fn sdk_error(e: &JsValue) -> WidgetError {
    let text = |key: &str| {
        Reflect::get(e, &key.into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    WidgetError::Sdk {
        name: Some(text("name"))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "Error".into()),
        message: text("message"),
    }
}

fn to_js<T: Serialize>(value: &T) -> JsValue {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .unwrap_or(JsValue::UNDEFINED)
}

pub fn init(client_token: &str) -> Result<(), WidgetError> {
    #[derive(Serialize)]
    struct Options<'a> {
        client_token: &'a str,
    }
    kp_init(&to_js(&Options { client_token })).map_err(|e| sdk_error(&e))
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct FieldErrors {
    #[serde(default)]
    pub invalid_fields: Vec<String>,
}

/// `load`'s callback value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct LoadResult {
    #[serde(default)]
    pub show_form: bool,
    #[serde(default)]
    pub error: Option<FieldErrors>,
}

/// `authorize`'s callback value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AuthorizeResult {
    #[serde(default)]
    pub approved: bool,
    #[serde(default)]
    pub show_form: bool,
    #[serde(default)]
    pub authorization_token: Option<String>,
    #[serde(default)]
    pub finalize_required: Option<bool>,
    #[serde(default)]
    pub error: Option<FieldErrors>,
}

/// Calls an SDK function that answers through a callback, and awaits that answer.
async fn with_callback<T: for<'de> Deserialize<'de> + Default>(
    call: impl FnOnce(&Function) -> Result<(), JsValue>,
) -> Result<T, WidgetError> {
    let (tx, rx) = oneshot::channel::<JsValue>();
    let callback = Closure::once_into_js(move |value: JsValue| {
        let _ = tx.send(value);
    });
    call(callback.unchecked_ref()).map_err(|e| sdk_error(&e))?;
    let value = rx.await.map_err(|_| WidgetError::SdkLoad)?;
    Ok(serde_wasm_bindgen::from_value(value).unwrap_or_default())
}

pub async fn load(container: &Element, category: &str) -> Result<LoadResult, WidgetError> {
    let options = Object::new();
    let _ = Reflect::set(&options, &"container".into(), container);
    let _ = Reflect::set(
        &options,
        &"payment_method_category".into(),
        &category.into(),
    );
    with_callback(|cb| kp_load(&options, &Object::new(), cb)).await
}

pub async fn authorize(category: &str) -> Result<AuthorizeResult, WidgetError> {
    let options = Object::new();
    let _ = Reflect::set(
        &options,
        &"payment_method_category".into(),
        &category.into(),
    );
    with_callback(|cb| kp_authorize(&options, &Object::new(), cb)).await
}
