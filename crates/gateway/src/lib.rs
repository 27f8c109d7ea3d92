//! `klarna-gateway`: the backend between the checkout widget, Odoo and Klarna.
//!
//! The crate's map, from the edge down (every arrow points down; `cargo xtask modgraph`
//! checks there is no circle):
//!
//! - Start-up: [`server`] runs the HTTP server and the [`worker`] over one [`state::Gateway`].
//! - HTTP: [`http`] — the widget API, health, readiness, and the router; [`admin`] — the
//!   admin API (bearer token or Odoo's signature); [`webhook`] — Klarna's webhooks and
//!   classic callbacks; [`frontdoor`] — rate limits, allow-list, blocking, alerts, with
//!   [`client_addr`] — the client's address behind trusted proxies; [`listener`] — the
//!   listeners' timeouts and connection caps; [`metrics`] — Prometheus.
//! - Work: [`checkout`] — session for an Odoo order → order placed from an authorization;
//!   [`manage`] — capture, refund, cancel, release, extend: durable and idempotent;
//!   [`reconcile`] and [`event_apply`] — bringing a payment in line with Klarna;
//!   [`odoo_sync`] — telling Odoo what happened.
//! - Background: [`jobs`] — the typed job protocol; [`worker`] — runs each [`jobs::Job`].
//! - Verification and data: [`webhook_verify`] — pure checks of Klarna's requests;
//!   [`signing_keys`] — webhook keys; [`odoo_update`] — the update Odoo receives;
//!   [`odoo`] — reading orders from Odoo; [`mapping`] — this installation's mapping options.
//! - Floor: [`state`] — the shared state; [`config`]; [`db`] and [`store`] — SQLite or
//!   PostgreSQL, one module per table family; [`vault`] and [`secrets`] — secrets sealed at
//!   rest; [`backup`] — copying the SQLite database while it runs, and restoring it;
//!   [`doctor`] — whether an installation is ready, tried harmlessly;
//!   [`phone`] — E.164; [`error`] — the one error type and its one HTTP mapping;
//!   [`json_error`] — JSON refusals that quote nothing of the body; [`logs`] — log lines.

pub mod admin;
pub mod backup;
pub mod checkout;
pub mod client_addr;
pub mod config;
pub mod db;
pub mod doctor;
pub mod error;
pub mod event_apply;
pub mod frontdoor;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod json_error;
pub mod listener;
pub mod logs;
pub mod manage;
pub mod mapping;
pub mod metrics;
pub mod odoo;
pub mod odoo_order;
pub mod odoo_sync;
pub mod odoo_update;
pub mod openapi;
pub mod phone;
pub mod reconcile;
pub mod saved_klarna;
pub mod secrets;
pub mod server;
pub mod signing_keys;
pub mod state;
pub mod store;
pub mod token_saving;
pub mod vault;
pub mod webhook;
pub mod webhook_verify;
pub mod worker;

pub use config::Config;
pub use db::Db;
pub use error::GatewayError;
pub use mapping::mapping_options;
pub use server::{Running, spawn, start};
pub use state::{Gateway, InitialSecrets};
