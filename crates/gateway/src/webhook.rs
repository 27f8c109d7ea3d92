//! Klarna's webhooks and classic callbacks over HTTP: the only part of their handling
//! that knows axum.
//!
//! Signed webhooks (`POST /klarna/webhook`) and the classic callbacks
//! (`POST /klarna/notification/{token}`, `POST /klarna/authorization/{token}`) are read
//! with a size limit, verified first ([`crate::webhook_verify`]; the callbacks' URL token
//! compared in constant time, their body only a hint), then stored — unique by event id,
//! together with the job that applies it ([`crate::event_apply`]), in the writer's next
//! batch ([`crate::ingest`]) — and only then answered 200. A replayed event id is
//! acknowledged and not stored or applied again. Every refusal is counted by the front
//! door, which may block the address.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use klarna_types::contract::ApiError;
use subtle::ConstantTimeEq;

use crate::db::now_ms;
use crate::frontdoor::{ClientIp, Door};
use crate::ingest::Stored;
use crate::openapi::{CallbackErrors, WebhookDoor};
use crate::secrets::CLASSIC_TOKEN;
use crate::state::Gateway;
use crate::store::webhooks::IncomingEvent;
use crate::webhook_verify::{
    Event, Rejection, SignedHeaders, check_signed, is_json, parse_authorization_callback,
    parse_classic, within_horizon,
};

/// Stores a verified event with the job that will apply it (group commit, see
/// [`crate::ingest`]), and only then acknowledges it. A duplicate is acknowledged and
/// neither stored nor queued again.
async fn accept(
    gw: &Gateway,
    event: Event,
    source: &'static str,
    key_id: Option<String>,
    body: &[u8],
) -> Response {
    let event_id = event.event_id.clone();
    let incoming = IncomingEvent {
        event_id: event.event_id,
        source,
        event_type: event.event_type,
        order_id: event.order_id,
        occurred_at: event.occurred_at,
        key_id,
        payload: String::from_utf8_lossy(body).into_owned(),
    };
    match gw.ingest.store(incoming).await {
        Ok(stored) => {
            let status = match stored {
                Stored::New => {
                    gw.wake_worker();
                    Ack::Accepted
                }
                Stored::Duplicate => Ack::Duplicate,
            };
            metrics::counter!("gateway_webhooks_total", "outcome" => status.as_str()).increment(1);
            Json(Acknowledged { status, event_id }).into_response()
        }
        // Not stored: not acknowledged, so Klarna sends it again.
        Err(e) => e.into_response(),
    }
}

/// What a stored event is answered.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Acknowledged {
    pub status: Ack,
    /// The event's id (for a classic callback, the hash of its body).
    pub event_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ack {
    /// Stored now, with the job that applies it.
    Accepted,
    /// Stored before: neither stored nor applied again.
    Duplicate,
}

impl Ack {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
        }
    }
}

/// The body, read up to [`crate::webhook_verify::BODY_LIMIT`] (the route's `DefaultBodyLimit`); anything that
/// could not be read in full counts as too large.
fn limited(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Rejection> {
    body.map_err(|_| Rejection::TooLarge)
}

/// `POST /klarna/webhook`: a webhook signed with one of Klarna's signing keys.
#[utoipa::path(
    post,
    path = "/klarna/webhook",
    tag = "webhooks",
    params(
        ("Klarna-Signing-Key-Id" = String, Header, description = "The id of the key that signed the event"),
        ("Klarna-Signature" = String, Header, description = "HMAC-SHA256 of the body with that key, base64"),
    ),
    request_body(content = Object, content_type = "application/json", description = "Klarna's event: `metadata.event_id`, `metadata.event_type`, `metadata.occurred_at`, `payload.order_id`"),
    responses(
        (status = 200, description = "Stored (`accepted`) or stored before (`duplicate`): acknowledged", body = Acknowledged),
        (status = 400, description = "Refused before it was stored: `missing_header`, `malformed_signature`, `unknown_key`, `revoked_key`, `bad_signature`, `malformed_json`, `wrong_shape`, `stale_event`, `future_event` (docs/webhooks.md)", body = ApiError),
        WebhookDoor,
    )
)]
pub async fn signed(
    State(gw): State<Arc<Gateway>>,
    ip: Option<axum::Extension<ClientIp>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ip: IpAddr = ip.map_or(IpAddr::from([0, 0, 0, 0]), |e| e.0.0);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = SignedHeaders {
        content_type: header("content-type"),
        key_id: header("klarna-signing-key-id"),
        signature: header("klarna-signature"),
    };
    let keys = gw.signing_keys.keys(&gw.secrets);
    let checked = limited(body).map_err(|r| (r, None)).and_then(|body| {
        check_signed(signed, &body, &keys, now_ms(), gw.config.webhook_horizon).map(|ok| (ok, body))
    });
    match checked {
        Ok(((event, key_id), body)) => accept(&gw, event, "signed", Some(key_id), &body).await,
        Err((rejection, key_id)) => {
            gw.frontdoor
                .reject(Door::Webhook, ip, rejection.reason(), key_id.as_deref());
            rejection.into_response()
        }
    }
}

