//! The gateway's listeners — the public one (widget, webhooks, admin) and the metrics one —
//! with the limits `axum::serve` does not set: a deadline for a request's head, one for its
//! body, and a cap on open connections. Without them a client that sends half a request
//! and waits holds a connection (and a file descriptor) for ever.
//!
//! The head deadline is also the idle timeout: between two requests on a kept-alive
//! connection hyper is waiting for the next head, and starts the same timer.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, header};
use axum::response::IntoResponse;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::error::GatewayError;

/// A listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    /// From the first byte of a request (or from the end of the previous one, on a kept-alive
    /// connection) to the end of its head.
    pub header_timeout: Duration,
    /// From the end of the head to the end of the body.
    pub body_timeout: Duration,
    /// Connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
}

impl Default for ListenerLimits {
    /// Our clients are Klarna, a browser and Odoo on good links sending requests of a few
    /// kilobytes: ten seconds for a head and fifteen for a body are generous for them, and
    /// short for someone holding connections open. 512 connections stay well inside the
    /// usual 1,024 descriptors a process gets, leaving room for the database and Odoo.
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(15),
            max_connections: 512,
        }
    }
}

impl ListenerLimits {
    /// The metrics listener serves a scraper or two.
    pub const METRICS: Self = Self {
        header_timeout: Duration::from_secs(10),
        body_timeout: Duration::from_secs(15),
        max_connections: 16,
    };
}

/// A cap on a group of routes' requests in flight: one over it is answered 503 at once,
/// so a slow dependency (Odoo, Klarna) cannot pile up unbounded work behind it.
pub async fn in_flight(
    axum::extract::State(slots): axum::extract::State<Arc<Semaphore>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Ok(_slot) = slots.try_acquire() else {
        metrics::counter!("gateway_overloaded_total").increment(1);
        return GatewayError::Overloaded.into_response();
    };
    next.run(request).await
}

/// Serves `router` on `listener` under `limits` until `shutdown` completes, then waits for
/// the requests in hand.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ListenerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let io = TokioIo::new(stream);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("gateway_connections_refused_total").increment(1);
            tokio::spawn(refuse(io, http.clone()));
            continue;
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            handle(router.clone(), request, remote, limits.body_timeout)
        });
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A connection over the cap gets one 503 and is closed.
async fn refuse(io: TokioIo<tokio::net::TcpStream>, mut http: hyper::server::conn::http1::Builder) {
    let service = hyper::service::service_fn(|_: Request<Incoming>| async {
        let mut response = GatewayError::Overloaded.into_response();
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        Ok::<_, Infallible>(response)
    });
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        http.keep_alive(false).serve_connection(io, service),
    )
    .await;
}

async fn handle(
    router: Router,
    request: Request<Incoming>,
    remote: SocketAddr,
    body_timeout: Duration,
) -> Result<Response<Body>, Infallible> {
    let expired = Arc::new(AtomicBool::new(false));
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(ConnectInfo(remote));
    let body = DeadlineBody {
        body,
        deadline: Box::pin(tokio::time::sleep_until(Instant::now() + body_timeout)),
        expired: expired.clone(),
    };
    let response = router
        .oneshot(Request::from_parts(parts, Body::new(body)))
        .await;
    let Ok(response) = response;
    if expired.load(Ordering::Relaxed) {
        // Whatever the handler made of a body cut short, the client is told why, and the
        // connection (its body half read) is not reused.
        metrics::counter!("gateway_body_timeouts_total").increment(1);
        let mut response = GatewayError::BodyTimeout(body_timeout).into_response();
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        return Ok(response);
    }
    Ok(response)
}

/// A request body that must be complete by a deadline; after it, it only yields an error.
struct DeadlineBody {
    body: Incoming,
    deadline: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.body.is_end_stream() {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Pin::new(&mut self.body)
            .poll_frame(cx)
            .map_err(|e| Box::new(e) as Self::Error)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
