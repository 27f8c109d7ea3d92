//! An Odoo-like storefront: a list of the demo orders and, for each, a checkout page that
//! embeds the widget bundle the way the Odoo addon's QWeb template does — a mount element
//! whose data attributes carry the gateway URL, the order reference and its access token.
//!
//! The page is `www/index.html` as Trunk built it; the placeholders in it (`{{…}}`) are
//! filled here, per order, as Odoo fills its template.
//!
//! A product page and a cart page carry Klarna's price messaging the way payment_klarna
//! puts it on Odoo's (a `<klarna-placement>` after the price, Klarna's script with the
//! merchant's client id, and the addon's `klarna_messaging.js` keeping the amount in step
//! with the quantity), with the sandbox's stand-in for Klarna's script; `?messaging=off`
//! shows them as a shop that has it switched off.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use klarna_types::money::{Currency, Money};
use serde::Deserialize;
use serde_json::Value;
use tower_http::services::ServeDir;

use crate::config::SandboxConfig;
use crate::sdk::escape;
use crate::state::Sandbox;

pub fn routes(config: &SandboxConfig) -> Router<Arc<Sandbox>> {
    let router = Router::new()
        .route("/", get(|| async { Redirect::to("/shop") }))
        .route("/shop", get(shop))
        .route("/shop/payment/{order}", get(payment_page))
        .route("/shop/product/{line}", get(product_page))
        .route("/shop/cart/{order}", get(cart_page))
        .route(
            "/payment_klarna/static/src/js/klarna_messaging.js",
            get(|| async { crate::sdk::javascript(MESSAGING_JS) }),
        )
        .route(
            "/shop/cart.js",
            get(|| async { crate::sdk::javascript(CART_JS) }),
        );
    match &config.storefront_dir {
        Some(dir) => router.fallback_service(ServeDir::new(dir)),
        None => router,
    }
}

/// The addon's script that keeps placements in step with the page, served as Odoo serves it.
const MESSAGING_JS: &str =
    include_str!("../../../odoo/payment_klarna/static/src/js/klarna_messaging.js");
/// What Odoo's cart does when a quantity changes: totals printed again.
const CART_JS: &str = include_str!("assets/cart.js");
/// The merchant's on-site messaging client id in the sandbox (Klarna's script renders
/// nothing without one).
pub const MESSAGING_CLIENT_ID: &str = "sandbox-osm-client-id";

/// An order's lines, in the order's order.
fn order_lines(
    sandbox: &Sandbox,
    order: &serde_json::Map<String, Value>,
) -> Vec<serde_json::Map<String, Value>> {
    order
        .get("order_line")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
        .filter_map(|id| sandbox.odoo.get("sale.order.line", id))
        .collect()
}

fn text<'a>(record: &'a serde_json::Map<String, Value>, field: &str) -> &'a str {
    record.get(field).and_then(Value::as_str).unwrap_or("")
}

fn many2one_name<'a>(record: &'a serde_json::Map<String, Value>, field: &str) -> &'a str {
    record
        .get(field)
        .and_then(|v| v.get(1))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn amount(record: &serde_json::Map<String, Value>, field: &str, currency: &str) -> String {
    let value = record.get(field).and_then(Value::as_f64).unwrap_or(0.0);
    Currency::new(currency)
        .and_then(|c| Money::from_odoo(value, c))
        .map_or_else(|_| format!("{value} {currency}"), |m| m.to_string())
}

