//! Klarna's webhooks, verified before anything else, stored once, applied once.
//!
//! Signed webhooks (`POST /klarna/webhook`): the body is read with a size limit, must be
//! JSON, and must carry `Klarna-Signing-Key-Id` and `Klarna-Signature` — hex HMAC-SHA256
//! of the exact bytes with the named key (several keys may be active, for rotation;
//! revoked and unknown keys are refused; the comparison is constant-time). Then the event
//! is checked against its type's shape and its time (older than the horizon, 24 h by
//! default, or more than 5 minutes ahead is refused). Only then is it stored — unique by
//! event id, together with the job that applies it — and only then answered 200. A
//! replayed event id is acknowledged and not stored or applied again.
//!
//! Classic callbacks (`POST /klarna/notification/{token}`) carry no signature: they are
//! accepted only on the URL with the installation's secret token, and their body is only a
//! hint — the job re-reads the order from Klarna and applies what Klarna says.
//!
//! Applying an event (the job) always reads Klarna's order and brings our records in line
//! through the state machine ([`crate::reconcile::sync_payment`]); an event for an order
//! we do not know yet (it arrived before its authorization) waits and retries.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Gateway;
use crate::db::now_ms;
use crate::frontdoor::{ClientIp, refuse};
use crate::store::webhooks::IncomingEvent;
use crate::worker::NotDone;

pub const SIGNING_KEYS: &str = "webhook.signing_keys";
pub const CLASSIC_TOKEN: &str = "webhook.classic_token";
/// Klarna's bodies are small; 64 KiB is generous.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What an event means to a payment. Every kind is applied the same way — by reading
/// Klarna's order — but the kind is kept, logged and documented (docs/webhooks.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Authorized,
    CaptureCompleted,
    Refunded,
    Cancelled,
    Expired,
    Declined,
    PaymentFailed,
    FraudAccepted,
    FraudRejected,
    FraudStopped,
    /// A step before authorization (submitted, prepared, in progress, …).
    Progress,
    /// Klarna's classic authorization callback: the shopper authorized; the order may be
    /// placed even if their browser never comes back.
    AuthorizationCallback,
}

/// Every event type the gateway accepts, and what it means. Klarna's Webhooks
/// (`payment.request.state-change.*`), the original design's names, and Klarna's classic
/// fraud-decision notifications.
pub const KINDS: &[(&str, Kind)] = &[
    ("payment.request.state-change.authorized", Kind::Authorized),
    (
        "payment.request.state-change.completed",
        Kind::CaptureCompleted,
    ),
    ("payment.request.state-change.canceled", Kind::Cancelled),
    ("payment.request.state-change.expired", Kind::Expired),
    ("payment.request.state-change.declined", Kind::Declined),
    ("payment.request.state-change.submitted", Kind::Progress),
    ("payment.request.state-change.prepared", Kind::Progress),
    ("payment.request.state-change.in-progress", Kind::Progress),
    (
        "payment.request.state-change.pending-confirmation",
        Kind::Progress,
    ),
    ("payment_authorized", Kind::Authorized),
    ("payment_capture_completed", Kind::CaptureCompleted),
    ("payment_refunded", Kind::Refunded),
    ("payment_cancellation", Kind::Cancelled),
    ("payment_failed", Kind::PaymentFailed),
    ("FRAUD_RISK_ACCEPTED", Kind::FraudAccepted),
    ("FRAUD_RISK_REJECTED", Kind::FraudRejected),
    ("FRAUD_RISK_STOPPED", Kind::FraudStopped),
    (AUTHORIZATION_CALLBACK, Kind::AuthorizationCallback),
];

/// The event type an authorization callback is stored under.
pub const AUTHORIZATION_CALLBACK: &str = "authorization";

pub fn kind_of(event_type: &str) -> Option<Kind> {
    KINDS
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, k)| *k)
}

/// Why a webhook was refused. Nothing is stored or changed for any of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    TooLarge,
    ContentType,
    MissingHeader(&'static str),
    MalformedSignature,
    UnknownKey,
    RevokedKey,
    BadSignature,
    MalformedJson(String),
    WrongShape(String),
    Stale,
    Future,
    BadToken,
}

