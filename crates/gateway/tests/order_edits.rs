//! Order edits after authorization, on SQLite and PostgreSQL: the merchant removes a line or
//! adds some before the order ships, and Klarna's authorization follows — the edited order
//! mapped exactly as at checkout, from the records Odoo sends in the transaction that edits
//! it. An increase Klarna refuses, an edit below what was captured, a cancelled order and
//! stale figures change nothing on either side; an edit whose answer was lost is recorded
//! once, not sent twice.

mod common;

use common::{ORDER, ORDER_TOTAL, TOKEN, databases, system};
use klarna_sandbox::odoo_edit::Edit;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The merchant edits the confirmed order in the Odoo stand-in and saves, as with
/// payment_klarna: the edit goes to the gateway signed, with the order's records as the
/// edit leaves them, and is stored only if Klarna took it. The gateway's status and answer.
async fn edit(s: &common::System, edit: Value) -> (StatusCode, Value) {
    let response = s
        .http
        .post(format!(
            "{}/_sandbox/odoo/orders/{ORDER}/edit",
            s.sandbox_url
        ))
        .json(&edit)
        .send()
        .await
        .expect("the back office");
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    (status, body["gateway"].clone())
}

/// Points the Odoo stand-in's Klarna provider at this gateway.
async fn provider_at_gateway(s: &common::System) {
    let r = s
        .http
        .put(format!("{}/_sandbox/odoo/settings", s.sandbox_url))
        .json(&json!({"gateway_url": s.url}))
        .send()
        .await
        .expect("settings");
    assert!(r.status().is_success(), "{}", r.status());
}

/// The body payment_klarna would send for `edit`, without sending it.
fn edit_body(s: &common::System, edit: Value) -> Value {
    let edit: Edit = serde_json::from_value(edit).expect("an edit");
    s.sandbox
        .odoo
        .edit_order(ORDER, &edit)
        .expect("the edit")
        .call
        .body
}

/// What the sandbox's Klarna holds: the order amount and the number of lines.
fn at_klarna(s: &common::System, order_id: &str) -> (i64, usize) {
    let state = s.sandbox.state();
    let o = &state.orders[order_id].order;
    (o.order_amount, o.order_lines.len())
}

