//! The client: every Payments and Order Management call, each sent through one loop that
//! authenticates, retries by [`crate::retry::decide`], and logs without secrets.

use std::sync::Arc;
use std::time::{Duration, Instant};

use klarna_types::klarna::{
    Capture, CaptureRequest, CustomerToken, CustomerTokenCreated, CustomerTokenRequest, ErrorBody,
    Order, OrderBody, OrderCreated, Refund, RefundRequest, Session, SessionCreated, TokenOrder,
    TokenStatus, TokenStatusUpdate, UpdateAuthorization, UpdateShippingInfo,
};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::{AuthGuard, Authenticator};
use crate::config::Config;
use crate::error::{ClientError, ErrorKind};
use crate::retry::{Decision, Failure, Replay, decide, wait_hint};

/// `Klarna-Idempotency-Key` of one logical Order Management write. Keep it (the gateway
/// persists it) and pass the same key to every retry of that write.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// A fresh UUID v4 key.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
    /// A key the caller stored earlier.
    pub fn from_stored(key: impl Into<String>) -> Self {
        Self(key.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for IdempotencyKey {
    fn default() -> Self {
        Self::new()
    }
}

/// One request: where, what, and whether it may be replayed.
struct Call<'a> {
    method: Method,
    /// The real path (may contain an authorization token: never logged).
    path: String,
    /// The path with placeholders, for logs.
    route: &'static str,
    order_id: Option<&'a str>,
    body: Option<Vec<u8>>,
    key: Option<&'a IdempotencyKey>,
    replay: Replay,
}

/// What came back, for the typed methods to read.
struct Answer {
    headers: HeaderMap,
    body: bytes::Bytes,
}

pub struct KlarnaClient {
    http: reqwest::Client,
    base_url: String,
    config: Config,
    auth: Authenticator,
    guard: std::sync::Mutex<AuthGuard>,
    /// Requests actually sent (attempts), for tests and metrics.
    sent: std::sync::atomic::AtomicU64,
}

fn user_agent(config: &Config) -> String {
    let mut ua = format!(
        "klarna-odoo/{} (klarna-gateway; Rust; {}-{})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    if let Some(v) = &config.odoo_version {
        ua.push_str(&format!(" Odoo/{v}"));
    }
    ua
}

impl KlarnaClient {
    pub fn new(config: Config) -> Result<Arc<Self>, ClientError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .user_agent(user_agent(&config))
            .default_headers(headers)
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| ClientError::transport(&e, "client", 1))?;
        Ok(Arc::new(Self {
            http,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            auth: Authenticator::new(config.auth.clone()),
            guard: std::sync::Mutex::new(AuthGuard::new(config.auth_cooldown)),
            config,
            sent: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// Requests sent so far (every attempt counts).
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many OAuth2 tokens were fetched.
    pub fn token_refreshes(&self) -> u64 {
        self.auth.token_refreshes()
    }

    /// Lifts the lock-out after the credentials were corrected.
    pub fn credentials_replaced(&self) {
        self.guard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .reset();
    }

    fn guard_check(&self) -> Result<(), ClientError> {
        let now = Instant::now();
        let guard = self
            .guard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard
            .check(now)
            .map_err(|until| ClientError::locked(until.duration_since(now).as_secs().max(1)))
    }

    fn guard_failure(&self) {
        self.guard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .record_failure(Instant::now());
    }

    async fn execute(&self, call: Call<'_>) -> Result<Answer, ClientError> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            self.guard_check()?;
            let header = match self.auth.header(&self.http).await {
                Ok(h) => h,
                Err(e) if e.kind == ErrorKind::InvalidCredentials => {
                    self.guard_failure();
                    return Err(e);
                }
                Err(e) => return Err(e),
            };
            let mut request = self
                .http
                .request(
                    call.method.clone(),
                    format!("{}{}", self.base_url, call.path),
                )
                .header(AUTHORIZATION, header.expose());
            if let Some(body) = &call.body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            if let Some(key) = call.key {
                request = request.header("Klarna-Idempotency-Key", key.as_str());
            }
            let attempt_started = Instant::now();
            self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    match response.bytes().await {
                        Ok(body) => Ok((status, headers, body)),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            let elapsed_ms =
                u64::try_from(attempt_started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let key = call.key.map_or("", IdempotencyKey::as_str);
            match outcome {
                Ok((status, headers, body)) => {
                    let correlation_id = headers
                        .get("klarna-correlation-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    tracing::info!(
                        method = %call.method,
                        route = call.route,
                        order_id = call.order_id.unwrap_or(""),
                        status = status.as_u16(),
                        elapsed_ms,
                        attempt,
                        correlation_id = %correlation_id,
                        idempotency_key = key,
                        "klarna"
                    );
                    metrics::histogram!("klarna_request_seconds", "route" => call.route)
                        .record(attempt_started.elapsed().as_secs_f64());
                    if status.is_success() {
                        metrics::counter!("klarna_requests_total", "route" => call.route, "status" => status.as_u16().to_string()).increment(1);
                        return Ok(Answer { headers, body });
                    }
                    let code = serde_json::from_slice::<ErrorBody>(&body)
                        .ok()
                        .map(|b| b.error_code)
                        .filter(|c| !c.is_empty())
                        .unwrap_or_else(|| status.as_u16().to_string());
                    metrics::counter!("klarna_requests_total", "route" => call.route, "status" => status.as_u16().to_string()).increment(1);
                    metrics::counter!("klarna_errors_total", "route" => call.route, "code" => code)
                        .increment(1);
                    if status == StatusCode::UNAUTHORIZED {
                        self.guard_failure();
                        self.auth.invalidate().await;
                        let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
                        return Err(ClientError::from_status(status, parsed, attempt));
                    }
                    let f = Failure::Status {
                        status: status.as_u16(),
                        wait: wait_hint(&headers),
                    };
                    match self.next(f, &call, attempt, started) {
                        Some(delay) => {
                            metrics::counter!("klarna_retries_total", "route" => call.route)
                                .increment(1);
                            tokio::time::sleep(delay).await;
                            continue;
                        }
                        None => {
                            let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
                            return Err(ClientError::from_status(status, parsed, attempt));
                        }
                    }
                }
                Err(e) => {
                    let f = if e.is_connect() {
                        Failure::Connect
                    } else {
                        Failure::Timeout
                    };
                    tracing::warn!(
                        method = %call.method,
                        route = call.route,
                        order_id = call.order_id.unwrap_or(""),
                        elapsed_ms,
                        attempt,
                        idempotency_key = key,
                        failure = ?f,
                        "klarna request failed"
                    );
                    metrics::counter!("klarna_errors_total", "route" => call.route, "code" => if f == Failure::Connect { "connect" } else { "timeout" }).increment(1);
                    match self.next(f, &call, attempt, started) {
                        Some(delay) => {
                            metrics::counter!("klarna_retries_total", "route" => call.route)
                                .increment(1);
                            tokio::time::sleep(delay).await;
                            continue;
                        }
                        None => return Err(ClientError::transport(&e, call.route, attempt)),
                    }
                }
            }
        }
    }

    fn next(
        &self,
        f: Failure,
        call: &Call<'_>,
        attempt: u32,
        started: Instant,
    ) -> Option<Duration> {
        match decide(
            f,
            call.replay,
            attempt,
            started.elapsed(),
            &self.config.retry,
            fastrand::f64(),
        ) {
            Decision::Retry(d) => Some(d),
            Decision::Stop => None,
        }
    }

    async fn json<B: Serialize, T: DeserializeOwned>(
        &self,
        call: Call<'_>,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let route = call.route;
        let call = Call {
            body: body.map(|b| serde_json::to_vec(b).unwrap_or_default()),
            ..call
        };
        let answer = self.execute(call).await?;
        serde_json::from_slice(&answer.body)
            .map_err(|e| ClientError::decode(route, &format!("unexpected shape ({e})")))
    }

    async fn empty<B: Serialize>(
        &self,
        call: Call<'_>,
        body: Option<&B>,
    ) -> Result<Answer, ClientError> {
        let call = Call {
            body: body.map(|b| serde_json::to_vec(b).unwrap_or_default()),
            ..call
        };
        self.execute(call).await
    }

    fn call<'a>(method: Method, path: String, route: &'static str, replay: Replay) -> Call<'a> {
        Call {
            method,
            path,
            route,
            order_id: None,
            body: None,
            key: None,
            replay,
        }
    }

    fn om<'a>(
        method: Method,
        order_id: &'a str,
        suffix: &str,
        route: &'static str,
        key: Option<&'a IdempotencyKey>,
    ) -> Call<'a> {
        Call {
            method,
            path: format!("/ordermanagement/v1/orders/{}{suffix}", encode(order_id)),
            route,
            order_id: Some(order_id),
            body: None,
            key,
            replay: Replay::Safe,
        }
    }

    // ---- Payments API v1 ----------------------------------------------------------

    /// `POST /payments/v1/sessions`. A duplicate session from a retry is harmless.
    pub async fn create_session(&self, body: &OrderBody) -> Result<SessionCreated, ClientError> {
        let call = Self::call(
            Method::POST,
            "/payments/v1/sessions".into(),
            "/payments/v1/sessions",
            Replay::Safe,
        );
        self.json(call, Some(body)).await
    }

    /// `GET /payments/v1/sessions/{session_id}`
    pub async fn read_session(&self, session_id: &str) -> Result<Session, ClientError> {
        let call = Self::call(
            Method::GET,
            format!("/payments/v1/sessions/{}", encode(session_id)),
            "/payments/v1/sessions/{id}",
            Replay::Safe,
        );
        self.json::<(), _>(call, None).await
    }

    /// `POST /payments/v1/sessions/{session_id}`: the cart changed.
    pub async fn update_session(
        &self,
        session_id: &str,
        body: &OrderBody,
    ) -> Result<(), ClientError> {
        let call = Self::call(
            Method::POST,
            format!("/payments/v1/sessions/{}", encode(session_id)),
            "/payments/v1/sessions/{id}",
            Replay::Safe,
        );
        self.empty(call, Some(body)).await.map(|_| ())
    }

    /// `POST /payments/v1/authorizations/{token}/order`. Klarna cannot deduplicate it, so
    /// it is retried only when it certainly was not processed.
    pub async fn create_order(
        &self,
        authorization_token: &str,
        body: &OrderBody,
    ) -> Result<OrderCreated, ClientError> {
        let call = Self::call(
            Method::POST,
            format!(
                "/payments/v1/authorizations/{}/order",
                encode(authorization_token)
            ),
            "/payments/v1/authorizations/{token}/order",
            Replay::NotProcessedOnly,
        );
        self.json(call, Some(body)).await
    }

    /// `DELETE /payments/v1/authorizations/{token}`: releases an authorization that will
    /// not become an order.
    pub async fn cancel_authorization(&self, authorization_token: &str) -> Result<(), ClientError> {
        let call = Self::call(
            Method::DELETE,
            format!(
                "/payments/v1/authorizations/{}",
                encode(authorization_token)
            ),
            "/payments/v1/authorizations/{token}",
            Replay::Safe,
        );
        self.empty::<()>(call, None).await.map(|_| ())
    }

    /// `POST /payments/v1/authorizations/{token}/customer-token`
    pub async fn create_customer_token(
        &self,
        authorization_token: &str,
        body: &CustomerTokenRequest,
    ) -> Result<CustomerTokenCreated, ClientError> {
        let call = Self::call(
            Method::POST,
            format!(
                "/payments/v1/authorizations/{}/customer-token",
                encode(authorization_token)
            ),
            "/payments/v1/authorizations/{token}/customer-token",
            Replay::NotProcessedOnly,
        );
        self.json(call, Some(body)).await
    }

    // ---- Customer Token API v1 ----------------------------------------------------

    /// `GET /customer-token/v1/tokens/{token}`: whether a saved payment method can be
    /// charged.
    pub async fn get_customer_token(&self, token: &str) -> Result<CustomerToken, ClientError> {
        let call = Self::call(
            Method::GET,
            format!("/customer-token/v1/tokens/{}", encode(token)),
            "/customer-token/v1/tokens/{token}",
            Replay::Safe,
        );
        self.json::<(), _>(call, None).await
    }

    /// `POST /customer-token/v1/tokens/{token}/order`: charges the saved payment method,
    /// once per `key` (Klarna keeps it 24 hours).
    pub async fn create_token_order(
        &self,
        token: &str,
        body: &TokenOrder,
        key: &IdempotencyKey,
    ) -> Result<OrderCreated, ClientError> {
        let call = Call {
            key: Some(key),
            ..Self::call(
                Method::POST,
                format!("/customer-token/v1/tokens/{}/order", encode(token)),
                "/customer-token/v1/tokens/{token}/order",
                Replay::Safe,
            )
        };
        self.json(call, Some(body)).await
    }

    /// `PATCH /customer-token/v1/tokens/{token}/status` to `CANCELLED`: the saved payment
    /// method can no longer be charged (Klarna answers 202; cancelling again is harmless).
    pub async fn cancel_customer_token(&self, token: &str) -> Result<(), ClientError> {
        let call = Self::call(
            Method::PATCH,
            format!("/customer-token/v1/tokens/{}/status", encode(token)),
            "/customer-token/v1/tokens/{token}/status",
            Replay::Safe,
        );
        let body = TokenStatusUpdate {
            status: TokenStatus::Cancelled,
        };
        self.empty(call, Some(&body)).await.map(|_| ())
    }

    // ---- Order Management API v1 -------------------------------------------------

    /// `GET /ordermanagement/v1/orders/{order_id}`
    pub async fn get_order(&self, order_id: &str) -> Result<Order, ClientError> {
        let call = Self::om(
            Method::GET,
            order_id,
            "",
            "/ordermanagement/v1/orders/{id}",
            None,
        );
        self.json::<(), _>(call, None).await
    }

    /// `POST …/captures`: returns the `Capture-Id` Klarna assigned.
    pub async fn capture(
        &self,
        order_id: &str,
        body: &CaptureRequest,
        key: &IdempotencyKey,
    ) -> Result<String, ClientError> {
        let call = Self::om(
            Method::POST,
            order_id,
            "/captures",
            "/ordermanagement/v1/orders/{id}/captures",
            Some(key),
        );
        let answer = self.empty(call, Some(body)).await?;
        header_id(
            &answer,
            "capture-id",
            "/ordermanagement/v1/orders/{id}/captures",
        )
    }

    /// `GET …/captures`
    pub async fn list_captures(&self, order_id: &str) -> Result<Vec<Capture>, ClientError> {
        let call = Self::om(
            Method::GET,
            order_id,
            "/captures",
            "/ordermanagement/v1/orders/{id}/captures",
            None,
        );
        self.json::<(), _>(call, None).await
    }

    /// `GET …/captures/{capture_id}`
    pub async fn get_capture(
        &self,
        order_id: &str,
        capture_id: &str,
    ) -> Result<Capture, ClientError> {
        let call = Self::om(
            Method::GET,
            order_id,
            &format!("/captures/{}", encode(capture_id)),
            "/ordermanagement/v1/orders/{id}/captures/{capture_id}",
            None,
        );
        self.json::<(), _>(call, None).await
    }

    /// `POST …/captures/{capture_id}/shipping-info`: appends shipping info (a tracking
    /// number known only after the capture) to a capture.
    pub async fn add_shipping_info(
        &self,
        order_id: &str,
        capture_id: &str,
        body: &UpdateShippingInfo,
        key: &IdempotencyKey,
    ) -> Result<(), ClientError> {
        let call = Self::om(
            Method::POST,
            order_id,
            &format!("/captures/{}/shipping-info", encode(capture_id)),
            "/ordermanagement/v1/orders/{id}/captures/{capture_id}/shipping-info",
            Some(key),
        );
        self.empty(call, Some(body)).await.map(|_| ())
    }

    /// `POST …/refunds`: returns the `Refund-Id` Klarna assigned.
    pub async fn refund(
        &self,
        order_id: &str,
        body: &RefundRequest,
        key: &IdempotencyKey,
    ) -> Result<String, ClientError> {
        let call = Self::om(
            Method::POST,
            order_id,
            "/refunds",
            "/ordermanagement/v1/orders/{id}/refunds",
            Some(key),
        );
        let answer = self.empty(call, Some(body)).await?;
        header_id(
            &answer,
            "refund-id",
            "/ordermanagement/v1/orders/{id}/refunds",
        )
    }

    /// `GET …/refunds/{refund_id}`
    pub async fn get_refund(&self, order_id: &str, refund_id: &str) -> Result<Refund, ClientError> {
        let call = Self::om(
            Method::GET,
            order_id,
            &format!("/refunds/{}", encode(refund_id)),
            "/ordermanagement/v1/orders/{id}/refunds/{refund_id}",
            None,
        );
        self.json::<(), _>(call, None).await
    }

    /// `POST …/cancel`
    pub async fn cancel_order(
        &self,
        order_id: &str,
        key: &IdempotencyKey,
    ) -> Result<(), ClientError> {
        let call = Self::om(
            Method::POST,
            order_id,
            "/cancel",
            "/ordermanagement/v1/orders/{id}/cancel",
            Some(key),
        );
        self.empty::<()>(call, None).await.map(|_| ())
    }

    /// `POST …/release-remaining-authorization`
    pub async fn release_remaining_authorization(
        &self,
        order_id: &str,
        key: &IdempotencyKey,
    ) -> Result<(), ClientError> {
        let call = Self::om(
            Method::POST,
            order_id,
            "/release-remaining-authorization",
            "/ordermanagement/v1/orders/{id}/release-remaining-authorization",
            Some(key),
        );
        self.empty::<()>(call, None).await.map(|_| ())
    }

    /// `POST …/extend-authorization-time`
    pub async fn extend_authorization_time(
        &self,
        order_id: &str,
        key: &IdempotencyKey,
    ) -> Result<(), ClientError> {
        let call = Self::om(
            Method::POST,
            order_id,
            "/extend-authorization-time",
            "/ordermanagement/v1/orders/{id}/extend-authorization-time",
            Some(key),
        );
        self.empty::<()>(call, None).await.map(|_| ())
    }

    /// `PATCH …/authorization`: a new order amount (and lines) before capture.
    pub async fn update_authorization(
        &self,
        order_id: &str,
        body: &UpdateAuthorization,
        key: &IdempotencyKey,
    ) -> Result<(), ClientError> {
        let call = Self::om(
            Method::PATCH,
            order_id,
            "/authorization",
            "/ordermanagement/v1/orders/{id}/authorization",
            Some(key),
        );
        self.empty(call, Some(body)).await.map(|_| ())
    }
}

fn header_id(answer: &Answer, name: &str, route: &str) -> Result<String, ClientError> {
    answer
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            // Fall back to the last segment of `Location`.
            answer
                .headers
                .get("location")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.rsplit('/').next())
                .map(str::to_owned)
        })
        .ok_or_else(|| ClientError::decode(route, &format!("no {name} header")))
}

/// Percent-encodes a path segment (ids are UUIDs, but nothing from outside is trusted).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
