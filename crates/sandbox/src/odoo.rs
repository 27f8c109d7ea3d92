//! A small Odoo 18 behind `/jsonrpc`: `common.authenticate` and `object.execute_kw`
//! (`search_read`, `read`, `search`, `search_count`, `fields_get`) over sale orders that a
//! real Odoo 18 computed (the project's fixtures), split back into Odoo's models.
//!
//! It fails the way Odoo 18 fails: a wrong password is `AccessDenied`, an unknown model a
//! `UserError`, an unknown field a `ValueError`, each in Odoo's JSON-RPC error envelope.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use klarna_types::odoo_signature;
use serde_json::{Value, json};

use crate::odoo_db::{Database, RpcError};
use crate::state::Sandbox;

/// The payment_klarna addon's version the stand-in answers a ping with (its manifest's).
pub const ADDON_VERSION: &str = "18.0.1.3.0";

/// The user id `authenticate` returns for the configured login (Odoo's admin is 2).
pub const UID: i64 = 2;

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/jsonrpc", post(jsonrpc))
        .route("/payment/klarna/gateway", post(notify))
}

/// The payment_klarna addon's route for the gateway's payment updates
/// (docs/odoo-contract.md): signed with the shared secret, applied once per event id, as
/// Odoo's payment framework would apply them to `payment.transaction`.
async fn notify(
    State(sandbox): State<Arc<Sandbox>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, Json<Value>) {
    use axum::http::StatusCode;
    // The answers and their order are the real addon's (controllers/main.py, run against
    // Odoo 18): the signature over the raw bytes first, then the JSON, then its shape; no
    // answer repeats a value of the request.
    let refuse = |status: StatusCode, code: &str, message: &str| {
        (status, Json(json!({"code": code, "message": message})))
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map_or("", str::trim)
    };
    let (timestamp, signature) = (
        header("x-klarna-gateway-timestamp"),
        header("x-klarna-gateway-signature"),
    );
    if timestamp.is_empty() || signature.is_empty() {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "X-Klarna-Gateway-Timestamp and X-Klarna-Gateway-Signature are required",
        );
    }
    let now = i64::try_from(crate::clock::unix(std::time::SystemTime::now())).unwrap_or(0);
    let timestamp = (timestamp.len() <= 12 && timestamp.bytes().all(|b| b.is_ascii_digit()))
        .then(|| timestamp.parse::<i64>().ok())
        .flatten()
        .filter(|t| odoo_signature::fresh(now, *t));
    let Some(timestamp) = timestamp else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "X-Klarna-Gateway-Timestamp is not unix seconds within 300 s of Odoo's clock",
        );
    };
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "X-Klarna-Gateway-Signature is not 64 hexadecimal digits",
        );
    }
    let expected =
        odoo_signature::sign_update(&sandbox.config.odoo_shared_secret, timestamp, &body);
    if !odoo_signature::verify(&expected, &signature.to_ascii_lowercase()) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "X-Klarna-Gateway-Signature does not match the request",
        );
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the body is not JSON",
        );
    };
    if event.get("event").and_then(Value::as_str) == Some("ping") {
        // `klarna-gateway doctor`'s signed no-op: the secret matches, nothing changes.
        return (
            StatusCode::OK,
            Json(json!({"status": "pong", "version": ADDON_VERSION})),
        );
    }
    let named = |key: &str| {
        event
            .get(key)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
    };
    if !(named("event_id") && named("event")) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "wrong_shape",
            "event_id and event are required",
        );
    }
    match sandbox.odoo.apply_gateway_event(&event) {
        Ok(status) => (StatusCode::OK, Json(json!({"status": status}))),
        Err(e) => refuse(StatusCode::UNPROCESSABLE_ENTITY, "not_applied", &e),
    }
}

async fn jsonrpc(State(sandbox): State<Arc<Sandbox>>, Json(request): Json<Value>) -> Json<Value> {
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let params = request.get("params").cloned().unwrap_or(Value::Null);
    let result = dispatch(&sandbox, &params);
    Json(match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e.into_json()}),
    })
}

