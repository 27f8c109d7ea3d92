-- The admin API's Idempotency-Key is claimed before any work starts (a unique row), so
-- concurrent requests with one key make one operation; the row names the operation the
-- request recorded (in the same transaction), so a retry after a crash is answered from
-- that operation instead of doing it again.
CREATE TABLE admin_requests (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    operation_id BIGINT REFERENCES operations (id),
    status       BIGINT,                         -- the answer; NULL while the request is in flight
    response     TEXT,
    claimed_at   BIGINT NOT NULL,                -- unix ms; 0 once its request ended without an answer
    created_at   BIGINT NOT NULL
);
INSERT INTO admin_requests (key, request_hash, status, response, claimed_at, created_at)
    SELECT key, request_hash, status, response, created_at, created_at FROM idempotency_keys;
DROP TABLE idempotency_keys;
