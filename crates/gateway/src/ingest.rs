//! Group commit for verified webhook events: one writer task owns the writes (on a
//! connection of its own), the request handlers queue their events to it, and it stores
//! whatever has queued up — every event with the job that applies it — in one statement,
//! one commit, one fsync. Each request is answered only after the commit that holds its
//! event.
//!
//! Why: every event in its own transaction makes concurrent requests queue for SQLite's
//! write lock and pay one fsync each; with `synchronous = FULL` that is a few thousand
//! events a second at best. Batching the commits is what makes "acknowledged = durable"
//! fast. The batch is one `INSERT` in autocommit — the database's trigger adds each new
//! event's job in the same statement (migration `0005_event_jobs`) — because every
//! statement is a round trip to SQLite's connection thread or to PostgreSQL, and
//! `BEGIN`, a second `INSERT` and `COMMIT` cost more than the rows do.
//!
//! Duplicates are found twice: inside a batch (the first occurrence of an id is the one
//! stored) and against the table (`ON CONFLICT DO NOTHING`). A batch that fails fails every
//! request in it with a 5xx: nothing is acknowledged that was not stored, and Klarna sends
//! those events again.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection};
use tokio::sync::{mpsc, oneshot};

use crate::db::Db;
use crate::error::GatewayError;
use crate::store::webhooks::IncomingEvent;

/// The most events one transaction holds. A batch's statement binds 8 values per event;
/// 256 events stay far inside both databases' bind limits.
pub const MAX_BATCH: usize = 256;
/// Requests that may wait for the writer; beyond it, handlers wait to queue (the front
/// door's in-flight cap keeps that short).
const QUEUE: usize = 4 * MAX_BATCH;
/// How often the WAL is checkpointed beside the writer while events arrive (SQLite).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(25);

/// What became of a stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored now, with its job.
    New,
    /// Its id was stored before (or earlier in the same batch): nothing was written.
    Duplicate,
}

struct Pending {
    event: IncomingEvent,
    reply: oneshot::Sender<Result<Stored, GatewayError>>,
}

/// The handle request handlers queue events through.
pub struct Ingest {
    queue: mpsc::Sender<Pending>,
    batches: Arc<AtomicU64>,
    /// Dropped with the handle, which ends the checkpointer.
    _stop: oneshot::Sender<()>,
}

impl Ingest {
    /// Starts the writer task, and the task that checkpoints beside it, on the current
    /// runtime; they end when the handle is dropped.
    pub fn start(db: Db) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let batches = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(checkpointer(db.clone(), batches.clone(), stopped));
        tokio::spawn(writer(db, rx, batches.clone()));
        Self {
            queue,
            batches,
            _stop: stop,
        }
    }

    /// Stores the event with its job, returning once the transaction holding it has
    /// committed (or failed).
    pub async fn store(&self, event: IncomingEvent) -> Result<Stored, GatewayError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { event, reply })
            .await
            .map_err(|_| GatewayError::Internal("the event writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| GatewayError::Internal("the event writer has stopped".into()))?
    }

    /// Transactions committed so far (for tests and metrics).
    pub fn batches_committed(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }
}

async fn writer(db: Db, mut rx: mpsc::Receiver<Pending>, batches: Arc<AtomicU64>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // The writer's own connection: taken once, closed after a failed batch and taken anew.
    let mut conn: Option<PoolConnection<Any>> = None;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        metrics::histogram!("gateway_webhook_batch_size").record(batch.len() as f64);
        let events: Vec<&IncomingEvent> = batch.iter().map(|p| &p.event).collect();
        let started = std::time::Instant::now();
        let written = match &mut conn {
            Some(c) => write(&db, c, &events).await,
            None => match db.dedicated().await {
                Ok(c) => write(&db, conn.insert(c), &events).await,
                Err(e) => Err(e),
            },
        };
        // The tail of webhook latency under load is the slowest commits (fsync, WAL
        // checkpoints): what an operator watches to tell a slow disk from a slow gateway.
        metrics::histogram!("gateway_webhook_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        if written.is_err()
            && let Some(c) = conn.take()
        {
            let _ = c.close().await;
        }
        match written {
            Ok(outcomes) => {
                batches.fetch_add(1, Ordering::Relaxed);
                for (pending, outcome) in batch.drain(..).zip(outcomes) {
                    // A request that gave up waiting is gone; its event is stored anyway
                    // and a resend is answered `duplicate`.
                    let _ = pending.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(
                    events = batch.len(),
                    "storing a batch of webhook events failed: {e}"
                );
                for pending in batch.drain(..) {
                    let _ = pending.reply.send(Err(GatewayError::Internal(
                        "the event was not stored".into(),
                    )));
                }
            }
        }
    }
}

/// SQLite checkpoints the WAL in the commit that makes it 1,000 pages long: it copies
/// those pages into the database and fsyncs it while every request waiting on that commit
/// waits too (the slowest 1% of requests under load). Checkpointing beside the writer, on
/// another connection, does that copying while the writer goes on; the writer's own
/// checkpoint then finds little left, and the WAL still starts over from its beginning
/// (a WAL checkpointed only beside the writer never does, and grows).
async fn checkpointer(db: Db, batches: Arc<AtomicU64>, mut stop: oneshot::Receiver<()>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut checkpointed = 0;
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        let written = batches.load(Ordering::Relaxed);
        if written == checkpointed {
            continue;
        }
        match db.checkpoint().await {
            Ok(()) => checkpointed = written,
            Err(e) => tracing::warn!("checkpointing the database beside the webhook writer: {e}"),
        }
    }
}

/// Writes one batch in one statement (its own transaction); the outcome of each event, in
/// order.
async fn write(
    db: &Db,
    conn: &mut AnyConnection,
    events: &[&IncomingEvent],
) -> Result<Vec<Stored>, GatewayError> {
    // The first occurrence of an id in the batch is the one that may be new.
    let mut seen = HashSet::with_capacity(events.len());
    let first: Vec<bool> = events
        .iter()
        .map(|e| seen.insert(e.event_id.as_str()))
        .collect();
    let mut unique: Vec<&IncomingEvent> = events
        .iter()
        .zip(&first)
        .filter_map(|(e, first)| first.then_some(*e))
        .collect();
    // In id order: two instances writing batches that share ids (Klarna's duplicate
    // deliveries) then take the rows' locks in the same order, and never deadlock.
    unique.sort_unstable_by(|a, b| a.event_id.cmp(&b.event_id));
    let new = db.insert_events(conn, &unique).await?;
    Ok(events
        .iter()
        .zip(first)
        .map(|(e, first)| {
            if first && new.contains(&e.event_id) {
                Stored::New
            } else {
                Stored::Duplicate
            }
        })
        .collect())
}
