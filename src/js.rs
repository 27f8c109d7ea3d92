//! Reading and building plain JavaScript objects field by field. The widget talks JSON
//! through the browser's own `JSON` and these few helpers instead of a serde data format:
//! serde's deserializers (and the float formatting their error messages pull in) cost
//! more of the bundle than everything here (docs/embedding.md, "Size").

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::JsValue;

pub fn field(v: &JsValue, key: &str) -> JsValue {
    if !v.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(v, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

pub fn string(v: &JsValue, key: &str) -> Option<String> {
    field(v, key).as_string()
}

pub fn boolean(v: &JsValue, key: &str) -> Option<bool> {
    field(v, key).as_bool()
}

pub fn number(v: &JsValue, key: &str) -> Option<f64> {
    field(v, key).as_f64()
}

/// An array field's items (none when it is missing or not an array).
pub fn items(v: &JsValue, key: &str) -> Vec<JsValue> {
    let f = field(v, key);
    if Array::is_array(&f) {
        Array::from(&f).iter().collect()
    } else {
        Vec::new()
    }
}

/// `{key: value, …}` from string pairs.
pub fn object(pairs: &[(&str, &str)]) -> Object {
    let o = Object::new();
    for (k, v) in pairs {
        let _ = Reflect::set(&o, &JsValue::from_str(k), &JsValue::from_str(v));
    }
    o
}

pub fn set(o: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(o, &JsValue::from_str(key), value);
}
