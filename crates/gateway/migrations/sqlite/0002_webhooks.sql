-- Klarna's events, stored once per event id (forever: Klarna retries for about 21 hours,
-- and a replay must never be applied twice).
CREATE TABLE webhook_events (
    event_id     TEXT PRIMARY KEY,
    source       TEXT NOT NULL,                  -- signed, classic
    event_type   TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    occurred_at  INTEGER NOT NULL,               -- unix milliseconds (Klarna's)
    received_at  INTEGER NOT NULL,
    key_id       TEXT,
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL,                  -- received, applied, review
    last_error   TEXT,
    applied_at   INTEGER
);
CREATE INDEX webhook_events_by_order ON webhook_events (order_id);
