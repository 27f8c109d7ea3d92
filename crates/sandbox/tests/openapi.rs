//! Every body the gateway can send, held against Klarna's own OpenAPI documents
//! (`fixtures/klarna-openapi/`): the session and order of each of the 60 Odoo 18 fixture
//! orders, and the capture, refund and authorization update made of them. And the other
//! way round: bodies Klarna's schema refuses are refused by the sandbox (and, for Order
//! Management, by `klarna_types::rules`, which the gateway checks before sending), so the
//! stand-in cannot be laxer than Klarna.

use std::sync::LazyLock;

use klarna_sandbox::SandboxConfig;
use klarna_types::klarna::{
    CaptureRequest, MerchantUrls, OrderBody, RefundRequest, ShippingInfo, UpdateAuthorization,
    UpdateShippingInfo,
};
use klarna_types::mapping::{MappingOptions, map_order};
use klarna_types::odoo::OrderDocument;
use klarna_types::rules::{check_capture, check_refund, check_shipping_info_update};
use serde_json::{Value, json};

const FIXTURES: &str = include_str!("../../../fixtures/odoo18-orders.jsonl");
const PAYMENTS: &[u8] =
    include_bytes!("../../../fixtures/klarna-openapi/klarna-payments-v1-openapi3-2024.yml");
const ORDER_MANAGEMENT: &[u8] =
    include_bytes!("../../../fixtures/klarna-openapi/klarna-ordermanagement-v1-openapi3-2024.yml");

/// A YAML document as JSON. The Payments document holds a few bytes that are not UTF-8
/// and some control characters; they sit in descriptions, so they become spaces.
fn document(bytes: &[u8]) -> Value {
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let mut doc: Value = serde_yaml::from_str(&text).expect("an OpenAPI document");
    // Order Management writes `order_line.type`'s enum as one pipe-joined string.
    if let Some(kind) = doc.pointer_mut("/components/schemas/order_line/properties/type")
        && let Some(Value::String(joined)) = kind.get("enum").and_then(|e| e.get(0)).cloned()
    {
        kind["enum"] = joined.split('|').map(|v| json!(v)).collect();
    }
    doc
}

static PAYMENTS_DOC: LazyLock<Value> = LazyLock::new(|| document(PAYMENTS));
static OM_DOC: LazyLock<Value> = LazyLock::new(|| document(ORDER_MANAGEMENT));

/// The document's named request schema, as a validator.
fn schema(doc: &Value, name: &str) -> jsonschema::Validator {
    assert!(
        doc.pointer(&format!("/components/schemas/{name}"))
            .is_some(),
        "no schema {name:?}"
    );
    let root = json!({
        "components": doc["components"],
        "$ref": format!("#/components/schemas/{}", name.replace(' ', "%20")),
    });
    jsonschema::validator_for(&root).expect("a schema")
}

