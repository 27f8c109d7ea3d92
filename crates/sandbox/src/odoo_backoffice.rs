//! The Odoo stand-in's back office, for tests and the demo (`/_sandbox/odoo/…`): the
//! merchant's Capture, Refund and Void buttons on a payment transaction, which call the
//! gateway's admin API signed exactly as the payment_klarna addon signs them; an edit of a
//! confirmed order, sent the same way ([`crate::odoo_edit`]); the refund wizard's figures;
//! the order confirmations sent; and the provider's settings and the gateway user's rights. What the buttons do to Odoo's transactions is
//! [`crate::odoo_payment`]'s.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use klarna_types::odoo_signature::{AdminCall, sign_admin};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::odoo_db::{Mail, OdooSettings};
use crate::odoo_edit::Edit;
use crate::odoo_payment::{Button, GatewayCall, RefundWizard};
use crate::state::Sandbox;

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route(
            "/_sandbox/odoo/transactions/{id}/capture",
            post(|s, p, b| button(s, p, b, Button::Capture)),
        )
        .route(
            "/_sandbox/odoo/transactions/{id}/refund",
            post(|s, p, b| button(s, p, b, Button::Refund)),
        )
        .route(
            "/_sandbox/odoo/transactions/{id}/void",
            post(|s, p, b| button(s, p, b, Button::Void)),
        )
        .route(
            "/_sandbox/odoo/transactions/{id}/refund-wizard",
            get(refund_wizard),
        )
        .route("/_sandbox/odoo/orders/{name}/records", get(order_records))
        .route("/_sandbox/odoo/orders/{name}/edit", post(edit_order))
        .route("/_sandbox/odoo/mails", get(mails))
        .route("/_sandbox/odoo/settings", get(settings).put(set_settings))
}

/// A wizard's amount, in the currency's units as Odoo shows it (a number or a decimal
/// string); absent for "all of it".
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Amount {
    amount: Option<Value>,
}

impl Amount {
    fn value(&self) -> Result<Option<f64>, String> {
        match &self.amount {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| "bad amount".into()),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| format!("amount {s:?} is not a number")),
            Some(other) => Err(format!("amount {other} is not a number")),
        }
    }
}

type Answer = (StatusCode, Json<Value>);

fn refused(status: StatusCode, message: impl Into<String>) -> Answer {
    (status, Json(json!({"error": message.into()})))
}

/// One of the buttons; a void takes no amount (any given is ignored, as Odoo's Void has none).
async fn button(
    State(sandbox): State<Arc<Sandbox>>,
    Path(id): Path<i64>,
    body: Option<Json<Amount>>,
    which: Button,
) -> Answer {
    let amount = match which {
        Button::Void => Amount::default(),
        _ => body.map(|b| b.0).unwrap_or_default(),
    };
    press(&sandbox, id, which, amount).await
}

