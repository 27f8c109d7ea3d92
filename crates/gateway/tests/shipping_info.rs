//! Shipment tracking on captures, on SQLite and PostgreSQL: the carrier and tracking number
//! travel with a capture, or are added to it later; Klarna's limits are checked before
//! anything is sent; the same tracking added twice — one after the other or at once — is
//! appended at Klarna once.

mod common;

use common::{ORDER, TOKEN, databases, system};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What the sandbox's Klarna holds as the capture's shipping info.
fn klarna_shipping(s: &common::System, order_id: &str, capture: &str) -> Vec<Value> {
    let state = s.sandbox.state();
    let c = state.orders[order_id]
        .order
        .captures
        .iter()
        .find(|c| c.capture_id == capture)
        .expect("the capture at Klarna")
        .clone();
    c.shipping_info
        .iter()
        .map(|i| serde_json::to_value(i).expect("json"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_goes_with_a_capture_or_is_added_later_once() {
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        let base = format!("/admin/payments/{order_id}/captures");
        let dhl = json!({
            "shipping_company": "DHL",
            "shipping_method": "Home",
            "tracking_number": "00340434161094042557",
            "tracking_uri": "https://www.dhl.de/track?piececode=00340434161094042557",
        });
        let (status, first) = s
            .admin(&base, &json!({"amount": 30_000, "shipping_info": [dhl]}))
            .await;
        assert_eq!(status, StatusCode::OK, "[{}] {first}", s.db);
        let first_op = first["operation"]["id"].as_i64().expect("operation id");
        let first_capture = first["operation"]["klarna_id"]
            .as_str()
            .expect("capture id")
            .to_owned();
        assert_eq!(
            klarna_shipping(&s, &order_id, &first_capture),
            std::slice::from_ref(&dhl),
            "[{}]",
            s.db
        );

        // A second shipment, captured before its tracking number was known.
        let (status, second) = s.admin(&base, &json!({"amount": 20_000})).await;
        assert_eq!(status, StatusCode::OK, "[{}] {second}", s.db);
        let second_op = second["operation"]["id"].as_i64().expect("operation id");
        let second_capture = second["operation"]["klarna_id"]
            .as_str()
            .expect("capture id")
            .to_owned();
        let ups = json!({"shipping_company": "UPS", "tracking_number": "1Z999AA10123456784"});
        let add = format!("{base}/{second_op}/shipping-info");
        let body = json!({"shipping_info": [ups]});

        // Klarna's limits, checked before anything is sent.
        let too_long = json!({"shipping_info": [{"tracking_number": "9".repeat(101)}]});
        let unknown_method = json!({"shipping_info": [{"shipping_method": "Drone"}]});
        let empty = json!({"shipping_info": []});
        for (bad, field) in [
            (&too_long, "shipping_info[0].tracking_number"),
            (&unknown_method, "shipping_info[0].shipping_method"),
            (&empty, "shipping_info"),
        ] {
            let (status, refused) = s.admin(&add, bad).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "[{}] {refused}", s.db);
            assert_eq!(refused["field"], field, "[{}] {refused}", s.db);
        }
        assert!(klarna_shipping(&s, &order_id, &second_capture).is_empty());
        assert_eq!(s.sandbox.faults.count("add_shipping_info"), 0, "[{}]", s.db);

        // Not a succeeded capture of this payment: an id nobody has, a negative one.
        for wrong in [second_op + 1000, -1] {
            let (status, refused) = s
                .admin(&format!("{base}/{wrong}/shipping-info"), &body)
                .await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "[{}] {refused}",
                s.db
            );
            assert_eq!(refused["code"], "unknown_capture_operation");
        }

        // Added twice at once, then once more: one item at Klarna.
        let (a, b) = tokio::join!(s.admin(&add, &body), s.admin(&add, &body));
        for (status, answer) in [&a, &b] {
            assert_eq!(*status, StatusCode::OK, "[{}] {answer}", s.db);
            assert_eq!(answer["klarna_capture_id"], second_capture.as_str());
        }
        let sent = s.sandbox.faults.count("add_shipping_info");
        let (status, again) = s.admin(&add, &body).await;
        assert_eq!(status, StatusCode::OK, "[{}] {again}", s.db);
        assert_eq!(again["added"], false, "[{}] {again}", s.db);
        assert_eq!(
            s.sandbox.faults.count("add_shipping_info"),
            sent,
            "[{}] the timeline answered: Klarna was not asked again",
            s.db
        );
        assert_eq!(
            klarna_shipping(&s, &order_id, &second_capture),
            std::slice::from_ref(&ups),
            "[{}]",
            s.db
        );
        // Other tracking for the same capture is appended; the first capture is untouched.
        let returned = json!({"shipping_info": [{"return_shipping_company": "UPS", "return_tracking_number": "1Z999AA10123456785"}]});
        let (status, answer) = s.admin(&add, &returned).await;
        assert_eq!(status, StatusCode::OK, "[{}] {answer}", s.db);
        assert_eq!(answer["added"], true);
        assert_eq!(klarna_shipping(&s, &order_id, &second_capture).len(), 2);
        assert_eq!(klarna_shipping(&s, &order_id, &first_capture), [dhl]);
        assert_ne!(first_op, second_op);

        // The timeline says what was added, without anything secret.
        let (status, view) = s.admin_get(&format!("/admin/payments/{order_id}")).await;
        assert_eq!(status, StatusCode::OK);
        let added: Vec<&str> = view["timeline"]
            .as_array()
            .expect("timeline")
            .iter()
            .filter(|e| e["action"] == "shipping_info_added")
            .filter_map(|e| e["detail"].as_str())
            .collect();
        assert!(
            added.len() >= 2 && added[0].contains("UPS 1Z999AA10123456784"),
            "[{}] {added:?}",
            s.db
        );
    }
}
