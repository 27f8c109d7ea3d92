//! The widget's settings, read from its mount element's data attributes — the way the
//! Odoo addon's QWeb template (and the demo storefront) hands them over. No amounts:
//! the gateway reads those from Odoo.

use web_sys::HtmlElement;

use crate::error::WidgetError;

/// Klarna's production SDK; the sandbox and tests point `data-sdk-url` elsewhere.
pub const KLARNA_SDK_URL: &str = "https://x.klarnacdn.net/kp/lib/v1/api.js";
const DEFAULT_TIMEOUT_MS: u32 = 15_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Inline,
    Modal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetConfig {
    pub gateway_url: String,
    pub order_reference: String,
    pub access_token: String,
    pub sdk_url: String,
    pub locale: String,
    pub mode: Mode,
    /// How long start-up may take before the shopper is told and offered a retry.
    pub timeout_ms: u32,
}

impl WidgetConfig {
    /// Reads `data-gateway-url`, `data-order-reference`, `data-access-token` (required) and
    /// `data-sdk-url`, `data-locale`, `data-mode`, `data-timeout-ms` (optional).
    pub fn from_element(el: &HtmlElement) -> Result<Self, WidgetError> {
        let data = el.dataset();
        let required = |key: &str, name: &'static str| {
            data.get(key)
                .filter(|v| !v.trim().is_empty())
                .ok_or(WidgetError::MissingSetting(name))
        };
        Ok(Self {
            gateway_url: required("gatewayUrl", "data-gateway-url")?
                .trim_end_matches('/')
                .to_owned(),
            order_reference: required("orderReference", "data-order-reference")?,
            access_token: required("accessToken", "data-access-token")?,
            sdk_url: data
                .get("sdkUrl")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| KLARNA_SDK_URL.to_owned()),
            locale: data.get("locale").unwrap_or_else(|| "en-US".to_owned()),
            mode: match data.get("mode").as_deref() {
                Some("modal") => Mode::Modal,
                _ => Mode::Inline,
            },
            timeout_ms: data
                .get("timeoutMs")
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_TIMEOUT_MS),
        })
    }
}
