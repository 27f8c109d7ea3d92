//! The front door: who may knock, and how often.
//!
//! Per-IP rate limits on the widget and webhook routes (429 with `Retry-After`), an
//! optional allow-list of networks for webhooks, a temporary block for an address that
//! keeps failing verification, a security log line and a metric for every rejection, and
//! an alert to the operators when verification failures pile up.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use serde_json::json;

use crate::error::GatewayError;

/// How the front door is set.
#[derive(Debug, Clone)]
pub struct FrontDoorConfig {
    /// Requests per second and IP on the widget API.
    pub widget_per_second: u32,
    /// Requests per second and IP on the webhook routes.
    pub webhook_per_second: u32,
    /// When set, only these networks may post webhooks.
    pub webhook_allow: Vec<IpNet>,
    /// Use the first `X-Forwarded-For` address (behind a proxy you trust).
    pub trust_forwarded_for: bool,
    /// Verification failures within `block_window` that block an address...
    pub block_after: u32,
    pub block_window: Duration,
    /// ... for this long.
    pub block_for: Duration,
    /// Verification failures (from anywhere) within `alert_window` that alert the operators.
    pub alert_threshold: u32,
    pub alert_window: Duration,
    /// Where the alert is posted (a small JSON document); it is also logged at error level.
    pub alert_url: Option<String>,
}

impl Default for FrontDoorConfig {
    fn default() -> Self {
        Self {
            widget_per_second: 20,
            webhook_per_second: 200,
            webhook_allow: Vec::new(),
            trust_forwarded_for: false,
            block_after: 20,
            block_window: Duration::from_secs(600),
            block_for: Duration::from_secs(900),
            alert_threshold: 50,
            alert_window: Duration::from_secs(300),
            alert_url: None,
        }
    }
}

#[derive(Default)]
struct Failures {
    recent: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

pub struct FrontDoor {
    config: FrontDoorConfig,
    /// The storefronts whose pages may call the widget API (the `Origin` check).
    allowed_origins: Vec<String>,
    widget: DefaultKeyedRateLimiter<IpAddr>,
    webhook: DefaultKeyedRateLimiter<IpAddr>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    all_failures: Mutex<VecDeque<Instant>>,
    last_alert: Mutex<Option<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn quota(per_second: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN))
}

impl FrontDoor {
    pub fn new(config: FrontDoorConfig, allowed_origins: Vec<String>) -> Self {
        Self {
            allowed_origins,
            widget: RateLimiter::keyed(quota(config.widget_per_second)),
            webhook: RateLimiter::keyed(quota(config.webhook_per_second)),
            config,
            failures: Mutex::new(HashMap::new()),
            all_failures: Mutex::new(VecDeque::new()),
            last_alert: Mutex::new(None),
        }
    }

