//! The admin API, for Odoo's capture/void/refund buttons and for operators: bearer token
//! from the secret store, compared in constant time; 401 without it. POSTs honour an
//! `Idempotency-Key` header: the same key gets the first answer and the work is not done
//! twice.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use klarna_types::contract::ApiError;
use klarna_types::klarna::UpdateShippingInfo;
use klarna_types::odoo_signature::{self, AdminCall, sign_admin};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::now_ms;
use crate::error::{ApiJson, GatewayError};
use crate::frontdoor::{ClientIp, Door};
use crate::manage::{self, Command};
use crate::openapi::{self, AdminDoor};
use crate::secrets::{ADMIN_TOKEN, ODOO_SHARED_SECRET};
use crate::state::Gateway;
use crate::store::idempotency::Claim;
use crate::store::jobs::StoredJob;
use crate::store::webhooks::StoredEvent;
use crate::store::{OpState, hash_json};
use crate::{reconcile, saved_klarna, signing_keys};

/// The largest admin request body: an order edit carries the order's records (some
/// hundred lines fit).
pub const BODY_LIMIT: usize = 1024 * 1024;

pub fn routes() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(doctor))
        .routes(routes!(payment))
        .routes(routes!(capture))
        .routes(routes!(refund))
        .routes(routes!(add_shipping_info))
        .routes(routes!(cancel))
        .routes(routes!(release))
        .routes(routes!(extend))
        .routes(routes!(update_authorization))
        .routes(routes!(review))
        .routes(routes!(job))
        .routes(routes!(replay))
        .routes(routes!(run_reconcile))
        .routes(routes!(webhook_keys, add_webhook_key))
        .routes(routes!(revoke_webhook_key))
        .routes(routes!(webhook_event))
        .routes(routes!(saved_token))
        .routes(routes!(charge_saved_token))
        .routes(routes!(cancel_saved_token))
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
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return refused("the body could not be read (larger than 1 MiB?)");
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
    let key = match idempotency_key(headers) {
        Ok(key) => key,
        Err(e) => {
            let (status, value) = error_answer(&e);
            return json_response(status, value);
        }
    };
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

/// The `Idempotency-Key` header: 1 to 255 printable ASCII characters. A malformed one is
/// refused rather than ignored: ignoring it would do the work without the protection the
/// caller asked for.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, GatewayError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if (1..=MAX_IDEMPOTENCY_KEY).contains(&key.len()) => Ok(Some(key.to_owned())),
        _ => Err(GatewayError::invalid(
            "Idempotency-Key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"),
        )),
    }
}

const MAX_IDEMPOTENCY_KEY: usize = 255;

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

/// `POST /admin/payments/{key}/captures`: one shipment, and what the caller expects.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CaptureBody {
    #[serde(flatten)]
    capture: manage::CaptureArgs,
    #[serde(flatten)]
    expected: manage::Expected,
}

/// `POST /admin/payments/{key}/refunds`: the refund, and what the caller expects.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefundBody {
    #[serde(flatten)]
    refund: manage::RefundArgs,
    #[serde(flatten)]
    expected: manage::Expected,
}

/// `POST /admin/payments/{key}/authorization`: the edited order, and what the caller
/// expects.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AuthorizationBody {
    #[serde(flatten)]
    edit: manage::EditArgs,
    #[serde(flatten)]
    expected: manage::Expected,
}

fn parse_capture(body: &Bytes) -> Result<(Command, manage::Expected), GatewayError> {
    let b: CaptureBody = parse(body)?;
    Ok((Command::Capture(b.capture), b.expected))
}

/// A refund's body. A `capture_operation_id` that is not a whole number names no capture:
/// refused like one that names another payment's (422, the field named), not as a
/// malformed body.
fn parse_refund(body: &Bytes) -> Result<(Command, manage::Expected), GatewayError> {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body)
        && let Some(id) = map.get("capture_operation_id")
        && !(id.is_null() || id.is_i64())
    {
        return Err(GatewayError::UnknownCaptureOperation(format!(
            "{id} is not an operation id (a whole number)"
        )));
    }
    let b: RefundBody = parse(body)?;
    Ok((Command::Refund(b.refund), b.expected))
}

/// The body of a cancel, a release or an extend: only what the caller expects.
fn whole_order(
    command: Command,
) -> impl Fn(&Bytes) -> Result<(Command, manage::Expected), GatewayError> {
    move |body| Ok((command.clone(), parse(body)?))
}

