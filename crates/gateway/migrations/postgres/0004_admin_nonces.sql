-- Nonces of Odoo-signed admin requests: each is accepted once. A nonce is kept for twice
-- the signature's timestamp window; older ones cannot come back (their timestamp is
-- refused first) and are deleted.
CREATE TABLE admin_nonces (
    nonce   TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL          -- unix ms
);
CREATE INDEX admin_nonces_by_age ON admin_nonces (seen_at);
