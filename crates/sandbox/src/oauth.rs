//! Sandbox-only: an OAuth2 client-credentials token endpoint, standing in for the
//! token-issuing proxy some deployments put in front of Klarna. Klarna's own APIs use
//! HTTP Basic; the client's OAuth2 mode is tested against this.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::reply::{Reply, new_id};
use crate::state::Sandbox;

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new().route("/oauth2/token", post(token))
}

async fn token(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Reply {
    let cfg = &sandbox.config;
    // Client credentials in the form, or as HTTP Basic.
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
        });
    let (id, secret) = basic.unwrap_or_else(|| {
        (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        )
    });
    let grant_ok = form.get("grant_type").map(String::as_str) == Some("client_credentials");
    sandbox.state().token_requests += 1;
    if !grant_ok {
        return Reply::json(
            StatusCode::BAD_REQUEST,
            &json!({"error": "unsupported_grant_type"}),
        );
    }
    if id != cfg.oauth_client_id || secret != cfg.oauth_client_secret {
        sandbox.note_auth_failure();
        return Reply::json(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "invalid_client"}),
        );
    }
    let token = new_id();
    let ttl = cfg.oauth_token_ttl;
    let expires = sandbox.now() + ttl;
    sandbox.state().bearer_tokens.insert(token.clone(), expires);
    Reply::json(
        StatusCode::OK,
        &json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl.as_secs()}),
    )
}
