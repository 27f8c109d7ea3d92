//! The sandbox's memory: Klarna sessions, authorizations, orders, idempotency keys and
//! tokens, on the sandbox's own clock; and the Odoo database.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use klarna_types::klarna::{Address, FraudStatus, Order, OrderBody, OrderStatus, TokenStatus};

use crate::clock::{Clock, rfc3339};
use crate::config::SandboxConfig;
use crate::delivery::Webhooks;
use crate::faults::Faults;
use crate::lockout::Lockout;
use crate::odoo_db::Database;
use crate::reply::{KlarnaError, Reply};

/// Klarna keeps a session 48 hours, an authorization token 60 minutes, an idempotency
/// key 24 hours, and an order's authorization 28 days (extendable to 180).
pub const SESSION_TTL: Duration = Duration::from_secs(48 * 3600);
pub const AUTHORIZATION_TTL: Duration = Duration::from_secs(60 * 60);
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);
pub const ORDER_AUTHORIZATION: Duration = Duration::from_secs(28 * 24 * 3600);
pub const ORDER_AUTHORIZATION_MAX: Duration = Duration::from_secs(180 * 24 * 3600);

pub struct Sandbox {
    pub config: SandboxConfig,
    /// Where this sandbox is reachable, e.g. `http://127.0.0.1:7070`.
    pub base_url: String,
    pub odoo: Database,
    pub clock: Clock,
    /// Shared with the fault layer, which needs nothing else of the sandbox.
    pub faults: Arc<Faults>,
    pub webhooks: Webhooks,
    /// `execute_kw` calls the Odoo stand-in has answered: what a request costs Odoo.
    pub odoo_calls: std::sync::atomic::AtomicU64,
    state: Mutex<Memory>,
}

#[derive(Default)]
pub struct Memory {
    pub sessions: HashMap<String, Session>,
    pub authorizations: HashMap<String, Authorization>,
    pub orders: HashMap<String, SandboxOrder>,
    /// Sessions whose authorization waits for `finalize()`.
    pub awaiting_finalize: HashSet<String>,
    /// Saved payment methods, by customer token.
    pub customer_tokens: HashMap<String, CustomerToken>,
    /// `Klarna-Idempotency-Key` → the answer given, and when.
    pub idempotency: HashMap<String, (SystemTime, Reply)>,
    pub bearer_tokens: HashMap<String, SystemTime>,
    pub token_requests: u64,
    pub lockout: Lockout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Incomplete,
    Complete,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub client_token: String,
    pub body: OrderBody,
    pub status: SessionStatus,
    pub created_at: SystemTime,
}

/// What `Klarna.Payments.authorize` approved: the cart as it was at that moment.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub token: String,
    pub session_id: String,
    pub category: String,
    pub body: OrderBody,
    /// The shopper's e-mail, which selects a test scenario (`+denied`, `+pend-accept-5`).
    pub email: String,
    pub created_at: SystemTime,
    /// An order was placed from it (or it was cancelled).
    pub consumed: bool,
    /// A customer token was made from it (a session with intent `tokenize` or
    /// `buy_and_tokenize`).
    pub tokenized: bool,
}

/// A saved payment method: what a customer token stands for.
#[derive(Debug, Clone)]
pub struct CustomerToken {
    pub session_id: String,
    pub status: TokenStatus,
    /// The category the shopper chose (`pay_later`, …).
    pub category: String,
    /// The shopper's e-mail, which selects a test scenario: `+reject@` declines every
    /// order charged to the token.
    pub email: String,
    pub purchase_country: String,
    pub purchase_currency: String,
    pub locale: String,
    pub billing_address: Option<Address>,
}

/// An order as Klarna's Order Management sees it, with what the sandbox needs besides.
#[derive(Debug, Clone)]
pub struct SandboxOrder {
    pub order: Order,
    pub session_id: String,
    pub notification_url: Option<String>,
    pub created: SystemTime,
    pub expires: SystemTime,
    /// A PENDING order's decision and when Klarna makes it.
    pub decision: Option<(SystemTime, FraudStatus)>,
    /// The day (since the epoch) of the last extension: same-day repeats are no-ops.
    pub extended_on: Option<u64>,
}

impl SandboxOrder {
    pub fn is_open(&self) -> bool {
        matches!(
            self.order.status,
            OrderStatus::Authorized | OrderStatus::PartCaptured
        )
    }

    /// An open authorization whose time ran out expires. Returns whether it did now.
    pub fn expire_if_due(&mut self, now: SystemTime) -> bool {
        if self.is_open() && now >= self.expires {
            self.order.status = OrderStatus::Expired;
            self.order.remaining_authorized_amount = 0;
            return true;
        }
        false
    }

    pub fn set_expiry(&mut self, expires: SystemTime) {
        self.expires = expires;
        self.order.expires_at = Some(rfc3339(expires));
    }
}

impl Sandbox {
    pub fn new(config: SandboxConfig, base_url: String) -> Self {
        let odoo = Database::demo();
        odoo.set_settings(crate::odoo_db::OdooSettings {
            gateway_url: config.gateway_url.clone(),
            billing_group: config.odoo_billing_group,
            ..Default::default()
        });
        Self {
            faults: Arc::new(Faults::new(
                config.seed,
                config.rate_limits,
                config.faults.clone(),
            )),
            webhooks: Webhooks::new(),
            odoo,
            clock: Clock::default(),
            config,
            base_url,
            odoo_calls: std::sync::atomic::AtomicU64::new(0),
            state: Mutex::new(Memory::default()),
        }
    }

    /// The sandbox's state. A panic while holding it poisons nothing we rely on, so a
    /// poisoned lock is taken over rather than propagated.
    pub fn state(&self) -> MutexGuard<'_, Memory> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    pub fn bearer_valid(&self, token: &str) -> bool {
        let now = self.now();
        self.state()
            .bearer_tokens
            .get(token)
            .is_some_and(|expires| *expires > now)
    }

    /// Sandbox-only: counts a failed login towards the lock-out (see [`Lockout`]).
    pub fn note_auth_failure(&self) {
        let now = self.now();
        self.state()
            .lockout
            .record_failure(now, self.config.lockout_after);
    }

    /// Decides a login whose credentials were checked, under the sandbox-only lock-out.
    pub fn admit_login(&self, credentials_ok: bool) -> Result<(), KlarnaError> {
        let now = self.now();
        self.state()
            .lockout
            .admit(now, self.config.lockout_after, credentials_ok)
    }

    /// Every failed login the sandbox has seen (for tests of the client's guard).
    pub fn auth_failures(&self) -> u64 {
        self.state().lockout.failures_total()
    }
}