impl Rejection {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::ContentType => "content_type",
            Self::MissingHeader(_) => "missing_header",
            Self::MalformedSignature => "malformed_signature",
            Self::UnknownKey => "unknown_key",
            Self::RevokedKey => "revoked_key",
            Self::BadSignature => "bad_signature",
            Self::MalformedJson(_) => "malformed_json",
            Self::WrongShape(_) => "wrong_shape",
            Self::Stale => "stale",
            Self::Future => "future",
            Self::BadToken => "bad_token",
        }
    }

    /// Klarna's guidance is 400 for a signature that does not match; Klarna retries
    /// anything but 2xx, so a refused event is never silently lost if it was genuine.
    fn response(&self) -> Response {
        match self {
            Self::TooLarge => refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                &format!("the body is larger than {} KiB", BODY_LIMIT / 1024),
            ),
            Self::ContentType => refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content_type",
                "Content-Type must be application/json",
            ),
            Self::MissingHeader(h) => refuse(
                StatusCode::BAD_REQUEST,
                "missing_header",
                &format!("the {h} header is required"),
            ),
            Self::MalformedSignature => refuse(
                StatusCode::BAD_REQUEST,
                "malformed_signature",
                "Klarna-Signature must be 64 hex digits",
            ),
            Self::UnknownKey => refuse(
                StatusCode::BAD_REQUEST,
                "unknown_key",
                "unknown Klarna-Signing-Key-Id",
            ),
            Self::RevokedKey => refuse(
                StatusCode::BAD_REQUEST,
                "revoked_key",
                "the signing key was revoked",
            ),
            Self::BadSignature => refuse(
                StatusCode::BAD_REQUEST,
                "bad_signature",
                "the signature does not match the body",
            ),
            Self::MalformedJson(e) => refuse(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                &format!("the body is not JSON: {e}"),
            ),
            Self::WrongShape(e) => refuse(StatusCode::BAD_REQUEST, "wrong_shape", e),
            Self::Stale => refuse(
                StatusCode::BAD_REQUEST,
                "stale_event",
                "the event is older than the accepted horizon",
            ),
            Self::Future => refuse(
                StatusCode::BAD_REQUEST,
                "future_event",
                "the event is dated in the future",
            ),
            Self::BadToken => refuse(StatusCode::NOT_FOUND, "not_found", "no such route"),
        }
    }
}

/// A signing key as stored (sealed) in [`SIGNING_KEYS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKey {
    pub id: String,
    pub secret: String,
    #[serde(default)]
    pub revoked: bool,
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

pub fn load_keys(gw: &Gateway) -> Vec<SigningKey> {
    load_keys_from(&gw.secrets)
}

pub fn load_keys_from(secrets: &crate::secrets::Secrets) -> Vec<SigningKey> {
    secrets
        .get(SIGNING_KEYS)
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

pub async fn save_keys(gw: &Gateway, keys: &[SigningKey]) -> Result<(), crate::GatewayError> {
    save_keys_to(&gw.secrets, keys).await
}

pub async fn save_keys_to(
    secrets: &crate::secrets::Secrets,
    keys: &[SigningKey],
) -> Result<(), crate::GatewayError> {
    let json = zeroize::Zeroizing::new(
        serde_json::to_string(keys).map_err(|e| crate::GatewayError::Config(e.to_string()))?,
    );
    secrets.set(SIGNING_KEYS, &json).await
}

/// A signing key as the admin API and CLI show it: never its secret.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub id: String,
    pub revoked: bool,
}

pub fn list_keys(gw: &Gateway) -> Vec<KeyInfo> {
    load_keys(gw)
        .iter()
        .map(|k| KeyInfo {
            id: k.id.clone(),
            revoked: k.revoked,
        })
        .collect()
}

/// Adds a signing key (Klarna's new key, before it signs with it: the overlap).
pub async fn add_key(gw: &Gateway, id: &str, secret: &str) -> Result<(), crate::GatewayError> {
    if !id_like(id) {
        return Err(crate::GatewayError::invalid(
            "id",
            "1–128 letters, digits or -_.:",
        ));
    }
    if secret.len() < 16 {
        return Err(crate::GatewayError::invalid(
            "secret",
            "at least 16 characters",
        ));
    }
    let mut keys = load_keys(gw);
    if keys.iter().any(|k| k.id == id) {
        return Err(crate::GatewayError::Refused(format!(
            "signing key {id} exists already"
        )));
    }
    keys.push(SigningKey {
        id: id.to_owned(),
        secret: secret.to_owned(),
        revoked: false,
    });
    save_keys(gw, &keys).await?;
    tracing::info!(key_id = id, "webhook signing key added");
    Ok(())
}

