//! Group commit of webhook events, on SQLite and PostgreSQL: events that arrive together
//! share one transaction, duplicates are found inside a batch and against the table, and
//! a batch that fails acknowledges none of its events.

mod common;

use common::databases;
use futures::future::join_all;
use klarna_gateway::db::{Backend, Db};
use klarna_gateway::error::GatewayError;
use klarna_gateway::ingest::{Ingest, Stored};
use klarna_gateway::jobs::Job;
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
        // The jobs the database's trigger wrote are the ones the worker reads back, exactly
        // as `Job::WebhookEvent` would have been queued from Rust.
        let mut ids = Vec::new();
        for row in db.jobs_in("queued").await.expect("jobs") {
            let job = Job::from_stored(&row).expect("a job the worker can run");
            let Job::WebhookEvent { event_id } = &job else {
                panic!("{}: {job:?}", tdb.name);
            };
            assert_eq!(row.priority, job.priority(), "{}", tdb.name);
            let key: Option<String> = sqlx::query("SELECT dedupe_key FROM jobs WHERE id = $1")
                .bind(row.id)
                .fetch_one(&db.pool)
                .await
                .expect("key")
                .try_get(0)
                .expect("text");
            assert_eq!(key, job.dedupe_key(), "{}", tdb.name);
            ids.push(event_id.clone());
        }
        ids.sort();
        let mut sent: Vec<String> = (0..32).map(|i| format!("ev-{i}")).collect();
        sent.sort();
        assert_eq!(ids, sent, "{}", tdb.name);

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
        // The jobs table refuses every row: the events insert, their jobs cannot (the
        // trigger adding them fails), the batch rolls back.
        sqlx::raw_sql(match db.backend {
            Backend::Sqlite => {
                "CREATE TRIGGER jobs_refuse BEFORE INSERT ON jobs BEGIN SELECT RAISE(ABORT, 'refused'); END"
            }
            Backend::Postgres => {
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
                 CREATE TRIGGER jobs_refuse BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION refuse()"
            }
        })
        .execute(&db.pool)
        .await
        .expect("refuse jobs");
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
        sqlx::query(match db.backend {
            Backend::Sqlite => "DROP TRIGGER jobs_refuse",
            Backend::Postgres => "DROP TRIGGER jobs_refuse ON jobs",
        })
        .execute(&db.pool)
        .await
        .expect("accept jobs");
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
