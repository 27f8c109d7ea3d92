//! The sandbox's memory: Klarna sessions, authorizations and orders, and the Odoo database.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use klarna_types::klarna::{FraudStatus, OrderBody};
use serde::Serialize;

use crate::SandboxConfig;
use crate::odoo::Database;

/// Klarna keeps a session for 48 hours and an authorization token for 60 minutes.
pub const SESSION_TTL: Duration = Duration::from_secs(48 * 3600);
pub const AUTHORIZATION_TTL: Duration = Duration::from_secs(60 * 60);

pub struct Sandbox {
    pub config: SandboxConfig,
    /// Where this sandbox is reachable, e.g. `http://127.0.0.1:7070`.
    pub base_url: String,
    pub odoo: Database,
    state: Mutex<State>,
}

#[derive(Default)]
pub struct State {
    pub sessions: HashMap<String, Session>,
    pub authorizations: HashMap<String, Authorization>,
    pub orders: HashMap<String, Order>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
    pub created_at: SystemTime,
    pub consumed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Order {
    pub order_id: String,
    pub session_id: String,
    pub status: &'static str,
    pub fraud_status: FraudStatus,
    pub order_amount: i64,
    pub purchase_currency: String,
    pub merchant_reference1: Option<String>,
    pub created_at: u64,
}

impl Sandbox {
    pub fn new(config: SandboxConfig, base_url: String) -> Self {
        Self {
            odoo: Database::demo(),
            config,
            base_url,
            state: Mutex::new(State::default()),
        }
    }

    /// The sandbox's state. A panic while holding it poisons nothing we rely on, so a
    /// poisoned lock is taken over rather than propagated.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub fn now() -> SystemTime {
    SystemTime::now()
}

pub fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A new opaque identifier in Klarna's style (a UUID).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
