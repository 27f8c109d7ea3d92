-- Every stored Klarna event gets the job that applies it in the statement that stores it,
-- so the webhook writer stores a batch as one statement in autocommit: one round trip and
-- one commit per batch instead of BEGIN, two INSERTs and COMMIT (`crate::ingest`).
-- The rows are `Job::WebhookEvent` as `crate::jobs` writes it (kind, payment priority 0,
-- payload, dedupe key); `tests/group_commit.rs` reads them back through `Job::from_stored`.
-- One INSERT per statement (a transition table), in event id order like the events'
-- own, so two instances storing overlapping batches take the rows' locks in one order.
CREATE FUNCTION webhook_event_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO jobs (kind, priority, payload, dedupe_key, state, run_at, created_at, updated_at)
    SELECT 'webhook_event', 0, jsonb_build_object('event_id', event_id)::text,
           'event-' || event_id, 'queued', received_at, received_at, received_at
    FROM new_events
    ORDER BY event_id
    ON CONFLICT (dedupe_key) DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_event_jobs AFTER INSERT ON webhook_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_event_jobs();
