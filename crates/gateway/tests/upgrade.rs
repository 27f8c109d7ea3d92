//! Upgrades: a database made by each earlier schema is restored and opened by this
//! gateway, which migrates it forward and serves what it held.
//!
//! The fixtures in `tests/fixtures/schema/` are real databases, not hand-written SQL. They
//! were made by the gateway of that schema with `klarna-gateway backup` after paying,
//! capturing, refunding and receiving a webhook. Beside each are the master keys that
//! sealed its secrets (test keys, nothing else uses them) and what it held. A fixture is
//! never changed once made. Each new migration comes with the fixture of its schema,
//! written by `write_the_fixture_of_the_current_schema` (ignored; run it with `--ignored`):
//! `every_schema_since_5_has_its_fixture` fails until it exists.

mod common;

use std::path::{Path, PathBuf};

use common::{ADMIN_TOKEN, ORDER, SE_ORDER, SE_TOKEN, TOKEN};
use klarna_gateway::db::{Backend, Db};
use klarna_gateway::vault::Vault;
use klarna_gateway::{Config, Gateway, InitialSecrets, backup, manage};
use klarna_sandbox::SandboxConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, SqliteConnection};

/// The first schema a fixture was kept for.
const FIRST_FIXTURE: i64 = 5;

fn fixture(version: i64, ext: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schema")
        .join(format!("schema-{version}.{ext}"))
}

#[test]
fn every_schema_since_5_has_its_fixture() {
    for version in FIRST_FIXTURE..=Db::known_schema(Backend::Sqlite) {
        for ext in ["db", "master.keys", "json"] {
            let path = fixture(version, ext);
            assert!(
                path.is_file(),
                "no {} — a new migration needs the fixture of its schema: cargo test -p klarna-gateway --test upgrade -- --ignored",
                path.display()
            );
        }
    }
}