async fn shop(State(sandbox): State<Arc<Sandbox>>) -> Html<String> {
    let mut rows = String::new();
    // The hand-made demo orders first, then the fixtures a real Odoo 18 computed.
    let mut orders = sandbox.odoo.records("sale.order");
    orders.sort_by_key(|o| text(o, "client_order_ref") != "DEMO");
    for order in &orders {
        let name = text(order, "name");
        let currency = many2one_name(order, "currency_id");
        rows.push_str(&format!(
            "<tr><td><a href=\"/shop/payment/{n}\">{n}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(many2one_name(order, "partner_id")),
            escape(text(order, "client_order_ref")),
            escape(&amount(order, "amount_total", currency)),
            n = escape(name),
        ));
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Demo shop (Odoo stand-in)</title>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head><body style=\"font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem\">\
<h1>Demo shop</h1><p>Sale orders from a real Odoo 18, served by the sandbox's Odoo stand-in. Pick one to pay it with Klarna (sandbox).</p>\
<table><thead><tr><th>Order</th><th>Customer</th><th>Scenario</th><th>Total</th></tr></thead><tbody>{rows}</tbody></table></body></html>"
    ))
}

#[derive(Deserialize)]
struct PageQuery {
    mode: Option<String>,
    /// `false`: Klarna's two-step flow (the shopper confirms after approval).
    auto_finalize: Option<String>,
    /// `1`: the shopper ticked "Save my payment details" (`0` cleared it): Odoo's
    /// checkout transaction asks to save the payment method, as a real Odoo's would.
    save: Option<String>,
}

/// The checkout page's Content-Security-Policy: no inline script, no eval — only this
/// origin's scripts (the widget bundle and the SDK stand-in) and WebAssembly compilation
/// (`'wasm-unsafe-eval'`, which allows nothing for JavaScript). Klarna's SDK sets inline
/// styles on its iframes, hence `'unsafe-inline'` for styles only.
pub fn content_security_policy(gateway_url: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self' {gateway_url}; frame-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

async fn payment_page(
    State(sandbox): State<Arc<Sandbox>>,
    Path(reference): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let Some(dir) = &sandbox.config.storefront_dir else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no widget bundle: start the sandbox with --storefront-dir <trunk dist>",
        )
            .into_response();
    };
    let Some(order) = sandbox
        .odoo
        .records("sale.order")
        .into_iter()
        .find(|o| text(o, "name") == reference)
    else {
        return (StatusCode::NOT_FOUND, "no such order").into_response();
    };
    let template = match tokio::fs::read_to_string(dir.join("index.html")).await {
        Ok(t) => t,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("widget bundle not built ({e}): run `cargo xtask demo`"),
            )
                .into_response();
        }
    };
    let order = &order;
    let currency = many2one_name(order, "currency_id");
    let mut summary = String::new();
    for line in &order_lines(&sandbox, order) {
        if line.get("display_type").and_then(Value::as_str).is_some() {
            continue;
        }
        summary.push_str(&format!(
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(text(line, "name")),
            line.get("product_uom_qty")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            escape(&amount(line, "price_total", currency)),
        ));
    }
    let partner_lang = order_locale(&sandbox, order);
    let save = query.save.as_deref() == Some("1");
    if query.save.is_some()
        && let Err(e) = sandbox.odoo.checkout(&reference, save)
    {
        return (StatusCode::NOT_FOUND, e).into_response();
    }
    let mode = match query.mode.as_deref() {
        Some("modal") => "modal",
        _ => "inline",
    };
    let current = |m: &str| {
        if m == mode {
            " aria-current=\"page\""
        } else {
            ""
        }
        .to_owned()
    };
    let auto_finalize = if query.auto_finalize.as_deref() == Some("false") {
        "false"
    } else {
        "true"
    };
    let gateway = sandbox.config.gateway_url.clone().unwrap_or_default();
    let values = [
        ("{{order_reference}}", escape(&reference)),
        ("{{access_token}}", escape(text(order, "access_token"))),
        ("{{gateway_url}}", escape(&gateway)),
        (
            "{{sdk_url}}",
            escape(&format!("{}/kp/lib/v1/api.js", sandbox.base_url)),
        ),
        ("{{locale}}", escape(&partner_lang)),
        ("{{mode}}", mode.to_owned()),
        ("{{inline_current}}", current("inline")),
        ("{{modal_current}}", current("modal")),
        ("{{auto_finalize}}", auto_finalize.to_owned()),
        (
            "{{save_current}}",
            if save { " aria-current=\"true\"" } else { "" }.to_owned(),
        ),
        (
            "{{nosave_current}}",
            if save { "" } else { " aria-current=\"true\"" }.to_owned(),
        ),
        ("{{order_summary}}", summary),
        (
            "{{order_total}}",
            escape(&amount(order, "amount_total", currency)),
        ),
    ];
    let page = values
        .iter()
        .fold(template, |page, (key, value)| page.replace(key, value));
    under_csp(&sandbox, page)
}

