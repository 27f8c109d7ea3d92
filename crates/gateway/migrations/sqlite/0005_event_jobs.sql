-- Every stored Klarna event gets the job that applies it in the statement that stores it,
-- so the webhook writer stores a batch as one statement in autocommit: one round trip and
-- one fsync per batch instead of BEGIN, two INSERTs and COMMIT (`crate::ingest`).
-- The row is `Job::WebhookEvent` as `crate::jobs` writes it (kind, payment priority 0,
-- payload, dedupe key); `tests/group_commit.rs` reads it back through `Job::from_stored`.
CREATE TRIGGER webhook_event_job AFTER INSERT ON webhook_events
BEGIN
    INSERT INTO jobs (kind, priority, payload, dedupe_key, state, run_at, created_at, updated_at)
    VALUES ('webhook_event', 0, json_object('event_id', NEW.event_id), 'event-' || NEW.event_id,
            'queued', NEW.received_at, NEW.received_at, NEW.received_at)
    ON CONFLICT (dedupe_key) DO NOTHING;
END;