/// Captures part or all of what is authorized.
#[utoipa::path(
    post,
    path = "/admin/payments/{key}/captures",
    tag = "admin",
    params(PaymentKey, IdempotencyKey),
    request_body = CaptureBody,
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses(
        (status = 200, description = "Klarna captured it", body = manage::OpOutcome),
        (status = 202, description = "Recorded; Klarna has not confirmed it yet (the worker finishes it)", body = manage::OpOutcome),
        OperationErrors,
    )
)]
async fn capture(_a: Admin, op: Operation) -> Response {
    op.run("captures", parse_capture).await
}

/// Refunds part or all of what is captured.
#[utoipa::path(
    post,
    path = "/admin/payments/{key}/refunds",
    tag = "admin",
    params(PaymentKey, IdempotencyKey),
    request_body = RefundBody,
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses(
        (status = 200, description = "Klarna refunded it", body = manage::OpOutcome),
        (status = 202, description = "Recorded; Klarna has not confirmed it yet (the worker finishes it)", body = manage::OpOutcome),
        (status = 422, description = "`unknown_capture_operation`: `capture_operation_id` names no succeeded capture of this payment", body = ApiError),
        OperationErrors,
    )
)]
async fn refund(_a: Admin, op: Operation) -> Response {
    op.run("refunds", parse_refund).await
}

/// Adds shipping info to a capture after it was made: the tracking number a carrier gave
/// once the parcel left. Klarna shows it to the shopper and uses it in disputes.
#[utoipa::path(
    post,
    path = "/admin/payments/{key}/captures/{capture}/shipping-info",
    tag = "admin",
    params(
        PaymentKey,
        ("capture" = i64, Path, description = "The gateway's operation id of the capture (`operation.id` of its answer)"),
    ),
    request_body = UpdateShippingInfo,
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses(
        (status = 200, description = "Added (`added`), or added before and not sent again", body = manage::ShippingInfoAdded),
        (status = 400, description = "`invalid_request`: the body is malformed or breaks Klarna's limits (1 to 500 items; `shipping_company`, `tracking_number` at most 100 characters, `tracking_uri` 1024; `shipping_method` one of Klarna's); `field` names the first, nothing was sent", body = ApiError),
        (status = 404, description = "`payment_not_found`", body = ApiError),
        (status = 422, description = "`unknown_capture_operation`: `capture` is not a succeeded capture of this payment", body = ApiError),
        (status = 502, description = "`klarna_error`: Klarna answered with an error", body = ApiError),
        AdminDoor,
    )
)]
async fn add_shipping_info(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
    Path((key, capture)): Path<(String, i64)>,
    ApiJson(info): ApiJson<UpdateShippingInfo>,
) -> Result<Json<manage::ShippingInfoAdded>, GatewayError> {
    manage::add_shipping_info(&gw, &key, capture, info, "admin")
        .await
        .map(Json)
}

/// Cancels an authorization nothing was captured of.
#[utoipa::path(
    post,
    path = "/admin/payments/{key}/cancel",
    tag = "admin",
    params(PaymentKey, IdempotencyKey),
    request_body(content = manage::Expected, description = "Optional: what the caller expects"),
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses(
        (status = 200, description = "Klarna cancelled it", body = manage::OpOutcome),
        (status = 202, description = "Recorded; Klarna has not confirmed it yet", body = manage::OpOutcome),
        OperationErrors,
    )
)]
async fn cancel(_a: Admin, op: Operation) -> Response {
    op.run("cancel", whole_order(Command::Cancel)).await
}

/// Releases what remains authorized after partial captures.
#[utoipa::path(
    post,
    path = "/admin/payments/{key}/release",
    tag = "admin",
    params(PaymentKey, IdempotencyKey),
    request_body(content = manage::Expected, description = "Optional: what the caller expects"),
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses(
        (status = 200, description = "Klarna released it", body = manage::OpOutcome),
        (status = 202, description = "Recorded; Klarna has not confirmed it yet", body = manage::OpOutcome),
        OperationErrors,
    )
)]
async fn release(_a: Admin, op: Operation) -> Response {
    op.run("release", whole_order(Command::Release)).await
}

