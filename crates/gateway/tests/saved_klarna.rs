//! A returning shopper's saved Klarna, on SQLite and PostgreSQL: the shopper ticks Odoo's
//! "Save my payment details" at checkout, Klarna saves the payment method, the gateway
//! keeps the token sealed and gives Odoo only an opaque reference; Odoo charges it twice
//! with no shopper present, each charge a payment captured and refunded like any other;
//! a charge whose answer was lost is sent again under its key and places one order, and
//! three identical charges at once place one order too; the token is cancelled, and a
//! charge is then refused, clearly, with nothing charged.

mod common;

use common::{ORDER, SE_ORDER, SE_TOKEN, TOKEN, databases, system};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A second shopper's order (EUR, as Odoo 18 computed it), who saves Klarna too.
const OTHER_ORDER: &str = "S00093";
const OTHER_TOKEN: &str = "aebf6e68-51fc-49ec-80e5-f79a7517bb96";

/// Klarna's orders for an Odoo order (its `merchant_reference1`).
fn klarna_orders_for(s: &common::System, reference: &str) -> Vec<String> {
    let state = s.sandbox.state();
    state
        .orders
        .values()
        .filter(|o| o.order.merchant_reference1.as_deref() == Some(reference))
        .map(|o| o.order.order_id.clone())
        .collect()
}

async fn charge(
    s: &common::System,
    token: &str,
    transaction: &str,
    order: &str,
) -> (StatusCode, Value) {
    s.admin(
        &format!("/admin/tokens/{token}/charges"),
        &json!({"transaction_reference": transaction, "order_reference": order}),
    )
    .await
}

/// A charge as payment_klarna sends it: with the order's records as Odoo's transaction
/// sees them.
async fn charge_with_records(
    s: &common::System,
    token: &str,
    transaction: &str,
    order: &str,
    records_of: &str,
) -> (StatusCode, Value) {
    let records = Value::Object(s.sandbox.odoo.order_records(records_of).expect("records"));
    s.admin(
        &format!("/admin/tokens/{token}/charges"),
        &json!({"transaction_reference": transaction, "order_reference": order,
                "odoo_records": records}),
    )
    .await
}