fn timeline_actions(view: &Value) -> Vec<String> {
    view["timeline"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|e| e["action"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn klarnas_authorization_follows_an_edited_order_or_nothing_changes() {
    for db in databases().await {
        let s = system(&db).await;
        provider_at_gateway(&s).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        let path = format!("/admin/payments/{order_id}/authorization");
        let records = Value::Object(s.sandbox.odoo.order_records(ORDER).expect("records"));
        let (amount, lines) = at_klarna(&s, &order_id);
        assert_eq!(amount, ORDER_TOTAL);

        // Unchanged, the records map to what Klarna authorized at checkout: the addon's
        // records and the gateway's own reading of Odoo are one order.
        let (status, same) = s.admin(&path, &json!({"odoo_records": records})).await;
        assert_eq!(status, StatusCode::OK, "[{}] {same}", s.db);
        assert_eq!(at_klarna(&s, &order_id), (ORDER_TOTAL, lines), "[{}]", s.db);

        // A line removed (4 glasses, € 23.78): Klarna takes the lower amount and lines,
        // and Odoo stores the edit.
        let lower = ORDER_TOTAL - 2_378;
        let (status, answer) = edit(
            &s,
            json!({"remove_lines": [134], "description": "Weißbier-Glas out of stock"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "[{}] {answer}", s.db);
        assert_eq!(answer["operation"]["kind"], "update_authorization");
        assert_eq!(answer["payment"]["authorized_amount"], lower);
        assert_eq!(at_klarna(&s, &order_id), (lower, lines - 1), "[{}]", s.db);
        let order = s
            .odoo(
                "sale.order",
                "search_read",
                json!([[["name", "=", ORDER]]]),
                json!({"fields": ["amount_total"]}),
            )
            .await;
        assert_eq!(order[0]["amount_total"].as_f64(), Some(676.5), "[{}]", s.db);

        // Stale figures: made from the authorization as it was before the edit.
        let (status, stale) = s
            .admin(
                &path,
                &json!({"odoo_records": records, "expected_authorized": ORDER_TOTAL}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "[{}] {stale}", s.db);
        assert_eq!(stale["code"], "state_changed");

        // Records that are not this order's, or lack what the mapping reads: refused
        // before anything is sent, naming the field.
        let sent = s.sandbox.faults.count("update_authorization");
        let mut other = records.clone();
        other["sale.order"][0]["name"] = json!("S00001");
        let mut no_products = records.clone();
        no_products["product.product"] = json!([]);
        let mut no_total = records.clone();
        if let Some(order) = no_total["sale.order"][0].as_object_mut() {
            order.remove("amount_total");
        }
        for bad in [
            other,
            no_products,
            no_total,
            json!({"sale.order": "not rows"}),
        ] {
            let (status, refused) = s.admin(&path, &json!({"odoo_records": bad})).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "[{}] {refused}", s.db);
            assert_eq!(refused["field"], "odoo_records", "[{}] {refused}", s.db);
        }
        assert_eq!(
            s.sandbox.faults.count("update_authorization"),
            sent,
            "[{}]",
            s.db
        );

        // Two more fridges (+ € 45.98 on the € 676.50): an increase Klarna takes.
        let up = lower + 2 * 2_299;
        let (status, answer) = edit(&s, json!({"copy_lines": [141, 141]})).await;
        assert_eq!(status, StatusCode::OK, "[{}] {answer}", s.db);
        assert_eq!(at_klarna(&s, &order_id).0, up, "[{}]", s.db);
        assert_eq!(answer["payment"]["authorized_amount"], up, "[{}]", s.db);

        // Another salmon (+ € 620.50; the sandbox's Klarna takes up to 10 % over the
        // original): Klarna refuses; nothing changes on either side, and nothing waits for a
        // person.
        let lines_now = at_klarna(&s, &order_id).1;
        let (status, refused) = edit(&s, json!({"copy_lines": [139]})).await;
        assert_eq!(status, StatusCode::CONFLICT, "[{}] {refused}", s.db);
        assert_eq!(refused["code"], "refused", "[{}] {refused}", s.db);
        assert!(
            refused["message"]
                .as_str()
                .is_some_and(|m| m.contains("declined the increase")),
            "[{}] Klarna's reason reaches the merchant: {refused}",
            s.db
        );
        assert_eq!(at_klarna(&s, &order_id), (up, lines_now), "[{}]", s.db);
        let (t, _) = s.payment(&order_id).await;
        assert_eq!(t.authorized_amount, up, "[{}]", s.db);
        assert_eq!(t.attention, None, "[{}]", s.db);

        // Odoo's transaction follows Klarna's amount.
        s.settle().await;
        let txs = s.odoo_transactions(ORDER).await;
        assert_eq!(
            txs[0]["amount"].as_f64(),
            Some(up as f64 / 100.0),
            "[{}]",
            s.db
        );

        // A capture, then an edit below it (the salmon taken off: € 101.98 left): refused by
        // the state machine, not sent.
        let (status, captured) = s
            .admin(
                &format!("/admin/payments/{order_id}/captures"),
                &json!({"amount": 50_000}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "[{}] {captured}", s.db);
        let sent = s.sandbox.faults.count("update_authorization");
        let (status, below) = s
            .admin(&path, &edit_body(&s, json!({"remove_lines": [139]})))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "[{}] {below}", s.db);
        assert_eq!(below["code"], "amount_below_captured", "[{}] {below}", s.db);
        assert_eq!(
            s.sandbox.faults.count("update_authorization"),
            sent,
            "[{}]",
            s.db
        );

        let (_, view) = s.admin_get(&format!("/admin/payments/{order_id}")).await;
        let actions = timeline_actions(&view);
        for action in [
            "update_authorization_succeeded",
            "update_authorization_refused",
        ] {
            assert!(
                actions.iter().any(|a| a == action),
                "[{}] {action} in {actions:?}",
                s.db
            );
        }
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_whose_answer_was_lost_is_recorded_once_and_a_cancelled_order_takes_none() {
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        let path = format!("/admin/payments/{order_id}/authorization");
        let lower = ORDER_TOTAL - 2_378;
        let body = edit_body(&s, json!({"remove_lines": [134]}));

        // Klarna applies the edit and its answer is lost (and the retries' answers too): the
        // operation waits; the worker finds the edit at Klarna and records it, without
        // sending it again.
        let fault = s
            .http
            .put(format!(
                "{}/_sandbox/faults/update_authorization",
                s.sandbox_url
            ))
            .json(&json!({"next": ["lose_response", "timeout", "timeout"]}))
            .send()
            .await
            .expect("fault");
        assert!(fault.status().is_success());
        let (status, pending) = s.admin_keyed(&path, "edit-1", &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "[{}] {pending}", s.db);
        assert_eq!(at_klarna(&s, &order_id).0, lower, "[{}]", s.db);
        let sent = s.sandbox.faults.count("update_authorization");
        s.settle().await;
        let (t, ops) = s.payment(&order_id).await;
        assert_eq!(t.authorized_amount, lower, "[{}]", s.db);
        let edits: Vec<_> = ops
            .iter()
            .filter(|o| o.kind.as_str() == "update_authorization")
            .collect();
        assert_eq!(edits.len(), 1, "[{}]", s.db);
        assert_eq!(edits[0].state.as_str(), "succeeded", "[{}]", s.db);
        assert_eq!(
            s.sandbox.faults.count("update_authorization"),
            sent,
            "[{}] not sent again",
            s.db
        );
        // The same request again: its first answer, no second operation.
        let (_, again) = s.admin_keyed(&path, "edit-1", &body).await;
        assert_eq!(
            again["operation"]["id"], pending["operation"]["id"],
            "[{}] {again}",
            s.db
        );
        assert_eq!(s.payment(&order_id).await.1.len(), ops.len(), "[{}]", s.db);

        // Two edits at once, each made from the authorization as it is: one is done, the
        // other refused — never both, whatever order Klarna would have got them in.
        // (The fault left for the retries is spent first: Klarna answers again.)
        let cleared = s
            .http
            .put(format!(
                "{}/_sandbox/faults/update_authorization",
                s.sandbox_url
            ))
            .json(&json!({}))
            .send()
            .await
            .expect("fault");
        assert!(cleared.status().is_success());
        let one = edit_body(&s, json!({"remove_lines": [135]}));
        let other = edit_body(&s, json!({"remove_lines": [136]}));
        let (t, _) = s.payment(&order_id).await;
        assert_eq!(
            one["expected_authorized"], t.authorized_amount,
            "[{}]",
            s.db
        );
        let sent = s.sandbox.faults.count("update_authorization");
        let (a, b) = tokio::join!(s.admin(&path, &one), s.admin(&path, &other));
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::CONFLICT],
            "[{}] {} / {}",
            s.db,
            a.1,
            b.1
        );
        let refused = if a.0 == StatusCode::CONFLICT {
            &a.1
        } else {
            &b.1
        };
        assert!(
            ["operation_in_progress", "state_changed"]
                .contains(&refused["code"].as_str().unwrap_or("")),
            "[{}] {refused}",
            s.db
        );
        assert_eq!(
            s.sandbox.faults.count("update_authorization"),
            sent + 1,
            "[{}] one edit reached Klarna",
            s.db
        );

        // Cancelled: no edit.
        let (status, cancelled) = s
            .admin(&format!("/admin/payments/{order_id}/cancel"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "[{}] {cancelled}", s.db);
        let records = json!({"odoo_records": body["odoo_records"]});
        let (status, refused) = s.admin(&path, &records).await;
        assert_eq!(status, StatusCode::CONFLICT, "[{}] {refused}", s.db);
        assert_eq!(refused["code"], "not_allowed_in_this_state");
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_made_at_klarna_is_adopted_by_reconcile_and_captured_as_it_stands() {
    use klarna_client::IdempotencyKey;
    use klarna_types::klarna::UpdateAuthorization;

    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        s.settle().await;
        // The merchant lowers the order in Klarna's portal, not through us.
        let lower = ORDER_TOTAL - 10_000;
        s.gw()
            .klarna
            .update_authorization(
                &order_id,
                &UpdateAuthorization {
                    order_amount: lower,
                    description: None,
                    order_lines: Vec::new(),
                },
                &IdempotencyKey::new(),
            )
            .await
            .expect("an edit at Klarna");
        let (status, report) = s.admin("/admin/reconcile", &json!({})).await;
        assert_eq!(status, StatusCode::OK, "[{}] {report}", s.db);
        let (t, _) = s.payment(&order_id).await;
        assert_eq!(
            (
                t.authorized_amount,
                t.released_amount,
                t.attention.as_deref()
            ),
            (lower, 0, None),
            "[{}] {report}",
            s.db
        );
        s.settle().await;
        let txs = s.odoo_transactions(ORDER).await;
        assert_eq!(
            txs[0]["amount"].as_f64(),
            Some(lower as f64 / 100.0),
            "[{}] Odoo's payment follows",
            s.db
        );

        // Capturing what remains captures the order as it stands, and nothing is left
        // released or owed.
        let (status, captured) = s
            .admin(&format!("/admin/payments/{order_id}/captures"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "[{}] {captured}", s.db);
        assert_eq!(captured["operation"]["amount"], lower, "[{}]", s.db);
        let order = s.sandbox.state().orders[&order_id].order.clone();
        assert_eq!(
            (order.captured_amount, order.remaining_authorized_amount),
            (lower, 0),
            "[{}]",
            s.db
        );
        let (t, _) = s.payment(&order_id).await;
        assert_eq!(
            (t.state.as_str(), t.captured_amount, t.released_amount),
            ("captured", lower, 0),
            "[{}]",
            s.db
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}