/// Revokes a signing key: webhooks signed with it are refused from now on (on other
/// instances once they reload their secrets, within seconds).
pub async fn revoke_key(gw: &Gateway, id: &str) -> Result<(), crate::GatewayError> {
    let mut keys = load_keys(gw);
    let key = keys
        .iter_mut()
        .find(|k| k.id == id)
        .ok_or_else(|| crate::GatewayError::Refused(format!("no signing key {id}")))?;
    key.revoked = true;
    save_keys(gw, &keys).await?;
    tracing::warn!(key_id = id, "webhook signing key revoked");
    Ok(())
}

/// `Klarna-Signature`: 64 hex digits (a `sha256=` prefix is tolerated).
pub fn parse_signature(header: &str) -> Result<[u8; 32], Rejection> {
    let hexed = header.trim();
    let hexed = hexed.strip_prefix("sha256=").unwrap_or(hexed);
    if hexed.len() != 64 {
        return Err(Rejection::MalformedSignature);
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hexed, &mut out).map_err(|_| Rejection::MalformedSignature)?;
    Ok(out)
}

/// Checks the signature of `body` with the key named by `key_id`.
pub fn verify(
    keys: &[SigningKey],
    key_id: &str,
    signature: &[u8; 32],
    body: &[u8],
) -> Result<(), Rejection> {
    let key = keys
        .iter()
        .find(|k| bool::from(k.id.as_bytes().ct_eq(key_id.as_bytes())))
        .ok_or(Rejection::UnknownKey)?;
    if key.revoked {
        return Err(Rejection::RevokedKey);
    }
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.secret.as_bytes()).map_err(|_| Rejection::UnknownKey)?;
    mac.update(body);
    mac.verify_slice(signature)
        .map_err(|_| Rejection::BadSignature)
}

/// A signed event, checked against its type's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event_id: String,
    pub event_type: String,
    pub kind: Kind,
    pub occurred_at: i64,
    pub order_id: String,
}

fn id_like(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
}

fn field<'a>(v: &'a Value, path: &str) -> Result<&'a str, Rejection> {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur
            .get(part)
            .ok_or_else(|| Rejection::WrongShape(format!("{path} is required")))?;
    }
    cur.as_str()
        .ok_or_else(|| Rejection::WrongShape(format!("{path} must be a string")))
}

fn json(body: &[u8]) -> Result<Value, Rejection> {
    serde_json::from_slice(body).map_err(|e| Rejection::MalformedJson(e.to_string()))
}

/// The id of a notification that carries none: its bytes' hash, so a redelivery is known.
fn id_of_bytes(prefix: &str, body: &[u8]) -> String {
    format!("{prefix}-{}", &hex::encode(Sha256::digest(body))[..40])
}

/// A field that names something (an event, an order, a session, a token).
fn id_field<'a>(v: &'a Value, path: &str) -> Result<&'a str, Rejection> {
    let s = field(v, path)?;
    if id_like(s) {
        Ok(s)
    } else {
        Err(Rejection::WrongShape(format!(
            "{path} must be 1–128 letters, digits or -_.:"
        )))
    }
}

fn timestamp(s: &str, path: &str) -> Result<i64, Rejection> {
    humantime::parse_rfc3339_weak(s)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .ok_or_else(|| Rejection::WrongShape(format!("{path} must be an RFC 3339 time")))
}

