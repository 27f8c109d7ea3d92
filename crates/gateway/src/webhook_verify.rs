//! Verifying what Klarna sends, before anything else: pure functions of the bytes, the
//! headers' values, the keys and the time (the clock is an argument, so tests pin it).
//!
//! Signed webhooks: the body must be JSON and carry `Klarna-Signing-Key-Id` and
//! `Klarna-Signature` — hex HMAC-SHA256 of the exact bytes with the named key (several keys
//! may be active, for rotation; revoked and unknown keys are refused; the comparison is
//! constant-time). Then the event is checked against its type's shape and its time (older
//! than the horizon, 24 h by default, or more than 5 minutes ahead is refused).
//!
//! Classic callbacks carry no signature (their URL's secret token lets them in, checked by
//! [`crate::webhook`]); their bodies are parsed here into the same [`Event`].

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Klarna's bodies are small; 64 KiB is generous.
pub const BODY_LIMIT: usize = 64 * 1024;
/// How far ahead of our clock an event may be dated.
const FUTURE_TOLERANCE_MS: i64 = 5 * 60 * 1000;

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

/// Why a webhook was refused. Nothing is stored or changed for any of these; each becomes
/// an HTTP answer through [`crate::error::GatewayError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the body is larger than {} KiB", BODY_LIMIT / 1024)]
    TooLarge,
    #[error("Content-Type must be application/json")]
    ContentType,
    #[error("the {0} header is required")]
    MissingHeader(&'static str),
    #[error("Klarna-Signature must be 64 hex digits")]
    MalformedSignature,
    #[error("unknown Klarna-Signing-Key-Id")]
    UnknownKey,
    #[error("the signing key was revoked")]
    RevokedKey,
    #[error("the signature does not match the body")]
    BadSignature,
    #[error("the body is not JSON: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    WrongShape(String),
    #[error("the event is older than the accepted horizon")]
    Stale,
    #[error("the event is dated in the future")]
    Future,
    #[error("no such route")]
    BadToken,
}

impl Rejection {
    /// The reason in the security log and the metrics.
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
}

/// A webhook signing key (stored sealed by [`crate::signing_keys`]).
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

