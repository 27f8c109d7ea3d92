//! The gateway's HTTP surface: the widget API (CORS to configured storefronts, small
//! bodies), the admin API, health and readiness — with a request id on every request and
//! in every log line about it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use klarna_types::contract::{
    AuthorizeRequest, AuthorizeResponse, SessionRequest, SessionResponse,
};
use serde_json::{Value, json};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::{ApiJson, GatewayError};
use crate::frontdoor::FrontDoor;
use crate::secrets::{KLARNA_PASSWORD, KLARNA_USERNAME};
use crate::state::Gateway;
use crate::{admin, checkout, frontdoor, listener, metrics, webhook, webhook_verify};
use tokio::sync::Semaphore;

/// Widget requests are a few hundred bytes; anything much larger is not ours.
const WIDGET_BODY_LIMIT: usize = 16 * 1024;
const ADMIN_BODY_LIMIT: usize = 256 * 1024;

pub fn router(gateway: Arc<Gateway>) -> Router {
    let origins: Vec<HeaderValue> = gateway
        .config
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::POST])
        .allow_headers([header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600));
    let widget = Router::new()
        .route("/klarna/session", post(session))
        .route("/klarna/authorize", post(authorize))
        .layer(RequestBodyLimitLayer::new(WIDGET_BODY_LIMIT));
    let widget = behind_door(widget, &gateway, frontdoor::widget_guard).layer(cors);
    // Webhooks: no CORS (not for browsers), their own size limit and door.
    let webhooks = Router::new()
        .route("/klarna/webhook", post(webhook::signed))
        .route("/klarna/notification/{token}", post(webhook::classic))
        .route(
            "/klarna/authorization/{token}",
            post(webhook::authorization),
        )
        .layer(axum::extract::DefaultBodyLimit::max(
            webhook_verify::BODY_LIMIT,
        ));
    let webhooks = behind_door(webhooks, &gateway, frontdoor::webhook_guard);
    let admin = admin::routes()
        .layer(axum::middleware::from_fn_with_state(
            gateway.clone(),
            admin::odoo_signed,
        ))
        .layer(RequestBodyLimitLayer::new(ADMIN_BODY_LIMIT));
    let admin = behind_door(admin, &gateway, frontdoor::admin_guard);
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(widget)
        .merge(webhooks)
        .merge(admin)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/healthz/client", get(client_seen))
        .route_layer(axum::middleware::from_fn(metrics::track))
        // A route layer, so the span is made after routing and names the route's template:
        // the raw path of `/klarna/notification/{token}` holds a secret.
        .route_layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("", MatchedPath::as_str);
                tracing::info_span!("request", request_id = %id, method = %request.method(), route = %route)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(gateway)
}

/// Puts a group of routes behind its door (`guard`) and its own in-flight cap, so a flood
/// on one group cannot starve the others.
fn behind_door<G, F>(
    routes: Router<Arc<Gateway>>,
    gateway: &Gateway,
    guard: G,
) -> Router<Arc<Gateway>>
where
    G: Fn(State<Arc<FrontDoor>>, Request, Next) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(gateway.config.max_in_flight.max(1)));
    routes
        .layer(from_fn_with_state(slots, listener::in_flight))
        .layer(from_fn_with_state(gateway.frontdoor.clone(), guard))
}

async fn session(
    State(gw): State<Arc<Gateway>>,
    ApiJson(req): ApiJson<SessionRequest>,
) -> Result<Json<SessionResponse>, GatewayError> {
    checkout::start_session(&gw, req).await.map(Json)
}

async fn authorize(
    State(gw): State<Arc<Gateway>>,
    ApiJson(req): ApiJson<AuthorizeRequest>,
) -> Result<Json<AuthorizeResponse>, GatewayError> {
    checkout::authorize(&gw, req).await.map(Json)
}

/// Liveness: the process answers.
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Who the gateway takes the caller for, and why: the socket's peer, whether that peer is
/// a trusted proxy, which forwarding headers arrived, and the client address made of them.
/// `klarna-gateway doctor` calls it through the public URL to see what the proxy does.
/// It tells a caller only its own address and the proxy's, which the caller can see anyway.
async fn client_seen(State(gw): State<Arc<Gateway>>, request: Request) -> Json<Value> {
    let socket = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let headers = request.headers();
    let peer = socket.map(|s| crate::client_addr::canonical(s.ip()));
    let proxies = &gw.config.frontdoor.trusted_proxies;
    Json(json!({
        "peer": peer,
        "peer_is_trusted_proxy": peer.is_some_and(|p| proxies.trusts(p)),
        "x_forwarded_for": headers.contains_key("x-forwarded-for"),
        "forwarded": headers.contains_key("forwarded"),
        "client": gw.frontdoor.client_ip(headers, socket),
    }))
}

/// Readiness: the database answers and Klarna credentials are configured.
async fn readyz(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    let mut problems = Vec::new();
    if let Err(e) = gw.db.ping().await {
        tracing::error!("readiness: database: {e}");
        problems.push("the database does not answer".to_owned());
    }
    if gw.secrets.get(KLARNA_USERNAME).is_none() || gw.secrets.get(KLARNA_PASSWORD).is_none() {
        problems.push("Klarna credentials are not configured".to_owned());
    }
    if problems.is_empty() {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "problems": problems})),
        )
    }
}