/// Extends the authorization's lifetime.
#[utoipa::path(
    post,
    path = "/admin/payments/{key}/extend",
    tag = "admin",
    params(PaymentKey, IdempotencyKey),
    request_body(content = manage::Expected, description = "Optional: what the caller expects"),
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses(
        (status = 200, description = "Klarna extended it", body = manage::OpOutcome),
        (status = 202, description = "Recorded; Klarna has not confirmed it yet", body = manage::OpOutcome),
        OperationErrors,
    )
)]
async fn extend(_a: Admin, op: Operation) -> Response {
    op.run("extend", whole_order(Command::Extend)).await
}

/// Updates the authorization to the order as Odoo has it now, edited before it shipped (a
/// line removed, a quantity changed, a fee added): its amount and lines, mapped as a new
/// order is. Klarna re-checks an increase and may refuse it; then nothing changes.
#[utoipa::path(
    post,
    path = "/admin/payments/{key}/authorization",
    tag = "admin",
    params(PaymentKey, IdempotencyKey),
    request_body = AuthorizationBody,
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses(
        (status = 200, description = "Klarna took the new amount and lines", body = manage::OpOutcome),
        (status = 202, description = "Recorded; Klarna has not confirmed it yet (the worker finishes it)", body = manage::OpOutcome),
        (status = 422, description = "`order_not_payable`: the edited order breaks Klarna's rules (`fields` lists them); nothing was sent", body = ApiError),
        OperationErrors,
    )
)]
async fn update_authorization(_a: Admin, op: Operation) -> Response {
    op.run("authorization", |body| {
        let b: AuthorizationBody = parse(body).map_err(|e| records_at_fault(body).unwrap_or(e))?;
        Ok((Command::UpdateAuthorization(b.edit), b.expected))
    })
    .await
}

/// A body whose `odoo_records` are not records by model is refused naming that field (a
/// flattened body's error does not say where it is).
fn records_at_fault(body: &Bytes) -> Option<GatewayError> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let records = value.get("odoo_records")?.clone();
    let e = serde_json::from_value::<crate::odoo_order::Snapshot>(records).err()?;
    Some(GatewayError::invalid(
        "odoo_records",
        format!("must be Odoo records by model ({{\"sale.order\": [{{…}}], …}}): {e}"),
    ))
}

/// The path parameter naming a payment.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the OpenAPI document only
struct PaymentKey {
    /// The payment: its Klarna order id or its Odoo order reference.
    key: String,
}

/// The header that makes a POST happen once.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // read by the OpenAPI document only
struct IdempotencyKey {
    /// The same key gets the first answer and the work is not done twice; the key with
    /// another request is refused (`invalid_request`).
    #[param(rename = "Idempotency-Key", min_length = 1, max_length = 255)]
    idempotency_key: Option<String>,
}

/// The errors an operation on a payment can answer, besides the door's.
struct OperationErrors;

impl utoipa::IntoResponses for OperationErrors {
    fn responses()
    -> std::collections::BTreeMap<String, utoipa::openapi::RefOr<utoipa::openapi::Response>> {
        let mut answers = AdminDoor::responses();
        for (status, description) in [
            (
                "400",
                "`invalid_request`: the body is malformed (`field` names where), or the Idempotency-Key is malformed or was used for another request",
            ),
            (
                "404",
                "`payment_not_found`: no payment with this Klarna order id or order reference",
            ),
            (
                "409",
                "The payment state machine refuses it (`capture_exceeds_remaining`, `refund_exceeds_captured`, `cancel_after_capture`, `release_without_capture`, `nothing_to_release`, `amount_below_captured`, `fraud_decision_pending`, `not_allowed_in_this_state`, `amount_not_positive`, `unknown_capture`, `wrong_currency`); `state_changed` (the payment is not what `expected_*` said; `payment` has the figures); `operation_in_progress`; `in_progress` (the Idempotency-Key's first request is still running); `refused` (Klarna refused it for good). Nothing was done.",
            ),
            ("502", "`klarna_error`: Klarna answered with an error"),
        ] {
            answers.insert(status.to_owned(), openapi::error(description).into());
        }
        answers
    }
}

/// An operation's request: the payment the path names, the headers (`Idempotency-Key`)
/// and the body, read whole (the idempotency record keeps its hash).
struct Operation {
    gw: Arc<Gateway>,
    key: String,
    headers: HeaderMap,
    body: Bytes,
}

impl FromRequest<Arc<Gateway>> for Operation {
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        gw: &Arc<Gateway>,
    ) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let Path(key) = Path::<String>::from_request_parts(&mut parts, gw)
            .await
            .map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let body = Bytes::from_request(axum::extract::Request::from_parts(parts, body), gw)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            gw: gw.clone(),
            key,
            headers,
            body,
        })
    }
}

