//! Secrets sealed at rest and rotated without downtime; personal data exported, erased
//! and purged — on SQLite and PostgreSQL.

mod common;

use common::{ADMIN_TOKEN, ORDER, SE_ORDER, SE_TOKEN, TOKEN, databases, system};
use klarna_gateway::secrets::{ADMIN_TOKEN as ADMIN_TOKEN_NAME, KLARNA_PASSWORD};
use klarna_sandbox::SandboxConfig;
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Row;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_sealed_at_rest_and_rotation_keeps_everything_working() {
    for db in databases().await {
        let s = system(&db).await;
        let password = SandboxConfig::default().password;
        let rows = sqlx::query("SELECT name, key_id, ciphertext FROM secrets ORDER BY name")
            .fetch_all(&s.gw().db.pool)
            .await
            .expect("rows");
        // Klarna user and password, admin token, Odoo password and shared secret, the
        // webhook signing keys, the classic callbacks' URL token.
        assert_eq!(rows.len(), 7, "[{}]", s.db);
        let key_before: String = rows[0].try_get("key_id").expect("key id");
        for r in &rows {
            let ciphertext: String = r.try_get("ciphertext").expect("ct");
            for plain in [
                password.as_str(),
                ADMIN_TOKEN,
                "sandbox-odoo-secret",
                common::WEBHOOK_KEYS[0].1,
                common::CLASSIC_TOKEN,
            ] {
                assert!(
                    !ciphertext.contains(plain),
                    "[{}] a plaintext secret in the table",
                    s.db
                );
            }
        }
        let new_key = s.gw().secrets.rotate().await.expect("rotate");
        assert_ne!(new_key, key_before);
        let ids = s.gw().secrets.key_ids();
        assert!(
            ids.values().all(|k| *k == new_key),
            "[{}] every secret re-sealed: {ids:?}",
            s.db
        );
        assert_eq!(
            s.gw()
                .secrets
                .get(KLARNA_PASSWORD)
                .as_deref()
                .map(String::as_str),
            Some(password.as_str())
        );
        // Klarna calls and the admin API work on with the re-sealed secrets.
        let order_id = s.paid(ORDER, TOKEN).await;
        let (status, _) = s.admin_get(&format!("/admin/payments/{order_id}")).await;
        assert_eq!(status, StatusCode::OK);
        // No API answer carries a secret.
        let (_, status_body) = s.admin_get("/admin/status").await;
        let (_, view) = s.admin_get(&format!("/admin/payments/{order_id}")).await;
        for body in [status_body.to_string(), view.to_string()] {
            for secret in [password.as_str(), ADMIN_TOKEN, "sandbox-odoo-secret"] {
                assert!(
                    !body.contains(secret),
                    "[{}] an answer leaks a secret",
                    s.db
                );
            }
        }
        assert!(s.gw().secrets.get(ADMIN_TOKEN_NAME).is_some());
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_is_exported_erased_only_when_settled_and_purged_after_retention() {
    for db in databases().await {
        let s = system(&db).await;
        let email = "anna.svensson@example.se";
        let order_id = s.paid(SE_ORDER, SE_TOKEN).await;
        let export = s.gw().db.gdpr_export(email).await.expect("export");
        assert_eq!(
            export["sessions"].as_array().map(Vec::len),
            Some(1),
            "[{}] {export}",
            s.db
        );
        assert_eq!(
            export["sessions"][0]["billing_address"]["street_address"],
            "Storgatan 1"
        );
        assert_eq!(export["payments"][0]["klarna_order_id"], json!(order_id));

        // The payment is open: erasure is refused, with the reason.
        let refused = s.gw().db.gdpr_erase(email).await.expect_err("open payment");
        assert!(refused.to_string().contains(SE_ORDER), "{refused}");

        let (status, _) = s
            .admin(&format!("/admin/payments/{order_id}/captures"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(s.gw().db.gdpr_erase(email).await.expect("erase"), 1);
        let export = s.gw().db.gdpr_export(email).await.expect("export");
        assert!(
            export["sessions"].as_array().is_some_and(Vec::is_empty),
            "[{}] {export}",
            s.db
        );
        let body: String = sqlx::query("SELECT body FROM sessions")
            .fetch_one(&s.gw().db.pool)
            .await
            .expect("row")
            .try_get("body")
            .expect("body");
        assert!(
            !body.contains("Storgatan") && !body.contains(email),
            "[{}] {body}",
            s.db
        );
        assert!(body.contains("order_amount"), "amounts stay");
        let audit: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(&s.gw().db.pool)
            .await
            .expect("count");
        assert!(audit >= 3, "the audit trail stays");
        // The audit log is append-only, whatever SQL tries.
        assert!(
            sqlx::query("DELETE FROM audit_log")
                .execute(&s.gw().db.pool)
                .await
                .is_err(),
            "[{}]",
            s.db
        );

        // Retention: settled payments older than the cut-off lose their personal data.
        let order_id = s.paid(ORDER, TOKEN).await;
        let _ = s
            .admin(&format!("/admin/payments/{order_id}/captures"), &json!({}))
            .await;
        assert_eq!(
            s.gw()
                .db
                .purge_personal_data(klarna_gateway::db::now_ms() + 1)
                .await
                .expect("purge"),
            1
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gdpr_export_and_erase_match_the_email_in_any_case_and_with_spaces() {
    for db in databases().await {
        let s = system(&db).await;
        // Stored as the shopper typed it at checkout (the Swedish demo order's partner).
        let order_id = s.paid(SE_ORDER, SE_TOKEN).await;
        let asked = "  ANNA.Svensson@EXAMPLE.SE ";
        let export = s.gw().db.gdpr_export(asked).await.expect("export");
        assert_eq!(
            export["sessions"].as_array().map(Vec::len),
            Some(1),
            "[{}] {export}",
            s.db
        );
        assert_eq!(
            export["payments"].as_array().map(Vec::len),
            Some(1),
            "[{}] {export}",
            s.db
        );
        // The open payment is found the same way, so erasure is refused ...
        let refused = s.gw().db.gdpr_erase(asked).await.expect_err("open payment");
        assert!(refused.to_string().contains(SE_ORDER), "{refused}");
        // ... until it is settled; then nothing of theirs is left under any spelling.
        let (status, _) = s
            .admin(&format!("/admin/payments/{order_id}/captures"), &json!({}))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(s.gw().db.gdpr_erase(asked).await.expect("erase"), 1);
        for spelling in ["anna.svensson@example.se", asked] {
            let export = s.gw().db.gdpr_export(spelling).await.expect("export");
            assert!(
                export["sessions"].as_array().is_some_and(Vec::is_empty)
                    && export["payments"].as_array().is_some_and(Vec::is_empty),
                "[{}] {export}",
                s.db
            );
        }
        // Someone else's address that merely contains theirs is not touched.
        assert_eq!(
            s.gw()
                .db
                .gdpr_erase("svensson@example.se")
                .await
                .expect("erase"),
            0
        );
        s.shutdown().await;
        db.cleanup().await;
    }
}
