//! Prometheus metrics, served on their own port: HTTP latency by route, Klarna call latency
//! and errors by code (recorded by the client), queue depth, the oldest waiting job's age,
//! jobs stuck in progress, the review queue, retries, how far Odoo's updates are behind,
//! and what reconcile found.

use std::sync::OnceLock;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::db::Db;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide recorder (installed once, however many gateways a test starts).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// The exposition text, with the queue gauges read now.
pub async fn render(db: &Db) -> String {
    let Some(handle) = handle() else {
        return String::new();
    };
    if let Ok(q) = db.queue_stats().await {
        metrics::gauge!("gateway_jobs_waiting").set(q.waiting as f64);
        metrics::gauge!("gateway_jobs_oldest_waiting_seconds")
            .set(q.oldest_waiting_ms as f64 / 1000.0);
        metrics::gauge!("gateway_jobs_running").set(q.running as f64);
        metrics::gauge!("gateway_jobs_stuck").set(q.stuck as f64);
        metrics::gauge!("gateway_review_queue").set(q.review as f64);
        metrics::gauge!("gateway_odoo_sync_lag_seconds").set(q.odoo_sync_lag_ms as f64 / 1000.0);
    }
    handle.render()
}

async fn metrics_page(State(db): State<Db>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        render(&db).await,
    )
}

/// `/metrics`, for the metrics port.
pub fn router(db: Db) -> Router {
    handle();
    Router::new()
        .route("/metrics", get(metrics_page))
        .with_state(db)
}

/// Records each request's latency by route and status.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::histogram!("gateway_http_request_seconds", "route" => route, "method" => method, "status" => response.status().as_u16().to_string())
        .record(started.elapsed().as_secs_f64());
    response
}
