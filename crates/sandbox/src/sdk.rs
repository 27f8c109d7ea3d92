//! The stand-in for Klarna's JS SDK: the script at `/kp/lib/v1/api.js` and the iframes it
//! renders. The shopper's choice in the authorize dialog decides the SDK's callback; an
//! approval creates an authorization token bound to the session's cart at that moment.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::payments::categories;
use crate::reply::new_id;
use crate::state::{Authorization, Sandbox, SessionStatus};

const API_JS: &str = include_str!("assets/api.js");
const FRAME_JS: &str = include_str!("assets/frame.js");
/// The stand-in for Klarna's on-site messaging script.
const OSM_JS: &str = include_str!("assets/osm.js");

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/kp/lib/v1/api.js", get(api_js))
        .route("/kp/frame.js", get(frame_js))
        .route(
            "/web-sdk/v1/klarna.js",
            get(|| async { javascript(OSM_JS) }),
        )
        .route("/kp/frame/decision", post(authorize))
        .route("/kp/frame/{kind}", get(frame))
        .route("/kp/assets/{file}", get(asset))
}

pub(crate) fn javascript(body: &'static str) -> Response {
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
    #[serde(default)]
    auto_finalize: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

fn frame_page(kind: &str, q: &FrameQuery, body: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Klarna (sandbox)</title>
<style>body{{font-family:system-ui,sans-serif;margin:0;padding:12px 16px;color:#171717}}
button{{font:inherit;padding:10px 16px;border-radius:8px;border:1px solid #171717;margin:4px 8px 4px 0;cursor:pointer;background:#fff}}
button.primary{{background:#ffb3c7;border-color:#ffb3c7}} .amount{{font-size:1.4em;font-weight:600}}
.note{{color:#555;font-size:.85em}}</style></head>
<body><div id="klarna-sandbox" data-kind="{kind}" data-session="{session}" data-category="{category}" data-parent="{parent}" data-auto-finalize="{auto}" data-email="{email}">{body}</div>
<script src="/kp/frame.js"></script></body></html>"#,
        session = escape(&q.session_id),
        category = escape(&q.category),
        parent = escape(&q.parent),
        auto = if q.auto_finalize.as_deref() == Some("0") {
            "0"
        } else {
            "1"
        },
        email = escape(q.email.as_deref().unwrap_or("")),
    ))
}

fn category_name(base_url: &str, id: &str) -> String {
    categories(base_url, None)
        .into_iter()
        .find(|c| c.identifier == id)
        .map_or_else(|| id.to_owned(), |c| c.name)
}

/// `load` renders the category's form; `authorize` and `finalize` Klarna's dialog.
async fn frame(
    state: State<Arc<Sandbox>>,
    Path(kind): Path<String>,
    q: Query<FrameQuery>,
) -> Response {
    if kind == "load" {
        load_frame(state, q).await
    } else {
        authorize_frame(state, Path(kind), q).await
    }
}

/// Klarna's terms for saving the payment method, shown when the session was made to save
/// it (`intent` `buy_and_tokenize` or `tokenize`): the shopper agrees to them by buying.
const SAVE_TERMS: &str = r#"<p id="klarna-sandbox-save-terms" class="note">Klarna will save this payment method so that this store can charge it for your future purchases. You can remove it at any time in the Klarna app or at the store.</p>"#;

fn save_terms(sandbox: &Sandbox, session_id: &str) -> &'static str {
    let state = sandbox.state();
    let saves = state.sessions.get(session_id).is_some_and(|s| {
        matches!(
            s.body.intent.as_deref(),
            Some("buy_and_tokenize" | "tokenize")
        )
    });
    if saves { SAVE_TERMS } else { "" }
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
            "<p><strong>{}</strong></p>{}<p class=\"note\">Klarna sandbox — no real payment is made.</p>",
            escape(&name),
            save_terms(&sandbox, &q.session_id),
        ),
    )
    .into_response()
}

/// Klarna's dialog: confirm, decline, or (to test the widget) come back with fields to fix.
async fn authorize_frame(
    State(sandbox): State<Arc<Sandbox>>,
    Path(kind): Path<String>,
    Query(q): Query<FrameQuery>,
) -> Response {
    if kind != "authorize" && kind != "finalize" {
        return (StatusCode::NOT_FOUND, "unknown dialog").into_response();
    }
    let amount = {
        let state = sandbox.state();
        match state.sessions.get(&q.session_id) {
            Some(s) => format_amount(s.body.order_amount, &s.body.purchase_currency),
            None => return (StatusCode::NOT_FOUND, "unknown session").into_response(),
        }
    };
    let name = category_name(&sandbox.base_url, &q.category);
    let title = if kind == "finalize" {
        "Finalize your purchase"
    } else {
        "Confirm your purchase"
    };
    frame_page(
        &kind,
        &q,
        &format!(
            r#"<h1>{title}</h1><p>{}</p><p class="amount">{}</p>
<button type="button" class="primary" id="klarna-sandbox-approve" data-outcome="approve">Buy</button>
<button type="button" id="klarna-sandbox-decline" data-outcome="decline">Decline</button>
<button type="button" id="klarna-sandbox-invalid" data-outcome="invalid">Send back with wrong details</button>
<button type="button" id="klarna-sandbox-close" data-outcome="close">Close</button>
{}<p class="note">Klarna sandbox — no real payment is made.</p>"#,
            escape(&name),
            escape(&amount),
            save_terms(&sandbox, &q.session_id),
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
    /// `approve`, `decline` or `invalid`.
    outcome: String,
    /// `authorize` or `finalize`.
    #[serde(default = "authorize_kind")]
    kind: String,
    #[serde(default = "yes")]
    auto_finalize: bool,
    #[serde(default)]
    email: Option<String>,
}

fn authorize_kind() -> String {
    "authorize".into()
}

fn yes() -> bool {
    true
}

/// The shopper's choice in Klarna's dialog, turned into the SDK's callback value, exactly
/// as Klarna's SDK shapes it.
async fn authorize(
    State(sandbox): State<Arc<Sandbox>>,
    Json(choice): Json<AuthorizeChoice>,
) -> Result<Json<Value>, StatusCode> {
    let now = sandbox.now();
    let mut state = sandbox.state();
    let session = state
        .sessions
        .get(&choice.session_id)
        .filter(|s| s.status == SessionStatus::Incomplete)
        .cloned()
        .ok_or(StatusCode::NOT_FOUND)?;
    let email = choice
        .email
        .clone()
        .filter(|e| !e.is_empty())
        .or_else(|| {
            session
                .body
                .billing_address
                .as_ref()
                .and_then(|a| a.email.clone())
        })
        .unwrap_or_default();
    // Klarna's playground: `+denied` is never approved.
    let outcome = if email.contains("+denied@") {
        "decline"
    } else {
        choice.outcome.as_str()
    };
    match outcome {
        "decline" => Ok(Json(json!({"approved": false, "show_form": false}))),
        // Klarna's dialog closed by the shopper: nothing approved, the form still offered.
        "close" => Ok(Json(json!({"approved": false, "show_form": true}))),
        "invalid" => Ok(Json(json!({
            "approved": false,
            "show_form": true,
            "error": {"invalid_fields": ["billing_address.email", "billing_address.phone"]},
        }))),
        "approve" if choice.kind == "authorize" && !choice.auto_finalize => {
            state.awaiting_finalize.insert(session.id);
            Ok(Json(
                json!({"approved": true, "show_form": true, "finalize_required": true}),
            ))
        }
        "approve" => {
            if choice.kind == "finalize" && !state.awaiting_finalize.remove(&session.id) {
                return Err(StatusCode::CONFLICT);
            }
            let token = new_id();
            // Klarna's authorization callback: the merchant may place the order even if
            // the shopper's browser never comes back.
            if let Some(url) = session
                .body
                .merchant_urls
                .as_ref()
                .and_then(|u| u.authorization.clone())
            {
                crate::webhooks::authorization_callback(&sandbox, &url, &token, &session.id);
            }
            state.authorizations.insert(
                token.clone(),
                Authorization {
                    token: token.clone(),
                    session_id: session.id,
                    category: choice.category,
                    body: session.body,
                    email,
                    created_at: now,
                    consumed: false,
                    tokenized: false,
                },
            );
            Ok(Json(
                json!({"approved": true, "show_form": true, "authorization_token": token}),
            ))
        }
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
