//! The DOM events the widget reports to its host page (Odoo's payment form, or any
//! page): `klarna:ready`, `klarna:authorized`, `klarna:declined`, `klarna:error`,
//! `klarna:height`. They bubble from the mount element; `event.detail` is a plain object.

use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;
use web_sys::{CustomEvent, CustomEventInit, EventTarget};

pub const READY: &str = "klarna:ready";
pub const AUTHORIZED: &str = "klarna:authorized";
pub const DECLINED: &str = "klarna:declined";
pub const ERROR: &str = "klarna:error";
pub const HEIGHT: &str = "klarna:height";

/// A value in an event's `detail`.
pub enum Val<'a> {
    Str(&'a str),
    Num(f64),
}

/// Dispatches `name` from `target` with `detail` built from `fields`. (Built by hand
/// rather than through serde_json: the widget carries no JSON library of its own.)
pub fn dispatch(target: &EventTarget, name: &str, fields: &[(&str, Val<'_>)]) {
    let detail = Object::new();
    for (key, value) in fields {
        let value = match value {
            Val::Str(s) => JsValue::from_str(s),
            Val::Num(n) => JsValue::from_f64(*n),
        };
        let _ = Reflect::set(&detail, &JsValue::from_str(key), &value);
    }
    let init = CustomEventInit::new();
    init.set_bubbles(true);
    init.set_detail(&detail);
    if let Ok(event) = CustomEvent::new_with_event_init_dict(name, &init) {
        let _ = target.dispatch_event(&event);
    }
}
