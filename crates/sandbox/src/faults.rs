//! Fault injection, per Klarna endpoint, set at start-up (`--fault`) and at run time
//! (`PUT /_sandbox/faults/{op}`): added latency, a fraction of 5xx, 429 with reset headers,
//! timeouts (accepted and never answered), dropped connections, responses lost after the
//! work was done — and Klarna's playground rate limits.
//!
//! Besides fractions, `next` lists exact faults for the next requests, in order, so a test
//! can say "the next capture times out after it was processed".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::reply::KlarnaError;

/// One fault, as written in `next` and on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer normally.
    Pass,
    /// Answer this 5xx without doing the work.
    Status(u16),
    /// 429 with `Retry-After`/`X-Ratelimit-Reset` of this many seconds.
    RateLimited(u64),
    /// Accept the request and never answer.
    Timeout,
    /// Close the connection without a complete answer.
    Drop,
    /// Do the work, then never answer (the answer is lost on the way back).
    LoseResponse,
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "ok" | "pass" => Ok(Self::Pass),
            "timeout" => Ok(Self::Timeout),
            "drop" => Ok(Self::Drop),
            "lose_response" => Ok(Self::LoseResponse),
            "429" => Ok(Self::RateLimited(1)),
            other => {
                if let Some(reset) = other.strip_prefix("429:") {
                    return reset
                        .parse()
                        .map(Self::RateLimited)
                        .map_err(|_| format!("bad reset seconds in {other:?}"));
                }
                match other.parse::<u16>() {
                    Ok(s) if (500..=599).contains(&s) => Ok(Self::Status(s)),
                    _ => Err(format!(
                        "unknown fault {other:?}: use ok, timeout, drop, lose_response, 429, 429:<seconds> or a 5xx status"
                    )),
                }
            }
        }
    }
}

/// The faults of one endpoint. Fractions are drawn per request; `next` is used first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSpec {
    pub latency_ms: u64,
    /// Fraction answered with `error_status` (default 503).
    pub error_rate: f64,
    pub error_status: Option<u16>,
    /// Fraction answered 429 with a reset of `reset_seconds` (default 1).
    pub rate_limited_rate: f64,
    pub reset_seconds: Option<u64>,
    pub timeout_rate: f64,
    pub drop_rate: f64,
    pub lose_response_rate: f64,
    /// Exact faults for the next requests: `["timeout", "503", "lose_response", "429:2"]`.
    pub next: Vec<String>,
}

impl FaultSpec {
    /// `latency_ms=100,error_rate=0.1,next=503+timeout` (the `--fault` syntax).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut out = Self::default();
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not key=value"))?;
            let num = |v: &str| {
                v.parse::<f64>()
                    .map_err(|_| format!("{key}: {v:?} is not a number"))
            };
            match key.trim() {
                "latency_ms" => out.latency_ms = num(value)? as u64,
                "error_rate" => out.error_rate = num(value)?,
                "error_status" => out.error_status = Some(num(value)? as u16),
                "rate_limited_rate" => out.rate_limited_rate = num(value)?,
                "reset_seconds" => out.reset_seconds = Some(num(value)? as u64),
                "timeout_rate" => out.timeout_rate = num(value)?,
                "drop_rate" => out.drop_rate = num(value)?,
                "lose_response_rate" => out.lose_response_rate = num(value)?,
                "next" => out.next = value.split('+').map(str::to_owned).collect(),
                other => return Err(format!("unknown fault setting {other:?}")),
            }
        }
        out.validate()?;
        Ok(out)
    }

    pub fn validate(&self) -> Result<(), String> {
        for f in &self.next {
            f.parse::<Fault>()?;
        }
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("rate_limited_rate", self.rate_limited_rate),
            ("timeout_rate", self.timeout_rate),
            ("drop_rate", self.drop_rate),
            ("lose_response_rate", self.lose_response_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1"));
            }
        }
        Ok(())
    }

    fn draw(&mut self, rng: &mut fastrand::Rng) -> Fault {
        if !self.next.is_empty() {
            let next = self.next.remove(0);
            return next.parse().unwrap_or(Fault::Pass);
        }
        let roll = rng.f64();
        let mut edge = 0.0;
        for (rate, fault) in [
            (
                self.error_rate,
                Fault::Status(self.error_status.unwrap_or(503)),
            ),
            (
                self.rate_limited_rate,
                Fault::RateLimited(self.reset_seconds.unwrap_or(1)),
            ),
            (self.timeout_rate, Fault::Timeout),
            (self.drop_rate, Fault::Drop),
            (self.lose_response_rate, Fault::LoseResponse),
        ] {
            edge += rate;
            if roll < edge {
                return fault;
            }
        }
        Fault::Pass
    }
}

/// Klarna's published rate limits, per merchant and operation class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RateLimits {
    Off,
    /// Create session 5/s, everything else 50/s.
    Playground,
    /// Create session 40/s, everything else 200/s.
    Production,
}