/// A button: Odoo's draft, the addon's signed call, the draft named after the gateway's
/// operation — or, when the gateway refuses or cannot be reached, Odoo's rollback (the
/// draft is gone) and the merchant sees the reason. Answers `{transaction, gateway}`:
/// the draft's id (null when Odoo acted on the payment's own transaction) and the
/// gateway's answer.
async fn press(sandbox: &Sandbox, id: i64, button: Button, amount: Amount) -> Answer {
    let amount = match amount.value() {
        Ok(a) => a,
        Err(e) => return refused(StatusCode::BAD_REQUEST, e),
    };
    let gateway = match gateway_url(sandbox) {
        Ok(url) => url,
        Err(refusal) => return refusal,
    };
    let call = match sandbox.odoo.press(id, button, amount) {
        Ok(call) => call,
        // Odoo's wizard refuses (a UserError): nothing was created.
        Err(e) => return refused(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    let (status, answer) = match send(sandbox, &gateway, &call).await {
        Ok(answered) => answered,
        Err(e) => {
            sandbox.odoo.answered(&call, None);
            return refused(StatusCode::BAD_GATEWAY, e);
        }
    };
    let operation = answer["operation"]["id"].as_i64();
    sandbox
        .odoo
        .answered(&call, operation.filter(|_| status.is_success()));
    (
        status,
        Json(json!({
            "transaction": call.draft.filter(|_| status.is_success()),
            "idempotency_key": call.idempotency_key,
            "request": call.body,
            "gateway": answer,
        })),
    )
}

fn gateway_url(sandbox: &Sandbox) -> Result<String, Answer> {
    sandbox
        .odoo
        .settings()
        .gateway_url
        .or_else(|| sandbox.config.gateway_url.clone())
        .ok_or_else(|| {
            refused(
                StatusCode::CONFLICT,
                "the Klarna provider has no gateway URL (PUT /_sandbox/odoo/settings)",
            )
        })
}

/// The addon's signed call to the gateway's admin API: the gateway's status (a 2xx is
/// 200) and answer, or why it could not be reached.
async fn send(
    sandbox: &Sandbox,
    gateway: &str,
    call: &GatewayCall,
) -> Result<(StatusCode, Value), String> {
    let body = serde_json::to_vec(&call.body).unwrap_or_default();
    let timestamp = i64::try_from(crate::clock::unix(std::time::SystemTime::now())).unwrap_or(0);
    let nonce = uuid::Uuid::new_v4().to_string();
    let signature = sign_admin(
        &sandbox.config.odoo_shared_secret,
        &AdminCall {
            timestamp,
            nonce: &nonce,
            method: "POST",
            path: &call.path,
            idempotency_key: &call.idempotency_key,
            body: &body,
        },
    );
    let sent = sandbox
        .webhooks
        .http()
        .post(format!("{}{}", gateway.trim_end_matches('/'), call.path))
        .header("content-type", "application/json")
        .header("x-klarna-gateway-timestamp", timestamp.to_string())
        .header("x-klarna-gateway-nonce", &nonce)
        .header("x-klarna-gateway-signature", signature)
        .header("idempotency-key", &call.idempotency_key)
        .body(body)
        .send()
        .await;
    let response = sent.map_err(|e| format!("could not reach the Klarna gateway: {e}"))?;
    let status = response.status();
    let answer = response.json::<Value>().await.unwrap_or(Value::Null);
    let status = if status.is_success() {
        StatusCode::OK
    } else {
        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY)
    };
    Ok((status, answer))
}

/// The order's records as the addon sends them with an edit (`_klarna_order_records`).
async fn order_records(
    State(sandbox): State<Arc<Sandbox>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, Answer> {
    sandbox
        .odoo
        .order_records(&name)
        .map(|r| Json(Value::Object(r)))
        .map_err(|e| refused(StatusCode::NOT_FOUND, e))
}

/// The merchant edits a confirmed order and saves: the edit goes to the gateway from the
/// transaction that makes it, and is stored only when Klarna took it — otherwise the order
/// stays as Klarna has it and the merchant sees why. Answers `{request, gateway}`.
async fn edit_order(
    State(sandbox): State<Arc<Sandbox>>,
    Path(name): Path<String>,
    Json(edit): Json<Edit>,
) -> Answer {
    let gateway = match gateway_url(&sandbox) {
        Ok(url) => url,
        Err(refusal) => return refusal,
    };
    let edited = match sandbox.odoo.edit_order(&name, &edit) {
        Ok(edited) => edited,
        Err(e) => return refused(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    let (status, answer) = match send(&sandbox, &gateway, &edited.call).await {
        Ok(answered) => answered,
        Err(e) => return refused(StatusCode::BAD_GATEWAY, e),
    };
    if status.is_success() && answer["operation"]["state"] == "succeeded" {
        let decimals = edited.records["res.currency"][0]["decimal_places"]
            .as_i64()
            .unwrap_or(2);
        let minor = answer["payment"]["authorized_amount"].as_i64().unwrap_or(0);
        #[allow(clippy::cast_precision_loss)]
        let authorized = minor as f64 / 10f64.powi(i32::try_from(decimals).unwrap_or(2));
        sandbox.odoo.store_edit(&edited, authorized);
    }
    (
        status,
        Json(json!({"request": edited.call.body, "gateway": answer})),
    )
}

async fn refund_wizard(
    State(sandbox): State<Arc<Sandbox>>,
    Path(id): Path<i64>,
) -> Result<Json<RefundWizard>, Answer> {
    sandbox
        .odoo
        .refund_wizard(id)
        .map(Json)
        .map_err(|e| refused(StatusCode::NOT_FOUND, e))
}

async fn mails(State(sandbox): State<Arc<Sandbox>>) -> Json<Vec<Mail>> {
    Json(sandbox.odoo.mails())
}

async fn settings(State(sandbox): State<Arc<Sandbox>>) -> Json<OdooSettings> {
    Json(sandbox.odoo.settings())
}

/// Replaces the settings; fields left out keep their defaults (`confirmation_mail`
/// `authorization`, `billing_group` true).
async fn set_settings(
    State(sandbox): State<Arc<Sandbox>>,
    Json(settings): Json<OdooSettings>,
) -> Result<Json<OdooSettings>, Answer> {
    if !["authorization", "capture"].contains(&settings.confirmation_mail.as_str()) {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "confirmation_mail is authorization or capture",
        ));
    }
    if !["ok", "install", "upgrade", "broken", "workers"].contains(&settings.wkhtmltopdf.as_str()) {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "wkhtmltopdf is ok, install, upgrade, broken or workers (Odoo's states)",
        ));
    }
    sandbox.odoo.set_settings(settings.clone());
    Ok(Json(settings))
}
