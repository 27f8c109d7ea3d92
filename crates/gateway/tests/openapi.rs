//! The gateway's OpenAPI document (`GET /openapi.json`), read from a running gateway: it
//! lists every route with its errors, and Schemathesis (from PyPI), let loose on the
//! gateway with that document, finds no 5xx and no answer the document does not describe.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use common::{ADMIN_TOKEN, sqlite, system_with_webhooks};
use klarna_sandbox::SandboxConfig;
use reqwest::StatusCode;
use serde_json::Value;

/// Every route the gateway serves: a route lost from the document, or one added to it
/// that the gateway does not have, fails here.
const ROUTES: [(&str, &str); 30] = [
    ("post", "/klarna/session"),
    ("post", "/klarna/authorize"),
    ("post", "/klarna/webhook"),
    ("post", "/klarna/notification/{token}"),
    ("post", "/klarna/authorization/{token}"),
    ("get", "/admin/status"),
    ("get", "/admin/doctor"),
    ("get", "/admin/payments/{key}"),
    ("post", "/admin/payments/{key}/captures"),
    ("post", "/admin/payments/{key}/refunds"),
    (
        "post",
        "/admin/payments/{key}/captures/{capture}/shipping-info",
    ),
    ("post", "/admin/payments/{key}/cancel"),
    ("post", "/admin/payments/{key}/release"),
    ("post", "/admin/payments/{key}/extend"),
    ("post", "/admin/payments/{key}/authorization"),
    ("get", "/admin/review"),
    ("get", "/admin/jobs/{id}"),
    ("post", "/admin/jobs/{id}/replay"),
    ("post", "/admin/reconcile"),
    ("get", "/admin/webhook-keys"),
    ("post", "/admin/webhook-keys"),
    ("post", "/admin/webhook-keys/{id}/revoke"),
    ("get", "/admin/webhook-events/{id}"),
    ("get", "/admin/tokens/{reference}"),
    ("post", "/admin/tokens/{reference}/charges"),
    ("post", "/admin/tokens/{reference}/cancel"),
    ("get", "/healthz"),
    ("get", "/healthz/client"),
    ("get", "/readyz"),
    ("get", "/openapi.json"),
];

async fn document(url: &str) -> Value {
    let r = reqwest::get(format!("{url}/openapi.json"))
        .await
        .expect("GET /openapi.json");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    r.json().await.expect("the document is JSON")
}

#[tokio::test]
async fn the_document_lists_every_route_with_its_errors() {
    let db = sqlite();
    let s = system_with_webhooks(&db, SandboxConfig::default(), |_| {}).await;
    let doc = document(&s.url).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));

    let mut listed = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            listed.insert((method.clone(), path.clone()));
        }
    }
    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(listed, expected);

    for (method, path) in ROUTES {
        let operation = &doc["paths"][path][method];
        let responses = operation["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path}: no success answer"
        );
        // The listener can refuse any request: overloaded, or a fault of ours.
        for status in ["500", "503"] {
            assert!(
                responses.contains_key(status),
                "{method} {path}: {status} missing"
            );
        }
        for (status, response) in responses {
            if status.starts_with('2') || (path == "/readyz" && status == "503") {
                continue;
            }
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ApiError",
                "{method} {path}: its {status} is not an ApiError"
            );
        }
        let secured = operation["security"].as_array().map(Vec::len);
        if path.starts_with("/admin/") {
            assert_eq!(secured, Some(2), "{method} {path}: token or Odoo signature");
            assert!(responses.contains_key("401"), "{method} {path}: no 401");
        } else {
            assert_eq!(secured, None, "{method} {path} needs no credentials");
        }
    }
    // Every code of the one error enum is in the document, for clients to match on.
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode's values");
    assert_eq!(
        codes.len(),
        klarna_types::contract::ErrorCode::ALL.len(),
        "{codes:?}"
    );
}

