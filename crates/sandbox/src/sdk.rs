//! The stand-in for Klarna's JS SDK: the script at `/kp/lib/v1/api.js` and the iframes it
//! renders. The shopper's choice in the authorize dialog decides the SDK's callback; an
//! approval creates an authorization token bound to the session's cart at that moment.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::payments::categories;
use crate::state::{Authorization, Sandbox, SessionStatus, new_id, now};

const API_JS: &str = include_str!("assets/api.js");
const FRAME_JS: &str = include_str!("assets/frame.js");

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/kp/lib/v1/api.js", get(api_js))
        .route("/kp/frame.js", get(frame_js))
        .route("/kp/frame/load", get(load_frame))
        .route("/kp/frame/authorize", get(authorize_frame).post(authorize))
        .route("/kp/assets/{file}", get(asset))
}

fn javascript(body: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            ),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn api_js() -> Response {
    javascript(API_JS)
}

async fn frame_js() -> Response {
    javascript(FRAME_JS)
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(Deserialize)]
struct FrameQuery {
    session_id: String,
    category: String,
    parent: String,
}

fn frame_page(kind: &str, q: &FrameQuery, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Klarna (sandbox)</title>
<style>body{{font-family:system-ui,sans-serif;margin:0;padding:12px 16px;color:#171717}}
button{{font:inherit;padding:10px 16px;border-radius:8px;border:1px solid #171717;margin:4px 8px 4px 0;cursor:pointer}}
button.primary{{background:#ffb3c7;border-color:#ffb3c7}} .amount{{font-size:1.4em;font-weight:600}}
.note{{color:#555;font-size:.85em}}</style></head>
<body><div id="klarna-sandbox" data-kind="{kind}" data-session="{session}" data-category="{category}" data-parent="{parent}">{body}</div>
<script src="/kp/frame.js"></script></body></html>"#,
        session = escape(&q.session_id),
        category = escape(&q.category),
        parent = escape(&q.parent),
    ))
}

fn category_name(base_url: &str, id: &str) -> String {
    categories(base_url)
        .into_iter()
        .find(|c| c.identifier == id)
        .map_or_else(|| id.to_owned(), |c| c.name)
}

async fn load_frame(State(sandbox): State<Arc<Sandbox>>, Query(q): Query<FrameQuery>) -> Response {
    let known = sandbox.state().sessions.contains_key(&q.session_id);
    if !known {
        return (StatusCode::NOT_FOUND, "unknown session").into_response();
    }
    let name = category_name(&sandbox.base_url, &q.category);
    frame_page(
        "load",
        &q,
        &format!(
            "<p><strong>{}</strong></p><p class=\"note\">Klarna sandbox — no real payment is made.</p>",
            escape(&name)
        ),
    )
    .into_response()
}

async fn authorize_frame(
    State(sandbox): State<Arc<Sandbox>>,
    Query(q): Query<FrameQuery>,
) -> Response {
    let amount = {
        let state = sandbox.state();
        match state.sessions.get(&q.session_id) {
            Some(s) => format_amount(s.body.order_amount, &s.body.purchase_currency),
            None => return (StatusCode::NOT_FOUND, "unknown session").into_response(),
        }
    };
    let name = category_name(&sandbox.base_url, &q.category);
    frame_page(
        "authorize",
        &q,
        &format!(
            r#"<h1>Confirm your purchase</h1><p>{}</p><p class="amount">{}</p>
<button type="button" class="primary" id="klarna-sandbox-approve" data-outcome="approve">Buy</button>
<button type="button" id="klarna-sandbox-decline" data-outcome="decline">Decline</button>
<p class="note">Klarna sandbox — no real payment is made.</p>"#,
            escape(&name),
            escape(&amount),
        ),
    )
    .into_response()
}

fn format_amount(minor: i64, currency: &str) -> String {
    use klarna_types::money::{Currency, Money};
    Currency::new(currency).map_or_else(
        |_| format!("{minor} {currency}"),
        |c| Money::from_minor(minor, c).to_string(),
    )
}

#[derive(Deserialize)]
struct AuthorizeChoice {
    session_id: String,
    category: String,
    outcome: String,
}

/// The shopper's choice in the authorize dialog, turned into the SDK's callback value.
async fn authorize(
    State(sandbox): State<Arc<Sandbox>>,
    Json(choice): Json<AuthorizeChoice>,
) -> Result<Json<Value>, StatusCode> {
    let mut state = sandbox.state();
    let session = state
        .sessions
        .get(&choice.session_id)
        .filter(|s| s.status == SessionStatus::Incomplete)
        .cloned()
        .ok_or(StatusCode::NOT_FOUND)?;
    match choice.outcome.as_str() {
        "approve" => {
            let token = new_id();
            state.authorizations.insert(
                token.clone(),
                Authorization {
                    token: token.clone(),
                    session_id: session.id,
                    category: choice.category,
                    body: session.body,
                    created_at: now(),
                    consumed: false,
                },
            );
            Ok(Json(
                json!({"approved": true, "show_form": true, "authorization_token": token}),
            ))
        }
        "decline" => Ok(Json(json!({"approved": false, "show_form": false}))),
        _ => Err(StatusCode::BAD_REQUEST),
    }
}

async fn asset(Path(file): Path<String>) -> Response {
    let label = file.trim_end_matches(".svg").replace('-', " ");
    let svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="48" height="24" viewBox="0 0 48 24"><rect width="48" height="24" rx="6" fill="#ffb3c7"/><text x="24" y="16" font-family="sans-serif" font-size="11" font-weight="700" text-anchor="middle" fill="#171717">K.</text><title>{}</title></svg>"##,
        escape(&label)
    );
    ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_format_with_the_currency_exponent() {
        assert_eq!(format_amount(123_456, "EUR"), "1234.56 EUR");
        assert_eq!(format_amount(1234, "JPY"), "1234 JPY");
        assert_eq!(format_amount(-5, "KWD"), "-0.005 KWD");
    }

    #[test]
    fn escaping_covers_attribute_breakers() {
        assert_eq!(
            escape(r#"<a href="x">'&"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
    }
}