    /// The caller's address: the socket's, or (only when configured) the proxy's
    /// `X-Forwarded-For` — a header anyone can write otherwise.
    pub fn client_ip(&self, headers: &HeaderMap, socket: Option<SocketAddr>) -> IpAddr {
        if self.config.trust_forwarded_for
            && let Some(ip) = headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok())
        {
            return ip;
        }
        socket.map_or(IpAddr::from([0, 0, 0, 0]), |s| s.ip())
    }

    fn retry_after(limiter: &DefaultKeyedRateLimiter<IpAddr>, ip: &IpAddr) -> Option<Duration> {
        limiter
            .check_key(ip)
            .err()
            .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    fn blocked(&self, ip: &IpAddr) -> bool {
        lock(&self.failures)
            .get(ip)
            .and_then(|f| f.blocked_until)
            .is_some_and(|until| until > Instant::now())
    }

    /// Logs and counts a refusal at the door that is not a failed verification (rate
    /// limit, address not allowed, blocked).
    pub fn refused(&self, ip: IpAddr, reason: &'static str) {
        tracing::warn!(security_event = "webhook_rejected", reason, ip = %ip, "webhook rejected");
        metrics::counter!("gateway_webhook_rejections_total", "reason" => reason).increment(1);
    }

    /// Records a webhook that failed verification: the security log, the metric, the
    /// per-address count (which may block the address) and the alert threshold.
    pub fn reject(&self, ip: IpAddr, reason: &'static str, key_id: Option<&str>) {
        tracing::warn!(security_event = "webhook_rejected", reason, ip = %ip, key_id = key_id.unwrap_or(""), "webhook rejected");
        metrics::counter!("gateway_webhook_rejections_total", "reason" => reason).increment(1);
        let now = Instant::now();
        {
            let mut failures = lock(&self.failures);
            let f = failures.entry(ip).or_default();
            while f
                .recent
                .front()
                .is_some_and(|t| now.duration_since(*t) > self.config.block_window)
            {
                f.recent.pop_front();
            }
            f.recent.push_back(now);
            if self.config.block_after > 0
                && f.recent.len() >= self.config.block_after as usize
                && f.blocked_until.is_none_or(|u| u <= now)
            {
                f.blocked_until = Some(now + self.config.block_for);
                tracing::warn!(security_event = "ip_blocked", ip = %ip, seconds = self.config.block_for.as_secs(), "address blocked after repeated verification failures");
                metrics::counter!("gateway_blocked_ips_total").increment(1);
            }
        }
        let count = {
            let mut all = lock(&self.all_failures);
            while all
                .front()
                .is_some_and(|t| now.duration_since(*t) > self.config.alert_window)
            {
                all.pop_front();
            }
            all.push_back(now);
            all.len()
        };
        if self.config.alert_threshold > 0 && count >= self.config.alert_threshold as usize {
            let mut last = lock(&self.last_alert);
            if last.is_none_or(|t| now.duration_since(t) > self.config.alert_window) {
                *last = Some(now);
                tracing::error!(
                    security_event = "alert",
                    failures = count,
                    window_secs = self.config.alert_window.as_secs(),
                    "webhook verification failures passed the alert threshold"
                );
                if let Some(url) = self.config.alert_url.clone() {
                    let body = json!({
                        "alert": "webhook_verification_failures",
                        "failures": count,
                        "window_seconds": self.config.alert_window.as_secs(),
                        "last_reason": reason,
                        "last_ip": ip.to_string(),
                    });
                    tokio::spawn(async move {
                        let client = reqwest::Client::new();
                        if let Err(e) = client
                            .post(&url)
                            .json(&body)
                            .timeout(Duration::from_secs(5))
                            .send()
                            .await
                        {
                            tracing::error!("the alert could not be sent: {}", e.without_url());
                        }
                    });
                }
            }
        }
    }
}

fn socket(request: &Request) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// The widget API's door: a browser may call it only from a configured storefront (the
/// `Origin` check is the CSRF protection: CORS alone hides the answer but not the side
/// effect), and each address has a rate limit.
pub async fn widget_guard(
    State(door): State<Arc<FrontDoor>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN)
        && !door
            .allowed_origins
            .iter()
            .any(|o| o.as_bytes() == origin.as_bytes())
    {
        metrics::counter!("gateway_rejected_origin_total").increment(1);
        tracing::warn!(security_event = "origin_refused", origin = ?origin, "widget request from an origin that is not a configured storefront");
        return GatewayError::OriginNotAllowed.into_response();
    }
    let ip = door.client_ip(request.headers(), socket(&request));
    if let Some(retry_after) = FrontDoor::retry_after(&door.widget, &ip) {
        metrics::counter!("gateway_rate_limited_total", "route" => "widget").increment(1);
        return GatewayError::RateLimited { retry_after }.into_response();
    }
    next.run(request).await
}

/// The webhook routes' door: allow-list, block, rate limit.
pub async fn webhook_guard(
    State(door): State<Arc<FrontDoor>>,
    request: Request,
    next: Next,
) -> Response {
    let ip = door.client_ip(request.headers(), socket(&request));
    if !door.config.webhook_allow.is_empty()
        && !door
            .config
            .webhook_allow
            .iter()
            .any(|net| net.contains(&ip))
    {
        door.refused(ip, "address_not_allowed");
        return GatewayError::AddressNotAllowed.into_response();
    }
    if door.blocked(&ip) {
        door.refused(ip, "blocked");
        return GatewayError::Blocked.into_response();
    }
    if let Some(retry_after) = FrontDoor::retry_after(&door.webhook, &ip) {
        door.refused(ip, "rate_limited");
        return GatewayError::RateLimited { retry_after }.into_response();
    }
    let mut request = request;
    request.extensions_mut().insert(ClientIp(ip));
    next.run(request).await
}

/// The caller's address, as the door saw it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);