/// What axum and tower-http refuse before a handler runs comes in the same shape as
/// every other error.
#[tokio::test]
async fn refusals_before_any_handler_are_api_errors() {
    let db = sqlite();
    let s = system_with_webhooks(&db, SandboxConfig::default(), |_| {}).await;
    let http = &s.http;
    let check = |r: reqwest::Response, status: StatusCode, code: &'static str| async move {
        assert_eq!(r.status(), status);
        let allow = r.headers().get("allow").cloned();
        let body: Value = r.json().await.expect("an ApiError");
        assert_eq!(body["code"], code, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        allow
    };
    let r = http
        .get(format!("{}/no/such/route", s.url))
        .send()
        .await
        .expect("send");
    check(r, StatusCode::NOT_FOUND, "not_found").await;

    let r = http
        .get(format!("{}/klarna/session", s.url))
        .send()
        .await
        .expect("send");
    let allow = check(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    assert_eq!(allow.as_ref().and_then(|v| v.to_str().ok()), Some("POST"));

    let r = http
        .get(format!("{}/admin/jobs/not-a-number", s.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("send");
    check(r, StatusCode::BAD_REQUEST, "invalid_request").await;

    let r = http
        .post(format!("{}/klarna/session", s.url))
        .header("content-type", "application/json")
        .body(vec![b' '; 64 * 1024])
        .send()
        .await
        .expect("send");
    check(r, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
}

/// The `st` command: `SCHEMATHESIS` (set by `cargo xtask test`, which installs it), or on
/// the PATH. Under CI a missing one fails.
fn schemathesis() -> Option<PathBuf> {
    std::env::var_os("SCHEMATHESIS")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| common::tool("st"))
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_document() {
    let Some(st) = schemathesis() else { return };
    let db = sqlite();
    let s = system_with_webhooks(&db, SandboxConfig::default(), |c| {
        // Schemathesis is one address sending hundreds of requests, most of them wrong:
        // the front door would rate-limit and then block it, and most operations would be
        // tested only as far as the door.
        c.frontdoor.widget_per_second = 1_000_000;
        c.frontdoor.webhook_per_second = 1_000_000;
        c.frontdoor.admin_per_second = 1_000_000;
        c.frontdoor.block_after = u32::MAX;
    })
    .await;
    // A payment to find, so that the admin routes answer more than 404.
    let klarna_order = common::pay(
        &s.http,
        &s.url,
        &s.sandbox_url,
        common::ORDER,
        common::TOKEN,
    )
    .await;
    let report = tempfile::tempdir().expect("report dir");
    // The admin API's credentials: the bearer token. (Without them Schemathesis makes up an
    // Odoo signature, which is refused before anything else is looked at.)
    let config = report.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            "[auth.openapi.admin_token]\nbearer = \"{ADMIN_TOKEN}\"\n\
             # The payment and the callback token that exist, so that the operations get past\n\
             # 404 to the state machine, Klarna and the callbacks' parsers.\n\
             [parameters]\n\"path.key\" = \"{klarna_order}\"\n\"path.token\" = \"{}\"\n",
            common::CLASSIC_TOKEN
        ),
    )
    .expect("write the config");
    let mut command = Command::new(&st);
    command
        // Its cache of crashes goes there too, not into the source tree.
        .current_dir(report.path())
        .arg("--no-color")
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/openapi.json", s.url))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance,negative_data_rejection",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "40",
            "--seed",
            "20261207",
            // One worker: with two threads, Hypothesis' ast.parse of its lambdas can hit
            // CPython 3.11's "AST constructor recursion depth mismatch" (a SystemError in
            // the tool, not an answer of ours) — seen once in a CI run.
            "--workers",
            "1",
            "--request-timeout",
            "20",
            "--report",
            "junit",
            "--report-dir",
        ])
        .arg(report.path())
        .env("NO_COLOR", "1");
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("joined")
        .expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis failed:\n{text}");
    // It tested every operation (all but the document itself, which it read), and each
    // passed.
    let junit = std::fs::read_dir(report.path())
        .expect("the report dir")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("junit"))
        .map(|e| std::fs::read_to_string(e.path()).expect("the JUnit report"))
        .unwrap_or_else(|| panic!("no JUnit report:\n{text}"));
    let tested: BTreeSet<String> = junit
        .split("<testcase name=\"")
        .skip(1)
        .filter_map(|case| case.split('"').next())
        .map(str::to_owned)
        .collect();
    let expected: BTreeSet<String> = ROUTES
        .iter()
        .filter(|(_, path)| *path != "/openapi.json")
        .map(|(method, path)| format!("{} {path}", method.to_uppercase()))
        .collect();
    assert_eq!(tested, expected, "{text}");
    assert!(
        !junit.contains("<failure") && !junit.contains("<error"),
        "{junit}"
    );
}