/// A shopper pays `order` with "Save my payment details" ticked; the session's id.
async fn pay_and_save(s: &common::System, order: &str, token: &str) -> String {
    s.sandbox.odoo.checkout(order, true).expect("checkout");
    let session = s.session(order, token).await;
    let session_id = session["session_id"].as_str().expect("id").to_owned();
    let auth = s.approve(&session_id).await;
    let (status, placed) = s
        .post(
            "/klarna/authorize",
            &json!({"session_id": session_id, "authorization_token": auth}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "[{}] {placed}", s.db);
    s.settle().await;
    session_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_klarna_is_charged_twice_then_cancelled_and_refused() {
    for db in databases().await {
        let s = system(&db).await;
        let tag = s.db;

        // Odoo's checkout transaction asks to save the payment method (the box ticked):
        // the session is made to save it, and Klarna's form shows its terms.
        let session_id = pay_and_save(&s, ORDER, TOKEN).await;
        assert_eq!(
            s.sandbox.state().sessions[&session_id]
                .body
                .intent
                .as_deref(),
            Some("buy_and_tokenize"),
            "[{tag}]"
        );

        // Klarna made one token; Odoo has a payment.token named by the gateway's opaque
        // reference, and the token itself is nowhere but sealed in the gateway.
        let klarna_tokens: Vec<String> =
            s.sandbox.state().customer_tokens.keys().cloned().collect();
        assert_eq!(klarna_tokens.len(), 1, "[{tag}]");
        let secret = &klarna_tokens[0];
        let odoo_tokens = s
            .odoo("payment.token", "search_read", json!([[]]), json!({}))
            .await;
        assert_eq!(
            odoo_tokens.as_array().map(Vec::len),
            Some(1),
            "[{tag}] {odoo_tokens}"
        );
        let reference = odoo_tokens[0]["provider_ref"]
            .as_str()
            .expect("ref")
            .to_owned();
        assert!(reference.starts_with("kt_"), "[{tag}] {reference}");
        assert!(
            odoo_tokens[0]["payment_details"]
                .as_str()
                .is_some_and(|d| d.starts_with("Klarna")),
            "[{tag}] {odoo_tokens}"
        );
        let odoo_txs = s.odoo_transactions(ORDER).await;
        assert_eq!(odoo_txs[0]["token_id"], odoo_tokens[0]["id"], "[{tag}]");
        let everything_odoo_holds = format!(
            "{odoo_tokens} {}",
            Value::Array(s.odoo_transactions(ORDER).await)
        );
        assert!(!everything_odoo_holds.contains(secret.as_str()), "[{tag}]");
        let stored = s
            .gw()
            .db
            .token(&reference)
            .await
            .expect("read")
            .expect("stored");
        assert!(
            !format!("{stored:?}").contains(secret.as_str()),
            "[{tag}] the token is sealed at rest"
        );
        let (status, view) = s.admin_get(&format!("/admin/tokens/{reference}")).await;
        assert_eq!(status, StatusCode::OK, "[{tag}] {view}");
        assert_eq!(view["state"], "active");
        assert_eq!(view["saved_at_order"], ORDER);
        assert!(!view.to_string().contains(secret.as_str()), "[{tag}]");

        // Odoo makes a transaction for each charge (naming the token), then asks for it.
        let odoo_token = odoo_tokens[0]["id"].as_i64().expect("token id");
        let odoo_charge = |order: &str| {
            s.sandbox
                .odoo
                .charge_transaction(order, odoo_token)
                .expect("Odoo's transaction")
        };
        let (tx_44, tx_53, tx_54) = (
            odoo_charge("S00044"),
            odoo_charge("S00053"),
            odoo_charge("S00054"),
        );

        // First charge: Odoo charges the token for another order; a repeat of the same
        // Odoo transaction gets the same order, never a second.
        let (status, first) = charge(&s, &reference, &tx_44, "S00044").await;
        assert_eq!(status, StatusCode::OK, "[{tag}] {first}");
        assert_eq!(first["outcome"], "authorized", "[{tag}] {first}");
        let first_id = first["klarna_order_id"].as_str().expect("id").to_owned();
        let (status, again) = charge(&s, &reference, &tx_44, "S00044").await;
        assert_eq!((status, &again), (StatusCode::OK, &first), "[{tag}]");
        assert_eq!(
            klarna_orders_for(&s, "S00044"),
            vec![first_id.clone()],
            "[{tag}]"
        );
        let order = s.sandbox.state().orders[&first_id].order.clone();
        assert_eq!(
            order.order_amount, 70_029,
            "[{tag}] Odoo's amount for S00044"
        );

        // Another shopper's saved Klarna cannot answer for that Odoo transaction: it was
        // charged to the first token, and naming it with another is refused.
        pay_and_save(&s, OTHER_ORDER, OTHER_TOKEN).await;
        let other = s
            .odoo(
                "payment.token",
                "search_read",
                json!([[["provider_ref", "!=", reference.as_str()]]]),
                json!({}),
            )
            .await;
        let other = other[0]["provider_ref"].as_str().expect("another token");
        let (status, taken) = charge(&s, other, &tx_44, "S00044").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "[{tag}] {taken}");
        assert_eq!(taken["field"], "transaction_reference", "[{tag}] {taken}");
        assert_eq!(
            klarna_orders_for(&s, "S00044"),
            vec![first_id.clone()],
            "[{tag}]"
        );

        // Second charge, its answer lost on the way back and Klarna silent on every
        // retry: the charge is kept with its key, and asked again it places no second
        // order.
        let faults = format!("{}/_sandbox/faults/token_order", s.sandbox_url);
        let r = s
            .http
            .put(&faults)
            .json(&json!({"next": ["lose_response", "timeout", "timeout"]}))
            .send()
            .await
            .expect("faults");
        assert!(r.status().is_success(), "[{tag}] {}", r.status());
        let (status, wrong) = charge_with_records(&s, &reference, &tx_53, "S00053", "S00054").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "[{tag}] {wrong}");
        assert_eq!(wrong["field"], "odoo_records", "[{tag}] {wrong}");
        let (status, lost) = charge_with_records(&s, &reference, &tx_53, "S00053", "S00053").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "[{tag}] {lost}");
        assert_eq!(lost["code"], "klarna_unavailable", "[{tag}] {lost}");
        assert_eq!(
            klarna_orders_for(&s, "S00053").len(),
            1,
            "[{tag}] placed once"
        );
        let r = s
            .http
            .delete(format!("{}/_sandbox/faults", s.sandbox_url))
            .send()
            .await
            .expect("faults");
        assert!(r.status().is_success());
        let (status, second) =
            charge_with_records(&s, &reference, &tx_53, "S00053", "S00053").await;
        assert_eq!(status, StatusCode::OK, "[{tag}] {second}");
        let second_id = second["klarna_order_id"].as_str().expect("id").to_owned();
        assert_eq!(
            klarna_orders_for(&s, "S00053"),
            vec![second_id.clone()],
            "[{tag}]"
        );
        assert_ne!(first_id, second_id);

        // Charged concurrently: Odoo's cron and a person's button send the same Odoo
        // transaction at once. One request wins the claim, the others send its stored key
        // again: Klarna places one order and every request is answered with it.
        let tx_95 = odoo_charge("S00095");
        let (a, b, c) = tokio::join!(
            charge(&s, &reference, &tx_95, "S00095"),
            charge(&s, &reference, &tx_95, "S00095"),
            charge(&s, &reference, &tx_95, "S00095"),
        );
        let placed = klarna_orders_for(&s, "S00095");
        assert_eq!(
            placed.len(),
            1,
            "[{tag}] one Klarna order: {placed:?} {a:?} {b:?} {c:?}"
        );
        for (status, answer) in [a, b, c] {
            assert_eq!(status, StatusCode::OK, "[{tag}] {answer}");
            assert_eq!(
                answer["klarna_order_id"],
                placed[0].as_str(),
                "[{tag}] {answer}"
            );
        }
        let (t, _) = s.payment(&placed[0]).await;
        assert_eq!(
            t.authorized_amount, 146_304,
            "[{tag}] Odoo's amount for S00095"
        );

        // A charge is a payment like any other: captured, part refunded, and Odoo's
        // transaction for it follows.
        let (status, captured) = s
            .admin(
                &format!("/admin/payments/{first_id}/captures"),
                &json!({"amount": 70_029}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "[{tag}] {captured}");
        let (status, refunded) = s
            .admin(
                &format!("/admin/payments/{first_id}/refunds"),
                &json!({"amount": 1_000}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "[{tag}] {refunded}");
        let (t, _) = s.payment(&first_id).await;
        assert_eq!(
            (t.captured_amount, t.refunded_amount),
            (70_029, 1_000),
            "[{tag}]"
        );
        let at_klarna = s.sandbox.state().orders[&first_id].order.clone();
        assert_eq!(
            (at_klarna.captured_amount, at_klarna.refunded_amount),
            (70_029, 1_000),
            "[{tag}]"
        );
        s.settle().await;
        // Odoo's own transaction for the charge took the updates: authorized, then captured
        // whole (done), with the refund under it.
        let charged = s.odoo_transactions("S00044").await;
        assert_eq!(
            charged[0]["reference"],
            tx_44.as_str(),
            "[{tag}] {charged:?}"
        );
        assert_eq!(charged[0]["provider_reference"], first_id.as_str());
        assert_eq!(charged[0]["state"], "done", "[{tag}] {charged:?}");
        assert_eq!(
            charged.len(),
            2,
            "[{tag}] the charge and its refund: {charged:?}"
        );

        // `rotate-keys` seals the token again under the new master key; it still works.
        let new_key = s.gw().secrets.rotate().await.expect("rotate");
        let resealed = s
            .gw()
            .db
            .token(&reference)
            .await
            .expect("read")
            .expect("token");
        assert_eq!(resealed.sealed.key_id, new_key, "[{tag}]");
        assert_ne!(
            resealed.sealed.ciphertext, stored.sealed.ciphertext,
            "[{tag}]"
        );

        // Suspended at Klarna (a card that expired): refused, the token stays saved.
        let status_url = format!("{}/_sandbox/tokens/{secret}/status", s.sandbox_url);
        let r = s
            .http
            .post(&status_url)
            .json(&json!({"status": "SUSPENDED"}))
            .send()
            .await
            .expect("suspend");
        assert!(r.status().is_success(), "[{tag}] {}", r.status());
        let (status, suspended) = charge(&s, &reference, &tx_54, "S00054").await;
        assert_eq!(status, StatusCode::CONFLICT, "[{tag}] {suspended}");
        assert_eq!(suspended["code"], "token_not_chargeable");
        assert!(
            suspended["message"]
                .as_str()
                .is_some_and(|m| m.contains("suspended")),
            "[{tag}] {suspended}"
        );
        let r = s
            .http
            .post(&status_url)
            .json(&json!({"status": "ACTIVE"}))
            .send()
            .await
            .expect("activate");
        assert!(r.status().is_success());

        // Bad charges change nothing: another currency, an unknown token, a malformed body.
        let (status, other_currency) = charge(&s, &reference, "S09001-1", SE_ORDER).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "[{tag}] {other_currency}");
        assert_eq!(other_currency["field"], "order_reference");
        let (status, unknown) = charge(&s, "kt_nope", &tx_54, "S00054").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "[{tag}] {unknown}");
        let (status, malformed) = s
            .admin(
                &format!("/admin/tokens/{reference}/charges"),
                &json!({"transaction_reference": &tx_54, "order_reference": "S00054", "amount": 1}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "[{tag}] {malformed}");
        assert!(klarna_orders_for(&s, "S00054").is_empty(), "[{tag}]");

        // Deleted in Odoo: cancelled at Klarna and here, once however often asked.
        let (status, cancelled) = s
            .admin(&format!("/admin/tokens/{reference}/cancel"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "[{tag}] {cancelled}");
        assert_eq!(cancelled["state"], "cancelled");
        assert_eq!(cancelled["charges"].as_array().map(Vec::len), Some(3));
        assert_eq!(
            s.sandbox.state().customer_tokens[secret.as_str()].status,
            klarna_types::klarna::TokenStatus::Cancelled,
            "[{tag}]"
        );
        let (status, again) = s
            .admin(&format!("/admin/tokens/{reference}/cancel"), &json!({}))
            .await;
        assert_eq!(
            (status, &again["state"]),
            (StatusCode::OK, &json!("cancelled"))
        );

        // And a charge is refused, naming why; Klarna places nothing.
        let (status, refused) = charge(&s, &reference, &tx_54, "S00054").await;
        assert_eq!(status, StatusCode::CONFLICT, "[{tag}] {refused}");
        assert_eq!(refused["code"], "token_not_chargeable");
        assert!(
            refused["message"]
                .as_str()
                .is_some_and(|m| m.contains(&reference) && m.contains("cancelled")),
            "[{tag}] {refused}"
        );
        assert!(klarna_orders_for(&s, "S00054").is_empty(), "[{tag}]");
        // The earlier charges stand, and their repeat still answers them.
        let (status, replay) = charge(&s, &reference, &tx_44, "S00044").await;
        assert_eq!((status, &replay), (StatusCode::OK, &first), "[{tag}]");

        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_that_does_not_ask_saves_nothing() {
    for db in databases().await {
        let s = system(&db).await;
        let tag = s.db;
        // Odoo's checkout transaction without the box ticked: Klarna is not asked to save.
        s.sandbox.odoo.checkout(ORDER, false).expect("checkout");
        let order_id = s.paid(ORDER, TOKEN).await;
        s.settle().await;
        assert!(s.sandbox.state().customer_tokens.is_empty(), "[{tag}]");
        let klarna_order = s.sandbox.state().orders[&order_id].order.clone();
        assert_eq!(klarna_order.merchant_reference1.as_deref(), Some(ORDER));
        let odoo_tokens = s
            .odoo("payment.token", "search_read", json!([[]]), json!({}))
            .await;
        assert!(
            odoo_tokens.as_array().is_none_or(Vec::is_empty),
            "[{tag}] {odoo_tokens}"
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shopper_with_a_saved_klarna_is_erased_only_once_it_is_removed() {
    for db in databases().await {
        let s = system(&db).await;
        let tag = s.db;
        let email = "anna.svensson@example.se";
        pay_and_save(&s, SE_ORDER, SE_TOKEN).await;
        let export = s.gw().db.gdpr_export(email).await.expect("export");
        let saved = &export["saved_klarna"];
        assert_eq!(saved.as_array().map(Vec::len), Some(1), "[{tag}] {export}");
        assert_eq!(saved[0]["state"], "active", "[{tag}] {export}");
        assert_eq!(saved[0]["saved_at_order"], SE_ORDER, "[{tag}] {export}");
        let reference = saved[0]["reference"].as_str().expect("ref").to_owned();
        let secret = s
            .sandbox
            .state()
            .customer_tokens
            .keys()
            .next()
            .cloned()
            .expect("Klarna's token");
        assert!(!export.to_string().contains(&secret), "[{tag}] {export}");

        // The payment settled, the saved Klarna still chargeable: erasure is refused and
        // names it; nothing is erased.
        let (status, _) = s
            .admin(&format!("/admin/payments/{SE_ORDER}/captures"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "[{tag}]");
        let refused = s.gw().db.gdpr_erase(email).await.expect_err("saved Klarna");
        assert!(
            refused.to_string().contains(&reference),
            "[{tag}] {refused}"
        );
        let export = s.gw().db.gdpr_export(email).await.expect("export");
        assert_eq!(
            export["sessions"].as_array().map(Vec::len),
            Some(1),
            "[{tag}]"
        );

        // Removed in Odoo (cancelled at Klarna): the person can be erased.
        let (status, _) = s
            .admin(&format!("/admin/tokens/{reference}/cancel"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "[{tag}]");
        assert_eq!(
            s.gw().db.gdpr_erase(email).await.expect("erase"),
            1,
            "[{tag}]"
        );
        let export = s.gw().db.gdpr_export(email).await.expect("export");
        assert!(
            export["sessions"].as_array().is_some_and(Vec::is_empty),
            "[{tag}] {export}"
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}
