//! The Klarna checkout widget: a Leptos component compiled to WebAssembly that replaces
//! Odoo's JavaScript payment form for Klarna.
//!
//! On start it mounts itself on every element carrying `data-klarna-widget`, reading its
//! settings from that element's data attributes ([`config`]). It loads Klarna's SDK and
//! asks the gateway for a session at the same time ([`checkout`]), renders Klarna in the
//! page, and posts the authorization back to the gateway ([`api`]). The host page hears
//! about it through DOM events ([`events`]).

pub mod api;
pub mod checkout;
pub mod config;
pub mod error;
pub mod events;
pub mod sdk;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::HtmlElement;

use crate::checkout::Checkout;
use crate::config::WidgetConfig;

/// The attribute that marks a mount element.
pub const MARKER: &str = "data-klarna-widget";
const MOUNTED: &str = "data-klarna-mounted";

/// Mounts the widget on `el` unless it is mounted there already. A mount element with
/// missing settings shows why instead of failing silently.
pub fn mount_on(el: HtmlElement) -> Result<(), error::WidgetError> {
    if el.has_attribute(MOUNTED) {
        return Ok(());
    }
    let _ = el.set_attribute(MOUNTED, "");
    let cfg = match WidgetConfig::from_element(&el) {
        Ok(cfg) => cfg,
        Err(e) => {
            el.set_text_content(Some(&format!("Klarna cannot start: {e}.")));
            return Err(e);
        }
    };
    let host = el.clone();
    leptos::mount::mount_to(el, move || view! { <Checkout cfg=cfg host=host /> }).forget();
    Ok(())
}

/// Mounts the widget on every `[data-klarna-widget]` element of the page.
#[wasm_bindgen(js_name = mountAll)]
pub fn mount_all() {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Ok(nodes) = document.query_selector_all(&format!("[{MARKER}]")) else {
        return;
    };
    for i in 0..nodes.length() {
        if let Some(el) = nodes.item(i).and_then(|n| n.dyn_into::<HtmlElement>().ok()) {
            let _ = mount_on(el);
        }
    }
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    mount_all();
}
