//! The admin API, for Odoo's capture/void/refund buttons and for operators: bearer token
//! from the secret store, compared in constant time; 401 without it. POSTs honour an
//! `Idempotency-Key` header: the same key gets the first answer and the work is not done
//! twice.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use klarna_types::odoo_signature::{self, AdminCall, sign_admin};
use serde_json::{Value, json};

use crate::db::now_ms;
use crate::error::{ApiJson, GatewayError};
use crate::frontdoor::{ClientIp, Door};
use crate::manage::{self, Command};
use crate::secrets::{ADMIN_TOKEN, ODOO_SHARED_SECRET};
use crate::state::Gateway;
use crate::store::idempotency::Claim;
use crate::store::{OpState, hash_json};
use crate::{reconcile, signing_keys};

pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/admin/status", get(status))
        .route("/admin/doctor", get(doctor))
        .route("/admin/payments/{key}", get(payment))
        .route(
            "/admin/payments/{key}/captures",
            operation("captures", |b| with_kind(b, "capture")),
        )
        .route(
            "/admin/payments/{key}/refunds",
            operation("refunds", refund),
        )
        .route(
            "/admin/payments/{key}/cancel",
            operation("cancel", |_| Ok(Command::Cancel)),
        )
        .route(
            "/admin/payments/{key}/release",
            operation("release", |_| Ok(Command::Release)),
        )
        .route(
            "/admin/payments/{key}/extend",
            operation("extend", |_| Ok(Command::Extend)),
        )
        .route("/admin/review", get(review))
        .route("/admin/jobs/{id}", get(job))
        .route("/admin/jobs/{id}/replay", post(replay))
        .route("/admin/reconcile", post(run_reconcile))
        .route(
            "/admin/webhook-keys",
            get(webhook_keys).post(add_webhook_key),
        )
        .route("/admin/webhook-keys/{id}/revoke", post(revoke_webhook_key))
        .route("/admin/webhook-events/{id}", get(webhook_event))
}

/// A request carrying the admin token.
pub struct Admin;

impl FromRequestParts<Arc<Gateway>> for Admin {
    type Rejection = GatewayError;

    async fn from_request_parts(
        parts: &mut Parts,
        gw: &Arc<Gateway>,
    ) -> Result<Self, Self::Rejection> {
        // Odoo's addon signs its calls with the shared secret instead (see `odoo_signed`).
        if parts.extensions.get::<OdooSigned>().is_some() {
            return Ok(Self);
        }
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(GatewayError::Unauthorized)
            .inspect_err(|_| {
                gw.frontdoor.reject(
                    Door::Admin,
                    client_ip(&parts.extensions),
                    "admin_token_missing",
                    None,
                );
            })?;
        // No token configured means no admin API, never an open one.
        let expected = gw
            .secrets
            .get(ADMIN_TOKEN)
            .ok_or(GatewayError::Unauthorized)?;
        if !expected.is_empty() && odoo_signature::verify(&expected, given) {
            Ok(Self)
        } else {
            tracing::warn!(security = true, "admin API: wrong token");
            gw.frontdoor.reject(
                Door::Admin,
                client_ip(&parts.extensions),
                "admin_token",
                None,
            );
            Err(GatewayError::Unauthorized)
        }
    }
}

/// The caller's address as the admin door saw it.
fn client_ip(extensions: &axum::http::Extensions) -> std::net::IpAddr {
    extensions
        .get::<ClientIp>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0)
}

/// Marks a request whose signature by Odoo's shared secret was checked.
#[derive(Debug, Clone, Copy)]
pub struct OdooSigned;