/// Parses a signed webhook's body: `{"metadata": {event_type, event_id, occurred_at, …},
/// "payload": {order_id, …}}`, with a known event type.
pub fn parse_event(body: &[u8]) -> Result<Event, Rejection> {
    let v = json(body)?;
    if !v.is_object() {
        return Err(Rejection::WrongShape(
            "the body must be a JSON object".into(),
        ));
    }
    if !v.get("metadata").is_some_and(Value::is_object) {
        return Err(Rejection::WrongShape("metadata must be an object".into()));
    }
    if !v.get("payload").is_some_and(Value::is_object) {
        return Err(Rejection::WrongShape("payload must be an object".into()));
    }
    let event_type = field(&v, "metadata.event_type")?;
    let kind = kind_of(event_type).ok_or_else(|| {
        Rejection::WrongShape(format!(
            "metadata.event_type {event_type:?} is not an event the gateway knows"
        ))
    })?;
    if matches!(
        kind,
        Kind::FraudAccepted
            | Kind::FraudRejected
            | Kind::FraudStopped
            | Kind::AuthorizationCallback
    ) {
        return Err(Rejection::WrongShape(format!(
            "{event_type} comes as a classic notification, not a signed webhook"
        )));
    }
    let event_id = id_field(&v, "metadata.event_id")?;
    let occurred_at = timestamp(field(&v, "metadata.occurred_at")?, "metadata.occurred_at")?;
    let order_id = id_field(&v, "payload.order_id")?;
    Ok(Event {
        event_id: event_id.to_owned(),
        event_type: event_type.to_owned(),
        kind,
        occurred_at,
        order_id: order_id.to_owned(),
    })
}

/// Parses a classic notification: `{order_id, event_type, …}`. Its id is the hash of its
/// bytes, so a redelivery is recognised.
pub fn parse_classic(body: &[u8]) -> Result<Event, Rejection> {
    let v = json(body)?;
    let event_type = field(&v, "event_type")?;
    let kind = kind_of(event_type)
        .filter(|k| *k != Kind::AuthorizationCallback)
        .ok_or_else(|| {
            Rejection::WrongShape(format!(
                "event_type {event_type:?} is not a notification the gateway knows"
            ))
        })?;
    let order_id = id_field(&v, "order_id")?;
    let occurred_at = match v.get("occurred_at").and_then(Value::as_str) {
        Some(t) => timestamp(t, "occurred_at")?,
        None => now_ms(),
    };
    Ok(Event {
        event_id: id_of_bytes("classic", body),
        event_type: event_type.to_owned(),
        kind,
        occurred_at,
        order_id: order_id.to_owned(),
    })
}

/// Parses Klarna's authorization callback: `{authorization_token, session_id}`. Stored
/// under the session id; its id is the hash of its bytes.
pub fn parse_authorization_callback(body: &[u8]) -> Result<Event, Rejection> {
    let v = json(body)?;
    id_field(&v, "authorization_token")?;
    let session_id = id_field(&v, "session_id")?;
    Ok(Event {
        event_id: id_of_bytes("authcb", body),
        event_type: AUTHORIZATION_CALLBACK.to_owned(),
        kind: Kind::AuthorizationCallback,
        occurred_at: now_ms(),
        order_id: session_id.to_owned(),
    })
}

fn within_horizon(gw: &Gateway, occurred_at: i64) -> Result<(), Rejection> {
    let now = now_ms();
    let horizon = i64::try_from(gw.config.webhook_horizon.as_millis()).unwrap_or(i64::MAX);
    if occurred_at < now - horizon {
        return Err(Rejection::Stale);
    }
    if occurred_at > now + 5 * 60 * 1000 {
        return Err(Rejection::Future);
    }
    Ok(())
}

