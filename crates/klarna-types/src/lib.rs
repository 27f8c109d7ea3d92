//! Wire types and pure domain logic shared by the Klarna widget, the gateway and the
//! sandbox. No I/O: this crate compiles for `wasm32-unknown-unknown` as well as natively.
//!
//! - [`money`] — integer minor units that carry their currency.
//! - [`odoo`] — the Odoo 18 records the gateway reads (the mapping's input).
//! - [`klarna`] — Klarna's Payments API wire shapes.
//! - [`rules`] — Klarna's amount rules, checked as Klarna checks them.
//! - [`mapping`] — Odoo order → Klarna order body.
//! - [`address`] — Odoo partner → Klarna address: name split, street parsing.
//! - [`validate`] — markets, required fields, postal codes, national ids.
//! - [`payment`] — the payment state machine order management follows.
//! - [`contract`] — the widget ↔ gateway HTTP contract, with the gateway's error codes
//!   ([`contract::ErrorCode`]) named once for both sides.

pub mod address;
pub mod contract;
pub mod klarna;
pub mod mapping;
pub mod money;
pub mod odoo;
pub mod odoo_fields;
pub mod odoo_signature;
pub mod payment;
pub mod rules;
pub mod validate;
