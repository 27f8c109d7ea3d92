//! The front door: who may knock, and how often.
//!
//! Per-IP rate limits on the widget and webhook routes (429 with `Retry-After`), an
//! optional allow-list of networks for webhooks, a temporary block for an address that
//! keeps failing verification, a security log line and a metric for every rejection, and
//! an alert to the operators when verification failures pile up.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use lru::LruCache;
use serde_json::json;

use crate::client_addr::{TrustedProxies, limit_key};
use crate::error::GatewayError;

/// How the front door is set.
#[derive(Debug, Clone)]
pub struct FrontDoorConfig {
    /// Requests per second and address on the widget API.
    pub widget_per_second: u32,
    /// Requests per second and address on the webhook routes.
    pub webhook_per_second: u32,
    /// Requests per second and address on the admin API.
    pub admin_per_second: u32,
    /// When set, only these networks may post webhooks.
    pub webhook_allow: Vec<IpNet>,
    /// The reverse proxies whose forwarding header names the client.
    pub trusted_proxies: TrustedProxies,
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
    /// Addresses (IPv6: /64s) whose limits and failures are remembered at once; beyond it
    /// the least recently seen are forgotten, so a stream of fresh addresses costs no memory.
    pub max_tracked_addresses: usize,
}

impl Default for FrontDoorConfig {
    fn default() -> Self {
        Self {
            widget_per_second: 20,
            webhook_per_second: 200,
            admin_per_second: 50,
            webhook_allow: Vec::new(),
            trusted_proxies: TrustedProxies::default(),
            block_after: 20,
            block_window: Duration::from_secs(600),
            block_for: Duration::from_secs(900),
            alert_threshold: 50,
            alert_window: Duration::from_secs(300),
            alert_url: None,
            max_tracked_addresses: 100_000,
        }
    }
}

#[derive(Default)]
struct Failures {
    recent: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

/// A per-address rate limit whose memory is bounded: an address whose allowance has
/// refilled is indistinguishable from one never seen and is dropped (`retain_recent`);
/// should more than `cap` addresses still be mid-burst, all are forgotten at once — they
/// start again with a full allowance, which is harmless, where growing without end is not.
struct Limiter {
    quota: Quota,
    cap: usize,
    keyed: RwLock<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
}

impl Limiter {
    fn new(per_second: u32, cap: usize) -> Self {
        let quota = Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN));
        Self {
            quota,
            cap: cap.max(1),
            keyed: RwLock::new(Arc::new(RateLimiter::keyed(quota))),
        }
    }

    fn current(&self) -> Arc<DefaultKeyedRateLimiter<IpAddr>> {
        self.keyed
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// `None` when `key` may go on, else how long it should wait.
    fn check(&self, key: IpAddr) -> Option<Duration> {
        let keyed = self.current();
        let wait = keyed
            .check_key(&key)
            .err()
            .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()));
        if keyed.len() > self.cap {
            keyed.retain_recent();
            // Halving leaves room for `cap / 2` new addresses before the next sweep, so
            // the sweep's cost is shared by that many requests.
            if keyed.len() > self.cap / 2 {
                *self
                    .keyed
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Arc::new(RateLimiter::keyed(self.quota));
            }
        }
        wait
    }

    fn len(&self) -> usize {
        self.current().len()
    }
}

pub struct FrontDoor {
    config: FrontDoorConfig,
    /// The storefronts whose pages may call the widget API (the `Origin` check).
    allowed_origins: Vec<String>,
    widget: Limiter,
    webhook: Limiter,
    admin: Limiter,
    failures: Mutex<LruCache<IpAddr, Failures>>,
    all_failures: Mutex<VecDeque<Instant>>,
    last_alert: Mutex<Option<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Which door a request came through (each has its own rate).
#[derive(Debug, Clone, Copy)]
pub enum Door {
    Widget,
    Webhook,
    Admin,
}

impl Door {
    fn rejected_event(self) -> &'static str {
        match self {
            Self::Widget => "widget_rejected",
            Self::Webhook => "webhook_rejected",
            Self::Admin => "admin_rejected",
        }
    }

    fn rejections_metric(self) -> &'static str {
        match self {
            Self::Widget => "gateway_widget_rejections_total",
            Self::Webhook => "gateway_webhook_rejections_total",
            Self::Admin => "gateway_admin_rejections_total",
        }
    }
}

impl FrontDoor {
    pub fn new(config: FrontDoorConfig, allowed_origins: Vec<String>) -> Self {
        let cap = config.max_tracked_addresses.max(1);
        Self {
            allowed_origins,
            widget: Limiter::new(config.widget_per_second, cap),
            webhook: Limiter::new(config.webhook_per_second, cap),
            admin: Limiter::new(config.admin_per_second, cap),
            failures: Mutex::new(LruCache::new(
                NonZeroUsize::new(cap).unwrap_or(NonZeroUsize::MIN),
            )),
            config,
            all_failures: Mutex::new(VecDeque::new()),
            last_alert: Mutex::new(None),
        }
    }

    /// The caller's address: the socket's, or, when the socket is a trusted proxy, the
    /// right-most address in its forwarding header that is not one (see [`crate::client_addr`]).
    pub fn client_ip(&self, headers: &HeaderMap, socket: Option<SocketAddr>) -> IpAddr {
        let peer = socket.map_or(IpAddr::from([0, 0, 0, 0]), |s| s.ip());
        self.config.trusted_proxies.client(headers, peer)
    }

    fn limiter(&self, door: Door) -> &Limiter {
        match door {
            Door::Widget => &self.widget,
            Door::Webhook => &self.webhook,
            Door::Admin => &self.admin,
        }
    }

