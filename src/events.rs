//! The DOM events the widget reports to its host page (Odoo's payment form, or any
//! page). They bubble from the mount element; `event.detail` is a plain object.
//!
//! Every outcome of a payment attempt has its event, so that a host which disabled its own
//! form while the shopper pays always hears when to give it back: `klarna:authorized`
//! (done), `klarna:declined`, `klarna:error`, `klarna:invalid_fields`, `klarna:closed`,
//! `klarna:cart_changed` and `klarna:expired` (the form is usable again).

use serde::ser::{Serialize, SerializeMap, Serializer};
use web_sys::{CustomEvent, CustomEventInit, EventTarget};

pub const READY: &str = "klarna:ready";
pub const AUTHORIZED: &str = "klarna:authorized";
pub const DECLINED: &str = "klarna:declined";
pub const ERROR: &str = "klarna:error";
pub const HEIGHT: &str = "klarna:height";
/// Klarna asked the shopper to correct details; its form stays, the shopper pays again.
pub const INVALID_FIELDS: &str = "klarna:invalid_fields";
/// The shopper closed Klarna's dialog (or the widget's own) without paying.
pub const CLOSED: &str = "klarna:closed";
/// The order changed after the shopper approved: nothing was placed, Klarna is loaded
/// again with the new cart.
pub const CART_CHANGED: &str = "klarna:cart_changed";
/// Klarna no longer knew the approval: nothing was placed, the shopper pays again.
pub const EXPIRED: &str = "klarna:expired";

/// A value in an event's `detail`.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub enum Val<'a> {
    Str(&'a str),
    Num(f64),
    List(&'a [String]),
}

/// `detail`: the fields as one plain object (serde-wasm-bindgen makes a serialized map a
/// `Map` unless told otherwise; a struct per event would be as many types for one line).
struct Detail<'a>(&'a [(&'a str, Val<'a>)]);

impl Serialize for Detail<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Dispatches `name` from `target` with `detail` built from `fields`.
pub fn dispatch(target: &EventTarget, name: &str, fields: &[(&str, Val<'_>)]) {
    let serializer = serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true);
    let Ok(detail) = Detail(fields).serialize(&serializer) else {
        return;
    };
    let init = CustomEventInit::new();
    init.set_bubbles(true);
    init.set_detail(&detail);
    if let Ok(event) = CustomEvent::new_with_event_init_dict(name, &init) {
        let _ = target.dispatch_event(&event);
    }
}
