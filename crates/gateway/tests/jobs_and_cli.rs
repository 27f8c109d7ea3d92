//! The job queue's rules (priority, leases, the attempt budget) and the command line that
//! operators use, on SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use common::{ORDER, ORDER_TOTAL, TOKEN, databases, system};
use klarna_gateway::db::Db;
use klarna_gateway::store::jobs::{MAX_ATTEMPTS, PRIORITY_MAINTENANCE, PRIORITY_PAYMENT};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_work_first_leases_expire_and_five_failures_end_in_review() {
    for db in databases().await {
        let store = Db::connect(&db.url).await.expect("db");
        store
            .enqueue_now("maintenance", &json!({}), PRIORITY_MAINTENANCE, None)
            .await
            .expect("enqueue");
        store
            .enqueue_now("payment", &json!({}), PRIORITY_PAYMENT, Some("pay-1"))
            .await
            .expect("enqueue");
        store
            .enqueue_now("payment", &json!({}), PRIORITY_PAYMENT, Some("pay-1"))
            .await
            .expect("duplicate is dropped");
        let first = store
            .claim_job(Duration::from_millis(200))
            .await
            .expect("claim")
            .expect("a job");
        assert_eq!(first.kind, "payment", "[{}] payment work first", db.name);
        let second = store
            .claim_job(Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("a job");
        assert_eq!(second.kind, "maintenance");
        assert!(
            store
                .claim_job(Duration::from_secs(60))
                .await
                .expect("claim")
                .is_none(),
            "one copy of pay-1"
        );
        // The first worker died: its lease runs out and another takes the job over.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let again = store
            .claim_job(Duration::from_secs(60))
            .await
            .expect("claim")
            .expect("reclaimed");
        assert_eq!((again.id, again.attempts), (first.id, 2), "[{}]", db.name);
        let mut job = again;
        for attempt in 2..=MAX_ATTEMPTS {
            let to_review = store
                .fail_job(&job, "still broken", Duration::ZERO)
                .await
                .expect("fail");
            assert_eq!(
                to_review,
                attempt == MAX_ATTEMPTS,
                "[{}] attempt {attempt}",
                db.name
            );
            if !to_review {
                job = store
                    .claim_job(Duration::from_secs(60))
                    .await
                    .expect("claim")
                    .expect("retried");
            }
        }
        let review = store.jobs_in("review").await.expect("review");
        assert_eq!(
            (review.len(), review[0].last_error.as_deref()),
            (1, Some("still broken"))
        );
        assert!(store.replay_job(review[0].id).await.expect("replay"));
        assert_eq!(
            store
                .claim_job(Duration::from_secs(60))
                .await
                .expect("claim")
                .expect("replayed")
                .attempts,
            1
        );
        store.complete_job(review[0].id).await.expect("done");
        // Done frees the dedupe key for the same work later.
        store
            .enqueue_now("payment", &json!({}), PRIORITY_PAYMENT, Some("pay-1"))
            .await
            .expect("enqueue");
        assert_eq!(store.queue_stats().await.expect("stats").waiting, 1);
        store.pool.close().await;
        db.cleanup().await;
    }
}

fn cli(
    db_url: &str,
    data_dir: &std::path::Path,
    sandbox_url: &str,
    args: &[&str],
) -> (bool, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_klarna-gateway"))
        .args(args)
        .arg("--database-url")
        .arg(db_url)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--klarna-url")
        .arg(sandbox_url)
        .arg("--odoo-url")
        .arg(sandbox_url)
        .arg("--metrics-listen")
        .arg("off")
        .output()
        .expect("run klarna-gateway");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.success(),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_capture_and_inspect_from_the_command_line() {
    for db in databases().await {
        let s = system(&db).await;
        let order_id = s.paid(ORDER, TOKEN).await;
        let (dir, url, sandbox) = (
            s.data_dir.path().to_owned(),
            db.url.clone(),
            s.sandbox_url.clone(),
        );
        let run = move |args: Vec<&'static str>| {
            let (dir, url, sandbox) = (dir.clone(), url.clone(), sandbox.clone());
            tokio::task::spawn_blocking(move || cli(&url, &dir, &sandbox, &args))
        };
        let (ok, captured, err) = run(vec!["capture", ORDER, "--amount", "20000"])
            .await
            .expect("join");
        assert!(ok, "[{}] {err}", s.db);
        assert_eq!(captured["payment"]["captured_amount"], 20_000);
        let (ok, _, err) = run(vec!["capture", ORDER, "--amount", "999999999"])
            .await
            .expect("join");
        assert!(
            !ok && err.contains("exceeds the remaining authorization"),
            "[{}] {err}",
            s.db
        );
        // A retry by an operator who believes nothing was captured: refused, named.
        let (ok, _, err) = run(vec![
            "capture",
            ORDER,
            "--amount",
            "20000",
            "--expected-captured",
            "0",
        ])
        .await
        .expect("join");
        assert!(
            !ok && err.contains("the payment changed"),
            "[{}] {err}",
            s.db
        );
        let (ok, view, err) = run(vec!["show", ORDER]).await.expect("join");
        assert!(ok, "{err}");
        assert_eq!(view["payment"]["klarna_order_id"], json!(order_id));
        assert_eq!(view["operations"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            s.sandbox.state().orders[&order_id].order.captured_amount,
            20_000
        );
        let (ok, _, err) = run(vec!["refund", ORDER]).await.expect("join");
        assert!(ok, "{err}");
        assert_eq!(
            s.sandbox.state().orders[&order_id].order.refunded_amount,
            20_000
        );
        let _ = ORDER_TOTAL;
        s.shutdown().await;
        db.cleanup().await;
    }
}

/// Runs the binary on its own SQLite data directory with no Klarna URL (sandbox mode),
/// feeding `stdin`; returns (success, stdout, stderr).
fn bare_cli(data_dir: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_klarna-gateway"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--metrics-listen")
        .arg("off")
        .env_remove("KLARNA_API_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run klarna-gateway");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_shops_database_opened_without_its_settings_gets_no_sandbox_secrets() {
    let shop = tempfile::tempdir().expect("dir");
    let (ok, _, err) = bare_cli(
        shop.path(),
        &["secrets", "set", "klarna.username"],
        "PK-shop-merchant\n",
    );
    assert!(ok, "{err}");
    // An operator runs a command with only --data-dir: sandbox mode, but a shop's database.
    let (ok, _, err) = bare_cli(shop.path(), &["review", "list"], "");
    assert!(ok, "{err}");
    assert!(!err.contains("sandbox credentials set"), "{err}");
    let (ok, stored, err) = bare_cli(shop.path(), &["secrets", "list"], "");
    assert!(ok, "{err}");
    assert!(stored.contains("klarna.username"), "{stored}");
    assert!(!stored.contains("admin.token"), "{stored}");

    // A database that never had Klarna credentials still gets the sandbox's, for the demo.
    let fresh = tempfile::tempdir().expect("dir");
    let (ok, _, err) = bare_cli(fresh.path(), &["review", "list"], "");
    assert!(ok, "{err}");
    assert!(err.contains("sandbox credentials set"), "{err}");
    let (ok, stored, err) = bare_cli(fresh.path(), &["secrets", "list"], "");
    assert!(ok, "{err}");
    for name in [
        "klarna.username",
        "klarna.password",
        "odoo.password",
        "odoo.shared_secret",
        "admin.token",
    ] {
        assert!(stored.contains(name), "{name} missing from {stored}");
    }
}