    /// `None` when `ip` may go on through `door`, else how long it should wait.
    pub fn rate_limited(&self, door: Door, ip: IpAddr) -> Option<Duration> {
        self.limiter(door).check(limit_key(ip))
    }

    /// How many addresses the door remembers now, across its limits and failure counts.
    pub fn tracked_addresses(&self) -> usize {
        self.widget.len() + self.webhook.len() + self.admin.len() + lock(&self.failures).len()
    }

    /// Whether `ip` is blocked. Asking counts as seeing it: a blocked address that keeps
    /// knocking stays the most recently seen, so a crowd of others cannot push it out.
    pub fn blocked(&self, ip: IpAddr) -> bool {
        lock(&self.failures)
            .get(&limit_key(ip))
            .and_then(|f| f.blocked_until)
            .is_some_and(|until| until > Instant::now())
    }

    /// Logs and counts a refusal at the door that is not a failed verification (rate
    /// limit, address not allowed, blocked).
    pub fn refused(&self, door: Door, ip: IpAddr, reason: &'static str) {
        let event = door.rejected_event();
        tracing::warn!(security_event = event, reason, ip = %ip, "request rejected at the door");
        metrics::counter!(door.rejections_metric(), "reason" => reason).increment(1);
    }

    /// Records a request that failed verification (a webhook's signature or token, an
    /// admin credential): the security log, the metric, the per-address count (which may
    /// block the address) and the alert threshold.
    pub fn reject(&self, door: Door, ip: IpAddr, reason: &'static str, key_id: Option<&str>) {
        let event = door.rejected_event();
        tracing::warn!(security_event = event, reason, ip = %ip, key_id = key_id.unwrap_or(""), "request failed verification");
        metrics::counter!(door.rejections_metric(), "reason" => reason).increment(1);
        let now = Instant::now();
        {
            let mut failures = lock(&self.failures);
            let f = failures.get_or_insert_mut(limit_key(ip), Failures::default);
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
    if let Some(retry_after) = door.rate_limited(Door::Widget, ip) {
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
        door.refused(Door::Webhook, ip, "address_not_allowed");
        return GatewayError::AddressNotAllowed.into_response();
    }
    guarded(&door, Door::Webhook, ip, request, next).await
}

/// The admin API's door: the same block and a rate limit of its own, so a bearer token or
/// a signature cannot be guessed online; failed credentials count toward the block like
/// failed webhook signatures (see `admin`).
pub async fn admin_guard(
    State(door): State<Arc<FrontDoor>>,
    request: Request,
    next: Next,
) -> Response {
    let ip = door.client_ip(request.headers(), socket(&request));
    guarded(&door, Door::Admin, ip, request, next).await
}

async fn guarded(
    door: &FrontDoor,
    which: Door,
    ip: IpAddr,
    mut request: Request,
    next: Next,
) -> Response {
    if door.blocked(ip) {
        door.refused(which, ip, "blocked");
        return GatewayError::Blocked.into_response();
    }
    if let Some(retry_after) = door.rate_limited(which, ip) {
        door.refused(which, ip, "rate_limited");
        return GatewayError::RateLimited { retry_after }.into_response();
    }
    request.extensions_mut().insert(ClientIp(ip));
    next.run(request).await
}

/// The caller's address, as the door saw it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

#[cfg(test)]
mod tests {
    use super::*;

    fn door(cap: usize) -> FrontDoor {
        FrontDoor::new(
            FrontDoorConfig {
                max_tracked_addresses: cap,
                alert_threshold: 0,
                ..FrontDoorConfig::default()
            },
            Vec::new(),
        )
    }

    #[test]
    fn a_stream_of_fresh_addresses_is_remembered_within_the_cap() {
        let cap = 10_000;
        let door = door(cap);
        let mut most = 0;
        for i in 0..100_000u32 {
            let ip = IpAddr::from((0xC633_0000u32 + i).to_be_bytes());
            for which in [Door::Widget, Door::Webhook, Door::Admin] {
                door.rate_limited(which, ip);
            }
            door.reject(Door::Webhook, ip, "bad_signature", None);
            most = most.max(door.tracked_addresses());
        }
        // Three limits and the failure counts, each at most `cap` (one over, for an
        // instant, before its sweep).
        assert!(most <= 4 * (cap + 1), "{most} remembered at once");
        assert!(door.tracked_addresses() <= 4 * (cap + 1));
    }

    #[test]
    fn the_block_holds_for_a_whole_ipv6_64_and_is_kept_while_others_come_and_go() {
        let door = door(100);
        for i in 0..20u16 {
            let ip = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 7, 7, i, 0, 0, 1));
            door.reject(Door::Webhook, ip, "bad_signature", None);
        }
        let sibling = "2001:db8:7:7:ffff::9".parse().expect("ip");
        assert!(door.blocked(sibling), "every address of the /64 is blocked");
        assert!(!door.blocked("2001:db8:7:8::1".parse().expect("ip")));
        // The blocked /64 keeps knocking, so five times the cap of passers-by do not push
        // it out.
        for i in 0..500u32 {
            door.reject(
                Door::Webhook,
                IpAddr::from((0x0A00_0000u32 + i).to_be_bytes()),
                "x",
                None,
            );
            assert!(door.blocked(sibling));
        }
    }

    #[test]
    fn a_rate_limit_counts_a_64_as_one_client() {
        let door = FrontDoor::new(
            FrontDoorConfig {
                widget_per_second: 3,
                ..FrontDoorConfig::default()
            },
            Vec::new(),
        );
        let limited = (0..10u16)
            .filter(|i| {
                let ip = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, *i, 0, 0, 1));
                door.rate_limited(Door::Widget, ip).is_some()
            })
            .count();
        assert_eq!(
            limited, 7,
            "three of the ten addresses of one /64 get through"
        );
    }
}