/// A page served with the checkout's Content-Security-Policy.
fn under_csp(sandbox: &Sandbox, page: String) -> Response {
    let gateway = sandbox.config.gateway_url.clone().unwrap_or_default();
    (
        [(
            axum::http::header::CONTENT_SECURITY_POLICY,
            content_security_policy(gateway.trim_end_matches('/')),
        )],
        Html(page),
    )
        .into_response()
}

#[derive(Deserialize)]
struct MessagingQuery {
    /// `off`: the shop has price messaging switched off.
    messaging: Option<String>,
}

/// The order's language as a BCP 47 locale (`sv-SE`), from its customer.
fn order_locale(sandbox: &Sandbox, order: &serde_json::Map<String, Value>) -> String {
    order
        .get("partner_id")
        .and_then(|p| p.get(0))
        .and_then(Value::as_i64)
        .and_then(|id| sandbox.odoo.get("res.partner", id))
        .map(|p| text(&p, "lang").replace('_', "-"))
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "en-US".into())
}

/// The head and foot of a shop page under the strict Content-Security-Policy, with Klarna's
/// script and the addon's when messaging is on.
fn shop_page(sandbox: &Sandbox, title: &str, body: &str, messaging: bool) -> Response {
    let scripts = if messaging {
        format!(
            "<script async src=\"{}/web-sdk/v1/klarna.js\" data-client-id=\"{MESSAGING_CLIENT_ID}\" data-environment=\"playground\"></script>\
<script defer src=\"/payment_klarna/static/src/js/klarna_messaging.js\"></script>",
            escape(&sandbox.base_url)
        )
    } else {
        String::new()
    };
    under_csp(
        sandbox,
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><link rel=\"icon\" href=\"data:,\">{scripts}</head>\
<body><main id=\"wrap\">{body}</main></body></html>",
            escape(title)
        ),
    )
}

/// The placement as the addon's template writes it.
fn placement(
    locale: &str,
    minor: i64,
    amount_from: &str,
    quantity_from: Option<&str>,
    scope: Option<&str>,
) -> String {
    format!(
        "<klarna-placement data-key=\"credit-promotion-auto-size\" data-locale=\"{}\" data-purchase-amount=\"{minor}\" data-theme=\"default\" data-klarna-amount-from=\"{}\"{}{}></klarna-placement>",
        escape(locale),
        escape(amount_from),
        quantity_from
            .map(|q| format!(" data-klarna-quantity-from=\"{}\"", escape(q)))
            .unwrap_or_default(),
        scope
            .map(|s| format!(" data-klarna-scope=\"{}\"", escape(s)))
            .unwrap_or_default(),
    )
}

/// A line's unit price with taxes, in minor units and as Odoo prints it.
fn unit_price(line: &serde_json::Map<String, Value>, currency: &str) -> Option<(i64, String)> {
    let qty = line.get("product_uom_qty").and_then(Value::as_f64)?;
    let total = line.get("price_total").and_then(Value::as_f64)?;
    let currency = Currency::new(currency).ok()?;
    let unit = Money::from_odoo(total / qty, currency).ok()?;
    Some((unit.minor(), unit.to_string()))
}