impl RateLimits {
    fn limit(self, op: &str) -> Option<u32> {
        let session = op == "create_session";
        match self {
            Self::Off => None,
            Self::Playground => Some(if session { 5 } else { 50 }),
            Self::Production => Some(if session { 40 } else { 200 }),
        }
    }
}

/// The rate limits in force, and per class (create-session or not) the current
/// one-second window: when it started and how many requests it saw.
#[derive(Debug)]
struct Limiter {
    limits: RateLimits,
    windows: HashMap<bool, (Instant, u32)>,
}

/// Every endpoint's faults, the rate limiter and the request counters.
#[derive(Debug)]
pub struct Faults {
    specs: Mutex<HashMap<String, FaultSpec>>,
    rng: Mutex<fastrand::Rng>,
    limits: Mutex<Limiter>,
    counts: Mutex<HashMap<&'static str, u64>>,
}

impl Faults {
    pub fn new(seed: u64, limits: RateLimits, specs: HashMap<String, FaultSpec>) -> Self {
        Self {
            specs: Mutex::new(specs),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            limits: Mutex::new(Limiter {
                limits,
                windows: HashMap::new(),
            }),
            counts: Mutex::new(HashMap::new()),
        }
    }

    pub fn set(&self, op: &str, spec: FaultSpec) {
        lock(&self.specs).insert(op.to_owned(), spec);
    }

    pub fn clear(&self) {
        lock(&self.specs).clear();
    }

    pub fn all(&self) -> HashMap<String, FaultSpec> {
        lock(&self.specs).clone()
    }

    pub fn set_rate_limits(&self, limits: RateLimits) {
        *lock(&self.limits) = Limiter {
            limits,
            windows: HashMap::new(),
        };
    }

    /// Requests received per endpoint.
    pub fn counts(&self) -> HashMap<&'static str, u64> {
        lock(&self.counts).clone()
    }

    pub fn count(&self, op: &'static str) -> u64 {
        lock(&self.counts).get(op).copied().unwrap_or(0)
    }

    fn record(&self, op: &'static str) {
        *lock(&self.counts).entry(op).or_insert(0) += 1;
    }

    fn draw(&self, op: &'static str) -> (Duration, Fault) {
        let mut specs = lock(&self.specs);
        let mut rng = lock(&self.rng);
        // An endpoint's own spec wins over the catch-all `*`, which is Klarna's: Odoo's
        // routes fail only when named.
        let key = if specs.contains_key(op) || ODOO_OPS.contains(&op) {
            op
        } else {
            "*"
        };
        match specs.get_mut(key) {
            Some(spec) => (Duration::from_millis(spec.latency_ms), spec.draw(&mut rng)),
            None => (Duration::ZERO, Fault::Pass),
        }
    }

    /// `Some(reset)` when this request is over the rate limit.
    fn over_limit(&self, op: &str) -> Option<u64> {
        let mut limiter = lock(&self.limits);
        let limit = limiter.limits.limit(op)?;
        let class = op == "create_session";
        let now = Instant::now();
        let window = limiter.windows.entry(class).or_insert((now, 0));
        if now.duration_since(window.0) >= Duration::from_secs(1) {
            *window = (now, 0);
        }
        window.1 += 1;
        (window.1 > limit).then_some(1)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The Odoo stand-in's routes that faults can name (an Odoo outage): the addon's route
/// for the gateway's updates and JSON-RPC. Neither the catch-all `*` nor Klarna's rate
/// limits apply to them.
pub const ODOO_OPS: [&str; 2] = ["odoo_update", "odoo_jsonrpc"];

/// The Klarna operation a request is for, the Odoo route ([`ODOO_OPS`]), or `None` for
/// the sandbox's other routes.
pub fn op_of(method: &Method, path: &str) -> Option<&'static str> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let m = method.as_str();
    Some(match (m, parts.as_slice()) {
        ("POST", ["payment", "klarna", "gateway"]) => "odoo_update",
        ("POST", ["jsonrpc"]) => "odoo_jsonrpc",
        ("POST", ["oauth2", "token"]) => "token",
        // The SDK script itself (for start-up tests and the time-to-ready benchmark).
        ("GET", ["kp", "lib", "v1", "api.js"]) => "sdk_script",
        ("POST", ["payments", "v1", "sessions"]) => "create_session",
        ("GET", ["payments", "v1", "sessions", _]) => "read_session",
        ("POST", ["payments", "v1", "sessions", _]) => "update_session",
        ("POST", ["payments", "v1", "authorizations", _, "order"]) => "create_order",
        ("DELETE", ["payments", "v1", "authorizations", _]) => "cancel_authorization",
        ("POST", ["payments", "v1", "authorizations", _, "customer-token"]) => "customer_token",
        ("GET", ["ordermanagement", "v1", "orders", _]) => "get_order",
        ("POST", ["ordermanagement", "v1", "orders", _, "captures"]) => "capture",
        ("GET", ["ordermanagement", "v1", "orders", _, "captures"]) => "list_captures",
        ("GET", ["ordermanagement", "v1", "orders", _, "captures", _]) => "get_capture",
        (
            "POST",
            [
                "ordermanagement",
                "v1",
                "orders",
                _,
                "captures",
                _,
                "shipping-info",
            ],
        ) => "add_shipping_info",
        ("POST", ["ordermanagement", "v1", "orders", _, "refunds"]) => "refund",
        ("GET", ["ordermanagement", "v1", "orders", _, "refunds", _]) => "get_refund",
        ("POST", ["ordermanagement", "v1", "orders", _, "cancel"]) => "cancel_order",
        (
            "POST",
            [
                "ordermanagement",
                "v1",
                "orders",
                _,
                "release-remaining-authorization",
            ],
        ) => "release",
        (
            "POST",
            [
                "ordermanagement",
                "v1",
                "orders",
                _,
                "extend-authorization-time",
            ],
        ) => "extend",
        ("PATCH", ["ordermanagement", "v1", "orders", _, "authorization"]) => {
            "update_authorization"
        }
        ("GET", ["customer-token", "v1", "tokens", _]) => "get_customer_token",
        ("POST", ["customer-token", "v1", "tokens", _, "order"]) => "token_order",
        ("PATCH", ["customer-token", "v1", "tokens", _, "status"]) => "cancel_customer_token",
        _ => return None,
    })
}

