-- Klarna sessions the gateway created, one per Odoo order and cart version.
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,           -- Klarna's session_id
    order_reference TEXT NOT NULL,              -- Odoo sale.order name
    client_token    TEXT NOT NULL,              -- handed to the browser; not a merchant secret
    currency        TEXT NOT NULL,
    order_amount    INTEGER NOT NULL,           -- minor units, from Odoo
    body            TEXT NOT NULL,              -- the Klarna order body sent (JSON)
    body_hash       TEXT NOT NULL,              -- sha256 of body: an unchanged cart reuses the session
    categories      TEXT NOT NULL,              -- payment_method_categories (JSON)
    created_at      INTEGER NOT NULL            -- unix milliseconds
);
CREATE INDEX sessions_by_order ON sessions (order_reference, body_hash);

-- One row per Klarna order placed from a session. The unique session_id is the claim
-- that makes a double submit place the order once.
CREATE TABLE transactions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id      TEXT NOT NULL UNIQUE REFERENCES sessions (id),
    order_reference TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('placing', 'authorized')),
    klarna_order_id TEXT UNIQUE,
    fraud_status    TEXT,
    currency        TEXT NOT NULL,
    amount          INTEGER NOT NULL,           -- minor units
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