impl Operation {
    /// `POST /admin/payments/{key}/<path>`, once per `Idempotency-Key`: `make` reads the
    /// body into the command and what the caller expects.
    async fn run(
        self,
        path: &str,
        make: impl FnOnce(&Bytes) -> Result<(Command, manage::Expected), GatewayError> + Send + 'static,
    ) -> Response {
        let Self {
            gw,
            key,
            headers,
            body,
        } = self;
        let path = format!("/admin/payments/{key}/{path}");
        let worker = gw.clone();
        let input = body.clone();
        once(
            &gw,
            &headers,
            &Method::POST,
            &path,
            &body,
            |claim| async move {
                let (command, expected) = make(&input)?;
                manage::run(&worker, &key, command, expected, "admin", claim.as_deref()).await
            },
        )
        .await
    }
}

/// A payment with its operations and its timeline.
#[utoipa::path(
    get,
    path = "/admin/payments/{key}",
    tag = "admin",
    params(PaymentKey),
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses(
        (status = 200, description = "The payment", body = manage::PaymentView),
        (status = 404, description = "`payment_not_found`", body = ApiError),
        AdminDoor,
    )
)]
async fn payment(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
    Path(key): Path<String>,
) -> Result<Json<manage::PaymentView>, GatewayError> {
    manage::view(&gw, &key).await.map(Json)
}

/// The path parameter naming a saved Klarna.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the OpenAPI document only
struct TokenReference {
    /// The saved Klarna's reference (Odoo's `payment.token.provider_ref`), as Odoo's update
    /// of the checkout that saved it named it.
    reference: String,
}

/// A shopper's saved Klarna: its state and its charges (never the token).
#[utoipa::path(
    get,
    path = "/admin/tokens/{reference}",
    tag = "admin",
    params(TokenReference),
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses(
        (status = 200, description = "The saved Klarna", body = saved_klarna::TokenView),
        (status = 404, description = "`not_found`: no saved Klarna has this reference", body = ApiError),
        AdminDoor,
    )
)]
async fn saved_token(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
    Path(reference): Path<String>,
) -> Result<Json<saved_klarna::TokenView>, GatewayError> {
    saved_klarna::show(&gw, &reference).await.map(Json)
}

/// Charges a saved Klarna, with no shopper present, for a sale order as Odoo holds it:
/// Klarna places an order that is then captured, refunded or cancelled like any other
/// (its Klarna order id is the payment's key). One order per `transaction_reference`: a
/// repeat gets the first answer.
#[utoipa::path(
    post,
    path = "/admin/tokens/{reference}/charges",
    tag = "admin",
    params(TokenReference),
    request_body = saved_klarna::ChargeRequest,
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses(
        (status = 200, description = "`authorized` (Klarna placed the order; `fraud_status` PENDING waits for Klarna's decision) or `declined`", body = klarna_types::contract::AuthorizeResponse),
        (status = 400, description = "`invalid_request`: the body is malformed, or the order is in another currency than the saved Klarna's (`field` names which)", body = ApiError),
        (status = 404, description = "`not_found`: no saved Klarna has this reference; `order_not_found`: no such sale order", body = ApiError),
        (status = 409, description = "`token_not_chargeable`: the saved Klarna was cancelled (here or at Klarna) or is suspended; `refused`: a charge with this reference went unanswered for more than a day; `authorization_in_progress`. Nothing was charged.", body = ApiError),
        (status = 422, description = "`order_not_payable`: the order breaks Klarna's rules", body = ApiError),
        (status = 502, description = "`klarna_error` or `odoo_unavailable`", body = ApiError),
        (status = 503, description = "`klarna_unavailable`: Klarna did not answer; asking again with the same `transaction_reference` sends the same idempotency key, so Klarna places one order", body = ApiError),
        AdminDoor,
    )
)]
async fn charge_saved_token(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
    Path(reference): Path<String>,
    ApiJson(req): ApiJson<saved_klarna::ChargeRequest>,
) -> Result<Json<klarna_types::contract::AuthorizeResponse>, GatewayError> {
    let work = async move { saved_klarna::charge(&gw, &reference, req).await };
    // Its own task: a caller hanging up does not stop it between Klarna's answer and our
    // record of it.
    tokio::spawn(work)
        .await
        .map_err(|e| GatewayError::Internal(format!("a charge's task: {e}")))?
        .map(Json)
}

