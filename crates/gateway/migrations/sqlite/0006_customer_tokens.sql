-- Klarna customer tokens: a shopper's saved Klarna, made when Odoo's checkout asked to
-- save it (`tokenize`), charged later with no shopper present. The token itself is
-- sealed like every secret (XChaCha20-Poly1305, the secret's name `customer_token.<reference>`
-- bound in); Odoo and the browser only ever see `reference`.
CREATE TABLE customer_tokens (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    reference       TEXT NOT NULL UNIQUE,        -- opaque, random: Odoo's payment.token provider_ref
    key_id          TEXT NOT NULL,               -- the master key that sealed it
    nonce           TEXT NOT NULL,
    ciphertext      TEXT NOT NULL,
    transaction_id  INTEGER NOT NULL UNIQUE REFERENCES transactions (id), -- the checkout that saved it
    order_reference TEXT NOT NULL,               -- that checkout's Odoo order
    currency        TEXT NOT NULL,               -- Klarna tokens charge in their own currency only
    payment_method  TEXT NOT NULL,               -- what the shopper saved, as Odoo shows it
    status          TEXT NOT NULL,               -- active, cancelled
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- A charge of a token is a payment like any other (a transactions row, captured, refunded,
-- cancelled as usual). Its sessions row has no Klarna session behind it: its id is
-- `token-order:<Odoo transaction reference>`, so the unique transactions.session_id
-- makes each Odoo charge place one Klarna order, and it holds the order body charged.
-- The Klarna idempotency key the charge is sent with is kept on the payment, so a retry
-- after a crash or a lost answer sends the same key and Klarna places no second order.
ALTER TABLE transactions ADD COLUMN customer_token_id INTEGER REFERENCES customer_tokens (id);
ALTER TABLE transactions ADD COLUMN klarna_idempotency_key TEXT;
