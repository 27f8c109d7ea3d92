//! Telling Odoo what happened to a payment, durably.
//!
//! Every state change queues its [`Notification`] in the same transaction (outbox); the job
//! worker posts it to the addon's route (`docs/odoo-contract.md`), signed with the shared
//! secret. Odoo being down loses nothing: the job waits and retries.

use klarna_types::odoo_signature::sign_update;

use crate::db::{Db, Tx, now_ms};
use crate::error::GatewayError;
use crate::jobs::{self, Job, JobError};
use crate::odoo_update::Notification;
use crate::secrets::ODOO_SHARED_SECRET;
use crate::state::Gateway;

/// Queues a notification inside the caller's transaction.
pub async fn enqueue(db: &Db, tx: &mut Tx, n: &Notification) -> Result<(), GatewayError> {
    jobs::enqueue(db, tx, &Job::OdooSync(Box::new(n.clone()))).await
}

/// A POST of `body` to the addon's route, signed with the shared secret over
/// `<timestamp>.<body>` as the addon checks it.
pub fn signed_update(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let timestamp = now_ms() / 1000;
    http.post(url)
        .header("content-type", "application/json")
        .header("X-Klarna-Gateway-Timestamp", timestamp.to_string())
        .header(
            "X-Klarna-Gateway-Signature",
            sign_update(secret, timestamp, &body),
        )
        .body(body)
}

/// Posts one notification (the job's work).
pub async fn deliver(gw: &Gateway, n: &Notification) -> Result<(), JobError> {
    let body = serde_json::to_vec(n).map_err(|e| JobError::Permanent(e.to_string()))?;
    let secret = gw.secrets.get(ODOO_SHARED_SECRET).ok_or_else(|| {
        JobError::Retryable("the Odoo shared secret (odoo.shared_secret) is not set".into())
    })?;
    let response = signed_update(&gw.http, &gw.config.odoo_notify_url, &secret, body)
        .send()
        .await
        .map_err(|e| JobError::Retryable(format!("cannot reach Odoo: {}", e.without_url())))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        let text = response.text().await.unwrap_or_default();
        Err(JobError::Retryable(format!(
            "Odoo answered {status}: {}",
            text.chars().take(300).collect::<String>()
        )))
    }
}