/// Cancels a saved Klarna, at Klarna and here (Odoo deleted or archived its token): it can
/// never be charged again. Cancelling it again answers it as it is.
#[utoipa::path(
    post,
    path = "/admin/tokens/{reference}/cancel",
    tag = "admin",
    params(TokenReference),
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses(
        (status = 200, description = "Cancelled", body = saved_klarna::TokenView),
        (status = 404, description = "`not_found`: no saved Klarna has this reference", body = ApiError),
        (status = 502, description = "`klarna_error`: Klarna answered with an error; the token stays active", body = ApiError),
        (status = 503, description = "`klarna_unavailable`: Klarna did not answer; the token stays active", body = ApiError),
        AdminDoor,
    )
)]
async fn cancel_saved_token(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
    Path(reference): Path<String>,
) -> Result<Json<saved_klarna::TokenView>, GatewayError> {
    saved_klarna::cancel(&gw, &reference, "admin")
        .await
        .map(Json)
}

/// The jobs waiting for a person.
#[derive(serde::Serialize, ToSchema)]
struct ReviewQueue {
    jobs: Vec<StoredJob>,
}

/// The review queue: jobs that used up their retries.
#[utoipa::path(
    get,
    path = "/admin/review",
    tag = "admin",
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses((status = 200, description = "The review queue", body = ReviewQueue), AdminDoor)
)]
async fn review(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
) -> Result<Json<ReviewQueue>, GatewayError> {
    Ok(Json(ReviewQueue {
        jobs: gw.db.jobs_in("review").await?,
    }))
}

/// A job.
#[utoipa::path(
    get,
    path = "/admin/jobs/{id}",
    tag = "admin",
    params(("id" = i64, Path, description = "The job's id")),
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses(
        (status = 200, description = "The job", body = StoredJob),
        (status = 400, description = "`invalid_request`: the id is not a whole number", body = ApiError),
        (status = 404, description = "`not_found`: no such job", body = ApiError),
        AdminDoor,
    )
)]
async fn job(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
    Path(id): Path<i64>,
) -> Result<Json<StoredJob>, GatewayError> {
    gw.db
        .job(id)
        .await?
        .map(Json)
        .ok_or_else(|| GatewayError::not_found(format!("job {id}")))
}

#[derive(serde::Serialize, ToSchema)]
struct Replayed {
    /// The job queued again.
    replayed: i64,
}

/// Queues a job of the review queue again.
#[utoipa::path(
    post,
    path = "/admin/jobs/{id}/replay",
    tag = "admin",
    params(("id" = i64, Path, description = "The job's id")),
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses(
        (status = 200, description = "Queued again", body = Replayed),
        (status = 400, description = "`invalid_request`: the id is not a whole number", body = ApiError),
        (status = 409, description = "`refused`: the job is not in the review queue", body = ApiError),
        AdminDoor,
    )
)]
async fn replay(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
    Path(id): Path<i64>,
) -> Result<Json<Replayed>, GatewayError> {
    if gw.db.replay_job(id).await? {
        gw.wake_worker();
        Ok(Json(Replayed { replayed: id }))
    } else {
        Err(GatewayError::Refused(format!(
            "job {id} is not in the review queue"
        )))
    }
}

/// Compares every open payment with Klarna and Odoo now, and repairs what it can.
#[utoipa::path(
    post,
    path = "/admin/reconcile",
    tag = "admin",
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses(
        (status = 200, description = "What reconcile found and did", body = reconcile::Report),
        (status = 502, description = "`klarna_error` or `odoo_unavailable`", body = ApiError),
        AdminDoor,
    )
)]
async fn run_reconcile(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
) -> Result<Json<reconcile::Report>, GatewayError> {
    reconcile::run(&gw).await.map(Json)
}

#[derive(serde::Serialize, ToSchema)]
struct GatewayStatus {
    /// Always true: the gateway answered.
    reachable: bool,
    /// Jobs waiting for a person.
    review_queue: i64,
    /// Jobs waiting to run.
    jobs_waiting: i64,
    /// When reconcile last ran (unix milliseconds), if it has since the gateway started.
    last_reconcile: Option<i64>,
    /// The gateway's version.
    version: &'static str,
}

