//! The DOM events the widget reports to its host page (Odoo's payment form, or any
//! page): `klarna:ready`, `klarna:authorized`, `klarna:declined`, `klarna:error`.
//! They bubble from the mount element; `event.detail` carries a JSON object.

use serde::Serialize;
use web_sys::{CustomEvent, CustomEventInit, Element};

pub const READY: &str = "klarna:ready";
pub const AUTHORIZED: &str = "klarna:authorized";
pub const DECLINED: &str = "klarna:declined";
pub const ERROR: &str = "klarna:error";

pub fn dispatch<T: Serialize>(target: &Element, name: &str, detail: &T) {
    let init = CustomEventInit::new();
    init.set_bubbles(true);
    init.set_detail(
        &detail
            .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .unwrap_or(wasm_bindgen::JsValue::NULL),
    );
    if let Ok(event) = CustomEvent::new_with_event_init_dict(name, &init) {
        let _ = target.dispatch_event(&event);
    }
}
