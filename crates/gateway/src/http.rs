//! The gateway's HTTP surface: the widget API, health, and the limits that guard them.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use klarna_types::contract::{
    AuthorizeRequest, AuthorizeResponse, SessionRequest, SessionResponse,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;

use crate::error::GatewayError;
use crate::{Gateway, checkout};

/// Widget requests are a few hundred bytes; anything much larger is not ours.
const WIDGET_BODY_LIMIT: usize = 16 * 1024;

/// A JSON body whose rejection is a [`GatewayError`] naming what is wrong.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = GatewayError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_rejection(&rejection)),
        }
    }
}

fn json_rejection(rejection: &JsonRejection) -> GatewayError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            GatewayError::invalid("content-type", "must be application/json")
        }
        JsonRejection::JsonDataError(e) => GatewayError::invalid("body", e.body_text()),
        JsonRejection::JsonSyntaxError(e) => GatewayError::invalid("body", e.body_text()),
        other => GatewayError::invalid("body", other.body_text()),
    }
}

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
        .allow_headers([header::CONTENT_TYPE]);
    let widget = Router::new()
        .route("/klarna/session", post(session))
        .route("/klarna/authorize", post(authorize))
        .layer(RequestBodyLimitLayer::new(WIDGET_BODY_LIMIT))
        .layer(cors);
    Router::new()
        .merge(widget)
        .route("/health", get(health))
        .with_state(gateway)
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

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
