//! Group commit for verified webhook events: one writer task owns the writes, the request
//! handlers queue their events to it, and it stores whatever has queued up — every event
//! with the job that applies it — in one transaction, one fsync. Each request is answered
//! only after the commit that holds its event.
//!
//! Why: every event in its own transaction makes concurrent requests queue for SQLite's
//! write lock and pay one fsync each; with `synchronous = FULL` that is a few thousand
//! events a second at best. Batching the commits is what makes "acknowledged = durable"
//! fast. PostgreSQL gains too: a batch is two statements and one commit.
//!
//! Duplicates are found twice: inside a batch (the first occurrence of an id is the one
//! stored) and against the table (`ON CONFLICT DO NOTHING`). A batch that fails fails every
//! request in it with a 5xx: nothing is acknowledged that was not stored, and Klarna sends
//! those events again.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::db::Db;
use crate::error::GatewayError;
use crate::jobs::{self, Job};
use crate::store::webhooks::IncomingEvent;

/// The most events one transaction holds. A batch's statement binds 8 values per event;
/// 256 events stay far inside both databases' bind limits.
pub const MAX_BATCH: usize = 256;
/// Requests that may wait for the writer; beyond it, handlers wait to queue (the front
/// door's in-flight cap keeps that short).
const QUEUE: usize = 4 * MAX_BATCH;

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
}

impl Ingest {
    /// Starts the writer task on the current runtime; it ends when the handle is dropped.
    pub fn start(db: Db) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let batches = Arc::new(AtomicU64::new(0));
        tokio::spawn(writer(db, rx, batches.clone()));
        Self { queue, batches }
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
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        metrics::histogram!("gateway_webhook_batch_size").record(batch.len() as f64);
        let events: Vec<&IncomingEvent> = batch.iter().map(|p| &p.event).collect();
        match write(&db, &events).await {
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

/// Writes one batch in one transaction; the outcome of each event, in order.
async fn write(db: &Db, events: &[&IncomingEvent]) -> Result<Vec<Stored>, GatewayError> {
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
    let mut tx = db.begin_write().await?;
    let new = db.insert_events(&mut tx, &unique).await?;
    let jobs: Vec<Job> = unique
        .iter()
        .filter(|e| new.contains(&e.event_id))
        .map(|e| Job::WebhookEvent {
            event_id: e.event_id.clone(),
        })
        .collect();
    jobs::enqueue_many(db, &mut tx, &jobs).await?;
    tx.commit().await?;
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
