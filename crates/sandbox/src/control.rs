//! Sandbox-only control endpoints under `/_sandbox/`: what happened (orders, requests,
//! webhook deliveries), and levers for tests — the clock, faults, rate limits, key
//! rotation, and `trigger` for sending a webhook on demand.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use klarna_types::klarna::Order;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::faults::{FaultSpec, RateLimits};
use crate::reply::KlarnaError;
use crate::state::Sandbox;
use crate::webhooks;

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/_sandbox/orders", get(orders))
        .route("/_sandbox/stats", get(stats))
        .route("/_sandbox/clock", post(advance_clock))
        .route("/_sandbox/faults", get(faults).delete(clear_faults))
        .route("/_sandbox/faults/{op}", put(set_fault))
        .route("/_sandbox/rate-limits", put(set_rate_limits))
        .route("/_sandbox/webhooks", get(deliveries))
        .route("/_sandbox/webhooks/signing-key", post(rotate_key))
        .route("/_sandbox/trigger", post(trigger))
        .route("/_sandbox/webhooks/burst", post(burst))
        .route("/_sandbox/sdk-harness", get(sdk_harness))
}

async fn orders(State(sandbox): State<Arc<Sandbox>>) -> Json<Vec<Order>> {
    let state = sandbox.state();
    let mut orders: Vec<_> = state
        .orders
        .values()
        .map(|o| (o.created, o.order.clone()))
        .collect();
    orders.sort_by_key(|(created, _)| *created);
    Json(orders.into_iter().map(|(_, o)| o).collect())
}

async fn stats(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    let (tokens, failures, sessions) = {
        let s = sandbox.state();
        (
            s.token_requests,
            s.lockout.failures_total(),
            s.sessions.len(),
        )
    };
    Json(json!({
        "requests": sandbox.faults.counts(),
        "token_requests": tokens,
        "auth_failures": failures,
        "sessions": sessions,
        "clock_offset_seconds": sandbox.clock.offset().as_secs(),
    }))
}

#[derive(Deserialize)]
struct Advance {
    seconds: u64,
}

async fn advance_clock(State(sandbox): State<Arc<Sandbox>>, Json(a): Json<Advance>) -> Json<Value> {
    sandbox.clock.advance(Duration::from_secs(a.seconds));
    crate::ordermanagement::tick(&sandbox);
    Json(json!({"offset_seconds": sandbox.clock.offset().as_secs()}))
}

async fn faults(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    Json(json!(sandbox.faults.all()))
}

async fn clear_faults(State(sandbox): State<Arc<Sandbox>>) -> StatusCode {
    sandbox.faults.clear();
    StatusCode::NO_CONTENT
}

