//! `klarna-gateway map ORDER.json`: the dry run an integrator runs over exported orders.

use std::process::Command;

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/examples/order.json"
);

fn map(path: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_klarna-gateway"))
        .arg("map")
        .arg(path)
        .output()
        .expect("run klarna-gateway map");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_documented_example_maps_to_the_body_docs_money_md_describes() {
    let (code, stdout, stderr) = map(std::path::Path::new(EXAMPLE));
    assert_eq!(code, 0, "{stderr}");
    let body: serde_json::Value = serde_json::from_str(&stdout).expect("JSON body");
    assert_eq!(body["order_amount"], 119_382);
    assert_eq!(body["order_tax_amount"], 22_627);
    assert_eq!(
        body["order_lines"][1]["name"],
        "1.5 kg × [KF-1] Kaffe, mellanrost"
    );
    assert_eq!(body["order_lines"][2]["type"], "shipping_fee");
    assert_eq!(body["billing_address"]["street_address"], "Storgatan 1");
    assert_eq!(body["billing_address"]["street_address2"], "lgh 1101");
    assert_eq!(body["billing_address"]["phone"], "+46701234567");
}

#[test]
fn every_problem_is_printed_with_its_field_and_the_exit_code_says_so() {
    let text = std::fs::read_to_string(EXAMPLE).expect("example");
    let mut doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    for role in ["partner_invoice_id", "partner_shipping_id"] {
        doc["partners"][role]["zip"] = "1234".into();
    }
    doc["partners"]["partner_invoice_id"]["email"] = "anna-at-example".into();
    doc["currency"]["name"] = "EUR".into();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.json");
    std::fs::write(&path, doc.to_string()).expect("write");
    let (code, stdout, stderr) = map(&path);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    for field in [
        "purchase_currency",
        "billing_address.postal_code",
        "billing_address.email",
        "shipping_address.postal_code",
    ] {
        assert!(stderr.contains(field), "{field} missing from:\n{stderr}");
    }
    let (code, _, stderr) = map(&dir.path().join("missing.json"));
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot read"));
}
