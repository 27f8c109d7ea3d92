//! Calls to the gateway's widget API: the request and response shapes of
//! `klarna_types::contract` (the gateway's own types), read and written with the
//! browser's `JSON` ([`crate::js`]) over the browser's `fetch` — no HTTP or JSON library
//! in the bundle (docs/embedding.md, "Size").

use klarna_types::contract::{AuthorizeResponse, SessionResponse};
use klarna_types::klarna::{AssetUrls, FraudStatus, PaymentMethodCategory};
use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestInit, Response};

use crate::config::WidgetConfig;
use crate::error::WidgetError;
use crate::js;

fn required(v: &JsValue, key: &str) -> Result<String, WidgetError> {
    js::string(v, key).ok_or(WidgetError::Network)
}

async fn post(url: String, body: &[(&str, &str)]) -> Result<JsValue, WidgetError> {
    let text = js_sys::JSON::stringify(&js::object(body))
        .ok()
        .and_then(|s| s.as_string())
        .ok_or(WidgetError::Network)?;
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(&text));
    init.set_headers(&js::object(&[("Content-Type", "application/json")]));
    let window = web_sys::window().ok_or(WidgetError::Network)?;
    let response: Response = JsFuture::from(window.fetch_with_str_and_init(&url, &init))
        .await
        .ok()
        .and_then(|r| r.dyn_into().ok())
        .ok_or(WidgetError::Network)?;
    let ok = response.ok();
    let json = match response.json() {
        Ok(promise) => JsFuture::from(promise)
            .await
            .map_err(|_| WidgetError::Network)?,
        Err(_) => return Err(WidgetError::Network),
    };
    if ok {
        return Ok(json);
    }
    // The gateway's error shape: {code, message, field?}.
    Err(
        match (js::string(&json, "code"), js::string(&json, "message")) {
            (Some(code), Some(message)) => WidgetError::Gateway {
                code,
                message,
                fields: js::items(&json, "fields")
                    .iter()
                    .filter_map(JsValue::as_string)
                    .collect(),
            },
            _ => WidgetError::Network,
        },
    )
}

fn category(v: &JsValue) -> Option<PaymentMethodCategory> {
    let urls = js::field(v, "asset_urls");
    Some(PaymentMethodCategory {
        identifier: js::string(v, "identifier")?,
        name: js::string(v, "name").unwrap_or_default(),
        asset_urls: AssetUrls {
            descriptive: js::string(&urls, "descriptive"),
            standard: js::string(&urls, "standard"),
        },
    })
}

pub async fn create_session(cfg: &WidgetConfig) -> Result<SessionResponse, WidgetError> {
    let v = post(
        format!("{}/klarna/session", cfg.gateway_url),
        &[
            ("order_reference", &cfg.order_reference),
            ("access_token", &cfg.access_token),
        ],
    )
    .await?;
    Ok(SessionResponse {
        session_id: required(&v, "session_id")?,
        client_token: required(&v, "client_token")?,
        payment_method_categories: js::items(&v, "payment_method_categories")
            .iter()
            .filter_map(category)
            .collect(),
    })
}

pub async fn authorize(
    cfg: &WidgetConfig,
    session_id: &str,
    authorization_token: &str,
) -> Result<AuthorizeResponse, WidgetError> {
    let v = post(
        format!("{}/klarna/authorize", cfg.gateway_url),
        &[
            ("session_id", session_id),
            ("authorization_token", authorization_token),
        ],
    )
    .await?;
    match js::string(&v, "outcome").as_deref() {
        Some("authorized") => Ok(AuthorizeResponse::Authorized {
            order_reference: required(&v, "order_reference")?,
            klarna_order_id: required(&v, "klarna_order_id")?,
            fraud_status: js::string(&v, "fraud_status")
                .as_deref()
                .and_then(FraudStatus::parse)
                .ok_or(WidgetError::Network)?,
        }),
        Some("declined") => Ok(AuthorizeResponse::Declined {
            reason: js::string(&v, "reason").unwrap_or_default(),
        }),
        _ => Err(WidgetError::Network),
    }
}
