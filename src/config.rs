//! The widget's settings: from its mount element's data attributes (the way the Odoo
//! addon's QWeb template hands them over) or from the options object given to
//! `KlarnaWidget.mount(element, options)`. No amounts: the gateway reads those from Odoo.

use serde::{Deserialize, Deserializer};
use wasm_bindgen::JsValue;
use web_sys::HtmlElement;

use crate::error::WidgetError;

/// Klarna's production SDK; the sandbox and tests point `sdk-url` elsewhere.
pub const KLARNA_SDK_URL: &str = "https://x.klarnacdn.net/kp/lib/v1/api.js";
const DEFAULT_TIMEOUT_MS: u32 = 15_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Inline,
    Modal,
}

/// Colours and corner radius, as CSS values; applied as the widget's custom properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Theme {
    pub accent: Option<String>,
    pub text: Option<String>,
    pub radius: Option<String>,
}

impl Theme {
    /// `(custom property, value)` for the ones set. Values that could break out of a CSS
    /// declaration are ignored.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        [
            ("--kw-accent", &self.accent),
            ("--kw-text", &self.text),
            ("--kw-radius", &self.radius),
        ]
        .into_iter()
        .filter_map(|(name, v)| {
            v.as_ref()
                .filter(|v| {
                    v.len() <= 64
                        && v.chars()
                            .all(|c| c.is_ascii_alphanumeric() || " #.,%()-".contains(c))
                })
                .map(|v| (name, v.clone()))
        })
        .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WidgetConfig {
    pub gateway_url: String,
    pub order_reference: String,
    pub access_token: String,
    pub sdk_url: String,
    pub locale: String,
    pub mode: Mode,
    /// The payment method category to show first, when Klarna offers it.
    pub category: Option<String>,
    /// `false`: Klarna's two-step flow, where the shopper confirms after approval.
    pub auto_finalize: bool,
    /// How long start-up may take before the shopper is told and offered a retry.
    pub timeout_ms: u32,
    /// `false` when the host's own button pays (Odoo's "Pay now" calls `handle.pay()`).
    pub pay_button: bool,
    pub theme: Theme,
}

/// The options object of `KlarnaWidget.mount`, camelCase like the data attributes. A
/// setting of another type than its own counts as not given (a required one is then
/// named as missing): a host's typo must not stop the whole widget from reading.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Options {
    #[serde(deserialize_with = "text")]
    pub gateway_url: Option<String>,
    #[serde(deserialize_with = "text")]
    pub order_reference: Option<String>,
    #[serde(deserialize_with = "text")]
    pub access_token: Option<String>,
    #[serde(deserialize_with = "text")]
    pub sdk_url: Option<String>,
    #[serde(deserialize_with = "text")]
    pub locale: Option<String>,
    #[serde(deserialize_with = "text")]
    pub mode: Option<String>,
    #[serde(deserialize_with = "text")]
    pub category: Option<String>,
    #[serde(deserialize_with = "flag")]
    pub auto_finalize: Option<bool>,
    #[serde(deserialize_with = "millis")]
    pub timeout_ms: Option<u32>,
    #[serde(deserialize_with = "flag")]
    pub pay_button: Option<bool>,
    #[serde(deserialize_with = "text")]
    pub accent: Option<String>,
    #[serde(deserialize_with = "text")]
    pub text_color: Option<String>,
    #[serde(deserialize_with = "text")]
    pub radius: Option<String>,
}

/// The option's value as the host gave it, of whatever type (serde-wasm-bindgen hands
/// the JS value over as it is).
fn given<'de, D: Deserializer<'de>>(d: D) -> Result<JsValue, D::Error> {
    serde_wasm_bindgen::preserve::deserialize(d)
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(nonempty(given(d)?.as_string()))
}

fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(given(d)?.as_bool())
}

fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(given(d)?
        .as_f64()
        .filter(|ms| *ms >= 1.0 && *ms <= f64::from(u32::MAX))
        .map(|ms| ms as u32))
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl Options {
    /// Reads `data-gateway-url`, `data-order-reference`, `data-access-token` and the
    /// optional `data-sdk-url`, `data-locale`, `data-mode`, `data-category`,
    /// `data-auto-finalize`, `data-timeout-ms`, `data-pay-button`, `data-accent`,
    /// `data-text-color`, `data-radius`.
    pub fn from_element(el: &HtmlElement) -> Self {
        let data = el.dataset();
        let get = |k: &str| nonempty(data.get(k));
        Self {
            gateway_url: get("gatewayUrl"),
            order_reference: get("orderReference"),
            access_token: get("accessToken"),
            sdk_url: get("sdkUrl"),
            locale: get("locale"),
            mode: get("mode"),
            category: get("category"),
            auto_finalize: get("autoFinalize").map(|v| v != "false"),
            timeout_ms: get("timeoutMs").and_then(|v| v.parse().ok()),
            pay_button: get("payButton").map(|v| v != "false"),
            accent: get("accent"),
            text_color: get("textColor"),
            radius: get("radius"),
        }
    }

    /// Reads a `KlarnaWidget.mount` options object (`gatewayUrl`, `orderReference`,
    /// `accessToken`, `sdkUrl`, `locale`, `mode`, `category`, `autoFinalize`, `timeoutMs`,
    /// `payButton`, `accent`, `textColor`, `radius`); anything but an object gives none.
    pub fn from_js(v: &JsValue) -> Self {
        serde_wasm_bindgen::from_value(v.clone()).unwrap_or_default()
    }

    /// These options over `base` (for `update()`): what is set here wins.
    pub fn over(self, base: Options) -> Options {
        Options {
            gateway_url: self.gateway_url.or(base.gateway_url),
            order_reference: self.order_reference.or(base.order_reference),
            access_token: self.access_token.or(base.access_token),
            sdk_url: self.sdk_url.or(base.sdk_url),
            locale: self.locale.or(base.locale),
            mode: self.mode.or(base.mode),
            category: self.category.or(base.category),
            auto_finalize: self.auto_finalize.or(base.auto_finalize),
            timeout_ms: self.timeout_ms.or(base.timeout_ms),
            pay_button: self.pay_button.or(base.pay_button),
            accent: self.accent.or(base.accent),
            text_color: self.text_color.or(base.text_color),
            radius: self.radius.or(base.radius),
        }
    }

    pub fn config(&self) -> Result<WidgetConfig, WidgetError> {
        let required = |v: &Option<String>, name: &'static str| {
            nonempty(v.clone()).ok_or(WidgetError::MissingSetting(name))
        };
        Ok(WidgetConfig {
            gateway_url: required(&self.gateway_url, "gateway-url")?
                .trim_end_matches('/')
                .to_owned(),
            order_reference: required(&self.order_reference, "order-reference")?,
            access_token: required(&self.access_token, "access-token")?,
            sdk_url: nonempty(self.sdk_url.clone()).unwrap_or_else(|| KLARNA_SDK_URL.to_owned()),
            locale: nonempty(self.locale.clone()).unwrap_or_else(|| "en-US".to_owned()),
            mode: match self.mode.as_deref() {
                Some("modal") => Mode::Modal,
                _ => Mode::Inline,
            },
            category: nonempty(self.category.clone()),
            auto_finalize: self.auto_finalize.unwrap_or(true),
            timeout_ms: self.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS).max(1),
            pay_button: self.pay_button.unwrap_or(true),
            theme: Theme {
                accent: nonempty(self.accent.clone()),
                text: nonempty(self.text_color.clone()),
                radius: nonempty(self.radius.clone()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Options {
        Options {
            gateway_url: Some("https://gw.example/".into()),
            order_reference: Some("S00043".into()),
            access_token: Some("tok".into()),
            ..Options::default()
        }
    }

    #[test]
    fn required_settings_are_named_and_defaults_filled() {
        let cfg = base().config().expect("valid");
        assert_eq!(cfg.gateway_url, "https://gw.example");
        assert_eq!(
            (cfg.mode, cfg.auto_finalize, cfg.sdk_url.as_str()),
            (Mode::Inline, true, KLARNA_SDK_URL)
        );
        let missing = Options {
            access_token: Some("  ".into()),
            ..base()
        };
        assert_eq!(
            missing.config(),
            Err(WidgetError::MissingSetting("access-token"))
        );
    }

    #[test]
    fn updates_override_only_what_they_set() {
        let update = Options {
            access_token: Some("new".into()),
            mode: Some("modal".into()),
            ..Options::default()
        };
        let cfg = update.over(base()).config().expect("valid");
        assert_eq!(
            (
                cfg.access_token.as_str(),
                cfg.order_reference.as_str(),
                cfg.mode
            ),
            ("new", "S00043", Mode::Modal)
        );
    }

    #[test]
    fn theme_values_cannot_break_out_of_css() {
        let theme = Theme {
            accent: Some("#ffb3c7".into()),
            text: Some("red; background: url(x)".into()),
            radius: Some("rgb(1, 2, 3)".into()),
        };
        assert_eq!(
            theme.properties(),
            [
                ("--kw-accent", "#ffb3c7".to_owned()),
                ("--kw-radius", "rgb(1, 2, 3)".to_owned())
            ]
        );
    }
}