fn json_content(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

fn check_signed(
    gw: &Gateway,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Event, String), (Rejection, Option<String>)> {
    if !json_content(headers) {
        return Err((Rejection::ContentType, None));
    }
    let key_id = headers
        .get("klarna-signing-key-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or((Rejection::MissingHeader("Klarna-Signing-Key-Id"), None))?
        .to_owned();
    // Past this point a refusal names the key it claimed.
    let keyed = |r: Rejection| (r, Some(key_id.clone()));
    let signature = headers
        .get("klarna-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or(Rejection::MissingHeader("Klarna-Signature"))
        .map_err(keyed)?;
    let signature = parse_signature(signature).map_err(keyed)?;
    verify(&load_keys(gw), &key_id, &signature, body).map_err(keyed)?;
    let event = parse_event(body).map_err(keyed)?;
    within_horizon(gw, event.occurred_at).map_err(keyed)?;
    Ok((event, key_id))
}

async fn accept(
    gw: &Gateway,
    event: &Event,
    source: &str,
    key_id: Option<&str>,
    body: &[u8],
) -> Response {
    let payload = String::from_utf8_lossy(body);
    match gw
        .db
        .store_event(IncomingEvent {
            event_id: &event.event_id,
            source,
            event_type: &event.event_type,
            order_id: &event.order_id,
            occurred_at: event.occurred_at,
            key_id,
            payload: &payload,
        })
        .await
    {
        Ok(true) => {
            gw.wake_worker();
            metrics::counter!("gateway_webhooks_total", "outcome" => "accepted").increment(1);
            (
                StatusCode::OK,
                Json(json!({"status": "accepted", "event_id": event.event_id})),
            )
                .into_response()
        }
        Ok(false) => {
            metrics::counter!("gateway_webhooks_total", "outcome" => "duplicate").increment(1);
            (
                StatusCode::OK,
                Json(json!({"status": "duplicate", "event_id": event.event_id})),
            )
                .into_response()
        }
        // Not stored: not acknowledged, so Klarna sends it again.
        Err(e) => e.into_response(),
    }
}

/// The body, read up to [`BODY_LIMIT`] (the route's `DefaultBodyLimit`); anything that
/// could not be read in full counts as too large.
fn limited(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Rejection> {
    body.map_err(|_| Rejection::TooLarge)
}

/// `POST /klarna/webhook`
pub async fn signed(
    State(gw): State<Arc<Gateway>>,
    ip: Option<axum::Extension<ClientIp>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let ip: IpAddr = ip.map_or(IpAddr::from([0, 0, 0, 0]), |e| e.0.0);
    let checked = limited(body)
        .map_err(|r| (r, None))
        .and_then(|body| check_signed(&gw, &headers, &body).map(|ok| (ok, body)));
    match checked {
        Ok(((event, key_id), body)) => accept(&gw, &event, "signed", Some(&key_id), &body).await,
        Err((rejection, key_id)) => {
            gw.frontdoor
                .reject(ip, rejection.reason(), key_id.as_deref());
            rejection.response()
        }
    }
}

/// `POST /klarna/notification/{token}`: fraud decisions.
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
    parse: fn(&[u8]) -> Result<Event, Rejection>,
) -> Response {
    let ip: IpAddr = ip.map_or(IpAddr::from([0, 0, 0, 0]), |e| e.0.0);
    let expected = gw.secrets.get(CLASSIC_TOKEN);
    let ok = expected
        .as_deref()
        .is_some_and(|e| !e.is_empty() && bool::from(e.as_bytes().ct_eq(token.as_bytes())));
    let checked = if !ok {
        Err(Rejection::BadToken)
    } else if !json_content(headers) {
        Err(Rejection::ContentType)
    } else {
        limited(body).and_then(|body| {
            let e = parse(&body)?;
            within_horizon(gw, e.occurred_at)?;
            Ok((e, body))
        })
    };
    match checked {
        Ok((event, body)) => accept(gw, &event, "classic", None, &body).await,
        Err(rejection) => {
            gw.frontdoor.reject(ip, rejection.reason(), None);
            rejection.response()
        }
    }
}

/// Applies a stored event (the job): reads Klarna's order and brings the payment in line.
/// An event about an order we do not know yet (it came before its authorization was
/// recorded) waits — checking less often as it ages — until the horizon, then fails.
pub async fn process(gw: &Gateway, event_id: &str) -> Result<(), NotDone> {
    let failed = |e: crate::GatewayError| NotDone::Failed(e.to_string());
    let event = gw
        .db
        .event(event_id)
        .await
        .map_err(failed)?
        .ok_or("no such event")?;
    if event.state == "applied" {
        return Ok(());
    }
    if event.event_type == AUTHORIZATION_CALLBACK {
        return place_from_callback(gw, &event).await;
    }
    let known = match gw
        .db
        .find_transaction(&event.order_id)
        .await
        .map_err(failed)?
    {
        Some(t) => Some(t),
        None => adopt(gw, &event.order_id).await.map_err(failed)?,
    };
    let Some(t) = known else {
        let reason = format!(
            "order {} is not known yet (an event before its authorization)",
            event.order_id
        );
        let age = Duration::from_millis(u64::try_from(now_ms() - event.received_at).unwrap_or(0));
        if age > gw.config.webhook_horizon {
            return Err(NotDone::Failed(format!(
                "{reason}, and still not after {} hours",
                gw.config.webhook_horizon.as_secs() / 3600
            )));
        }
        let retry_in = (age / 4).clamp(Duration::from_secs(1), Duration::from_secs(600));
        return Err(NotDone::Waiting { reason, retry_in });
    };
    let order = gw
        .klarna
        .get_order(&event.order_id)
        .await
        .map_err(|e| NotDone::Failed(e.to_string()))?;
    crate::reconcile::sync_payment(
        gw,
        t.id,
        &order,
        "webhook",
        Some((&event.event_id, &event.event_type)),
    )
    .await
    .map(|_| ())
    .map_err(failed)
}

/// The authorization callback: place the order from its token through the same path as
/// the widget (amounts re-read from Odoo, one order per session whoever comes first).
/// Klarna checks the token; the body is trusted for nothing else.
async fn place_from_callback(
    gw: &Gateway,
    event: &crate::store::webhooks::StoredEvent,
) -> Result<(), NotDone> {
    use crate::GatewayError as E;
    let payload: Value =
        serde_json::from_str(&event.payload).map_err(|e| NotDone::Failed(e.to_string()))?;
    let token = payload
        .get("authorization_token")
        .and_then(Value::as_str)
        .ok_or("no authorization_token")?;
    let request = klarna_types::contract::AuthorizeRequest {
        session_id: event.order_id.clone(),
        authorization_token: token.to_owned(),
    };
    let outcome = match crate::checkout::authorize(gw, request).await {
        Ok(answer) => format!("{answer:?}"),
        Err(E::AuthorizationInProgress) => {
            return Err(NotDone::Waiting {
                reason: "the widget is placing this order right now".into(),
                retry_in: Duration::from_secs(2),
            });
        }
        // Settled for good: nothing (more) to place.
        Err(e @ (E::SessionNotFound(_) | E::AuthorizationExpired | E::CartChanged)) => {
            e.to_string()
        }
        Err(e) => return Err(NotDone::Failed(e.to_string())),
    };
    let mut tx = gw
        .db
        .begin_write()
        .await
        .map_err(|e| NotDone::Failed(e.to_string()))?;
    gw.db
        .mark_event_applied(&mut tx, &event.event_id)
        .await
        .map_err(|e| NotDone::Failed(e.to_string()))?;
    tx.commit()
        .await
        .map_err(|e| NotDone::Failed(e.to_string()))?;
    tracing::info!(event = %event.event_id, session = %event.order_id, "authorization callback handled: {outcome}");
    Ok(())
}

/// An event about a Klarna order we have no record of: if an authorize for its Odoo
/// order (Klarna's `merchant_reference1`), same amount and currency, has been "placing"
/// for longer than any live request could take, that request died between Klarna placing
/// the order and our recording it. The event's order is then recorded as that payment's,
/// exactly as the authorize would have, so the shopper's paid order is not lost.
async fn adopt(
    gw: &Gateway,
    order_id: &str,
) -> Result<Option<crate::store::Transaction>, crate::GatewayError> {
    use crate::store::TxState;

    let order = match gw.klarna.get_order(order_id).await {
        Ok(o) => o,
        Err(e) if e.kind == klarna_client::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(reference) = order.merchant_reference1.as_deref() else {
        return Ok(None);
    };
    let grace = i64::try_from(gw.config.placing_grace.as_millis()).unwrap_or(i64::MAX);
    let candidates: Vec<_> = gw
        .db
        .placing_for(reference)
        .await?
        .into_iter()
        .filter(|t| {
            t.authorized_amount == order.original_order_amount
                && t.currency == order.purchase_currency
                && now_ms() - t.updated_at > grace
        })
        .collect();
    let [claimed] = candidates.as_slice() else {
        return Ok(None);
    };
    let _lock = gw.lock_payment(claimed.id).await;
    let mut tx = gw.db.begin_write().await?;
    let mut t = gw.db.lock_transaction(&mut tx, claimed.id).await?;
    if t.state != TxState::Placing {
        return Ok(Some(t));
    }
    crate::checkout::record_placed(
        gw,
        &mut tx,
        &mut t,
        &order.order_id,
        order.fraud_status,
        "webhook",
        "; adopted from a webhook: the authorize that placed it never recorded it",
    )
    .await?;
    tx.commit().await?;
    tracing::warn!(order = %t.order_reference, klarna_order = %order.order_id, "an order placed by an authorize that died was recorded from its webhook");
    Ok(Some(t))
}

/// How long a webhook is accepted after it occurred (Klarna retries for ~21 hours).
pub const DEFAULT_HORIZON: Duration = Duration::from_secs(24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(id: &str, secret: &str) -> SigningKey {
        SigningKey {
            id: id.into(),
            secret: secret.into(),
            revoked: false,
        }
    }

    fn sign(secret: &str, body: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    #[test]
    fn signatures_name_their_key_and_rotation_keeps_both_until_revoked() {
        let body = br#"{"a":1}"#;
        let mut keys = vec![key("old", "s1"), key("new", "s2")];
        assert_eq!(verify(&keys, "old", &sign("s1", body), body), Ok(()));
        assert_eq!(verify(&keys, "new", &sign("s2", body), body), Ok(()));
        assert_eq!(
            verify(&keys, "new", &sign("s1", body), body),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verify(&keys, "nope", &sign("s1", body), body),
            Err(Rejection::UnknownKey)
        );
        keys[0].revoked = true;
        assert_eq!(
            verify(&keys, "old", &sign("s1", body), body),
            Err(Rejection::RevokedKey)
        );
        let mut tampered = body.to_vec();
        tampered[2] ^= 1;
        assert_eq!(
            verify(&keys, "new", &sign("s2", body), &tampered),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn signature_headers_are_64_hex_digits() {
        assert!(parse_signature(&"ab".repeat(32)).is_ok());
        assert!(parse_signature(&format!("sha256={}", "AB".repeat(32))).is_ok());
        assert_eq!(parse_signature("abc"), Err(Rejection::MalformedSignature));
        assert_eq!(
            parse_signature(&"zz".repeat(32)),
            Err(Rejection::MalformedSignature)
        );
    }

    #[test]
    fn events_are_checked_against_their_shape() {
        let ok = br#"{"metadata":{"event_type":"payment.request.state-change.completed","event_id":"e-1","occurred_at":"2026-11-26T04:00:00Z"},"payload":{"order_id":"o-1"}}"#;
        let e = parse_event(ok).expect("valid");
        assert_eq!(
            (e.kind, e.order_id.as_str()),
            (Kind::CaptureCompleted, "o-1")
        );
        for (body, want) in [
            (&br#"{"metadata":{}}"#[..], "payload must be an object"),
            (br#"{"metadata":{"event_type":"nope","event_id":"e","occurred_at":"2026-11-26T04:00:00Z"},"payload":{"order_id":"o"}}"#, "not an event the gateway knows"),
            (br#"{"metadata":{"event_type":"payment.request.state-change.completed","event_id":"e 1","occurred_at":"2026-11-26T04:00:00Z"},"payload":{"order_id":"o"}}"#, "event_id"),
            (br#"{"metadata":{"event_type":"payment.request.state-change.completed","event_id":"e","occurred_at":"yesterday"},"payload":{"order_id":"o"}}"#, "RFC 3339"),
            (br#"{"metadata":{"event_type":"payment.request.state-change.completed","event_id":"e","occurred_at":"2026-11-26T04:00:00Z"},"payload":{}}"#, "payload.order_id is required"),
        ] {
            match parse_event(body) {
                Err(Rejection::WrongShape(m)) => assert!(m.contains(want), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            parse_event(b"{nope"),
            Err(Rejection::MalformedJson(_))
        ));
    }

    proptest! {
        // 20 000 cases a run; `WEBHOOK_FUZZ_CASES=1000000` for a long one.
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("WEBHOOK_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000)
        ))]

        /// Arbitrary bytes never make the parsers panic, and what they accept is well-formed.
        #[test]
        fn parsers_survive_arbitrary_input(bytes in proptest::collection::vec(any::<u8>(), 0..512), text in ".{0,80}") {
            if let Ok(e) = parse_event(&bytes) {
                prop_assert!(id_like(&e.event_id) && id_like(&e.order_id));
            }
            let _ = parse_classic(&bytes);
            let _ = parse_authorization_callback(&bytes);
            if let Ok(sig) = parse_signature(&text) {
                prop_assert_eq!(sig.len(), 32);
            }
            let _ = verify(&[key("k", "s")], &text, &[0; 32], &bytes);
        }

        /// Near-valid events: every field mutated, still no panic.
        #[test]
        fn parsers_survive_mutated_events(event_type in "[a-z._-]{0,40}", id in ".{0,20}", at in ".{0,30}", order in ".{0,20}") {
            let body = json!({"metadata": {"event_type": event_type, "event_id": id, "occurred_at": at}, "payload": {"order_id": order}}).to_string();
            let _ = parse_event(body.as_bytes());
        }
    }
}
