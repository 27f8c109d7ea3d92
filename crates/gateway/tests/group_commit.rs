//! Group commit of webhook events, on SQLite and PostgreSQL: events that arrive together
//! share one transaction, duplicates are found inside a batch and against the table, and
//! a batch that fails acknowledges none of its events.

mod common;

use common::databases;
use futures::future::join_all;
use klarna_gateway::db::Db;
use klarna_gateway::error::GatewayError;
use klarna_gateway::ingest::{Ingest, Stored};
use klarna_gateway::store::webhooks::IncomingEvent;
use sqlx::Row;

fn event(id: &str) -> IncomingEvent {
    IncomingEvent {
        event_id: id.to_owned(),
        source: "signed",
        event_type: "order.captured".into(),
        order_id: "order-1".into(),
        occurred_at: 1_700_000_000_000,
        key_id: Some("key-1".into()),
        payload: format!("{{\"event_id\":\"{id}\"}}"),
    }
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(&db.pool)
        .await
        .expect("count")
        .try_get::<i64, _>(0)
        .expect("number")
}

async fn stored(db: &Db) -> (i64, i64) {
    (
        count(db, "SELECT COUNT(*) FROM webhook_events").await,
        count(db, "SELECT COUNT(*) FROM jobs WHERE kind = 'webhook_event'").await,
    )
}

// A current-thread runtime: every request below queues before the writer runs again, so
// they all meet in one batch.
#[tokio::test]
async fn events_sent_together_share_one_commit_and_every_duplicate_is_found() {
    for tdb in databases().await {
        let db = Db::connect(&tdb.url).await.expect("db");
        let ingest = Ingest::start(db.clone());
        // 64 requests for 32 ids: each id twice within the batch.
        let outcomes =
            join_all((0..64).map(|i| ingest.store(event(&format!("ev-{}", i % 32))))).await;
        let outcomes: Vec<Stored> = outcomes.into_iter().map(|o| o.expect("stored")).collect();
        assert!(
            outcomes[..32].iter().all(|o| *o == Stored::New),
            "{}",
            tdb.name
        );
        assert!(
            outcomes[32..].iter().all(|o| *o == Stored::Duplicate),
            "{}",
            tdb.name
        );
        assert_eq!(
            ingest.batches_committed(),
            1,
            "{}: one transaction",
            tdb.name
        );
        assert_eq!(
            stored(&db).await,
            (32, 32),
            "{}: each event and its job once",
            tdb.name
        );

        // Against the table: a resend of a stored id beside a new one.
        let later = join_all([ingest.store(event("ev-3")), ingest.store(event("ev-99"))]).await;
        assert_eq!(
            later[0].as_ref().expect("stored"),
            &Stored::Duplicate,
            "{}",
            tdb.name
        );
        assert_eq!(
            later[1].as_ref().expect("stored"),
            &Stored::New,
            "{}",
            tdb.name
        );
        assert_eq!(stored(&db).await, (33, 33), "{}", tdb.name);
        drop(ingest);
        db.pool.close().await;
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn a_batch_that_fails_acknowledges_none_of_its_events_and_the_writer_goes_on() {
    for tdb in databases().await {
        let db = Db::connect(&tdb.url).await.expect("db");
        let ingest = Ingest::start(db.clone());
        // The jobs table gone: the events insert, their jobs cannot, the batch rolls back.
        sqlx::query("ALTER TABLE jobs RENAME TO jobs_away")
            .execute(&db.pool)
            .await
            .expect("rename");
        let outcomes = join_all((0..16).map(|i| ingest.store(event(&format!("lost-{i}"))))).await;
        for o in &outcomes {
            assert!(
                matches!(o, Err(GatewayError::Internal(_))),
                "{}: {o:?}",
                tdb.name
            );
        }
        assert_eq!(ingest.batches_committed(), 0, "{}", tdb.name);
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM webhook_events").await,
            0,
            "{}: nothing stored that was not acknowledged",
            tdb.name
        );
        sqlx::query("ALTER TABLE jobs_away RENAME TO jobs")
            .execute(&db.pool)
            .await
            .expect("rename back");
        // Klarna's resend of the same events is stored, as new.
        let again = join_all((0..16).map(|i| ingest.store(event(&format!("lost-{i}"))))).await;
        assert!(
            again.iter().all(|o| matches!(o, Ok(Stored::New))),
            "{}: {again:?}",
            tdb.name
        );
        assert_eq!(stored(&db).await, (16, 16), "{}", tdb.name);
        drop(ingest);
        db.pool.close().await;
        tdb.cleanup().await;
    }
}
