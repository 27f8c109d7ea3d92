//! Klarna's JS SDK (`Klarna.Payments`): loading the script once per page, and async
//! wrappers around `init`, `load` and `authorize` that turn the SDK's callbacks into
//! futures and its named exceptions into [`WidgetError::Sdk`].

use std::cell::RefCell;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Element, HtmlScriptElement};

use crate::error::WidgetError;
use crate::{js, task};

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
    let klarna = js::field(&window, "Klarna");
    js::field(&klarna, "Payments").is_object()
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

pub fn init(client_token: &str) -> Result<(), WidgetError> {
    kp_init(&js::object(&[("client_token", client_token)])).map_err(|e| sdk_error(&e))
}

/// `load`'s callback value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadResult {
    pub show_form: bool,
}

/// `authorize`'s (and `finalize`'s) callback value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeResult {
    pub approved: bool,
    pub show_form: bool,
    pub authorization_token: Option<String>,
    pub finalize_required: bool,
    /// `error.invalid_fields`: what the shopper must fix.
    pub invalid_fields: Vec<String>,
}

impl LoadResult {
    fn read(v: &JsValue) -> Self {
        Self {
            show_form: js::boolean(v, "show_form").unwrap_or(false),
        }
    }
}

impl AuthorizeResult {
    fn read(v: &JsValue) -> Self {
        Self {
            approved: js::boolean(v, "approved").unwrap_or(false),
            show_form: js::boolean(v, "show_form").unwrap_or(false),
            authorization_token: js::string(v, "authorization_token").filter(|t| !t.is_empty()),
            finalize_required: js::boolean(v, "finalize_required").unwrap_or(false),
            invalid_fields: js::items(&js::field(v, "error"), "invalid_fields")
                .iter()
                .filter_map(JsValue::as_string)
                .collect(),
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
    let options = Object::new();
    let _ = Reflect::set(&options, &"container".into(), container);
    let _ = Reflect::set(
        &options,
        &"payment_method_category".into(),
        &category.into(),
    );
    let v = with_callback(|cb| kp_load(&options, &Object::new(), cb)).await?;
    Ok(LoadResult::read(&v))
}

/// `authorize`; with `auto_finalize` false Klarna may answer `finalize_required`.
pub async fn authorize(
    category: &str,
    auto_finalize: bool,
) -> Result<AuthorizeResult, WidgetError> {
    let options = Object::new();
    let _ = Reflect::set(
        &options,
        &"payment_method_category".into(),
        &category.into(),
    );
    if !auto_finalize {
        let _ = Reflect::set(&options, &"auto_finalize".into(), &false.into());
    }
    let v = with_callback(|cb| kp_authorize(&options, &Object::new(), cb)).await?;
    Ok(AuthorizeResult::read(&v))
}

/// `finalize`, after the shopper confirmed a `finalize_required` approval.
pub async fn finalize(category: &str) -> Result<AuthorizeResult, WidgetError> {
    let options = Object::new();
    let _ = Reflect::set(
        &options,
        &"payment_method_category".into(),
        &category.into(),
    );
    let v = with_callback(|cb| kp_finalize(&options, &Object::new(), cb)).await?;
    Ok(AuthorizeResult::read(&v))
}
