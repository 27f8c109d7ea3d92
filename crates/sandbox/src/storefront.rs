//! An Odoo-like storefront: a list of the demo orders and, for each, a checkout page that
//! embeds the widget bundle the way the Odoo addon's QWeb template does — a mount element
//! whose data attributes carry the gateway URL, the order reference and its access token.
//!
//! The page is `www/index.html` as Trunk built it; the placeholders in it (`{{…}}`) are
//! filled here, per order, as Odoo fills its template.

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
        .route("/shop/payment/{order}", get(payment_page));
    match &config.storefront_dir {
        Some(dir) => router.fallback_service(ServeDir::new(dir)),
        None => router,
    }
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
    for id in order
        .get("order_line")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
    {
        let Some(line) = sandbox.odoo.get("sale.order.line", id) else {
            continue;
        };
        let line = &line;
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
    let partner_lang = order
        .get("partner_id")
        .and_then(|p| p.get(0))
        .and_then(Value::as_i64)
        .and_then(|id| sandbox.odoo.get("res.partner", id))
        .map(|p| text(&p, "lang").replace('_', "-"))
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "en-US".into());
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
        ("{{order_summary}}", summary),
        (
            "{{order_total}}",
            escape(&amount(order, "amount_total", currency)),
        ),
    ];
    let page = values
        .iter()
        .fold(template, |page, (key, value)| page.replace(key, value));
    (
        [(
            axum::http::header::CONTENT_SECURITY_POLICY,
            content_security_policy(gateway.trim_end_matches('/')),
        )],
        Html(page),
    )
        .into_response()
}