/// An id we accept from Klarna or an operator: 1–128 letters, digits or `-_.:`.
pub fn id_like(s: &str) -> bool {
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
    serde_json::from_slice(body)
        .map_err(|e| Rejection::MalformedJson(crate::json_error::describe(&e)))
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
        Rejection::WrongShape("metadata.event_type is not an event the gateway knows".into())
    })?;
    if matches!(
        kind,
        Kind::FraudAccepted
            | Kind::FraudRejected
            | Kind::FraudStopped
            | Kind::AuthorizationCallback
    ) {
        return Err(Rejection::WrongShape(
            "metadata.event_type is one that comes as a classic notification, not a signed webhook"
                .into(),
        ));
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
pub fn parse_classic(body: &[u8], now_ms: i64) -> Result<Event, Rejection> {
    let v = json(body)?;
    let event_type = field(&v, "event_type")?;
    let kind = kind_of(event_type)
        .filter(|k| *k != Kind::AuthorizationCallback)
        .ok_or_else(|| {
            Rejection::WrongShape("event_type is not a notification the gateway knows".into())
        })?;
    let order_id = id_field(&v, "order_id")?;
    let occurred_at = match v.get("occurred_at").and_then(Value::as_str) {
        Some(t) => timestamp(t, "occurred_at")?,
        None => now_ms,
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
pub fn parse_authorization_callback(body: &[u8], now_ms: i64) -> Result<Event, Rejection> {
    let v = json(body)?;
    id_field(&v, "authorization_token")?;
    let session_id = id_field(&v, "session_id")?;
    Ok(Event {
        event_id: id_of_bytes("authcb", body),
        event_type: AUTHORIZATION_CALLBACK.to_owned(),
        kind: Kind::AuthorizationCallback,
        occurred_at: now_ms,
        order_id: session_id.to_owned(),
    })
}

/// Whether an event's time is within the horizon behind `now_ms` and at most five minutes
/// ahead of it.
pub fn within_horizon(occurred_at: i64, now_ms: i64, horizon: Duration) -> Result<(), Rejection> {
    let horizon = i64::try_from(horizon.as_millis()).unwrap_or(i64::MAX);
    if occurred_at < now_ms.saturating_sub(horizon) {
        return Err(Rejection::Stale);
    }
    if occurred_at > now_ms.saturating_add(FUTURE_TOLERANCE_MS) {
        return Err(Rejection::Future);
    }
    Ok(())
}

/// Whether a `Content-Type` value is JSON (parameters such as `charset` allowed).
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// The headers a signed webhook is judged by, as their values.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignedHeaders<'a> {
    pub content_type: Option<&'a str>,
    pub key_id: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// A signed webhook, checked in full: content type, key, signature, shape, time. The
/// refusal carries the key id it claimed (for the security log), once one was named.
pub fn check_signed(
    headers: SignedHeaders<'_>,
    body: &[u8],
    keys: &[SigningKey],
    now_ms: i64,
    horizon: Duration,
) -> Result<(Event, String), (Rejection, Option<String>)> {
    if !is_json(headers.content_type) {
        return Err((Rejection::ContentType, None));
    }
    let key_id = headers
        .key_id
        .filter(|v| !v.is_empty())
        .ok_or((Rejection::MissingHeader("Klarna-Signing-Key-Id"), None))?
        .to_owned();
    // Past this point a refusal names the key it claimed.
    let keyed = |r: Rejection| (r, Some(key_id.clone()));
    let signature = headers
        .signature
        .ok_or(Rejection::MissingHeader("Klarna-Signature"))
        .map_err(keyed)?;
    let signature = parse_signature(signature).map_err(keyed)?;
    verify(keys, &key_id, &signature, body).map_err(keyed)?;
    let event = parse_event(body).map_err(keyed)?;
    within_horizon(event.occurred_at, now_ms, horizon).map_err(keyed)?;
    Ok((event, key_id))
}

/// How long a webhook is accepted after it occurred (Klarna retries for ~21 hours).
pub const DEFAULT_HORIZON: Duration = Duration::from_secs(24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

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

    #[test]
    fn the_horizon_is_judged_against_the_clock_given() {
        let hour = 3_600_000;
        let now = 1_800_000_000_000;
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(within_horizon(now - 23 * hour, now, day), Ok(()));
        assert_eq!(
            within_horizon(now - 25 * hour, now, day),
            Err(Rejection::Stale)
        );
        assert_eq!(within_horizon(now + 4 * 60_000, now, day), Ok(()));
        assert_eq!(
            within_horizon(now + 6 * 60_000, now, day),
            Err(Rejection::Future)
        );
        // Extreme times neither overflow nor pass.
        assert_eq!(within_horizon(i64::MIN, now, day), Err(Rejection::Stale));
        assert_eq!(within_horizon(i64::MAX, now, day), Err(Rejection::Future));
    }

    #[test]
    fn a_signed_event_is_checked_in_order_and_names_its_key() {
        let body = br#"{"metadata":{"event_type":"payment.request.state-change.completed","event_id":"e-1","occurred_at":"2026-11-26T04:00:00Z"},"payload":{"order_id":"o-1"}}"#;
        let at = parse_event(body).expect("valid").occurred_at;
        let keys = [key("k1", "secret-one")];
        let sig = hex::encode(sign("secret-one", body));
        let headers = SignedHeaders {
            content_type: Some("application/json; charset=utf-8"),
            key_id: Some("k1"),
            signature: Some(&sig),
        };
        let day = Duration::from_secs(24 * 3600);
        let (event, key_id) = check_signed(headers, body, &keys, at, day).expect("accepted");
        assert_eq!((event.event_id.as_str(), key_id.as_str()), ("e-1", "k1"));
        let refused = |h: SignedHeaders<'_>, now: i64| check_signed(h, body, &keys, now, day).err();
        assert_eq!(
            refused(
                SignedHeaders {
                    content_type: Some("text/plain"),
                    ..headers
                },
                at
            ),
            Some((Rejection::ContentType, None))
        );
        assert_eq!(
            refused(
                SignedHeaders {
                    key_id: None,
                    ..headers
                },
                at
            ),
            Some((Rejection::MissingHeader("Klarna-Signing-Key-Id"), None))
        );
        assert_eq!(
            refused(
                SignedHeaders {
                    signature: None,
                    ..headers
                },
                at
            ),
            Some((
                Rejection::MissingHeader("Klarna-Signature"),
                Some("k1".into())
            ))
        );
        assert_eq!(
            refused(headers, at + 25 * 3_600_000),
            Some((Rejection::Stale, Some("k1".into())))
        );
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
            let _ = parse_classic(&bytes, 0);
            let _ = parse_authorization_callback(&bytes, 0);
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