/// `POST /klarna/notification/{token}`: fraud decisions.
#[utoipa::path(
    post,
    path = "/klarna/notification/{token}",
    tag = "webhooks",
    params(("token" = String, Path, description = "The classic callbacks' secret token (`classic_callback_token`)")),
    request_body(content = Object, content_type = "application/json", description = "Klarna's notification: `order_id`, `event_type`"),
    responses(
        (status = 200, description = "Stored (`accepted`) or stored before (`duplicate`): acknowledged", body = Acknowledged),
        CallbackErrors,
    )
)]
pub async fn classic(
    State(gw): State<Arc<Gateway>>,
    ip: Option<axum::Extension<ClientIp>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    unsigned(&gw, ip, &token, &headers, body, parse_classic).await
}

/// `POST /klarna/authorization/{token}`: the authorization callback.
#[utoipa::path(
    post,
    path = "/klarna/authorization/{token}",
    tag = "webhooks",
    params(("token" = String, Path, description = "The classic callbacks' secret token (`classic_callback_token`)")),
    request_body(content = Object, content_type = "application/json", description = "Klarna's authorization callback: `session_id`, `authorization_token`"),
    responses(
        (status = 200, description = "Stored (`accepted`) or stored before (`duplicate`): acknowledged", body = Acknowledged),
        CallbackErrors,
    )
)]
pub async fn authorization(
    State(gw): State<Arc<Gateway>>,
    ip: Option<axum::Extension<ClientIp>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    unsigned(
        &gw,
        ip,
        &token,
        &headers,
        body,
        parse_authorization_callback,
    )
    .await
}

/// The classic callbacks carry no signature: the URL's secret token (constant-time
/// compare) is what lets them in, and their body is only a hint.
async fn unsigned(
    gw: &Gateway,
    ip: Option<axum::Extension<ClientIp>>,
    token: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    parse: fn(&[u8], i64) -> Result<Event, Rejection>,
) -> Response {
    let ip: IpAddr = ip.map_or(IpAddr::from([0, 0, 0, 0]), |e| e.0.0);
    let expected = gw.secrets.get(CLASSIC_TOKEN);
    let ok = expected
        .as_deref()
        .is_some_and(|e| !e.is_empty() && bool::from(e.as_bytes().ct_eq(token.as_bytes())));
    let checked = if !ok {
        Err(Rejection::BadToken)
    } else if !is_json(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    ) {
        Err(Rejection::ContentType)
    } else {
        let now = now_ms();
        match limited(body).and_then(|body| Ok((parse(&body, now)?, body))) {
            Ok((e, body)) => {
                // A notification without a time of its own is dated by its first receipt
                // (its id is its bytes' hash), so the same body sent again a day later
                // is as stale as a signed event of that age.
                let first_seen = match gw.db.event(&e.event_id).await {
                    Ok(stored) => stored.map(|s| s.received_at),
                    Err(err) => return err.into_response(),
                };
                let at = e.occurred_at.min(first_seen.unwrap_or(i64::MAX));
                within_horizon(at, now, gw.config.webhook_horizon).map(|()| (e, body))
            }
            Err(r) => Err(r),
        }
    };
    match checked {
        Ok((event, body)) => accept(gw, event, "classic", None, &body).await,
        Err(rejection) => {
            gw.frontdoor
                .reject(Door::Webhook, ip, rejection.reason(), None);
            rejection.into_response()
        }
    }
}
