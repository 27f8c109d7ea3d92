//! The gateway's HTTP surface: the widget API (CORS to configured storefronts, small
//! bodies), the admin API, health and readiness — with a request id on every request and
//! in every log line about it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use klarna_types::contract::{
    ApiError, AuthorizeRequest, AuthorizeResponse, SessionRequest, SessionResponse,
};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiJson, GatewayError};
use crate::frontdoor::FrontDoor;
use crate::openapi::{self, Listener, WidgetErrors};
use crate::secrets::{KLARNA_PASSWORD, KLARNA_USERNAME};
use crate::state::Gateway;
use crate::{admin, checkout, frontdoor, listener, metrics, webhook, webhook_verify};
use tokio::sync::Semaphore;

/// Widget requests are a few hundred bytes; anything much larger is not ours.
const WIDGET_BODY_LIMIT: usize = 16 * 1024;

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
    // Every group is an `OpenApiRouter`: a route is registered with its description, and
    // the document at /openapi.json is what was registered.
    let (widget, widget_api) = OpenApiRouter::new()
        .routes(routes!(session))
        .routes(routes!(authorize))
        .split_for_parts();
    let widget = widget.layer(RequestBodyLimitLayer::new(WIDGET_BODY_LIMIT));
    let widget = behind_door(widget, &gateway, frontdoor::widget_guard).layer(cors);
    // Webhooks: no CORS (not for browsers), their own size limit and door.
    let (webhooks, webhooks_api) = OpenApiRouter::new()
        .routes(routes!(webhook::signed))
        .routes(routes!(webhook::classic))
        .routes(routes!(webhook::authorization))
        .split_for_parts();
    let webhooks = webhooks.layer(axum::extract::DefaultBodyLimit::max(
        webhook_verify::BODY_LIMIT,
    ));
    let webhooks = behind_door(webhooks, &gateway, frontdoor::webhook_guard);
    let (admin, admin_api) = admin::routes().split_for_parts();
    let admin = admin
        .layer(axum::middleware::from_fn_with_state(
            gateway.clone(),
            admin::odoo_signed,
        ))
        .layer(RequestBodyLimitLayer::new(admin::BODY_LIMIT));
    let admin = behind_door(admin, &gateway, frontdoor::admin_guard);
    let (health, health_api) = OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(client_seen))
        .routes(routes!(openapi_json))
        .split_for_parts();
    let mut api = widget_api;
    for group in [webhooks_api, admin_api, health_api] {
        api.merge(group);
    }
    let document = openapi::document(api);
    let document = OpenApiJson(Arc::from(serde_json::to_string(&document).unwrap_or_else(
        |e| {
            tracing::error!("the OpenAPI document could not be written: {e}");
            "{}".to_owned()
        },
    )));
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(widget)
        .merge(webhooks)
        .merge(admin)
        .merge(health)
        .layer(axum::Extension(document))
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
        .layer(axum::middleware::from_fn(openapi::json_refusals))
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

/// Starts (or resumes) a Klarna session for an Odoo order. The browser names the order; the
/// amounts come from Odoo.
#[utoipa::path(
    post,
    path = "/klarna/session",
    tag = "widget",
    request_body = SessionRequest,
    responses(
        (status = 200, description = "The session for Klarna's SDK", body = SessionResponse),
        (status = 404, description = "`order_not_found`: no sale order matches the reference and access token", body = ApiError),
        WidgetErrors,
    )
)]
async fn session(
    State(gw): State<Arc<Gateway>>,
    ApiJson(req): ApiJson<SessionRequest>,
) -> Result<Json<SessionResponse>, GatewayError> {
    checkout::start_session(&gw, req).await.map(Json)
}

