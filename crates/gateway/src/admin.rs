//! The admin API, for Odoo's capture/void/refund buttons and for operators: bearer token
//! from the secret store, compared in constant time; 401 without it. POSTs honour an
//! `Idempotency-Key` header: the same key gets the first answer and the work is not done
//! twice.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use klarna_types::odoo_signature::{self, sign_admin};
use serde_json::{Value, json};

use crate::db::now_ms;
use crate::error::{ApiJson, GatewayError};
use crate::manage::{self, Command};
use crate::secrets::{ADMIN_TOKEN, ODOO_SHARED_SECRET};
use crate::state::Gateway;
use crate::store::{OpState, hash_json};
use crate::{reconcile, signing_keys};

pub fn routes() -> Router<Arc<Gateway>> {
    Router::new()
        .route("/admin/status", get(status))
        .route("/admin/payments/{key}", get(payment))
        .route(
            "/admin/payments/{key}/captures",
            operation("captures", |b| with_kind(b, "capture")),
        )
        .route(
            "/admin/payments/{key}/refunds",
            operation("refunds", |b| with_kind(b, "refund")),
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
            .ok_or(GatewayError::Unauthorized)?;
        // No token configured means no admin API, never an open one.
        let expected = gw
            .secrets
            .get(ADMIN_TOKEN)
            .ok_or(GatewayError::Unauthorized)?;
        if !expected.is_empty() && odoo_signature::verify(&expected, given) {
            Ok(Self)
        } else {
            tracing::warn!(security = true, "admin API: wrong token");
            Err(GatewayError::Unauthorized)
        }
    }
}

/// Marks a request whose signature by Odoo's shared secret was checked.
#[derive(Debug, Clone, Copy)]
pub struct OdooSigned;

/// How far an Odoo-signed request's timestamp may be from our clock.
const SIGNATURE_WINDOW_SECS: i64 = 300;

/// The admin API's second way in: a request signed by the Odoo addon. Its body is read
/// (size-limited) to check the signature, then handed on unchanged; a wrong or stale
/// signature is refused here, before any handler runs.
pub async fn odoo_signed(
    State(gw): State<Arc<Gateway>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(signature) = request
        .headers()
        .get("x-klarna-gateway-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return next.run(request).await;
    };
    let refused = || {
        tracing::warn!(security = true, "admin API: a bad Odoo signature");
        GatewayError::Unauthorized.into_response()
    };
    let Some(timestamp) = request
        .headers()
        .get("x-klarna-gateway-timestamp")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
    else {
        return refused();
    };
    if (now_ms() / 1000 - timestamp).abs() > SIGNATURE_WINDOW_SECS {
        return refused();
    }
    let Some(secret) = gw.secrets.get(ODOO_SHARED_SECRET) else {
        return refused();
    };
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 256 * 1024).await else {
        return refused();
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let expected = sign_admin(&secret, timestamp, parts.method.as_str(), &path, &bytes);
    if expected.is_empty() || !odoo_signature::verify(&expected, signature.trim()) {
        return refused();
    }
    parts.extensions.insert(OdooSigned);
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    (status, Json(value.clone())).into_response()
}

/// Runs `work` once per `Idempotency-Key`; a repeat gets the first answer.
async fn once<F, Fut>(
    gw: &Gateway,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    body: &Bytes,
    work: F,
) -> Response
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(StatusCode, Value), GatewayError>>,
{
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request_hash = hash_json(&json!([
        method.as_str(),
        path,
        String::from_utf8_lossy(body)
    ]));
    if let Some(key) = &key {
        match gw.db.stored_answer(key).await {
            Ok(Some(stored)) if stored.request_hash == request_hash => {
                let value: Value = serde_json::from_str(&stored.response).unwrap_or(Value::Null);
                return json_response(
                    StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK),
                    &value,
                );
            }
            Ok(Some(_)) => {
                return GatewayError::invalid(
                    "Idempotency-Key",
                    "was used before for a different request",
                )
                .into_response();
            }
            Ok(None) => {}
            Err(e) => return e.into_response(),
        }
    }
    let (status, value) = match work().await {
        Ok(done) => done,
        // The one error mapping; a replay gets this very answer, `field` included.
        Err(e) => {
            let (status, body) = e.parts();
            (status, serde_json::to_value(body).unwrap_or(Value::Null))
        }
    };
    if let Some(key) = key
        && !status.is_server_error()
        && let Err(e) = gw
            .db
            .store_answer(&key, &request_hash, status.as_u16(), &value.to_string())
            .await
    {
        tracing::error!("storing the idempotent answer: {e}");
    }
    json_response(status, &value)
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, GatewayError> {
    let text = if body.is_empty() {
        &b"{}"[..]
    } else {
        &body[..]
    };
    serde_json::from_slice(text).map_err(|e| GatewayError::invalid("body", e.to_string()))
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
    once(&gw, &headers, &Method::POST, &path, &body, || async move {
        let command = make(&input)?;
        let outcome = manage::run(&gw2, &key, command, "admin").await?;
        let status = match outcome.operation.state {
            OpState::Pending => StatusCode::ACCEPTED,
            _ => StatusCode::OK,
        };
        Ok((
            status,
            serde_json::to_value(&outcome).unwrap_or(Value::Null),
        ))
    })
    .await
}

fn with_kind(body: &Bytes, kind: &str) -> Result<Command, GatewayError> {
    let mut value: Value = parse(body)?;
    if let Some(map) = value.as_object_mut() {
        map.insert("operation".into(), json!(kind));
    } else {
        return Err(GatewayError::invalid("body", "must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| GatewayError::invalid("body", e.to_string()))
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