/// A product page, from a line of a demo order (the stand-in has no price list): the
/// price, a quantity, and the placement under the price.
async fn product_page(
    State(sandbox): State<Arc<Sandbox>>,
    Path(line_id): Path<i64>,
    Query(query): Query<MessagingQuery>,
) -> Response {
    let messaging = query.messaging.as_deref() != Some("off");
    let Some(line) = sandbox.odoo.get("sale.order.line", line_id) else {
        return (StatusCode::NOT_FOUND, "no such product").into_response();
    };
    let Some(order) = sandbox.odoo.records("sale.order").into_iter().find(|o| {
        o.get("order_line")
            .and_then(Value::as_array)
            .is_some_and(|l| l.contains(&Value::from(line_id)))
    }) else {
        return (StatusCode::NOT_FOUND, "no such product").into_response();
    };
    let currency = many2one_name(&order, "currency_id");
    let Some((minor, printed)) = unit_price(&line, currency) else {
        return (StatusCode::NOT_FOUND, "no price").into_response();
    };
    let locale = order_locale(&sandbox, &order);
    let body = format!(
        "<h1>{}</h1><form action=\"#\"><div class=\"js_product js_main_product\">\
<div class=\"product_price\"><h3><span class=\"oe_price\">{}</span></h3></div>\
<label>Quantity <input type=\"number\" class=\"quantity\" name=\"add_qty\" value=\"1\" min=\"1\"></label>{}\
</div></form><p><a href=\"/shop/cart/{}\">Cart</a></p>",
        escape(text(&line, "name")),
        escape(&printed),
        if messaging {
            placement(
                &locale,
                minor,
                ".oe_price",
                Some("input[name=add_qty]"),
                Some(".js_product"),
            )
        } else {
            String::new()
        },
        escape(text(&order, "name")),
    );
    shop_page(&sandbox, text(&line, "name"), &body, messaging)
}

/// A cart page for an order: its lines with quantities, the total, and the placement under
/// the total.
async fn cart_page(
    State(sandbox): State<Arc<Sandbox>>,
    Path(reference): Path<String>,
    Query(query): Query<MessagingQuery>,
) -> Response {
    let messaging = query.messaging.as_deref() != Some("off");
    let Some(order) = sandbox
        .odoo
        .records("sale.order")
        .into_iter()
        .find(|o| text(o, "name") == reference)
    else {
        return (StatusCode::NOT_FOUND, "no such order").into_response();
    };
    let currency = many2one_name(&order, "currency_id");
    let Ok(code) = Currency::new(currency) else {
        return (StatusCode::NOT_FOUND, "no currency").into_response();
    };
    let mut rows = String::new();
    for line in order_lines(&sandbox, &order) {
        let Some((unit, _)) = unit_price(&line, currency) else {
            continue;
        };
        let qty = line
            .get("product_uom_qty")
            .and_then(Value::as_f64)
            .unwrap_or(1.0);
        rows.push_str(&format!(
            "<tr data-unit-minor=\"{unit}\"><td>{}</td><td><input type=\"number\" name=\"qty\" value=\"{qty}\" min=\"0\" step=\"any\" aria-label=\"Quantity\"></td><td class=\"line_total\">{}</td></tr>",
            escape(text(&line, "name")),
            escape(&amount(&line, "price_total", currency)),
        ));
    }
    let total = order
        .get("amount_total")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let total = Money::from_odoo(total, code)
        .map(|m| m.minor())
        .unwrap_or(0);
    let locale = order_locale(&sandbox, &order);
    let body = format!(
        "<h1>Cart {}</h1><table id=\"cart\" data-decimals=\"{}\" data-currency=\"{}\"><tbody>{rows}</tbody></table>\
<div id=\"cart_total\"><table><tr id=\"order_total\"><td>Total</td><td><strong class=\"monetary_field\">{}</strong></td></tr></table></div>{}\
<script defer src=\"/shop/cart.js\"></script>",
        escape(&reference),
        code.exponent(),
        escape(currency),
        escape(&amount(&order, "amount_total", currency)),
        if messaging {
            placement(&locale, total, "#order_total .monetary_field", None, None)
        } else {
            String::new()
        },
    );
    shop_page(&sandbox, &format!("Cart {reference}"), &body, messaging)
}
