//! Merchant authentication for Klarna's endpoints (HTTP Basic, API key, and the
//! sandbox-only OAuth2 bearer, behind the sandbox-only lock-out), and the JSON body
//! extractor that answers Klarna's `BAD_VALUE`.

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

use crate::config::Region;
use crate::reply::KlarnaError;
use crate::state::Sandbox;

/// A request authenticated as the sandbox's merchant: HTTP Basic `username:password`,
/// `Basic <api key>`, or (sandbox-only) `Bearer <token from /oauth2/token>`.
pub struct MerchantAuth;

fn eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl FromRequestParts<Arc<Sandbox>> for MerchantAuth {
    type Rejection = KlarnaError;

    async fn from_request_parts(
        parts: &mut Parts,
        sandbox: &Arc<Sandbox>,
    ) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let cfg = &sandbox.config;
        let ok = if let Some(token) = value.strip_prefix("Bearer ") {
            sandbox.bearer_valid(token.trim())
        } else if let Some(encoded) = value.strip_prefix("Basic ") {
            let encoded = encoded.trim();
            let api_key = !cfg.api_key.is_empty() && eq(encoded, &cfg.api_key);
            let basic = STANDARD
                .decode(encoded)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .is_some_and(|pair| eq(&pair, &format!("{}:{}", cfg.username, cfg.password)));
            api_key || basic
        } else {
            false
        };
        // Credentials of one region are unknown at another region's host: Klarna answers
        // 401 there, as for a wrong password.
        let host = parts
            .extensions
            .get::<Region>()
            .copied()
            .unwrap_or_default();
        let ok = ok && host == cfg.region;
        sandbox.admit_login(ok).map(|()| Self)
    }
}

/// The JSON body of a Klarna request, with Klarna's `BAD_VALUE` when it is not valid.
pub struct KlarnaJson<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for KlarnaJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = KlarnaError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| Self(v))
            .map_err(KlarnaError::from)
    }
}