/// Places the Klarna order for an authorization the widget got from Klarna's SDK.
#[utoipa::path(
    post,
    path = "/klarna/authorize",
    tag = "widget",
    request_body = AuthorizeRequest,
    responses(
        (status = 200, description = "Authorized (the order is placed) or declined", body = AuthorizeResponse),
        (status = 404, description = "`session_not_found`: no such checkout session", body = ApiError),
        (status = 409, description = "`authorization_in_progress`: this session is being authorized already; `cart_changed`: the order changed in Odoo after the shopper authorized", body = ApiError),
        (status = 410, description = "`authorization_expired`: Klarna no longer knows the authorization token", body = ApiError),
        WidgetErrors,
    )
)]
async fn authorize(
    State(gw): State<Arc<Gateway>>,
    ApiJson(req): ApiJson<AuthorizeRequest>,
) -> Result<Json<AuthorizeResponse>, GatewayError> {
    checkout::authorize(&gw, req).await.map(Json)
}

/// The OpenAPI document, made once when the router is.
#[derive(Clone)]
struct OpenApiJson(Arc<str>);

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "health",
    responses(
        (status = 200, description = "The gateway's OpenAPI 3.1 document", content_type = "application/json", body = Object),
        Listener,
    )
)]
async fn openapi_json(axum::Extension(doc): axum::Extension<OpenApiJson>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        doc.0.to_string(),
    )
        .into_response()
}

#[derive(serde::Serialize, ToSchema)]
struct Liveness {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process answers", body = Liveness), Listener)
)]
async fn healthz() -> Json<Liveness> {
    Json(Liveness { status: "ok" })
}

/// Who the gateway takes a caller for.
#[derive(serde::Serialize, ToSchema)]
struct ClientSeen {
    /// The socket's peer (an IP address).
    #[schema(value_type = Option<String>)]
    peer: Option<std::net::IpAddr>,
    /// Whether that peer is a trusted proxy (`trusted_proxies`).
    peer_is_trusted_proxy: bool,
    /// Whether an `X-Forwarded-For` header arrived.
    x_forwarded_for: bool,
    /// Whether a `Forwarded` header arrived.
    forwarded: bool,
    /// The client address made of them (an IP address).
    #[schema(value_type = String)]
    client: std::net::IpAddr,
}

/// Who the gateway takes the caller for, and why: the socket's peer, whether that peer is
/// a trusted proxy, which forwarding headers arrived, and the client address made of them.
/// `klarna-gateway doctor` calls it through the public URL to see what the proxy does.
/// It tells a caller only its own address and the proxy's, which the caller can see anyway.
#[utoipa::path(
    get,
    path = "/healthz/client",
    tag = "health",
    responses((status = 200, description = "What the gateway saw of this request", body = ClientSeen), Listener)
)]
async fn client_seen(State(gw): State<Arc<Gateway>>, request: Request) -> Json<ClientSeen> {
    let socket = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let headers = request.headers();
    let peer = socket.map(|s| crate::client_addr::canonical(s.ip()));
    let proxies = &gw.config.frontdoor.trusted_proxies;
    Json(ClientSeen {
        peer,
        peer_is_trusted_proxy: peer.is_some_and(|p| proxies.trusts(p)),
        x_forwarded_for: headers.contains_key("x-forwarded-for"),
        forwarded: headers.contains_key("forwarded"),
        client: gw.frontdoor.client_ip(headers, socket),
    })
}

#[derive(serde::Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Ready {
    Ready,
    #[serde(rename = "not ready")]
    NotReady,
}

#[derive(serde::Serialize, ToSchema)]
struct Readiness {
    status: Ready,
    /// What keeps the gateway from serving, when it is not ready.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<String>,
}

/// Readiness: the database answers and Klarna credentials are configured.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        Listener,
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "Not ready: `problems` says why (or, from the listener, `overloaded`)", body = Readiness),
    )
)]
async fn readyz(State(gw): State<Arc<Gateway>>) -> (StatusCode, Json<Readiness>) {
    let mut problems = Vec::new();
    if let Err(e) = gw.db.ping().await {
        tracing::error!("readiness: database: {e}");
        problems.push("the database does not answer".to_owned());
    }
    if gw.secrets.get(KLARNA_USERNAME).is_none() || gw.secrets.get(KLARNA_PASSWORD).is_none() {
        problems.push("Klarna credentials are not configured".to_owned());
    }
    if problems.is_empty() {
        (
            StatusCode::OK,
            Json(Readiness {
                status: Ready::Ready,
                problems,
            }),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                status: Ready::NotReady,
                problems,
            }),
        )
    }
}