/// For Odoo's smart button: is the gateway there, how big is the review queue, when did
/// reconcile last run.
#[utoipa::path(
    get,
    path = "/admin/status",
    tag = "admin",
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses((status = 200, description = "The gateway's state", body = GatewayStatus), AdminDoor)
)]
async fn status(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
) -> Result<Json<GatewayStatus>, GatewayError> {
    let q = gw.db.queue_stats().await?;
    Ok(Json(GatewayStatus {
        reachable: true,
        review_queue: q.review,
        jobs_waiting: q.waiting,
        last_reconcile: gw.last_reconcile(),
        version: env!("CARGO_PKG_VERSION"),
    }))
}

/// `klarna-gateway doctor`'s report, from this running gateway (the addon's "Check
/// gateway" button shows it).
#[utoipa::path(
    get,
    path = "/admin/doctor",
    tag = "admin",
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses((status = 200, description = "One line a check; `ok` when none failed", body = crate::doctor::Report), AdminDoor)
)]
async fn doctor(State(gw): State<Arc<Gateway>>, _a: Admin) -> Json<crate::doctor::Report> {
    Json(crate::doctor::run_in(&gw).await)
}

/// The webhook signing keys, without their secrets.
#[derive(serde::Serialize, ToSchema)]
struct SigningKeys {
    keys: Vec<signing_keys::KeyInfo>,
}

impl SigningKeys {
    fn of(gw: &Gateway) -> Json<Self> {
        Json(Self {
            keys: signing_keys::list(&gw.secrets),
        })
    }
}

/// The webhook signing keys.
#[utoipa::path(
    get,
    path = "/admin/webhook-keys",
    tag = "admin",
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses((status = 200, description = "The keys", body = SigningKeys), AdminDoor)
)]
async fn webhook_keys(State(gw): State<Arc<Gateway>>, _a: Admin) -> Json<SigningKeys> {
    SigningKeys::of(&gw)
}

/// A signing key Klarna will sign with (added before Klarna uses it: the overlap).
#[derive(serde::Deserialize, ToSchema)]
struct NewKey {
    /// Klarna's key id: 1 to 128 letters, digits or `-_.:`.
    #[schema(pattern = "^[A-Za-z0-9_.:-]{1,128}$")]
    id: String,
    /// The key's secret: at least 16 characters.
    #[schema(value_type = String, min_length = 16)]
    secret: zeroize::Zeroizing<String>,
}

/// Adds a webhook signing key.
#[utoipa::path(
    post,
    path = "/admin/webhook-keys",
    tag = "admin",
    request_body = NewKey,
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses(
        (status = 200, description = "The keys, the new one with them", body = SigningKeys),
        (status = 400, description = "`invalid_request`: the id or the secret is malformed (`field` names which)", body = ApiError),
        (status = 409, description = "`refused`: a key with this id exists already", body = ApiError),
        AdminDoor,
    )
)]
async fn add_webhook_key(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
    ApiJson(key): ApiJson<NewKey>,
) -> Result<Json<SigningKeys>, GatewayError> {
    signing_keys::add(&gw.secrets, &key.id, &key.secret).await?;
    Ok(SigningKeys::of(&gw))
}

/// Revokes a webhook signing key: events signed with it are refused from now on.
#[utoipa::path(
    post,
    path = "/admin/webhook-keys/{id}/revoke",
    tag = "admin",
    params(("id" = String, Path, description = "Klarna's key id")),
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses(
        (status = 200, description = "The keys, that one revoked", body = SigningKeys),
        (status = 409, description = "`refused`: no key with this id", body = ApiError),
        AdminDoor,
    )
)]
async fn revoke_webhook_key(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
    Path(id): Path<String>,
) -> Result<Json<SigningKeys>, GatewayError> {
    signing_keys::revoke(&gw.secrets, &id).await?;
    Ok(SigningKeys::of(&gw))
}

/// A webhook event as stored (without its body).
#[utoipa::path(
    get,
    path = "/admin/webhook-events/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "The event's id")),
    security(("admin_token" = []), ("odoo_signature" = [])),
    responses(
        (status = 200, description = "The event", body = StoredEvent),
        (status = 404, description = "`not_found`: no such event", body = ApiError),
        AdminDoor,
    )
)]
async fn webhook_event(
    State(gw): State<Arc<Gateway>>,
    _a: Admin,
    Path(id): Path<String>,
) -> Result<Json<StoredEvent>, GatewayError> {
    gw.db
        .event(&id)
        .await?
        .map(Json)
        .ok_or_else(|| GatewayError::not_found(format!("webhook event {id}")))
}
