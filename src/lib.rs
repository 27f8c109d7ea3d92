//! The Klarna checkout widget: a Leptos component compiled to WebAssembly that replaces
//! Odoo's JavaScript payment form for Klarna.
//!
//! Two ways in (docs/embedding.md): every element carrying `data-klarna-widget` is mounted
//! on start and whenever one is added to the page later, configured by its data
//! attributes ([`config`]); or a script calls `KlarnaWidget.mount(element, options)` and
//! gets a handle with `update()` and `unmount()`. An element is mounted once, however often
//! it is asked, and Klarna's SDK is loaded once per page ([`sdk`]). The checkout itself is
//! [`checkout`]; the host page hears about it through DOM events ([`events`]).

pub mod api;
pub mod checkout;
pub mod config;
pub mod error;
pub mod events;
pub mod i18n;
pub mod sdk;
pub mod task;

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Object, Reflect};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{Element, HtmlElement, MutationObserver, MutationObserverInit, ResizeObserver};

use crate::checkout::{Checkout, Ctx};
use crate::config::Options;
use crate::events::Val;
use crate::i18n::{Lang, Text, t};

/// The attribute that marks a mount element.
pub const MARKER: &str = "data-klarna-widget";
const MOUNTED: &str = "data-klarna-mounted";
/// Data attributes whose change is a new configuration (a changed cart bumps
/// `data-cart-version`, or the host rewrites the order reference or token).
const WATCHED: &[&str] = &[
    "data-order-reference",
    "data-access-token",
    "data-cart-version",
    "data-locale",
    "data-mode",
    "data-category",
    "data-gateway-url",
];

struct Instance {
    ctx: Rc<Ctx>,
    /// Dropping it takes the view off the page.
    view: Option<Box<dyn std::any::Any>>,
    watch: Option<(MutationObserver, Closure<dyn Fn()>)>,
    resize: Option<(ResizeObserver, Closure<dyn Fn()>)>,
}

thread_local! {
    static INSTANCES: RefCell<Vec<Instance>> = const { RefCell::new(Vec::new()) };
}

fn find(el: &HtmlElement) -> Option<Rc<Ctx>> {
    INSTANCES.with(|list| {
        list.borrow()
            .iter()
            .find(|i| &i.ctx.host == el)
            .map(|i| i.ctx.clone())
    })
}

/// Reports the widget's height to the host page (`klarna:height`) when it changes.
fn watch_height(ctx: &Rc<Ctx>) -> Option<(ResizeObserver, Closure<dyn Fn()>)> {
    let host = ctx.host.clone();
    let last = std::cell::Cell::new(-1.0);
    let closure = Closure::<dyn Fn()>::new(move || {
        let height = host.get_bounding_client_rect().height().round();
        if height != last.get() {
            last.set(height);
            events::dispatch(&host, events::HEIGHT, &[("height", Val::Num(height))]);
        }
    });
    let observer = ResizeObserver::new(closure.as_ref().unchecked_ref()).ok()?;
    observer.observe(&ctx.host);
    Some((observer, closure))
}

/// A changed watched data attribute reconfigures the widget.
fn watch_attributes(ctx: &Rc<Ctx>) -> Option<(MutationObserver, Closure<dyn Fn()>)> {
    let weak = Rc::downgrade(ctx);
    let closure = Closure::<dyn Fn()>::new(move || {
        if let Some(ctx) = weak.upgrade() {
            reconfigure(&ctx, None);
        }
    });
    let observer = MutationObserver::new(closure.as_ref().unchecked_ref()).ok()?;
    let init = MutationObserverInit::new();
    init.set_attributes(true);
    let filter = js_sys::Array::new();
    for name in WATCHED {
        filter.push(&JsValue::from_str(name));
    }
    init.set_attribute_filter(&filter);
    observer.observe_with_options(&ctx.host, &init).ok()?;
    Some((observer, closure))
}

fn reconfigure(ctx: &Rc<Ctx>, update: Option<Options>) {
    if let Some(update) = update {
        let merged = update.over(ctx.options.borrow().clone());
        *ctx.options.borrow_mut() = merged;
    }
    let options = ctx
        .options
        .borrow()
        .clone()
        .over(Options::from_element(&ctx.host));
    match options.config() {
        Ok(cfg) => ctx.reconfigure(cfg),
        Err(e) => {
            events::dispatch(
                &ctx.host,
                events::ERROR,
                &[
                    ("code", Val::Str("missing_setting")),
                    ("message", Val::Str(&e.to_string())),
                ],
            );
        }
    }
}