/// The admin API's second way in: a request signed by the Odoo addon. Its body is read
/// (size-limited) to check the signature, then handed on unchanged; a wrong or stale
/// signature is refused here, before any handler runs.
pub async fn odoo_signed(
    State(gw): State<Arc<Gateway>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let ip = client_ip(request.extensions());
    let refused = |reason: &'static str| {
        tracing::warn!(
            security = true,
            "admin API: Odoo signature refused: {reason}"
        );
        gw.frontdoor
            .reject(Door::Admin, ip, "admin_signature", None);
        GatewayError::SignatureRefused(reason).into_response()
    };
    let signed = match parse_odoo_signature(request.headers(), now_ms() / 1000) {
        Ok(Some(signed)) => signed,
        Ok(None) => return next.run(request).await,
        Err(reason) => return refused(reason),
    };
    let Some(secret) = gw.secrets.get(ODOO_SHARED_SECRET) else {
        return refused("the gateway has no Odoo shared secret");
    };
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 256 * 1024).await else {
        return refused("the body could not be read (larger than 256 KiB?)");
    };
    if let Err(reason) = signed.check(&secret, &parts.method, &parts.uri, &bytes) {
        return refused(reason);
    }
    // Only a request signed right spends its nonce: nobody else can fill the table.
    match gw.db.accept_nonce(&signed.nonce, NONCE_KEEP_MS).await {
        Ok(true) => {}
        Ok(false) => return refused("X-Klarna-Gateway-Nonce was used before: a replayed request"),
        Err(e) => return e.into_response(),
    }
    parts.extensions.insert(OdooSigned);
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// What a call signed by the Odoo addon claims in its headers, checked as far as can be
/// before its body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OdooSignature {
    /// `X-Klarna-Gateway-Signature`, as sent.
    pub signature: String,
    /// `X-Klarna-Gateway-Timestamp`: unix seconds within the window of the clock given.
    pub timestamp: i64,
    /// `X-Klarna-Gateway-Nonce`: 16 to 64 letters, digits and dashes.
    pub nonce: String,
    /// `Idempotency-Key`; empty when the call has none.
    pub idempotency_key: String,
}

/// The Odoo signature an admin request's headers carry, judged against `now_s` (unix
/// seconds): `Ok(None)` when there is no `X-Klarna-Gateway-Signature` (the bearer token is
/// then the way in), the reason for the refusal when the timestamp or nonce is wrong. A
/// pure function of the headers and the clock, so that it can be fuzzed as the route runs it.
pub fn parse_odoo_signature(
    headers: &HeaderMap,
    now_s: i64,
) -> Result<Option<OdooSignature>, &'static str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(signature) = header("x-klarna-gateway-signature") else {
        return Ok(None);
    };
    let Some(timestamp) =
        header("x-klarna-gateway-timestamp").and_then(|v| v.trim().parse::<i64>().ok())
    else {
        return Err("X-Klarna-Gateway-Timestamp is missing or not a whole number of seconds");
    };
    if !odoo_signature::fresh(now_s, timestamp) {
        return Err("X-Klarna-Gateway-Timestamp is more than 300 s from the gateway's clock");
    }
    let Some(nonce) = header("x-klarna-gateway-nonce").filter(|n| valid_nonce(n)) else {
        return Err("X-Klarna-Gateway-Nonce is missing or not 16 to 64 letters, digits and dashes");
    };
    Ok(Some(OdooSignature {
        signature: signature.to_owned(),
        timestamp,
        nonce: nonce.to_owned(),
        idempotency_key: header("idempotency-key").unwrap_or_default().to_owned(),
    }))
}

impl OdooSignature {
    /// Whether the signature is the shared secret's over this call: its timestamp, nonce,
    /// method, path with query, idempotency key and body (compared in constant time).
    pub fn check(
        &self,
        secret: &str,
        method: &Method,
        uri: &Uri,
        body: &[u8],
    ) -> Result<(), &'static str> {
        let path = uri
            .path_and_query()
            .map_or_else(|| uri.path(), |p| p.as_str());
        let call = AdminCall {
            timestamp: self.timestamp,
            nonce: &self.nonce,
            method: method.as_str(),
            path,
            idempotency_key: &self.idempotency_key,
            body,
        };
        let expected = sign_admin(secret, &call);
        if expected.is_empty() || !odoo_signature::verify(&expected, self.signature.trim()) {
            return Err("X-Klarna-Gateway-Signature does not match the request");
        }
        Ok(())
    }
}

