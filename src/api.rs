//! Calls to the gateway's widget API over gloo-net. What goes out and what comes back are
//! `klarna_types::contract`'s own types, the gateway's, converted by serde-wasm-bindgen
//! straight between Rust values and JS values: the JSON text is the browser's
//! (`JSON.stringify` out, `Response.json()` in), so the bundle carries no JSON parser,
//! and a field renamed on either side fails to compile or fails `tests/contract.rs`.

use gloo_net::http::Request;
use klarna_types::contract::{
    ApiError, AuthorizeRequest, AuthorizeResponse, SessionRequest, SessionResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

use crate::config::WidgetConfig;
use crate::error::WidgetError;

/// Decodes one of the gateway's answers; a missing or mistyped field is
/// [`WidgetError::Answer`], naming it (serde's own message).
fn decode<T: DeserializeOwned>(value: JsValue) -> Result<T, WidgetError> {
    serde_wasm_bindgen::from_value(value).map_err(|e| WidgetError::Answer(e.to_string()))
}

/// Posts `body` as JSON and decodes the answer: `T` on a 2xx, the gateway's
/// `{code, message, field?, fields?}` as [`WidgetError::Gateway`] otherwise. An aborted
/// request (`signal`) ends as [`WidgetError::Network`]; whoever aborted it has moved on.
async fn post<B: Serialize, T: DeserializeOwned>(
    url: &str,
    body: &B,
    signal: Option<&AbortSignal>,
) -> Result<T, WidgetError> {
    // The contract's request types are strings only: serializing them cannot fail.
    let body = serde_wasm_bindgen::to_value(body).map_err(|_| WidgetError::Network)?;
    let text = js_sys::JSON::stringify(&body).map_err(|_| WidgetError::Network)?;
    let response = Request::post(url)
        .header("Content-Type", "application/json")
        .abort_signal(signal)
        .body(text)
        .map_err(|_| WidgetError::Network)?
        .send()
        .await
        .map_err(|_| WidgetError::Network)?;
    let ok = response.ok();
    let raw = web_sys::Response::from(response);
    // Not JSON at all (a proxy's HTML error page): the service was not reached.
    let promise = raw.json().map_err(|_| WidgetError::Network)?;
    let value = JsFuture::from(promise)
        .await
        .map_err(|_| WidgetError::Network)?;
    if ok {
        return decode(value);
    }
    match serde_wasm_bindgen::from_value::<ApiError>(value) {
        Ok(error) => Err(WidgetError::Gateway(Box::new(error))),
        Err(_) => Err(WidgetError::Network),
    }
}

/// `POST /klarna/session`; `signal` aborts it when a newer cart supersedes it.
pub async fn create_session(
    cfg: &WidgetConfig,
    signal: Option<&AbortSignal>,
) -> Result<SessionResponse, WidgetError> {
    let request = SessionRequest {
        order_reference: cfg.order_reference.clone(),
        access_token: cfg.access_token.clone(),
    };
    post(
        &format!("{}/klarna/session", cfg.gateway_url),
        &request,
        signal,
    )
    .await
}

/// `POST /klarna/authorize`. Never aborted: once the shopper approved, the gateway's
/// answer (placed, declined, or the cart changed) is what the widget shows.
pub async fn authorize(
    cfg: &WidgetConfig,
    session_id: &str,
    authorization_token: &str,
) -> Result<AuthorizeResponse, WidgetError> {
    let request = AuthorizeRequest {
        session_id: session_id.to_owned(),
        authorization_token: authorization_token.to_owned(),
    };
    post(
        &format!("{}/klarna/authorize", cfg.gateway_url),
        &request,
        None,
    )
    .await
}