/// The middleware that applies an endpoint's faults and the rate limits.
pub async fn layer(State(faults): State<Arc<Faults>>, request: Request, next: Next) -> Response {
    let Some(op) = op_of(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    faults.record(op);
    let odoo = ODOO_OPS.contains(&op);
    if !odoo && let Some(reset) = faults.over_limit(op) {
        return rate_limited(reset, "Rate limit exceeded");
    }
    let (latency, fault) = faults.draw(op);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        Fault::Pass => next.run(request).await,
        // An Odoo that is down answers from its proxy, not in Klarna's format.
        Fault::Status(status) if odoo => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "Service Unavailable (injected by the sandbox)",
        )
            .into_response(),
        Fault::Status(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let code = if status == StatusCode::INTERNAL_SERVER_ERROR {
                "INTERNAL_SERVER_ERROR"
            } else {
                "TEMPORARILY_UNAVAILABLE"
            };
            KlarnaError::new(status, code, "Injected by the sandbox").into_response()
        }
        Fault::RateLimited(reset) => rate_limited(reset, "Injected by the sandbox"),
        Fault::Timeout => std::future::pending().await,
        Fault::Drop => {
            // A body that fails at once: the connection closes before an answer is
            // complete, as when a proxy drops it.
            let stream = futures::stream::once(async {
                Err::<bytes::Bytes, std::io::Error>(std::io::Error::other("dropped by the sandbox"))
            });
            Response::new(Body::from_stream(stream))
        }
        Fault::LoseResponse => {
            let _done = next.run(request).await;
            std::future::pending().await
        }
    }
}

fn rate_limited(reset: u64, message: &str) -> Response {
    let mut response =
        KlarnaError::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", message)
            .into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        ("retry-after", reset.to_string()),
        ("x-ratelimit-reset", reset.to_string()),
        ("x-ratelimit-remaining", "0".to_owned()),
    ] {
        if let Ok(v) = value.parse() {
            headers.insert(name, v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_from_the_command_line_syntax() {
        let spec = FaultSpec::parse("latency_ms=100,error_rate=0.25,next=503+timeout+429:2")
            .expect("parses");
        assert_eq!(spec.latency_ms, 100);
        assert_eq!(spec.next, ["503", "timeout", "429:2"]);
        assert!(FaultSpec::parse("error_rate=2").is_err());
        assert!(FaultSpec::parse("next=404").is_err());
        assert!(FaultSpec::parse("bogus=1").is_err());
    }

    #[test]
    fn next_faults_come_first_then_fractions() {
        let mut spec = FaultSpec::parse("next=503+drop,error_rate=1").expect("parses");
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(spec.draw(&mut rng), Fault::Status(503));
        assert_eq!(spec.draw(&mut rng), Fault::Drop);
        assert_eq!(spec.draw(&mut rng), Fault::Status(503));
    }

    #[test]
    fn routes_name_their_operation() {
        assert_eq!(
            op_of(&Method::POST, "/ordermanagement/v1/orders/abc/captures"),
            Some("capture")
        );
        assert_eq!(
            op_of(&Method::GET, "/ordermanagement/v1/orders/abc/captures/x"),
            Some("get_capture")
        );
        assert_eq!(
            op_of(&Method::POST, "/payments/v1/authorizations/t/order"),
            Some("create_order")
        );
        assert_eq!(op_of(&Method::GET, "/shop"), None);
    }
}
