//! The gateway's only way to Klarna: a typed async client for the Payments API v1 and the
//! Order Management API v1.
//!
//! - [`config`] — regions, environments, the three ways to authenticate, timeouts
//! - [`retry`] — the pure retry decision (what, how often, how long)
//! - [`auth`] — the `Authorization` header, the OAuth2 token cache, the lock-out guard
//! - [`error`] — one error type: business or transient, with Klarna's code and ids
//! - [`client`] — every call, through one loop that authenticates, retries and logs
//!
//! Every request has a timeout and names this integration in its `User-Agent`; every
//! Order Management write carries a `Klarna-Idempotency-Key` that stays the same across
//! the retries of one operation. Logs carry method, route, order id, status, duration,
//! attempt, correlation id and idempotency key — never credentials, client or
//! authorization tokens, or personal data.

pub mod auth;
pub mod client;
pub mod config;
pub mod error;
pub mod retry;

pub use client::{IdempotencyKey, KlarnaClient};
pub use config::{Auth, Config, CredentialSource, Environment, Region, Secret, base_url};
pub use error::{ClientError, ErrorKind};
pub use retry::RetryPolicy;
