//! `klarna-sandbox`: a stateful stand-in for Klarna's Payments and Order Management APIs,
//! its JS SDK and its webhooks, and for the small part of Odoo's JSON-RPC and storefront
//! that the gateway and widget touch.
//!
//! Tests, benchmarks and the demo run against it, so nobody needs a Klarna account. It
//! answers in Klarna's error format with Klarna's status codes; where it must guess how
//! Klarna behaves, `docs/klarna-sandbox.md` says what it chose.
//!
//! - [`payments`] — `/payments/v1/...`: sessions, orders from authorizations, tokens
//! - [`ordermanagement`] — `/ordermanagement/v1/...`: captures, refunds, cancel, ...
//! - [`sdk`] — `/kp/lib/v1/api.js` and the iframes it renders
//! - [`webhooks`] — signed webhooks and classic callbacks, sent to the merchant
//! - [`faults`] — latency, errors, timeouts, dropped connections, rate limits
//! - [`control`] — `/_sandbox/...`: the clock, faults, `trigger`, what happened
//! - [`oauth`] — a sandbox-only OAuth2 token endpoint
//! - [`odoo`] — `/jsonrpc` over a small database of Odoo 18 sale orders, and the addon's
//!   route for the gateway's updates
//! - [`odoo_backoffice`] — `/_sandbox/odoo/…`: the merchant's Capture, Refund and Void
//!   buttons (signed calls to the gateway), the refund wizard, the confirmation e-mails
//! - [`odoo_payment`] — `payment.transaction` as Odoo 18 and the addon keep it
//! - [`storefront`] — an Odoo-like checkout page that embeds the widget bundle
//! - [`server`] — start-up: the routes behind the fault layer, and the clock's tick
//! - [`state`] — the sandbox's memory ([`Sandbox`]), [`config`] — how it is set up
//! - [`api`] — merchant authentication, [`lockout`] — the sandbox-only lock-out
//! - [`reply`] — Klarna's error format and stored answers; [`clock`] — the movable clock
//! - [`delivery`] — webhook signing keys and the delivery log; [`odoo_db`] — Odoo's tables
//!
//! Arrows point one way: `server` → the endpoint modules → `state` → the parts it owns
//! (`faults`, `delivery`, `odoo_db`, `config`, `lockout`, `clock`) → `reply`.

pub mod api;
pub mod clock;
pub mod config;
pub mod control;
pub mod delivery;
pub mod faults;
pub mod lockout;
pub mod oauth;
pub mod odoo;
pub mod odoo_backoffice;
pub mod odoo_db;
pub mod odoo_edit;
pub mod odoo_payment;
pub mod ordermanagement;
pub mod payments;
pub mod reply;
pub mod sdk;
pub mod server;
pub mod state;
pub mod storefront;
pub mod tokens;
pub mod webhooks;

pub use config::{Region, SandboxConfig};
pub use faults::{FaultSpec, RateLimits};
pub use server::{router, serve, spawn};
pub use state::Sandbox;
pub use webhooks::SigningKey;