/// `actual` has every field `expected` has, with the same value (a later schema may add
/// fields).
fn holds(actual: &Value, expected: &Value, at: &str) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            for (k, v) in e {
                holds(a.get(k).unwrap_or(&Value::Null), v, &format!("{at}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            assert_eq!(a.len(), e.len(), "{at}: {actual} vs {expected}");
            for (i, (a, e)) in a.iter().zip(e).enumerate() {
                holds(a, e, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(actual, expected, "{at}"),
    }
}

#[tokio::test]
async fn a_database_from_each_earlier_schema_is_migrated_and_serves_what_it_held() {
    let known = Db::known_schema(Backend::Sqlite);
    for version in FIRST_FIXTURE..=known {
        let expected: Value = serde_json::from_slice(
            &std::fs::read(fixture(version, "json")).expect("the fixture's contents"),
        )
        .expect("json");
        let dir = tempfile::tempdir().expect("dir");
        std::fs::copy(
            fixture(version, "master.keys"),
            dir.path().join("master.keys"),
        )
        .expect("keys");
        let url = format!("sqlite://{}", dir.path().join("gateway.db").display());
        let vault = Vault::open(None, dir.path()).expect("vault");
        let summary = backup::restore(&fixture(version, "db"), &url, &vault)
            .await
            .expect("restore");
        assert_eq!(summary.schema_version, version);

        // Nowhere to connect to: opening must not need Klarna or Odoo.
        let config = Config::sandbox(&url, dir.path(), "http://127.0.0.1:9");
        let gw = Gateway::new(config, InitialSecrets::default())
            .await
            .unwrap_or_else(|e| panic!("schema {version}: {e}"));
        assert_eq!(gw.db.schema_version().await.expect("version"), known);
        assert_eq!(
            gw.secrets.get("admin.token").as_deref().map(String::as_str),
            expected["admin_token"].as_str(),
            "schema {version}"
        );
        for payment in expected["payments"].as_array().expect("payments") {
            let key = payment["payment"]["klarna_order_id"].as_str().expect("id");
            let view = manage::view(&gw, key).await.expect("the payment");
            let view = json!({"payment": view.payment, "operations": view.operations});
            holds(&view, payment, &format!("schema {version}: {key}"));
        }
        for id in expected["event_ids"].as_array().expect("events") {
            let id = id.as_str().expect("id");
            let event = gw.db.event(id).await.expect("read");
            assert!(event.is_some(), "schema {version}: event {id}");
        }
        // Saved Klarna (schema 6 on): still there, and its sealed token still opens.
        for reference in expected["saved_tokens"].as_array().into_iter().flatten() {
            let reference = reference.as_str().expect("reference");
            let token = gw
                .db
                .token(reference)
                .await
                .expect("read")
                .unwrap_or_else(|| panic!("schema {version}: saved Klarna {reference}"));
            let name = klarna_gateway::secrets::customer_token_name(reference);
            assert!(
                gw.secrets.open(&name, &token.sealed).is_ok(),
                "schema {version}: {reference} opens"
            );
        }
        gw.db.pool.close().await;

        // The same database opened without its master keys (a fresh key is made for the
        // empty data dir) is refused, naming the secrets, not run with them unreadable.
        let keyless = tempfile::tempdir().expect("dir");
        let config = Config::sandbox(&url, keyless.path(), "http://127.0.0.1:9");
        let refused = Gateway::new(config, InitialSecrets::default())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("admin.token (sealed with key")),
            "schema {version}: {refused:?}"
        );
    }
}

/// Makes the fixture of the current schema with a gateway of this version. Run once,
/// when a migration is added; a fixture that exists is never overwritten.
#[tokio::test]
#[ignore = "writes tests/fixtures/schema/schema-N.* for a new schema; run with --ignored"]
async fn write_the_fixture_of_the_current_schema() {
    let version = Db::known_schema(Backend::Sqlite);
    let db = common::sqlite();
    let s = common::system_with_webhooks(&db, SandboxConfig::default(), |_| {}).await;
    // The German shopper saves their Klarna (schema 6 on): the fixture holds a sealed token.
    s.sandbox.odoo.checkout(ORDER, true).expect("checkout");
    let de = s.paid(ORDER, TOKEN).await;
    let se = s.paid(SE_ORDER, SE_TOKEN).await;
    let (status, body) = s
        .admin(
            &format!("/admin/payments/{de}/captures"),
            &json!({"amount": 20_000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .admin(
            &format!("/admin/payments/{de}/refunds"),
            &json!({"amount": 5_000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s.signed_webhook("evt-fixture-1", &se).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.settle().await;

    let file = fixture(version, "db");
    std::fs::create_dir_all(file.parent().expect("dir")).expect("fixtures dir");
    backup::backup(&s.gw().config.database_url, &file)
        .await
        .expect("the fixture, made by `backup`");
    std::fs::copy(
        s.data_dir.path().join("master.keys"),
        fixture(version, "master.keys"),
    )
    .expect("keys");
    let mut payments = Vec::new();
    let mut saved_tokens = Vec::new();
    for key in [&de, &se] {
        let view = manage::view(s.gw(), key).await.expect("view");
        payments.push(json!({"payment": view.payment, "operations": view.operations}));
        saved_tokens.extend(view.saved_token);
    }
    let contents = json!({
        "schema_version": version,
        "admin_token": ADMIN_TOKEN,
        "payments": payments,
        "event_ids": ["evt-fixture-1"],
        "saved_tokens": saved_tokens,
    });
    std::fs::write(
        fixture(version, "json"),
        serde_json::to_string_pretty(&contents).expect("json") + "\n",
    )
    .expect("write");
    s.shutdown().await;
}

#[tokio::test]
async fn a_backup_whose_saved_klarna_the_keys_cannot_open_is_not_restored() {
    // Schema 6's fixture holds a saved Klarna sealed with its master keys; here that token
    // says it was sealed with a key the operator did not keep.
    let dir = tempfile::tempdir().expect("dir");
    let copy = dir.path().join("backup.db");
    std::fs::copy(fixture(6, "db"), &copy).expect("copy");
    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", copy.display()))
        .await
        .expect("open the copy");
    let (reference,): (String,) = sqlx::query_as("SELECT reference FROM customer_tokens")
        .fetch_one(&mut conn)
        .await
        .expect("a saved Klarna");
    sqlx::query("UPDATE customer_tokens SET key_id = 'k-not-kept'")
        .execute(&mut conn)
        .await
        .expect("update");
    conn.close().await.expect("close");

    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    std::fs::copy(fixture(6, "master.keys"), data.join("master.keys")).expect("keys");
    let vault = Vault::open(None, &data).expect("vault");
    let url = format!("sqlite://{}", data.join("gateway.db").display());
    let summary = backup::inspect(&copy).await.expect("inspect");
    assert_eq!(summary.saved_klarna, 1);
    let refused = backup::restore(&copy, &url, &vault)
        .await
        .expect_err("a token the keys cannot open");
    assert!(
        refused
            .to_string()
            .contains(&format!("customer_token.{reference}")),
        "{refused}"
    );
    assert!(!data.join("gateway.db").exists(), "nothing put in place");

    // The fixture as it was made restores, its saved Klarna counted.
    let summary = backup::restore(&fixture(6, "db"), &url, &vault)
        .await
        .expect("restore");
    assert_eq!(summary.saved_klarna, 1);
}