async fn set_fault(
    State(sandbox): State<Arc<Sandbox>>,
    Path(op): Path<String>,
    Json(spec): Json<FaultSpec>,
) -> Result<StatusCode, (StatusCode, String)> {
    spec.validate().map_err(|e| (StatusCode::BAD_REQUEST, e))?;
    sandbox.faults.set(&op, spec);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct Limits {
    limits: RateLimits,
}

async fn set_rate_limits(State(sandbox): State<Arc<Sandbox>>, Json(l): Json<Limits>) -> StatusCode {
    sandbox.faults.set_rate_limits(l.limits);
    StatusCode::NO_CONTENT
}

async fn deliveries(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    Json(json!(sandbox.webhooks.deliveries()))
}

#[derive(Deserialize)]
struct Rotate {
    id: String,
}

async fn rotate_key(
    State(sandbox): State<Arc<Sandbox>>,
    Json(r): Json<Rotate>,
) -> Result<StatusCode, (StatusCode, String)> {
    if !sandbox.config.signing_keys.iter().any(|k| k.id == r.id) {
        return Err((StatusCode::NOT_FOUND, format!("no signing key {:?}", r.id)));
    }
    sandbox.webhooks.activate_key(&r.id);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct Trigger {
    /// `authorized`, `payment.request.state-change.completed`, `FRAUD_RISK_ACCEPTED`, ...
    pub event: String,
    pub order_id: String,
}

/// Classic notification events; everything else is a signed state-change webhook.
pub const CLASSIC_EVENTS: &[&str] = &[
    "FRAUD_RISK_ACCEPTED",
    "FRAUD_RISK_REJECTED",
    "FRAUD_RISK_STOPPED",
];

async fn trigger(
    State(sandbox): State<Arc<Sandbox>>,
    Json(t): Json<Trigger>,
) -> Result<Json<Value>, KlarnaError> {
    let (order, url) = {
        let state = sandbox.state();
        let o = state.orders.get(&t.order_id).ok_or_else(|| {
            KlarnaError::new(StatusCode::NOT_FOUND, "NO_SUCH_ORDER", "Order not found")
        })?;
        (o.order.clone(), o.notification_url.clone())
    };
    let event_id = if CLASSIC_EVENTS.contains(&t.event.as_str()) {
        let url = url
            .or_else(|| sandbox.config.notification_url.clone())
            .ok_or_else(|| {
                KlarnaError::new(
                    StatusCode::BAD_REQUEST,
                    "BAD_VALUE",
                    "the order has no notification URL and --notification-url is not set",
                )
            })?;
        webhooks::classic(&sandbox, &url, &order.order_id, &t.event)
    } else {
        webhooks::state_change(&sandbox, &t.event, &order).ok_or_else(|| {
            KlarnaError::new(
                StatusCode::BAD_REQUEST,
                "BAD_VALUE",
                "no --webhook-url is set",
            )
        })?
    };
    Ok(Json(
        json!({"event_id": event_id, "event": t.event, "order_id": order.order_id}),
    ))
}

#[derive(Deserialize)]
struct Burst {
    count: usize,
    /// Klarna order ids; every order when absent.
    #[serde(default)]
    orders: Vec<String>,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
    /// Send each event to every one of these URLs (several gateway instances, each getting
    /// every event: duplicate deliveries); the configured webhook URL when absent.
    #[serde(default)]
    urls: Vec<String>,
}

fn default_concurrency() -> usize {
    16
}

/// Sends a stream of signed events about existing orders (load and crash tests).
async fn burst(
    State(sandbox): State<Arc<Sandbox>>,
    Json(b): Json<Burst>,
) -> Result<Json<Value>, KlarnaError> {
    if b.count > 100_000 {
        return Err(KlarnaError::new(
            StatusCode::BAD_REQUEST,
            "BAD_VALUE",
            "count is at most 100000",
        ));
    }
    if b.urls.len() > 8 {
        return Err(KlarnaError::new(
            StatusCode::BAD_REQUEST,
            "BAD_VALUE",
            "urls holds at most 8 addresses",
        ));
    }
    if let Some(i) = b.urls.iter().position(|u| {
        reqwest::Url::parse(u).map_or(true, |u| !matches!(u.scheme(), "http" | "https"))
    }) {
        return Err(KlarnaError::new(
            StatusCode::BAD_REQUEST,
            "BAD_VALUE",
            format!("urls[{i}] is not an http or https URL"),
        ));
    }
    let orders: Vec<_> = {
        let state = sandbox.state();
        if b.orders.is_empty() {
            state.orders.values().map(|o| o.order.clone()).collect()
        } else {
            b.orders
                .iter()
                .map(|id| {
                    state
                        .orders
                        .get(id)
                        .map(|o| o.order.clone())
                        .ok_or_else(|| {
                            KlarnaError::new(
                                StatusCode::NOT_FOUND,
                                "NO_SUCH_ORDER",
                                "Order not found",
                            )
                        })
                })
                .collect::<Result<_, _>>()?
        }
    };
    let ids =
        webhooks::burst(&sandbox, &orders, b.count, b.concurrency, &b.urls).ok_or_else(|| {
            KlarnaError::new(
                StatusCode::BAD_REQUEST,
                "BAD_VALUE",
                "no --webhook-url is set",
            )
        })?;
    Ok(Json(json!({"event_ids": ids})))
}

/// A bare page with the SDK stand-in and a container, for browser tests of the SDK itself.
async fn sdk_harness() -> axum::response::Html<&'static str> {
    axum::response::Html(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>SDK harness</title>
<script src="/kp/lib/v1/api.js"></script></head><body><div id="c"></div></body></html>"#,
    )
}
