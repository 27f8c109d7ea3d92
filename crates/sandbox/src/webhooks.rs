//! Klarna calling the merchant: the newer signed webhooks and the classic, unsigned
//! notification callback.
//!
//! Signed webhooks carry `Klarna-Signature` (hex HMAC-SHA256 of the raw body with the
//! active signing key) and `Klarna-Signing-Key-Id`, a `metadata` block with the event id,
//! type and time, and are retried on Klarna's schedule (10 s, 2 min, 15 min, 3 h, 6 h,
//! 12 h) multiplied by `--webhook-time-scale` so tests see all of it in seconds.

use std::sync::Arc;
use std::time::Duration;

use klarna_types::klarna::{Order, OrderStatus};
use serde_json::json;

use crate::clock::rfc3339;
use crate::delivery::{Delivery, SCHEDULE, sign};
use crate::reply::new_id;
use crate::state::Sandbox;

// The gateway's tests name the key type by this path.
pub use crate::delivery::SigningKey;

/// The full event type for a short state name: `authorized` →
/// `payment.request.state-change.authorized`.
pub fn event_type(state: &str) -> String {
    if state.contains('.') {
        state.to_owned()
    } else {
        format!("payment.request.state-change.{state}")
    }
}

/// The body of a signed webhook about an order.
pub fn event_body(sandbox: &Sandbox, event_type: &str, event_id: &str, order: &Order) -> Vec<u8> {
    let body = json!({
        "metadata": {
            "event_type": event_type,
            "event_id": event_id,
            "event_version": "v2",
            "occurred_at": rfc3339(sandbox.now()),
            "correlation_id": new_id(),
            "subject_account_id": sandbox.config.username,
            "recipient_account_id": sandbox.config.username,
            "product_instance_id": "klarna-sandbox",
            "webhook_id": "sandbox-webhook",
            "live": false,
        },
        "payload": {
            "order_id": order.order_id,
            "status": order.status,
            "fraud_status": order.fraud_status,
            "order_amount": order.order_amount,
            "captured_amount": order.captured_amount,
            "refunded_amount": order.refunded_amount,
            "currency": order.purchase_currency,
            "merchant_reference1": order.merchant_reference1,
        },
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Sends `payment.request.state-change.<state>` for an order, when a webhook URL is set.
/// Returns the event id.
pub fn state_change(sandbox: &Arc<Sandbox>, state: &str, order: &Order) -> Option<String> {
    let url = sandbox.config.webhook_url.clone()?;
    let kind = event_type(state);
    let event_id = new_id();
    let body = event_body(sandbox, &kind, &event_id, order);
    deliver(sandbox, url, kind, event_id.clone(), body, true);
    Some(event_id)
}

/// The state-change event that describes an order as it stands.
pub fn state_of(order: &Order) -> &'static str {
    match order.status {
        OrderStatus::Captured | OrderStatus::PartCaptured | OrderStatus::Closed => "completed",
        OrderStatus::Cancelled => "canceled",
        OrderStatus::Expired => "expired",
        OrderStatus::Authorized => "authorized",
    }
}

/// Sends `count` signed events about `orders` (round robin, each describing the order's
/// current state) with at most `concurrency` requests in flight, each retried on Klarna's
/// schedule. For load and crash tests. Each event goes to every URL of `urls` (the
/// configured webhook URL when empty). Returns the event ids.
pub fn burst(
    sandbox: &Arc<Sandbox>,
    orders: &[Order],
    count: usize,
    concurrency: usize,
    urls: &[String],
) -> Option<Vec<String>> {
    let urls = if urls.is_empty() {
        vec![sandbox.config.webhook_url.clone()?]
    } else {
        urls.to_vec()
    };
    if orders.is_empty() {
        return Some(Vec::new());
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let ids = (0..count)
        .map(|i| {
            let order = &orders[i % orders.len()];
            let kind = event_type(state_of(order));
            let event_id = new_id();
            let body = event_body(sandbox, &kind, &event_id, order);
            for url in &urls {
                deliver_limited(
                    sandbox,
                    url.clone(),
                    kind.clone(),
                    event_id.clone(),
                    body.clone(),
                    true,
                    Some(limit.clone()),
                );
            }
            event_id
        })
        .collect();
    Some(ids)
}

/// The classic notification callback: `{order_id, event_type, occurred_at}`, unsigned.
pub fn classic(sandbox: &Arc<Sandbox>, url: &str, order_id: &str, event_type: &str) -> String {
    let event_id = new_id();
    let body = json!({
        "order_id": order_id,
        "event_type": event_type,
        "occurred_at": rfc3339(sandbox.now()),
    });
    deliver(
        sandbox,
        url.to_owned(),
        event_type.to_owned(),
        event_id.clone(),
        serde_json::to_vec(&body).unwrap_or_default(),
        false,
    );
    event_id
}

/// The classic authorization callback: `{authorization_token, session_id}`, unsigned.
pub fn authorization_callback(
    sandbox: &Arc<Sandbox>,
    url: &str,
    token: &str,
    session_id: &str,
) -> String {
    let event_id = new_id();
    let body = json!({"authorization_token": token, "session_id": session_id});
    deliver(
        sandbox,
        url.to_owned(),
        "authorization".to_owned(),
        event_id.clone(),
        serde_json::to_vec(&body).unwrap_or_default(),
        false,
    );
    event_id
}

/// Posts an event, retrying on the (scaled) schedule until it is acknowledged.
pub fn deliver(
    sandbox: &Arc<Sandbox>,
    url: String,
    event_type: String,
    event_id: String,
    body: Vec<u8>,
    signed: bool,
) {
    deliver_limited(sandbox, url, event_type, event_id, body, signed, None);
}

/// [`deliver`], with at most as many requests in flight as `limit` has permits (a burst).
#[allow(clippy::too_many_arguments)]
pub fn deliver_limited(
    sandbox: &Arc<Sandbox>,
    url: String,
    event_type: String,
    event_id: String,
    body: Vec<u8>,
    signed: bool,
    limit: Option<Arc<tokio::sync::Semaphore>>,
) {
    let key = if signed {
        sandbox.webhooks.signing_key(&sandbox.config.signing_keys)
    } else {
        None
    };
    let index = sandbox.webhooks.start(Delivery {
        event_id: event_id.clone(),
        event_type: event_type.clone(),
        signed,
        url: url.clone(),
        statuses: Vec::new(),
        delivered: false,
    });
    let scale = sandbox.config.webhook_time_scale;
    let sandbox = sandbox.clone();
    tokio::spawn(async move {
        for attempt in 0..=SCHEDULE.len() {
            let mut request = sandbox
                .webhooks
                .http()
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone());
            if let Some(key) = &key {
                request = request
                    .header("Klarna-Signature", sign(&key.secret, &body))
                    .header("Klarna-Signing-Key-Id", &key.id);
            }
            let permit = match &limit {
                Some(l) => l.clone().acquire_owned().await.ok(),
                None => None,
            };
            let status = request.send().await.map_or(0, |r| r.status().as_u16());
            drop(permit);
            let delivered = matches!(status, 200 | 201 | 202 | 204);
            sandbox.webhooks.attempted(index, status, delivered);
            if delivered {
                return;
            }
            if let Some(wait) = SCHEDULE.get(attempt) {
                tokio::time::sleep(Duration::from_secs_f64(*wait as f64 * scale)).await;
            }
        }
        tracing::warn!(
            event_type,
            event_id,
            "webhook dropped after Klarna's last retry"
        );
    });
}