/// What the schema says is wrong with `body` (empty: Klarna's document accepts it).
fn problems(validator: &jsonschema::Validator, body: &impl serde::Serialize) -> Vec<String> {
    let value = serde_json::to_value(body).expect("json");
    validator
        .iter_errors(&value)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn options() -> MappingOptions {
    MappingOptions {
        merchant_urls: Some(MerchantUrls {
            notification: Some(format!(
                "https://gateway.example/klarna/notification/{}",
                "t".repeat(32)
            )),
            authorization: Some(format!(
                "https://gateway.example/klarna/authorization/{}",
                "t".repeat(32)
            )),
            ..MerchantUrls::default()
        }),
        ..MappingOptions::default()
    }
}

/// The session bodies of every fixture order Klarna can take (the others, in markets or
/// with data Klarna refuses, the gateway never sends).
fn bodies() -> Vec<OrderBody> {
    let bodies: Vec<OrderBody> = FIXTURES
        .lines()
        .filter_map(|l| serde_json::from_str::<OrderDocument>(l).ok())
        .filter_map(|doc| map_order(&doc, &options()).ok())
        .collect();
    assert!(bodies.len() >= 10, "only {} fixtures map", bodies.len());
    bodies
}

fn shipping() -> ShippingInfo {
    ShippingInfo {
        shipping_company: Some("DHL Paket".into()),
        shipping_method: Some("PickUpPoint".into()),
        tracking_number: Some("00340434161094042557".into()),
        tracking_uri: Some(
            "https://www.dhl.de/en/privatkunden.html?piececode=00340434161094042557".into(),
        ),
        ..ShippingInfo::default()
    }
}

#[test]
fn every_body_the_gateway_sends_is_one_klarnas_documents_accept() {
    let session = schema(&PAYMENTS_DOC, "session_create");
    let order = schema(&PAYMENTS_DOC, "create_order_request");
    let capture = schema(&OM_DOC, "CaptureObject");
    let refund = schema(&OM_DOC, "RefundObject");
    let update = schema(&OM_DOC, "Update authorization");
    for body in bodies() {
        let name = body.merchant_reference1.clone().unwrap_or_default();
        assert_eq!(
            problems(&session, &body),
            Vec::<String>::new(),
            "{name}: session"
        );
        assert_eq!(
            problems(&order, &body),
            Vec::<String>::new(),
            "{name}: order"
        );
        // One shipment of everything, with tracking, and a refund of it, as the
        // gateway's admin API builds them.
        let full = CaptureRequest {
            captured_amount: body.order_amount,
            description: Some(format!("Shipment of {name}")),
            reference: Some(format!("gw-{}", uuid::Uuid::new_v4())),
            order_lines: body.order_lines.clone(),
            shipping_info: vec![shipping()],
            shipping_delay: None,
        };
        assert_eq!(check_capture(&full), vec![], "{name}");
        assert_eq!(
            problems(&capture, &full),
            Vec::<String>::new(),
            "{name}: capture"
        );
        let back = RefundRequest {
            refunded_amount: body.order_amount,
            description: Some("Returned".into()),
            reference: Some(format!("gw-{}", uuid::Uuid::new_v4())),
            order_lines: body.order_lines.clone(),
        };
        assert_eq!(check_refund(&back), vec![], "{name}");
        assert_eq!(
            problems(&refund, &back),
            Vec::<String>::new(),
            "{name}: refund"
        );
        let changed = UpdateAuthorization {
            order_amount: body.order_amount,
            description: None,
            order_lines: body.order_lines.clone(),
        };
        assert_eq!(
            problems(&update, &changed),
            Vec::<String>::new(),
            "{name}: update"
        );
    }
}

/// A valid session body changed one way, by name.
fn broken(base: &OrderBody) -> Vec<(&'static str, OrderBody)> {
    let mut out = Vec::new();
    let mut push = |what, change: &dyn Fn(&mut OrderBody)| {
        let mut b = base.clone();
        change(&mut b);
        out.push((what, b));
    };
    push("order_tax_amount < 0", &|b| b.order_tax_amount = -1);
    push("no order lines", &|b| b.order_lines.clear());
    push("a line name of 256", &|b| {
        b.order_lines[0].name = "n".repeat(256)
    });
    push("an empty quantity_unit", &|b| {
        b.order_lines[0].quantity_unit = Some(String::new())
    });
    push("a quantity_unit of 9", &|b| {
        b.order_lines[0].quantity_unit = Some("123456789".into())
    });
    push("a tax_rate over 10000", &|b| {
        b.order_lines[0].tax_rate = 10_001
    });
    push("merchant_reference1 of 256", &|b| {
        b.merchant_reference1 = Some("r".repeat(256))
    });
    push("merchant_reference2 of 256", &|b| {
        b.merchant_reference2 = Some("r".repeat(256))
    });
    push("a merchant URL of 2001", &|b| {
        b.merchant_urls = Some(MerchantUrls {
            notification: Some("u".repeat(2001)),
            ..MerchantUrls::default()
        });
    });
    push("an unknown intent", &|b| b.intent = Some("steal".into()));
    push("an unknown customer type", &|b| {
        let mut c = b.customer.clone().unwrap_or_default();
        c.kind = Some("robot".into());
        b.customer = Some(c);
    });
    push("a street of 100", &|b| {
        if let Some(a) = b.billing_address.as_mut() {
            a.street_address = Some("s".repeat(100));
        }
    });
    push("a region of 100", &|b| {
        if let Some(a) = b.billing_address.as_mut() {
            a.region = Some("r".repeat(100));
        }
    });
    push("a postal code of 11", &|b| {
        if let Some(a) = b.billing_address.as_mut() {
            a.postal_code = Some("1".repeat(11));
        }
    });
    push("a three-letter country", &|b| {
        b.purchase_country = "SWE".into()
    });
    push("a malformed locale", &|b| b.locale = Some("sv_SE".into()));
    out
}

#[tokio::test]
async fn what_klarnas_schema_refuses_the_sandbox_refuses() {
    let (addr, _sandbox) = klarna_sandbox::spawn(SandboxConfig::default())
        .await
        .expect("sandbox");
    let cfg = SandboxConfig::default();
    let http = reqwest::Client::new();
    let create = |body: &OrderBody| {
        http.post(format!("http://{addr}/payments/v1/sessions"))
            .basic_auth(&cfg.username, Some(&cfg.password))
            .json(body)
            .send()
    };
    let session = schema(&PAYMENTS_DOC, "session_create");
    let base = bodies()
        .into_iter()
        .find(|b| b.billing_address.is_some() && b.customer.is_some())
        .expect("an order with an address and a customer");
    assert_eq!(problems(&session, &base), Vec::<String>::new());
    let r = create(&base).await.expect("create");
    assert_eq!(
        r.status(),
        reqwest::StatusCode::OK,
        "{}",
        r.text().await.unwrap_or_default()
    );
    for (what, body) in broken(&base) {
        assert!(
            !problems(&session, &body).is_empty(),
            "Klarna's schema takes {what}"
        );
        let r = create(&body).await.expect("create");
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert_eq!(
            status,
            reqwest::StatusCode::BAD_REQUEST,
            "the sandbox took {what}: {text}"
        );
        assert!(text.contains("BAD_VALUE"), "{what}: {text}");
    }

    // Order Management: what the schema refuses, the gateway's own check refuses before
    // sending (and the sandbox with it, `check_capture` being its rule too).
    let capture = schema(&OM_DOC, "CaptureObject");
    let ok = CaptureRequest {
        captured_amount: base.order_amount,
        order_lines: base.order_lines.clone(),
        shipping_info: vec![shipping()],
        ..CaptureRequest::default()
    };
    let mut cases: Vec<(&str, CaptureRequest)> = Vec::new();
    let mut case = |what, change: &dyn Fn(&mut CaptureRequest)| {
        let mut c = ok.clone();
        change(&mut c);
        cases.push((what, c));
    };
    case("a description of 256", &|c| {
        c.description = Some("d".repeat(256))
    });
    case("a reference of 256", &|c| {
        c.reference = Some("r".repeat(256))
    });
    case("a negative amount", &|c| c.captured_amount = -1);
    case("an unknown shipping method", &|c| {
        c.shipping_info[0].shipping_method = Some("Drone".into())
    });
    case("a shipping company of 101", &|c| {
        c.shipping_info[0].shipping_company = Some("c".repeat(101))
    });
    case("a tracking number of 101", &|c| {
        c.shipping_info[0].tracking_number = Some("t".repeat(101))
    });
    case("a tracking URI of 1025", &|c| {
        c.shipping_info[0].tracking_uri = Some("u".repeat(1025))
    });
    case("501 shipments", &|c| {
        c.shipping_info = vec![shipping(); 501]
    });
    case("1001 lines", &|c| {
        c.order_lines = vec![c.order_lines[0].clone(); 1001]
    });
    case("a negative shipping delay", &|c| {
        c.shipping_delay = Some(-1)
    });
    for (what, c) in cases {
        assert!(
            !problems(&capture, &c).is_empty(),
            "Klarna's schema takes {what}"
        );
        assert!(!check_capture(&c).is_empty(), "our check takes {what}");
    }
}

/// Shipping info added to a capture later (`UpdateShippingInfo`): what Klarna's schema
/// takes, `check_shipping_info_update` (the gateway's check before sending, and the
/// sandbox's rule) takes; what it refuses, both refuse.
#[test]
fn shipping_info_added_later_keeps_klarnas_schema() {
    let update = schema(&OM_DOC, "UpdateShippingInfo");
    let ok = UpdateShippingInfo {
        shipping_info: vec![shipping()],
    };
    assert_eq!(problems(&update, &ok), Vec::<String>::new());
    assert!(check_shipping_info_update(&ok).is_empty());
    let with = |change: &dyn Fn(&mut UpdateShippingInfo)| {
        let mut u = ok.clone();
        change(&mut u);
        u
    };
    for (what, u) in [
        ("no items", with(&|u| u.shipping_info.clear())),
        (
            "501 items",
            with(&|u| u.shipping_info = vec![shipping(); 501]),
        ),
        (
            "an unknown shipping method",
            with(&|u| u.shipping_info[0].shipping_method = Some("Drone".into())),
        ),
        (
            "a tracking number of 101",
            with(&|u| u.shipping_info[0].tracking_number = Some("t".repeat(101))),
        ),
        (
            "a return tracking URI of 1025",
            with(&|u| u.shipping_info[0].return_tracking_uri = Some("u".repeat(1025))),
        ),
    ] {
        assert!(
            !problems(&update, &u).is_empty(),
            "Klarna's schema takes {what}"
        );
        assert!(
            !check_shipping_info_update(&u).is_empty(),
            "our check takes {what}"
        );
    }
}
