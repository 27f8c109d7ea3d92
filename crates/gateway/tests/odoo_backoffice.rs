//! The merchant at work in Odoo's back office (the sandbox's Odoo 18 stand-in): the
//! Capture and Refund buttons call the gateway signed as the payment_klarna addon does, and
//! the gateway's updates complete the drafts the buttons created — the refund from a
//! capture included, which Odoo 18 keeps as a grandchild of the payment (the bug where it
//! stayed draft beside a second refund). Also the refund wizard's figures, the order
//! confirmation e-mail, and the rights the gateway's Odoo user needs.

mod common;

use common::{ORDER, SE_ORDER, SE_TOKEN, System, TOKEN, databases, system};
use klarna_gateway::reconcile;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The Klarna provider's settings in Odoo: the gateway's URL, and the rest.
async fn odoo_settings(s: &System, extra: Value) {
    let mut settings = json!({"gateway_url": s.url});
    if let (Some(m), Some(e)) = (settings.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    let r = s
        .http
        .put(format!("{}/_sandbox/odoo/settings", s.sandbox_url))
        .json(&settings)
        .send()
        .await
        .expect("settings");
    assert!(r.status().is_success(), "{}", r.status());
}

/// A button on Odoo's transaction `id`: `capture`, `refund` or `void`.
async fn button(s: &System, id: &Value, action: &str, body: Value) -> (StatusCode, Value) {
    let r = s
        .http
        .post(format!(
            "{}/_sandbox/odoo/transactions/{id}/{action}",
            s.sandbox_url
        ))
        .json(&body)
        .send()
        .await
        .expect("button");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn wizard(s: &System, id: &Value) -> (f64, f64) {
    let w: Value = s
        .http
        .get(format!(
            "{}/_sandbox/odoo/transactions/{id}/refund-wizard",
            s.sandbox_url
        ))
        .send()
        .await
        .expect("wizard")
        .json()
        .await
        .expect("json");
    (
        w["refunded"].as_f64().unwrap_or(-1.0),
        w["amount_available_for_refund"].as_f64().unwrap_or(-1.0),
    )
}

async fn mails(s: &System) -> Vec<Value> {
    s.http
        .get(format!("{}/_sandbox/odoo/mails", s.sandbox_url))
        .send()
        .await
        .expect("mails")
        .json()
        .await
        .expect("json")
}

/// Pressed and answered: the transaction the button created (null when none).
async fn pressed(s: &System, id: &Value, action: &str, amount: f64) -> (Value, Value) {
    let (status, answer) = button(s, id, action, json!({"amount": amount})).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "[{}] {action} {amount}: {answer}",
        s.db
    );
    s.settle().await;
    (
        answer["transaction"].clone(),
        answer["gateway"]["operation"]["id"].clone(),
    )
}

/// Odoo's transactions of an order: (reference, operation, state, amount, parent id).
async fn odoo(s: &System, order: &str) -> Vec<(String, String, String, f64, Value)> {
    s.odoo_transactions(order)
        .await
        .iter()
        .map(|t| {
            (
                t["reference"].as_str().unwrap_or_default().to_owned(),
                t["operation"].as_str().unwrap_or_default().to_owned(),
                t["state"].as_str().unwrap_or_default().to_owned(),
                t["amount"].as_f64().unwrap_or_default(),
                t["source_transaction_id"]
                    .get(0)
                    .cloned()
                    .unwrap_or(Value::Null),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_after_a_partial_capture_through_odoos_buttons_completes_its_draft() {
    for db in databases().await {
        let s = system(&db).await;
        odoo_settings(&s, json!({})).await;
        s.paid(ORDER, TOKEN).await;
        s.settle().await;
        let source = s.odoo_transactions(ORDER).await[0]["id"].clone();

        let (capture, capture_op) = pressed(&s, &source, "capture", 300.0).await;
        assert_eq!(wizard(&s, &capture).await, (0.0, 300.0), "[{}]", s.db);
        let (status, answer) = button(&s, &capture, "refund", json!({"amount": 100.0})).await;
        assert_eq!(status, StatusCode::OK, "[{}] {answer}", s.db);
        assert_eq!(
            answer["request"],
            json!({"amount": 10_000, "expected_captured": 30_000, "expected_refunded": 0,
                   "capture_operation_id": capture_op}),
            "[{}] the addon's body",
            s.db
        );
        let refund_op = answer["gateway"]["operation"]["id"].clone();
        assert_eq!(
            answer["gateway"]["operation"]["capture_operation_id"], capture_op,
            "[{}] the gateway keeps which capture",
            s.db
        );
        s.settle().await;

        assert_eq!(
            odoo(&s, ORDER).await,
            [
                (
                    ORDER.to_owned(),
                    "online_direct".into(),
                    "authorized".into(),
                    700.28,
                    Value::Null
                ),
                (
                    format!("P-{ORDER}"),
                    "online_direct".into(),
                    "done".into(),
                    300.0,
                    source.clone()
                ),
                (
                    format!("R-P-{ORDER}"),
                    "refund".into(),
                    "done".into(),
                    -100.0,
                    capture.clone()
                ),
            ],
            "[{}] exactly one refund, the draft completed",
            s.db
        );
        let refund = &s.odoo_transactions(ORDER).await[2];
        assert_eq!(
            refund["provider_reference"],
            format!("klarna-op-{refund_op}").as_str()
        );
        assert_eq!(wizard(&s, &capture).await, (100.0, 200.0), "[{}]", s.db);
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_refunds_across_two_captures_count_per_capture() {
    for db in databases().await {
        let s = system(&db).await;
        odoo_settings(&s, json!({})).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        s.settle().await;
        let source = s.odoo_transactions(ORDER).await[0]["id"].clone();
        let (first, _) = pressed(&s, &source, "capture", 300.0).await;
        let (second, _) = pressed(&s, &source, "capture", 200.0).await;

        pressed(&s, &first, "refund", 250.0).await;
        pressed(&s, &second, "refund", 150.0).await;
        // The wizard offers only what is left of that capture.
        let (status, refused) = button(&s, &first, "refund", json!({"amount": 60.0})).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{}] {refused}",
            s.db
        );
        pressed(&s, &first, "refund", 50.0).await;

        assert_eq!(wizard(&s, &first).await, (300.0, 0.0), "[{}]", s.db);
        assert_eq!(wizard(&s, &second).await, (150.0, 50.0), "[{}]", s.db);
        let refunds: Vec<_> = odoo(&s, ORDER)
            .await
            .into_iter()
            .filter(|t| t.1 == "refund")
            .map(|t| (t.0, t.2, t.3, t.4))
            .collect();
        assert_eq!(
            refunds,
            [
                (
                    format!("R-P-{ORDER}"),
                    "done".to_owned(),
                    -250.0,
                    first.clone()
                ),
                (
                    format!("R-P-{ORDER}-1"),
                    "done".into(),
                    -150.0,
                    second.clone()
                ),
                (
                    format!("R-P-{ORDER}-2"),
                    "done".into(),
                    -50.0,
                    first.clone()
                ),
            ],
            "[{}] one refund transaction per refund, under its capture",
            s.db
        );
        let (t, ops) = s.payment(&order_id).await;
        assert_eq!((t.captured_amount, t.refunded_amount), (50_000, 45_000));
        let by_capture: Vec<_> = ops
            .iter()
            .filter(|o| o.kind.as_str() == "refund")
            .map(|o| (o.amount, o.capture_operation_id))
            .collect();
        let capture_ops: Vec<_> = ops
            .iter()
            .filter(|o| o.kind.as_str() == "capture")
            .map(|o| o.id)
            .collect();
        assert_eq!(
            by_capture,
            [
                (25_000, Some(capture_ops[0])),
                (15_000, Some(capture_ops[1])),
                (5_000, Some(capture_ops[0]))
            ],
            "[{}]",
            s.db
        );
        let report = reconcile::run(s.gw()).await.expect("reconcile");
        assert!(
            report.odoo_resent.is_empty(),
            "[{}] Odoo holds it all: {report:?}",
            s.db
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_order_confirmation_goes_out_once_when_the_provider_says() {
    for db in databases().await {
        let s = system(&db).await;
        // 'authorization': at the authorization, once.
        odoo_settings(&s, json!({"confirmation_mail": "authorization"})).await;
        s.paid(ORDER, TOKEN).await;
        s.settle().await;
        let source = s.odoo_transactions(ORDER).await[0]["id"].clone();
        pressed(&s, &source, "capture", 300.0).await;
        let sent = mails(&s).await;
        assert_eq!(sent.len(), 1, "[{}] {sent:?}", s.db);
        assert_eq!(
            (&sent[0]["order"], &sent[0]["sent_at"], &sent[0]["captured"]),
            (&json!(ORDER), &json!("authorization"), &json!(0.0))
        );

        // 'capture': nothing at the authorization; at the first done capture, with what
        // was captured then — even though the setting changed back in between.
        odoo_settings(&s, json!({"confirmation_mail": "capture"})).await;
        s.paid(SE_ORDER, SE_TOKEN).await;
        s.settle().await;
        assert_eq!(mails(&s).await.len(), 1, "[{}] no mail yet", s.db);
        odoo_settings(&s, json!({"confirmation_mail": "authorization"})).await;
        let se_source = s.odoo_transactions(SE_ORDER).await[0]["id"].clone();
        pressed(&s, &se_source, "capture", 100.0).await;
        pressed(&s, &se_source, "capture", 50.0).await;
        let sent = mails(&s).await;
        assert_eq!(sent.len(), 2, "[{}] {sent:?}", s.db);
        assert_eq!(
            (&sent[1]["order"], &sent[1]["sent_at"], &sent[1]["captured"]),
            (&json!(SE_ORDER), &json!("capture"), &json!(100.0)),
            "[{}] one mail, at the first capture",
            s.db
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_invoicing_rights_odoo_refuses_to_show_payments_and_reconcile_says_so() {
    for db in databases().await {
        let s = system(&db).await;
        s.paid(ORDER, TOKEN).await;
        s.settle().await;
        odoo_settings(&s, json!({"billing_group": false})).await;
        let r: Value = s
            .http
            .post(format!("{}/jsonrpc", s.sandbox_url))
            .json(
                &json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
                "service": "object", "method": "execute_kw",
                "args": ["odoo", 2, "admin", "payment.transaction", "search_read", [[]], {}]}}),
            )
            .send()
            .await
            .expect("rpc")
            .json()
            .await
            .expect("json");
        assert_eq!(
            (
                r["error"]["message"].clone(),
                r["error"]["data"]["name"].clone()
            ),
            (
                json!("Odoo Server Error"),
                json!("odoo.exceptions.AccessError")
            ),
            "{r}"
        );
        assert!(
            r["error"]["data"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Invoicing/Billing")),
            "{r}"
        );
        let report = reconcile::run(s.gw()).await.expect("reconcile");
        assert!(
            report
                .attention
                .iter()
                .any(|a| a.contains(ORDER) && a.contains("AccessError")),
            "[{}] {report:?}",
            s.db
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}