/// How long a nonce is remembered: longer than the span of timestamps the window lets
/// through (twice 300 s), and a minute.
const NONCE_KEEP_MS: i64 = 11 * 60 * 1000;

/// A nonce is a UUID or the like: short, and nothing that could change how the signed
/// message splits.
fn valid_nonce(nonce: &str) -> bool {
    (16..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn json_response(status: StatusCode, value: Value) -> Response {
    (status, Json(value)).into_response()
}

/// How long a request waits for another one in flight with the same `Idempotency-Key`
/// before it answers `409 in_progress`.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(15);
/// A claim this old, still without an answer, belongs to a request that died with its
/// gateway (killed mid-request): longer than any one request may take.
const CLAIM_LEASE_MS: i64 = 120_000;

/// An answer: status and JSON body.
type Answer = (StatusCode, Value);

fn error_answer(e: &GatewayError) -> Answer {
    // The one error mapping; a replay gets this very answer, `field` included.
    let (status, body) = e.parts();
    (status, serde_json::to_value(body).unwrap_or(Value::Null))
}

/// What an operation's request answers: 202 while Klarna has not confirmed it.
fn operation_answer(outcome: Result<manage::OpOutcome, GatewayError>) -> Answer {
    match outcome {
        Ok(outcome) => {
            let status = match outcome.operation.state {
                OpState::Pending => StatusCode::ACCEPTED,
                _ => StatusCode::OK,
            };
            (
                status,
                serde_json::to_value(&outcome).unwrap_or(Value::Null),
            )
        }
        Err(e) => error_answer(&e),
    }
}

/// Runs an operation once per `Idempotency-Key`. The key is claimed before any work
/// ([`crate::store::idempotency`]): a concurrent request with it waits for the first
/// one's answer (or, after [`IN_FLIGHT_WAIT`], gets `409 in_progress`); a repeat gets the
/// first answer; a repeat after the first request died without one is answered from the
/// operation it recorded, which the worker finishes — the work is never started twice.
async fn once<F, Fut>(
    gw: &Gateway,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    body: &Bytes,
    work: F,
) -> Response
where
    F: FnOnce(Option<String>) -> Fut,
    Fut: Future<Output = Result<manage::OpOutcome, GatewayError>> + Send + 'static,
{
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(key) = key else {
        let work = work(None);
        let (status, value) = detached(async move { operation_answer(work.await) }).await;
        return json_response(status, value);
    };
    let request_hash = hash_json(&json!([
        method.as_str(),
        path,
        String::from_utf8_lossy(body)
    ]));
    let (status, value) = match claim(gw, &key, &request_hash).await {
        Ok(Claimed::Mine) => {
            let db = gw.db.clone();
            let work = work(Some(key.clone()));
            detached(async move {
                let (status, value) = operation_answer(work.await);
                let kept = if status.is_server_error() {
                    db.release_request(&key).await
                } else {
                    db.answer_request(&key, status.as_u16(), &value.to_string())
                        .await
                };
                if let Err(e) = kept {
                    tracing::error!("recording the answer to an Idempotency-Key: {e}");
                }
                (status, value)
            })
            .await
        }
        Ok(Claimed::Answered(answer)) => answer,
        Err(e) => error_answer(&e),
    };
    json_response(status, value)
}

/// Runs a request's work in a task of its own, so that a caller hanging up does not stop
/// it half-way (between Klarna's answer and our record of it).
async fn detached(work: impl Future<Output = Answer> + Send + 'static) -> Answer {
    match tokio::spawn(work).await {
        Ok(answer) => answer,
        Err(e) => error_answer(&GatewayError::Internal(format!(
            "an admin request's task: {e}"
        ))),
    }
}

enum Claimed {
    /// This request does the work.
    Mine,
    /// Another request with the key did or does it: its answer.
    Answered(Answer),
}

/// Claims `key`, or waits for the answer of the request that holds it.
async fn claim(gw: &Gateway, key: &str, request_hash: &str) -> Result<Claimed, GatewayError> {
    let deadline = tokio::time::Instant::now() + IN_FLIGHT_WAIT;
    loop {
        let first = match gw.db.claim_request(key, request_hash).await? {
            Claim::Mine => return Ok(Claimed::Mine),
            Claim::Taken(first) => first,
        };
        if first.request_hash != request_hash {
            return Err(GatewayError::invalid(
                "Idempotency-Key",
                "was used before for a different request",
            ));
        }
        if let Some((status, response)) = &first.answer {
            let value: Value = serde_json::from_str(response)
                .map_err(|e| GatewayError::Corrupt(format!("a stored answer: {e}")))?;
            let status = StatusCode::from_u16(*status)
                .map_err(|e| GatewayError::Corrupt(format!("a stored answer's status: {e}")))?;
            return Ok(Claimed::Answered((status, value)));
        }
        let ended = first.claimed_at == 0 || now_ms() - first.claimed_at > CLAIM_LEASE_MS;
        let waited = tokio::time::Instant::now() >= deadline;
        match first.operation_id {
            // The operation is recorded: money may have moved, and the worker finishes
            // what its request could not. Its state is the answer.
            Some(op) if ended || waited => {
                let answer = operation_answer(manage::outcome(gw, op).await);
                if answer.0 != StatusCode::ACCEPTED && !answer.0.is_server_error() {
                    gw.db
                        .answer_request(key, answer.0.as_u16(), &answer.1.to_string())
                        .await?;
                }
                return Ok(Claimed::Answered(answer));
            }
            // Its request died before it recorded anything: nothing happened, start over.
            None if ended => {
                if gw.db.take_over_request(key, &first).await? {
                    return Ok(Claimed::Mine);
                }
                continue;
            }
            _ if waited => return Err(GatewayError::InProgress),
            _ => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, GatewayError> {
    let text = if body.is_empty() {
        &b"{}"[..]
    } else {
        &body[..]
    };
    serde_json::from_slice(text)
        .map_err(|e| GatewayError::invalid("body", crate::json_error::describe(&e)))
}

/// `POST /admin/payments/{key}/<path>`: the body becomes a [`Command`] through `make`.
fn operation(
    path: &'static str,
    make: fn(&Bytes) -> Result<Command, GatewayError>,
) -> MethodRouter<Arc<Gateway>> {
    post(
        move |State(gw): State<Arc<Gateway>>,
              _a: Admin,
              Path(key): Path<String>,
              headers: HeaderMap,
              body: Bytes| operate(gw, headers, key, body, path, make),
    )
}

async fn operate(
    gw: Arc<Gateway>,
    headers: HeaderMap,
    key: String,
    body: Bytes,
    path: &str,
    make: fn(&Bytes) -> Result<Command, GatewayError>,
) -> Response {
    let path = format!("/admin/payments/{key}/{path}");
    let gw2 = gw.clone();
    let input = body.clone();
    once(
        &gw,
        &headers,
        &Method::POST,
        &path,
        &body,
        |claim| async move {
            let command = make(&input)?;
            let expected: manage::Expected = parse(&input)?;
            manage::run(&gw2, &key, command, expected, "admin", claim.as_deref()).await
        },
    )
    .await
}

/// A refund's body. A `capture_operation_id` that is not a whole number names no capture:
/// refused like one that names another payment's (422, the field named), not as a
/// malformed body.
fn refund(body: &Bytes) -> Result<Command, GatewayError> {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body)
        && let Some(id) = map.get("capture_operation_id")
        && !(id.is_null() || id.is_i64())
    {
        return Err(GatewayError::UnknownCaptureOperation(format!(
            "{id} is not an operation id (a whole number)"
        )));
    }
    with_kind(body, "refund")
}

fn with_kind(body: &Bytes, kind: &str) -> Result<Command, GatewayError> {
    let mut value: Value = parse(body)?;
    if let Some(map) = value.as_object_mut() {
        map.insert("operation".into(), json!(kind));
    } else {
        return Err(GatewayError::invalid("body", "must be a JSON object"));
    }
    serde_json::from_value(value)
        .map_err(|e| GatewayError::invalid("body", crate::json_error::describe(&e)))
}

async fn payment(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
    Path(key): Path<String>,
) -> Result<Json<manage::PaymentView>, GatewayError> {
    manage::view(&gw, &key).await.map(Json)
}

async fn review(State(gw): State<Arc<Gateway>>, _a: Admin) -> Result<Json<Value>, GatewayError> {
    Ok(Json(json!({"jobs": gw.db.jobs_in("review").await?})))
}

async fn job(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
    Path(id): Path<i64>,
) -> Result<Json<Value>, GatewayError> {
    let job = gw
        .db
        .job(id)
        .await?
        .ok_or_else(|| GatewayError::not_found(format!("job {id}")))?;
    Ok(Json(json!(job)))
}

async fn replay(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
    Path(id): Path<i64>,
) -> Result<Json<Value>, GatewayError> {
    if gw.db.replay_job(id).await? {
        gw.wake_worker();
        Ok(Json(json!({"replayed": id})))
    } else {
        Err(GatewayError::Refused(format!(
            "job {id} is not in the review queue"
        )))
    }
}

async fn run_reconcile(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
) -> Result<Json<reconcile::Report>, GatewayError> {
    reconcile::run(&gw).await.map(Json)
}

/// For Odoo's smart button: is the gateway there, how big is the review queue, when did
/// reconcile last run.
async fn status(State(gw): State<Arc<Gateway>>, _a: Admin) -> Result<Json<Value>, GatewayError> {
    let q = gw.db.queue_stats().await?;
    Ok(Json(json!({
        "reachable": true,
        "review_queue": q.review,
        "jobs_waiting": q.waiting,
        "last_reconcile": gw.last_reconcile(),
        "version": env!("CARGO_PKG_VERSION"),
    })))
}

/// `klarna-gateway doctor`'s report, from this running gateway (the addon's "Check
/// gateway" button shows it).
async fn doctor(State(gw): State<Arc<Gateway>>, _a: Admin) -> Json<crate::doctor::Report> {
    Json(crate::doctor::run_in(&gw).await)
}

async fn webhook_keys(State(gw): State<Arc<Gateway>>, _a: Admin) -> Json<Value> {
    Json(json!({"keys": signing_keys::list(&gw.secrets)}))
}

#[derive(serde::Deserialize)]
struct NewKey {
    id: String,
    secret: zeroize::Zeroizing<String>,
}

async fn add_webhook_key(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
    ApiJson(key): ApiJson<NewKey>,
) -> Result<Json<Value>, GatewayError> {
    signing_keys::add(&gw.secrets, &key.id, &key.secret).await?;
    Ok(Json(json!({"keys": signing_keys::list(&gw.secrets)})))
}

async fn revoke_webhook_key(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    signing_keys::revoke(&gw.secrets, &id).await?;
    Ok(Json(json!({"keys": signing_keys::list(&gw.secrets)})))
}

async fn webhook_event(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, GatewayError> {
    let event = gw
        .db
        .event(&id)
        .await?
        .ok_or_else(|| GatewayError::not_found(format!("webhook event {id}")))?;
    Ok(Json(json!(event)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_short_and_plain() {
        assert!(valid_nonce("3f2b8c1e-0d4a-4c8e-9a61-2d7f6b9f0a01"));
        assert!(valid_nonce("3f2b8c1e0d4a4c8e9a612d7f6b9f0a01"));
        for bad in [
            "",
            "short",
            "has.a.dot-0123456789",
            "new\nline-0123456789",
            &"a".repeat(65),
        ] {
            assert!(!valid_nonce(bad), "{bad:?}");
        }
    }

    const NOW: i64 = 1_700_000_000;
    const NONCE: &str = "3f2b8c1e-0d4a-4c8e-9a61-2d7f6b9f0a01";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, value.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn odoo_signature_headers_are_judged_before_the_body() {
        // No signature: not an Odoo-signed call (the bearer token decides).
        assert_eq!(parse_odoo_signature(&headers(&[]), NOW), Ok(None));
        let ts = NOW.to_string();
        let signed = parse_odoo_signature(
            &headers(&[
                ("x-klarna-gateway-signature", "ab"),
                ("x-klarna-gateway-timestamp", &format!(" {ts} ")),
                ("x-klarna-gateway-nonce", NONCE),
                ("idempotency-key", "odoo-capture-P-S00042"),
            ]),
            NOW + 300,
        )
        .expect("accepted")
        .expect("signed");
        assert_eq!(
            (
                signed.timestamp,
                signed.nonce.as_str(),
                signed.idempotency_key.as_str()
            ),
            (NOW, NONCE, "odoo-capture-P-S00042")
        );
        let refused = |pairs: &[(&'static str, &str)]| {
            parse_odoo_signature(&headers(pairs), NOW).expect_err("refused")
        };
        let sig = ("x-klarna-gateway-signature", "ab");
        let nonce = ("x-klarna-gateway-nonce", NONCE);
        assert!(refused(&[sig, nonce]).contains("Timestamp is missing"));
        assert!(
            refused(&[sig, nonce, ("x-klarna-gateway-timestamp", "1.5")]).contains("whole number")
        );
        let stale = (NOW - 301).to_string();
        assert!(refused(&[sig, nonce, ("x-klarna-gateway-timestamp", &stale)]).contains("300 s"));
        let extreme = i64::MIN.to_string();
        assert!(refused(&[sig, nonce, ("x-klarna-gateway-timestamp", &extreme)]).contains("300 s"));
        assert!(refused(&[sig, ("x-klarna-gateway-timestamp", &ts)]).contains("Nonce"));
        assert!(
            refused(&[
                sig,
                ("x-klarna-gateway-timestamp", &ts),
                ("x-klarna-gateway-nonce", "short")
            ])
            .contains("Nonce")
        );
    }

    #[test]
    fn an_odoo_signature_covers_method_path_query_key_and_body() {
        let uri: Uri = "/admin/payments/p1/captures?x=1".parse().expect("uri");
        let call = |signature: String, idempotency_key: &str| OdooSignature {
            signature,
            timestamp: NOW,
            nonce: NONCE.into(),
            idempotency_key: idempotency_key.into(),
        };
        let good = sign_admin(
            "secret",
            &AdminCall {
                timestamp: NOW,
                nonce: NONCE,
                method: "POST",
                path: "/admin/payments/p1/captures?x=1",
                idempotency_key: "k",
                body: b"{}",
            },
        );
        let signed = call(format!(" {good}\t"), "k");
        assert_eq!(signed.check("secret", &Method::POST, &uri, b"{}"), Ok(()));
        let mismatch = Err("X-Klarna-Gateway-Signature does not match the request");
        assert_eq!(signed.check("other", &Method::POST, &uri, b"{}"), mismatch);
        assert_eq!(signed.check("secret", &Method::PUT, &uri, b"{}"), mismatch);
        let no_query: Uri = "/admin/payments/p1/captures".parse().expect("uri");
        assert_eq!(
            signed.check("secret", &Method::POST, &no_query, b"{}"),
            mismatch
        );
        assert_eq!(
            signed.check("secret", &Method::POST, &uri, b"{ }"),
            mismatch
        );
        assert_eq!(
            call(good.clone(), "").check("secret", &Method::POST, &uri, b"{}"),
            mismatch
        );
        assert_eq!(
            call(good.to_uppercase(), "k").check("secret", &Method::POST, &uri, b"{}"),
            mismatch
        );
    }
}