/// Mounts the widget on `el` with `options` over its data attributes, unless it is
/// mounted there already (then the existing one is returned). A mount element with
/// missing settings shows why instead of failing silently.
pub fn mount_on(el: HtmlElement, options: Options) -> Result<Rc<Ctx>, error::WidgetError> {
    if let Some(ctx) = find(&el) {
        return Ok(ctx);
    }
    let cfg = match options.clone().over(Options::from_element(&el)).config() {
        Ok(cfg) => cfg,
        Err(e) => {
            el.set_text_content(Some(&format!("Klarna cannot start: {e}.")));
            events::dispatch(
                &el,
                events::ERROR,
                &[
                    ("code", Val::Str("missing_setting")),
                    ("message", Val::Str(&e.to_string())),
                ],
            );
            return Err(e);
        }
    };
    let _ = el.set_attribute(MOUNTED, "");
    checkout::mark("klarna:mount");
    let ctx = Ctx::new(el.clone(), options, cfg);
    let view_ctx = ctx.clone();
    let view = leptos::mount::mount_to(el, move || view! { <Checkout ctx=view_ctx /> });
    ctx.apply_theme();
    ctx.start(None);
    let instance = Instance {
        watch: watch_attributes(&ctx),
        resize: watch_height(&ctx),
        view: Some(Box::new(view)),
        ctx: ctx.clone(),
    };
    INSTANCES.with(|list| list.borrow_mut().push(instance));
    Ok(ctx)
}

/// Takes the widget off `el`: its view, its observers, its dialog; work in flight is
/// dropped.
pub fn unmount(el: &HtmlElement) {
    let instance = INSTANCES.with(|list| {
        let mut list = list.borrow_mut();
        let at = list.iter().position(|i| &i.ctx.host == el)?;
        Some(list.remove(at))
    });
    if let Some(mut instance) = instance {
        instance.ctx.dispose();
        if let Some((observer, _)) = &instance.watch {
            observer.disconnect();
        }
        if let Some((observer, _)) = &instance.resize {
            observer.disconnect();
        }
        drop(instance.view.take());
        let _ = el.remove_attribute(MOUNTED);
    }
}

/// What `KlarnaWidget.mount` returns.
#[wasm_bindgen]
pub struct Handle {
    host: HtmlElement,
}

#[wasm_bindgen]
impl Handle {
    /// New options (or none: re-read the data attributes) — e.g. after the cart changed.
    pub fn update(&self, options: JsValue) {
        if let Some(ctx) = find(&self.host) {
            reconfigure(&ctx, Some(Options::from_js(&options)));
        }
    }

    pub fn unmount(&self) {
        unmount(&self.host);
    }

    /// Pays with the selected category, as the widget's own button would (for hosts whose
    /// own button pays); in modal mode it opens the dialog, whose button pays. `false`
    /// when the form is not ready (or already paying).
    pub fn pay(&self) -> bool {
        find(&self.host).is_some_and(|ctx| ctx.pay())
    }
}

impl Handle {
    /// The handle of the widget on `host` (for Rust callers and tests).
    pub fn for_element(host: HtmlElement) -> Self {
        Self { host }
    }
}

/// `KlarnaWidget.mount(element, options)`.
#[wasm_bindgen]
pub fn mount(element: HtmlElement, options: JsValue) -> Result<Handle, JsValue> {
    mount_on(element.clone(), Options::from_js(&options))
        .map_err(|e| JsValue::from_str(&e.to_string()))?;
    Ok(Handle { host: element })
}