fn dispatch(sandbox: &Sandbox, params: &Value) -> Result<Value, RpcError> {
    let service = params.get("service").and_then(Value::as_str).unwrap_or("");
    let method = params.get("method").and_then(Value::as_str).unwrap_or("");
    let empty = Vec::new();
    let args = params
        .get("args")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    let cfg = &sandbox.config;
    match (service, method) {
        ("common", "version") => Ok(
            json!({"server_version": "18.0", "server_version_info": [18, 0, 0, "final", 0, ""], "protocol_version": 1}),
        ),
        ("common", "authenticate" | "login") => {
            let ok = args.first().and_then(Value::as_str) == Some(cfg.odoo_db.as_str())
                && args.get(1).and_then(Value::as_str) == Some(cfg.odoo_login.as_str())
                && args.get(2).and_then(Value::as_str) == Some(cfg.odoo_password.as_str());
            Ok(if ok { json!(UID) } else { json!(false) })
        }
        ("object", "execute_kw" | "execute") => {
            sandbox
                .odoo_calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let authorized = args.first().and_then(Value::as_str) == Some(cfg.odoo_db.as_str())
                && args.get(1).and_then(Value::as_i64) == Some(UID)
                && args.get(2).and_then(Value::as_str) == Some(cfg.odoo_password.as_str());
            if !authorized {
                return Err(RpcError::access_denied());
            }
            let model = args.get(3).and_then(Value::as_str).unwrap_or("");
            let method = args.get(4).and_then(Value::as_str).unwrap_or("");
            let call_args = args.get(5).and_then(Value::as_array).unwrap_or(&empty);
            let kwargs = args.get(6).cloned().unwrap_or(Value::Null);
            if model == "res.users" && method == "has_group" {
                // The stand-in's one user is in Settings (an administrator) when it is
                // Odoo's `admin`, as in a fresh Odoo; any user is an internal user.
                let group = call_args.get(1).and_then(Value::as_str).unwrap_or("");
                let admin = cfg.odoo_login == "admin";
                return Ok(json!(match group {
                    "base.group_user" => true,
                    "base.group_system" | "base.group_erp_manager" => admin,
                    _ => false,
                }));
            }
            if model == "ir.actions.report" && method == "get_wkhtmltopdf_state" {
                return Ok(json!(sandbox.odoo.settings().wkhtmltopdf));
            }
            if model == "payment.transaction" && !sandbox.odoo.settings().billing_group {
                return Err(RpcError::access_error(
                    "You are not allowed to access 'Payment Transaction' (payment.transaction) \
                     records.\n\nThis operation is allowed for the following groups:\n\t- \
                     Invoicing/Billing\n\nContact your administrator to request access if \
                     necessary.",
                ));
            }
            execute(&sandbox.odoo, model, method, call_args, &kwargs)
        }
        _ => Err(RpcError::value_error(format!(
            "the sandbox does not serve {service}.{method}"
        ))),
    }
}

fn fields_arg(call_args: &[Value], kwargs: &Value, position: usize) -> Vec<String> {
    kwargs
        .get("fields")
        .or_else(|| call_args.get(position))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn execute(
    db: &Database,
    model: &str,
    method: &str,
    call_args: &[Value],
    kwargs: &Value,
) -> Result<Value, RpcError> {
    let domain = call_args.first().unwrap_or(&Value::Null);
    match method {
        "search" => Ok(json!(db.search(model, domain)?)),
        "search_count" => Ok(json!(db.search(model, domain)?.len())),
        "search_read" => {
            let mut ids = db.search(model, domain)?;
            if let Some(limit) = kwargs.get("limit").and_then(Value::as_u64) {
                ids.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            }
            Ok(Value::Array(db.read(
                model,
                &ids,
                &fields_arg(call_args, kwargs, 1),
            )?))
        }
        "read" => {
            let ids: Vec<i64> = match call_args.first() {
                Some(Value::Array(ids)) => ids.iter().filter_map(Value::as_i64).collect(),
                Some(Value::Number(n)) => n.as_i64().into_iter().collect(),
                _ => Vec::new(),
            };
            Ok(Value::Array(db.read(
                model,
                &ids,
                &fields_arg(call_args, kwargs, 1),
            )?))
        }
        "fields_get" => db.fields_get(model),
        "write" => {
            let ids: Vec<i64> = match call_args.first() {
                Some(Value::Array(ids)) => ids.iter().filter_map(Value::as_i64).collect(),
                _ => Vec::new(),
            };
            let values = call_args
                .get(1)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            db.write(model, &ids, &values)
        }
        "unlink" => {
            let ids: Vec<i64> = match call_args.first() {
                Some(Value::Array(ids)) => ids.iter().filter_map(Value::as_i64).collect(),
                Some(Value::Number(n)) => n.as_i64().into_iter().collect(),
                _ => Vec::new(),
            };
            db.unlink(model, &ids)
        }
        other => Err(RpcError::value_error(format!(
            "the sandbox does not implement {model}.{other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_read_filters_and_unknown_fields_fail_like_odoo() {
        let db = Database::demo();
        let found = execute(
            &db,
            "sale.order",
            "search_read",
            &[json!([["name", "=", "S00037"]])],
            &json!({"fields": ["name", "amount_total"]}),
        )
        .expect("search_read");
        assert_eq!(found.as_array().map(Vec::len), Some(1));
        assert_eq!(found[0]["name"], "S00037");
        let err = execute(
            &db,
            "sale.order",
            "read",
            &[json!([37])],
            &json!({"fields": ["nope"]}),
        )
        .expect_err("unknown field");
        assert!(err.message.contains("Invalid field 'nope'"));
        // Odoo 18 without the loyalty module, as a real one answered.
        let err = execute(&db, "no.such.model", "search", &[json!([])], &json!({}))
            .expect_err("unknown model");
        let answer = err.into_json();
        assert_eq!(answer["data"]["name"], "odoo.exceptions.UserError");
        assert_eq!(
            answer["data"]["message"],
            "Object no.such.model doesn't exist"
        );
    }
}
