//! `klarna-gateway backup` while webhooks stream in, and `klarna-gateway restore` into a
//! new data dir: the restored gateway serves the same payments, knows the same events,
//! and accepts what the original accepted (admin token, webhook keys).

mod common;

use std::path::Path;
use std::process::Output;

use common::{ADMIN_TOKEN, ORDER, SE_ORDER, SE_TOKEN, System, TOKEN, WEBHOOK_KEYS};
use klarna_gateway::InitialSecrets;
use klarna_sandbox::SandboxConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `klarna-gateway <args>` on the data dir `dir` and its database `database_url` (by
/// default `<dir>/gateway.db`), to its end.
async fn cli_on(
    dir: &Path,
    database_url: Option<&str>,
    args: &[&str],
    master_keys: Option<&str>,
) -> Output {
    let default_url = format!("sqlite://{}", dir.join("gateway.db").display());
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_klarna-gateway"));
    command
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .args(["--database-url", database_url.unwrap_or(&default_url)])
        .env_remove("GATEWAY_MASTER_KEYS")
        .env("RUST_LOG", "error");
    if let Some(keys) = master_keys {
        command.env("GATEWAY_MASTER_KEYS", keys);
    }
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("joined")
        .expect("run klarna-gateway")
}

async fn cli(dir: &Path, args: &[&str], master_keys: Option<&str>) -> Output {
    cli_on(dir, None, args, master_keys).await
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn count(s: &System, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&s.gw().db.pool)
        .await
        .expect("count");
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_into_a_gateway_that_serves_the_same_payments() {
    let db = common::sqlite();
    let s = common::system_with_webhooks(&db, SandboxConfig::default(), |_| {}).await;
    let de = s.paid(ORDER, TOKEN).await;
    let se = s.paid(SE_ORDER, SE_TOKEN).await;
    let (status, capture) = s
        .admin(
            &format!("/admin/payments/{de}/captures"),
            &json!({"amount": 20_000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{capture}");
    let (status, known) = s.signed_webhook("evt-before-backup", &de).await;
    assert_eq!(
        (status, known["status"].as_str()),
        (StatusCode::OK, Some("accepted"))
    );

    // Under load: the sandbox streams signed events while the backup runs.
    let events_before = count(&s, "webhook_events").await;
    let burst = {
        let (http, url) = (s.http.clone(), s.sandbox_url.clone());
        tokio::spawn(async move {
            http.post(format!("{url}/_sandbox/webhooks/burst"))
                .json(&json!({"count": 3000, "concurrency": 16}))
                .send()
                .await
                .expect("burst")
                .json::<Value>()
                .await
                .expect("json")
        })
    };
    common::wait_until("the burst to be under way", async || {
        let n = count(&s, "webhook_events").await;
        if n > events_before + 100 {
            Ok(())
        } else {
            Err(format!("{n} events"))
        }
    })
    .await;
    let file = s.data_dir.path().join("backup.db");
    let url = s.gw().config.database_url.clone();
    let backed_up = cli_on(
        s.data_dir.path(),
        Some(&url),
        &["backup", file.to_str().expect("utf-8")],
        None,
    )
    .await;
    assert!(backed_up.status.success(), "{}", text(&backed_up));
    let summary: Value = serde_json::from_slice(&backed_up.stdout).expect("summary");
    let sent = burst.await.expect("burst");
    s.settle().await;
    let events_after = count(&s, "webhook_events").await;
    let in_backup = summary["webhook_events"].as_i64().expect("events");
    assert!(
        in_backup > events_before + 100 && in_backup <= events_after,
        "a snapshot taken during the stream: {events_before} < {in_backup} ≤ {events_after} ({sent})"
    );
    assert_eq!(summary["payments"], 2, "{summary}");
    assert!(
        !text(&backed_up).contains(ADMIN_TOKEN) && !text(&backed_up).contains(WEBHOOK_KEYS[0].1),
        "a backup's report holds no secret: {}",
        text(&backed_up)
    );
    // A second backup to the same file is refused and leaves the first as it was.
    let again = cli_on(
        s.data_dir.path(),
        Some(&url),
        &["backup", file.to_str().expect("utf-8")],
        None,
    )
    .await;
    assert!(!again.status.success());
    assert!(
        text(&again).contains("never overwrites"),
        "{}",
        text(&again)
    );

    // Restoring without the master keys is refused, and puts nothing in place.
    let restored_dir = tempfile::tempdir().expect("dir");
    let file_arg = file.to_str().expect("utf-8");
    let no_keys = cli(restored_dir.path(), &["restore", file_arg], None).await;
    assert!(!no_keys.status.success());
    assert!(
        text(&no_keys).contains("no master keys"),
        "{}",
        text(&no_keys)
    );
    assert!(!restored_dir.path().join("gateway.db").exists());
    // With another gateway's keys, too: it names every secret they do not open.
    let wrong = "k1:1700000000:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let wrong_keys = cli(restored_dir.path(), &["restore", file_arg], Some(wrong)).await;
    assert!(!wrong_keys.status.success());
    assert!(
        text(&wrong_keys).contains("admin.token (sealed with key"),
        "{}",
        text(&wrong_keys)
    );
    assert!(!restored_dir.path().join("gateway.db").exists());

    std::fs::copy(
        s.data_dir.path().join("master.keys"),
        restored_dir.path().join("master.keys"),
    )
    .expect("the master keys, kept apart from the backup");
    let restored = cli(restored_dir.path(), &["restore", file_arg], None).await;
    assert!(restored.status.success(), "{}", text(&restored));
    // Once there is a database, restore refuses to replace it.
    let over = cli(restored_dir.path(), &["restore", file_arg], None).await;
    assert!(!over.status.success());
    assert!(
        text(&over).contains("without a database"),
        "{}",
        text(&over)
    );

    // The restored gateway, beside the same Klarna and Odoo, with no secret given again.
    let mut config = common::config(&db, &s.sandbox_url, restored_dir.path());
    config.database_url = format!(
        "sqlite://{}",
        restored_dir.path().join("gateway.db").display()
    );
    let running = klarna_gateway::spawn(config, InitialSecrets::default())
        .await
        .expect("the restored gateway starts");
    let r = System {
        db: "sqlite (restored)",
        url: format!("http://{}", running.addr),
        sandbox: s.sandbox.clone(),
        sandbox_url: s.sandbox_url.clone(),
        running,
        http: reqwest::Client::new(),
        data_dir: restored_dir,
    };
    for payment in [&de, &se] {
        let (status, ours) = s.admin_get(&format!("/admin/payments/{payment}")).await;
        assert_eq!(status, StatusCode::OK, "{ours}");
        let (status, theirs) = r.admin_get(&format!("/admin/payments/{payment}")).await;
        assert_eq!(status, StatusCode::OK, "the admin token restored: {theirs}");
        assert_eq!(theirs["payment"], ours["payment"], "{payment}");
    }
    // An event stored before the backup is known; a new one is verified with the restored key.
    let (status, answer) = r.signed_webhook("evt-before-backup", &de).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::OK, Some("duplicate"))
    );
    let (status, answer) = r.signed_webhook("evt-after-restore", &se).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::OK, Some("accepted"))
    );
    // Money still moves: the rest of the capture, then a refund from it.
    let (status, rest) = r
        .admin(&format!("/admin/payments/{de}/captures"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rest}");
    assert_eq!(rest["payment"]["state"], "captured", "{rest}");
    let (status, refund) = r
        .admin(
            &format!("/admin/payments/{de}/refunds"),
            &json!({"amount": 5_000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refund}");
    r.settle().await;
    r.shutdown().await;
    s.shutdown().await;
}