/// Mounts the widget on every `[data-klarna-widget]` element of the page not yet mounted,
/// and takes it off elements that left the page.
#[wasm_bindgen(js_name = mountAll)]
pub fn mount_all() {
    let stale: Vec<HtmlElement> = INSTANCES.with(|list| {
        list.borrow()
            .iter()
            .filter(|i| !i.ctx.host.is_connected())
            .map(|i| i.ctx.host.clone())
            .collect()
    });
    for el in stale {
        unmount(&el);
    }
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Ok(nodes) = document.query_selector_all(&format!("[{MARKER}]")) else {
        return;
    };
    for i in 0..nodes.length() {
        if let Some(el) = nodes.item(i).and_then(|n| n.dyn_into::<HtmlElement>().ok())
            && find(&el).is_none()
        {
            let _ = mount_on(el, Options::default());
        }
    }
}

/// Elements added later (Odoo shows a provider's form when the shopper picks it) are
/// mounted too; removed ones are taken off.
fn watch_page() {
    let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    else {
        return;
    };
    let closure = Closure::<dyn Fn(js_sys::Array)>::new(|records: js_sys::Array| {
        let relevant = records.iter().any(|r| {
            r.dyn_into::<web_sys::MutationRecord>()
                .is_ok_and(|r| r.added_nodes().length() > 0 || r.removed_nodes().length() > 0)
        });
        if relevant {
            mount_all();
        }
    });
    if let Ok(observer) = MutationObserver::new(closure.as_ref().unchecked_ref()) {
        let init = MutationObserverInit::new();
        init.set_child_list(true);
        init.set_subtree(true);
        let _ = observer.observe_with_options(&root, &init);
    }
    closure.forget();
}

/// A panic leaves the WebAssembly instance unusable: every widget is replaced by a
/// message with a way out (a reload link — no script needed), and the host page hears
/// `klarna:error`, instead of a frozen form.
pub fn show_crash(message: &str) {
    let hosts: Vec<(HtmlElement, Lang)> = INSTANCES
        .with(|list| {
            list.try_borrow().ok().map(|l| {
                l.iter()
                    .map(|i| {
                        (
                            i.ctx.host.clone(),
                            Lang::from_locale(
                                &i.ctx
                                    .options
                                    .try_borrow()
                                    .ok()
                                    .and_then(|o| o.locale.clone())
                                    .unwrap_or_default(),
                            ),
                        )
                    })
                    .collect()
            })
        })
        .unwrap_or_default();
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    for (host, lang) in hosts {
        let build = || -> Result<Element, JsValue> {
            let box_ = document.create_element("div")?;
            box_.set_class_name("kw kw-crashed");
            box_.set_attribute("role", "alert")?;
            box_.set_attribute("data-phase", "crashed")?;
            let p = document.create_element("p")?;
            p.set_text_content(Some(t(lang, Text::Crashed)));
            let a = document.create_element("a")?;
            a.set_attribute("href", "")?;
            a.set_class_name("kw-reload");
            a.set_text_content(Some(t(lang, Text::Reload)));
            box_.append_child(&p)?;
            box_.append_child(&a)?;
            Ok(box_)
        };
        if let Ok(node) = build() {
            host.set_text_content(None);
            let _ = host.append_child(&node);
        }
        events::dispatch(
            &host,
            events::ERROR,
            &[("code", Val::Str("panic")), ("message", Val::Str(message))],
        );
    }
}

/// The page-wide `window.KlarnaWidget = { mount, mountAll }`, for scripts that do not
/// import the module.
fn expose_global() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let api = Object::new();
    let mount_fn = Closure::<dyn Fn(HtmlElement, JsValue) -> Result<Handle, JsValue>>::new(mount);
    let mount_all_fn = Closure::<dyn Fn()>::new(mount_all);
    let _ = Reflect::set(&api, &"mount".into(), &mount_fn.into_js_value());
    let _ = Reflect::set(&api, &"mountAll".into(), &mount_all_fn.into_js_value());
    let _ = Reflect::set(&window, &"KlarnaWidget".into(), &api);
}

#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        let message = info.to_string();
        web_sys::console::error_1(&JsValue::from_str(&message));
        show_crash(&message);
    }));
    expose_global();
    // Scripts that loaded before the module (Odoo's payment form) wait for this.
    if let Some(document) = web_sys::window().and_then(|w| w.document()) {
        events::dispatch(&document, LOADED, &[]);
    }
    mount_all();
    watch_page();
}

/// Dispatched on the document once `window.KlarnaWidget` exists.
pub const LOADED: &str = "klarna:loaded";
