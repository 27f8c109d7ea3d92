-- The gateway's schema (SQLite). migrations/postgres holds the same in PostgreSQL's words.

-- Klarna sessions, one per Odoo order; a changed cart updates the row (and the session).
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,            -- Klarna's session_id
    order_reference TEXT NOT NULL,               -- Odoo sale.order name
    client_token    TEXT NOT NULL,               -- handed to the browser; not a merchant secret
    currency        TEXT NOT NULL,
    order_amount    INTEGER NOT NULL,            -- minor units, from Odoo
    body            TEXT NOT NULL,               -- the Klarna order body sent (JSON; personal data)
    body_hash       TEXT NOT NULL,               -- sha256 of body: an unchanged cart reuses the session
    categories      TEXT NOT NULL,               -- payment_method_categories (JSON)
    customer_email  TEXT,                        -- personal data, for GDPR export/erase; purged
    created_at      INTEGER NOT NULL,            -- unix milliseconds
    updated_at      INTEGER NOT NULL
);
CREATE INDEX sessions_by_order ON sessions (order_reference);
CREATE INDEX sessions_by_email ON sessions (customer_email);

-- One row per Klarna order. The unique session_id is the claim that makes a double
-- submit place the order once.
CREATE TABLE transactions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id       TEXT NOT NULL UNIQUE REFERENCES sessions (id),
    order_reference  TEXT NOT NULL,
    state            TEXT NOT NULL,              -- placing, authorized, part_captured, captured, cancelled, expired
    klarna_order_id  TEXT UNIQUE,
    fraud_status     TEXT,
    currency         TEXT NOT NULL,
    authorized_amount INTEGER NOT NULL,          -- minor units
    captured_amount  INTEGER NOT NULL DEFAULT 0,
    refunded_amount  INTEGER NOT NULL DEFAULT 0,
    released_amount  INTEGER NOT NULL DEFAULT 0,
    attention        TEXT,                       -- why a person must look, when one must
    customer_email   TEXT,                       -- personal data; purged
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX transactions_by_order ON transactions (order_reference);

-- Order management operations: captures and refunds (refunds point at the capture they
-- came from), cancel, release, extend. Persisted before Klarna is called, with the
-- idempotency key every retry reuses.
CREATE TABLE operations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id  INTEGER NOT NULL REFERENCES transactions (id),
    kind            TEXT NOT NULL,               -- capture, refund, cancel, release, extend
    amount          INTEGER NOT NULL DEFAULT 0,
    capture_id      INTEGER REFERENCES operations (id),
    request         TEXT NOT NULL,               -- the Klarna request body (JSON)
    idempotency_key TEXT NOT NULL UNIQUE,
    state           TEXT NOT NULL,               -- pending, succeeded, failed
    klarna_id       TEXT,                        -- Capture-Id / Refund-Id
    refunded_amount INTEGER NOT NULL DEFAULT 0,  -- for captures
    error           TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    requested_by    TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX operations_by_transaction ON operations (transaction_id);
CREATE INDEX operations_pending ON operations (state);

-- Idempotency of the admin API: a repeated Idempotency-Key gets the first answer.
CREATE TABLE idempotency_keys (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    response     TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

-- Every state change: who or what caused it, before and after. Append-only.
CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id  INTEGER,
    order_reference TEXT,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    before_state    TEXT,
    after_state     TEXT,
    detail          TEXT,
    at              INTEGER NOT NULL
);
CREATE INDEX audit_by_transaction ON audit_log (transaction_id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- The durable job queue (outbox): inserted in the transaction of the change that needs it.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,
    priority     INTEGER NOT NULL,               -- 0 payment work, 10 maintenance
    payload      TEXT NOT NULL,
    dedupe_key   TEXT UNIQUE,
    state        TEXT NOT NULL,                  -- queued, running, done, review
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       INTEGER NOT NULL,
    locked_until INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX jobs_ready ON jobs (state, priority, run_at);

-- Secrets, encrypted with a master key named by key_id (XChaCha20-Poly1305).
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
