//! Odoo 18's `payment.transaction` as the payment_klarna addon drives it, inside the Odoo
//! stand-in's database: what a merchant's Capture, Refund and Void buttons create, what
//! the gateway's updates do to those transactions, the refund wizard's figures, the order
//! confirmation e-mail, and the one access right the gateway's Odoo user needs.
//!
//! The shapes follow Odoo 18 (`payment/models/payment_transaction.py`) and the addon
//! (`odoo/payment_klarna/models/payment_transaction.py`):
//!
//! - A partial capture or a void of the rest is a *child* of the payment's transaction
//!   (`P-<reference>`, the source's `operation`); a refund is a child of the transaction it
//!   refunds — of a capture's child when the merchant refunds from it, so a grandchild of
//!   the payment (`R-P-<reference>`, `operation = 'refund'`, a negative amount). A button
//!   creates its child as a *draft*, asks the gateway, and names it `klarna-op-<operation
//!   id>` from the answer; were the gateway to refuse, Odoo's transaction rolls back and
//!   the draft is gone.
//! - A gateway update completes the transaction it is about, found by `klarna-op-<id>`
//!   anywhere in the payment's family (children and grandchildren), else a draft of the
//!   same amount and kind (the update can overtake Odoo's own commit), and only else adds
//!   one. (Odoo 18 with the addon before the fix looked among the children only: a refund
//!   from a capture stayed draft and a second refund transaction was created.)
//! - When the done and cancelled children of a payment's operation add up to its amount,
//!   the payment's transaction is done (`_update_source_transaction_state`).
//!
//! The HTTP side — the buttons' signed calls to the gateway, the control routes — is
//! [`crate::odoo_backoffice`]'s.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::odoo_db::{Database, Mail, OPERATION_REFERENCE, OdooSettings, Record};

/// A merchant's button in the back office.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    Capture,
    Refund,
    Void,
}

/// What a button asks of the gateway, prepared inside Odoo's (the stand-in's) transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayCall {
    /// `/admin/payments/{payment}/captures` …
    pub path: String,
    pub idempotency_key: String,
    pub body: Value,
    /// The draft the button created (none for a capture of the whole amount or a cancel:
    /// Odoo acts on the payment's own transaction then).
    pub draft: Option<i64>,
}

/// The refund wizard's figures for a transaction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefundWizard {
    pub transaction: i64,
    pub amount: f64,
    /// Its refunds that are done or pending.
    pub refunded: f64,
    pub amount_available_for_refund: f64,
}

type Txs = BTreeMap<i64, Record>;

pub(crate) fn str_of<'a>(t: &'a Record, field: &str) -> &'a str {
    t.get(field).and_then(Value::as_str).unwrap_or("")
}

fn amount_of(t: &Record) -> f64 {
    t.get("amount").and_then(Value::as_f64).unwrap_or(0.0)
}

pub(crate) fn parent_of(t: &Record) -> Option<i64> {
    t.get("source_transaction_id")?.get(0)?.as_i64()
}

fn is_refund(t: &Record) -> bool {
    str_of(t, "operation") == "refund"
}

fn operation_id_of(t: &Record) -> Option<i64> {
    str_of(t, "provider_reference")
        .strip_prefix(OPERATION_REFERENCE)?
        .parse()
        .ok()
}

/// The payment's transaction a transaction belongs to.
fn root(txs: &Txs, mut id: i64) -> i64 {
    for _ in 0..8 {
        match txs.get(&id).and_then(parent_of) {
            Some(parent) => id = parent,
            None => break,
        }
    }
    id
}

/// The payment's children and grandchildren (not the payment's own transaction).
fn family(txs: &Txs, source: i64) -> Vec<i64> {
    let children: Vec<i64> = txs
        .values()
        .filter(|t| parent_of(t) == Some(source))
        .filter_map(|t| t.get("id").and_then(Value::as_i64))
        .collect();
    let grandchildren = txs
        .values()
        .filter(|t| parent_of(t).is_some_and(|p| children.contains(&p)))
        .filter_map(|t| t.get("id").and_then(Value::as_i64));
    let mut all = children.clone();
    all.extend(grandchildren);
    all
}

/// Odoo's `_compute_reference`: the prefix, then `-1`, `-2`, … while taken.
fn new_reference(txs: &Txs, prefix: &str) -> String {
    let taken = |r: &str| txs.values().any(|t| str_of(t, "reference") == r);
    if !taken(prefix) {
        return prefix.to_owned();
    }
    (1..)
        .map(|n| format!("{prefix}-{n}"))
        .find(|r| !taken(r))
        .unwrap_or_default()
}

/// Odoo's `_create_child_transaction`: a draft child of `parent`.
/// A sale order's id, total and currency code, by its name.
fn order_figures(
    tables: &BTreeMap<String, Txs>,
    order_name: &str,
) -> Result<(i64, f64, String), String> {
    let order = tables
        .get("sale.order")
        .and_then(|t| t.values().find(|o| str_of(o, "name") == order_name))
        .ok_or("no such sale order")?;
    let currency = order
        .get("currency_id")
        .and_then(Value::as_array)
        .and_then(|c| c.get(1))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let amount = order
        .get("amount_total")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let order_id = order.get("id").and_then(Value::as_i64).unwrap_or(0);
    Ok((order_id, amount, currency))
}

/// The draft Odoo makes when the shopper presses Pay with Klarna (`/shop/payment/transaction`):
/// `tokenize` when the shopper ticked "Save my payment details". Its id.
pub(crate) fn new_checkout(
    txs: &mut Txs,
    reference: &str,
    order_id: i64,
    amount: f64,
    currency: &str,
    tokenize: bool,
) -> i64 {
    let id = txs.keys().max().copied().unwrap_or(0) + 1;
    let mut t = Record::new();
    t.insert("id".into(), json!(id));
    t.insert("reference".into(), json!(new_reference(txs, reference)));
    t.insert("provider_code".into(), json!("klarna"));
    t.insert("provider_reference".into(), json!(false));
    t.insert("sale_order_name".into(), json!(reference));
    t.insert("sale_order_ids".into(), json!([order_id]));
    t.insert("amount".into(), json!(amount));
    t.insert("currency".into(), json!(currency));
    t.insert("operation".into(), json!("online_direct"));
    t.insert("state".into(), json!("draft"));
    t.insert("state_message".into(), json!(false));
    t.insert("source_transaction_id".into(), json!(false));
    t.insert("klarna_confirmation_mail".into(), json!(false));
    t.insert("tokenize".into(), json!(tokenize));
    t.insert("token_id".into(), json!(false));
    txs.insert(id, t);
    id
}

fn create_child(
    txs: &mut Txs,
    parent: i64,
    amount: f64,
    refund: bool,
    provider_reference: Value,
) -> Option<i64> {
    let p = txs.get(&parent)?.clone();
    let (prefix, amount, operation) = if refund {
        ("R-", -amount, json!("refund"))
    } else {
        (
            "P-",
            amount,
            p.get("operation").cloned().unwrap_or(Value::Null),
        )
    };
    let reference = new_reference(txs, &format!("{prefix}{}", str_of(&p, "reference")));
    let id = txs.keys().max().copied().unwrap_or(0) + 1;
    let mut t = Record::new();
    t.insert("id".into(), json!(id));
    t.insert("reference".into(), json!(reference));
    for copied in ["provider_code", "sale_order_name", "currency"] {
        t.insert(copied.into(), p.get(copied).cloned().unwrap_or(Value::Null));
    }
    t.insert("provider_reference".into(), provider_reference);
    t.insert("amount".into(), json!(amount));
    t.insert("operation".into(), operation);
    t.insert("state".into(), json!("draft"));
    t.insert("state_message".into(), json!(false));
    t.insert(
        "source_transaction_id".into(),
        json!([parent, str_of(&p, "reference")]),
    );
    t.insert("klarna_confirmation_mail".into(), json!(false));
    txs.insert(id, t);
    Some(id)
}

fn set_state(txs: &mut Txs, id: i64, state: &str) {
    if let Some(t) = txs.get_mut(&id) {
        t.insert("state".into(), json!(state));
    }
}

/// Odoo's `_update_source_transaction_state`: the payment is done when its done and
/// cancelled children of its own operation (captures and voids) add up to its amount.
fn update_source_state(txs: &mut Txs, source: i64, decimals: u32) {
    let Some(s) = txs.get(&source) else { return };
    let operation = str_of(s, "operation").to_owned();
    let amount = to_minor(amount_of(s), decimals);
    let processed: i64 = txs
        .values()
        .filter(|t| parent_of(t) == Some(source))
        .filter(|t| str_of(t, "operation") == operation)
        .filter(|t| matches!(str_of(t, "state"), "done" | "cancel"))
        .map(|t| to_minor(amount_of(t), decimals))
        .sum();
    if processed == amount && str_of(s, "state") == "authorized" {
        set_state(txs, source, "done");
    }
}

/// Odoo's float amount in minor units (the addon's `_klarna_minor`).
pub fn to_minor(amount: f64, decimals: u32) -> i64 {
    let scaled = amount * 10f64.powi(i32::try_from(decimals).unwrap_or(2));
    // Amounts here are a few million at most: no truncation.
    #[allow(clippy::cast_possible_truncation)]
    let minor = scaled.round() as i64;
    minor
}

fn from_minor(minor: i64, decimals: u32) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let major = minor as f64 / 10f64.powi(i32::try_from(decimals).unwrap_or(2));
    major
}

/// The addon's `_klarna_expected`: what Odoo believes the gateway holds, in minor units —
/// the family's captures and refunds that are done or that the gateway accepted (named
/// `klarna-op-<id>`), `sending` excluded. A payment captured whole has no capture child:
/// its own done transaction is the capture.
fn expected(txs: &Txs, source: i64, sending: Option<i64>, decimals: u32) -> (i64, i64) {
    let counted: Vec<&Record> = family(txs, source)
        .into_iter()
        .filter(|id| Some(*id) != sending)
        .filter_map(|id| txs.get(&id))
        .filter(|t| {
            str_of(t, "state") == "done"
                || str_of(t, "provider_reference").starts_with(OPERATION_REFERENCE)
        })
        .collect();
    let mut captured: i64 = counted
        .iter()
        .filter(|t| !is_refund(t) && str_of(t, "state") != "cancel")
        .map(|t| to_minor(amount_of(t), decimals))
        .sum();
    let refunded: i64 = counted
        .iter()
        .filter(|t| is_refund(t))
        .map(|t| -to_minor(amount_of(t), decimals))
        .sum();
    let has_capture_children = family(txs, source)
        .iter()
        .filter_map(|id| txs.get(id))
        .any(|t| !is_refund(t) && parent_of(t) == Some(source));
    if let Some(s) = txs.get(&source)
        && str_of(s, "state") == "done"
        && !has_capture_children
    {
        captured += to_minor(amount_of(s), decimals);
    }
    (captured, refunded)
}

impl Database {
    /// [`expected`] of the payment whose source transaction is `source`, nothing being sent.
    pub(crate) fn expected_of(&self, source: &Record, decimals: u32) -> (i64, i64) {
        let tables = self
            .models
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (
            tables.get("payment.transaction"),
            source.get("id").and_then(Value::as_i64),
        ) {
            (Some(txs), Some(id)) => expected(txs, id, None, decimals),
            _ => (0, 0),
        }
    }

    /// The Klarna provider's settings and the gateway user's rights, now.
    pub fn settings(&self) -> OdooSettings {
        self.settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn set_settings(&self, settings: OdooSettings) {
        *self
            .settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = settings;
    }

    /// The order confirmations sent, in order.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn write_tables(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Txs>> {
        self.models
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The decimal places of a currency (by ISO code), as `res.currency` holds them.
    fn decimals(tables: &BTreeMap<String, Txs>, currency: &str) -> u32 {
        tables
            .get("res.currency")
            .and_then(|t| {
                t.values()
                    .find(|c| c.get("name").and_then(Value::as_str) == Some(currency))
            })
            .and_then(|c| c.get("decimal_places").and_then(Value::as_u64))
            .and_then(|d| u32::try_from(d).ok())
            .unwrap_or(2)
    }

    /// Sends the order confirmation, once per order.
    fn send_confirmation(
        &self,
        order: &str,
        sent_at: &'static str,
        transaction: i64,
        captured: f64,
    ) {
        let mut mails = self
            .mails
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !mails.iter().any(|m| m.order == order) {
            mails.push(Mail {
                order: order.to_owned(),
                sent_at,
                transaction,
                captured,
            });
        }
    }

    /// A button pressed on transaction `id`: checks what Odoo's wizard checks, creates the
    /// draft Odoo creates, and returns the gateway call the addon makes. `amount` is in
    /// the currency's units, as the wizard shows it.
    pub fn press(
        &self,
        id: i64,
        button: Button,
        amount: Option<f64>,
    ) -> Result<GatewayCall, String> {
        let mut tables = self.write_tables();
        let tx = tables
            .get("payment.transaction")
            .and_then(|t| t.get(&id))
            .cloned()
            .ok_or_else(|| format!("no payment.transaction {id}"))?;
        let decimals = Self::decimals(&tables, str_of(&tx, "currency"));
        let txs = tables.entry("payment.transaction".into()).or_default();
        let source = root(txs, id);
        let s = txs.get(&source).cloned().ok_or("no payment transaction")?;
        let payment = match str_of(&s, "provider_reference") {
            "" => str_of(&s, "sale_order_name").to_owned(),
            klarna_order_id => klarna_order_id.to_owned(),
        };
        let (action, path, draft, minor, capture_operation) = match button {
            Button::Capture => {
                if id != source || str_of(&tx, "state") != "authorized" {
                    return Err(format!(
                        "only an authorized payment transaction can be captured ({} is {})",
                        str_of(&tx, "reference"),
                        str_of(&tx, "state")
                    ));
                }
                let amount = amount.unwrap_or_else(|| amount_of(&s));
                let minor = to_minor(amount, decimals);
                let whole =
                    minor == to_minor(amount_of(&s), decimals) && family(txs, source).is_empty();
                let draft = if whole {
                    None
                } else {
                    create_child(
                        txs,
                        source,
                        from_minor(minor, decimals),
                        false,
                        json!(false),
                    )
                };
                ("capture", "captures", draft, Some(minor), None)
            }
            Button::Refund => {
                let wizard = Self::wizard(txs, id, decimals)?;
                let amount = amount.unwrap_or(wizard.amount_available_for_refund);
                let minor = to_minor(amount, decimals);
                if minor <= 0 || minor > to_minor(wizard.amount_available_for_refund, decimals) {
                    return Err(format!(
                        "the refund of {amount} is more than the {} available for refund of {}",
                        wizard.amount_available_for_refund,
                        str_of(&tx, "reference")
                    ));
                }
                let draft = create_child(txs, id, from_minor(minor, decimals), true, json!(false));
                let capture = (id != source).then(|| operation_id_of(&tx)).flatten();
                ("refund", "refunds", draft, Some(minor), capture)
            }
            Button::Void => {
                if id != source || str_of(&tx, "state") != "authorized" {
                    return Err("only an authorized payment transaction can be voided".into());
                }
                let captured: i64 = txs
                    .values()
                    .filter(|t| parent_of(t) == Some(source) && !is_refund(t))
                    .filter(|t| str_of(t, "state") == "done")
                    .map(|t| to_minor(amount_of(t), decimals))
                    .sum();
                if captured == 0 {
                    ("cancel", "cancel", None, None, None)
                } else {
                    let rest = to_minor(amount_of(&s), decimals) - captured;
                    let draft =
                        create_child(txs, source, from_minor(rest, decimals), false, json!(false));
                    ("release", "release", draft, None, None)
                }
            }
        };
        let (expected_captured, expected_refunded) = expected(txs, source, draft, decimals);
        let mut body = json!({
            "expected_captured": expected_captured,
            "expected_refunded": expected_refunded,
        });
        if let Some(minor) = minor {
            body["amount"] = json!(minor);
        }
        if let Some(capture) = capture_operation {
            body["capture_operation_id"] = json!(capture);
        }
        Ok(GatewayCall {
            path: format!("/admin/payments/{payment}/{path}"),
            idempotency_key: format!(
                "odoo-{action}-{payment}-{}-{expected_captured}-{expected_refunded}",
                minor.unwrap_or(0)
            ),
            body,
            draft,
        })
    }

    /// The gateway's answer to a button: the draft is named after its operation; a refusal
    /// rolls Odoo's transaction back, and the draft is gone.
    pub fn answered(&self, call: &GatewayCall, operation_id: Option<i64>) {
        let mut tables = self.write_tables();
        let Some(txs) = tables.get_mut("payment.transaction") else {
            return;
        };
        match (call.draft, operation_id) {
            (Some(draft), Some(op)) => {
                if let Some(t) = txs.get_mut(&draft) {
                    t.insert(
                        "provider_reference".into(),
                        json!(format!("{OPERATION_REFERENCE}{op}")),
                    );
                }
            }
            (Some(draft), None) => {
                txs.remove(&draft);
            }
            (None, _) => {}
        }
    }

    fn wizard(txs: &Txs, id: i64, decimals: u32) -> Result<RefundWizard, String> {
        let tx = txs
            .get(&id)
            .ok_or_else(|| format!("no payment.transaction {id}"))?;
        let refundable = !is_refund(tx) && str_of(tx, "state") == "done";
        let amount = amount_of(tx);
        let refunded: i64 = txs
            .values()
            .filter(|t| parent_of(t) == Some(id) && is_refund(t))
            .filter(|t| matches!(str_of(t, "state"), "done" | "pending"))
            .map(|t| -to_minor(amount_of(t), decimals))
            .sum();
        let available = if refundable {
            to_minor(amount, decimals) - refunded
        } else {
            0
        };
        Ok(RefundWizard {
            transaction: id,
            amount,
            refunded: from_minor(refunded, decimals),
            amount_available_for_refund: from_minor(available.max(0), decimals),
        })
    }

    /// What Odoo's `/shop/payment/transaction` does when the shopper presses Pay with
    /// Klarna: the order's checkout draft, made or reused, asking to save the payment
    /// method when the shopper ticked the box. Its reference.
    pub fn checkout(&self, order_name: &str, tokenize: bool) -> Result<String, String> {
        let mut tables = self.write_tables();
        let (order_id, amount, currency) = order_figures(&tables, order_name)?;
        let txs = tables.entry("payment.transaction".to_owned()).or_default();
        let draft = txs.values_mut().rev().find(|t| {
            parent_of(t).is_none()
                && str_of(t, "sale_order_name") == order_name
                && str_of(t, "state") == "draft"
        });
        if let Some(t) = draft {
            t.insert("tokenize".into(), json!(tokenize));
            t.insert("amount".into(), json!(amount));
            return Ok(str_of(t, "reference").to_owned());
        }
        let id = new_checkout(txs, order_name, order_id, amount, &currency, tokenize);
        Ok(txs
            .get(&id)
            .map(|t| str_of(t, "reference").to_owned())
            .unwrap_or_default())
    }

    /// What Odoo does before it charges a saved Klarna with no shopper present (a renewal,
    /// a payment registered with the token): a transaction of its own, `offline`, naming the
    /// token. Its reference, which the charge names.
    pub fn charge_transaction(&self, order_name: &str, token_id: i64) -> Result<String, String> {
        let mut tables = self.write_tables();
        let (order_id, amount, currency) = order_figures(&tables, order_name)?;
        let txs = tables.entry("payment.transaction".to_owned()).or_default();
        let id = new_checkout(txs, order_name, order_id, amount, &currency, false);
        let t = txs.get_mut(&id).ok_or("no transaction")?;
        t.insert("operation".into(), json!("offline"));
        t.insert("token_id".into(), json!(token_id));
        Ok(str_of(t, "reference").to_owned())
    }

    /// The refund wizard's figures for transaction `id` (a capture's child, or a payment
    /// captured whole): its amount, what its done and pending refunds took, what is left.
    pub fn refund_wizard(&self, id: i64) -> Result<RefundWizard, String> {
        let tables = self.write_tables();
        let txs = tables
            .get("payment.transaction")
            .ok_or("no payment transactions")?;
        let currency = txs.get(&id).map(|t| str_of(t, "currency")).unwrap_or("");
        Self::wizard(txs, id, Self::decimals(&tables, currency))
    }

    /// Applies one gateway update, the way the addon's `_get_tx_from_notification_data`
    /// and `_process_notification_data` do (after the fix), once per event id.
    pub fn apply_gateway_event(&self, event: &Value) -> Result<&'static str, String> {
        let event_id = event["event_id"].as_str().ok_or("no event_id")?.to_owned();
        let mut seen = self
            .seen_events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.contains(&event_id) {
            return Ok("duplicate");
        }
        let reference = event["reference"].as_str().ok_or("no reference")?;
        let kind = event["event"].as_str().unwrap_or("");
        if !matches!(
            kind,
            "authorized"
                | "pending"
                | "captured"
                | "refunded"
                | "released"
                | "cancelled"
                | "expired"
                | "error"
                | "authorization_updated"
        ) {
            return Err("the update's event is not one the addon knows".to_owned());
        }
        let settings = self.settings();
        let mut tables = self.write_tables();
        let order = tables
            .get("sale.order")
            .and_then(|t| {
                t.values()
                    .find(|o| o.get("name").and_then(Value::as_str) == Some(reference))
            })
            .cloned()
            .ok_or("no sale order has the update's reference")?;
        let currency = event["currency"].as_str().unwrap_or("");
        let decimals = Self::decimals(&tables, currency);
        let minor = event["amount_minor"].as_i64().ok_or("no amount_minor")?;
        let amount = from_minor(minor, decimals);
        let klarna_id = event["klarna_order_id"].clone();
        let txs = tables.entry("payment.transaction".to_owned()).or_default();
        let by_klarna_id = txs.values().find(|t| {
            parent_of(t).is_none()
                && !klarna_id.is_null()
                && t.get("provider_reference") == Some(&klarna_id)
        });
        let source = by_klarna_id
            .or_else(|| {
                txs.values()
                    .rev()
                    .find(|t| parent_of(t).is_none() && str_of(t, "sale_order_name") == reference)
            })
            .and_then(|t| t.get("id").and_then(Value::as_i64));
        // A charge of a saved Klarna names Odoo's transaction (which Odoo made before it
        // asked for the charge).
        let source = event["transaction_reference"]
            .as_str()
            .and_then(|r| {
                txs.values()
                    .find(|t| str_of(t, "reference") == r)
                    .and_then(|t| t.get("id").and_then(Value::as_i64))
            })
            .or(source);
        // The checkout's transaction (a draft Odoo made when the shopper chose Klarna).
        let source = match source {
            Some(id) => id,
            None => {
                let order_id = order.get("id").and_then(Value::as_i64).unwrap_or(0);
                let id = new_checkout(txs, reference, order_id, amount, currency, false);
                if let Some(t) = txs.get_mut(&id) {
                    t.insert("provider_reference".into(), klarna_id.clone());
                }
                id
            }
        };
        // The checkout saved the shopper's Klarna: Odoo's `payment.token`, named by the
        // gateway's reference (never the token).
        if let Some(saved) = event["token"].as_object() {
            let tokens = tables.entry("payment.token".to_owned()).or_default();
            let id = tokens.keys().max().copied().unwrap_or(0) + 1;
            let mut token = Record::new();
            token.insert("id".into(), json!(id));
            token.insert("provider_code".into(), json!("klarna"));
            token.insert("provider_ref".into(), saved["reference"].clone());
            token.insert("payment_details".into(), saved["payment_method"].clone());
            token.insert("sale_order_name".into(), json!(reference));
            token.insert("active".into(), json!(true));
            tokens.insert(id, token);
            if let Some(t) = tables
                .get_mut("payment.transaction")
                .and_then(|txs| txs.get_mut(&source))
            {
                t.insert("token_id".into(), json!(id));
            }
        }
        let txs = tables.entry("payment.transaction".to_owned()).or_default();
        let op_reference = event["operation_id"]
            .as_i64()
            .map(|op| format!("{OPERATION_REFERENCE}{op}"));
        let named = op_reference.as_ref().map_or(json!(false), |r| json!(r));
        let in_family = family(txs, source);
        // The transaction an update about an operation is for: named after it anywhere in
        // the family, else a draft of the same amount and kind (Odoo's request not yet
        // named it).
        let find = |txs: &Txs, refund: bool| {
            let by_reference = op_reference.as_deref().and_then(|r| {
                in_family.iter().copied().find(|id| {
                    txs.get(id)
                        .is_some_and(|t| str_of(t, "provider_reference") == r)
                })
            });
            by_reference.or_else(|| {
                let signed = if refund { -minor } else { minor };
                in_family.iter().copied().find(|id| {
                    txs.get(id).is_some_and(|t| {
                        str_of(t, "state") == "draft"
                            && is_refund(t) == refund
                            && to_minor(amount_of(t), decimals) == signed
                            // A draft named after another operation is that one's.
                            && !str_of(t, "provider_reference").starts_with(OPERATION_REFERENCE)
                    })
                })
            })
        };
        let name_after_operation = |txs: &mut Txs, id: i64| {
            if let (Some(t), Some(r)) = (txs.get_mut(&id), op_reference.as_deref())
                && !str_of(t, "provider_reference").starts_with(OPERATION_REFERENCE)
            {
                t.insert("provider_reference".into(), json!(r));
            }
        };
        match kind {
            "authorized" | "pending" => {
                if let Some(t) = txs.get_mut(&source) {
                    if !klarna_id.is_null() {
                        t.insert("provider_reference".into(), klarna_id.clone());
                    }
                    if matches!(str_of(t, "state"), "draft" | "pending") {
                        t.insert("state".into(), json!(kind));
                        if kind == "authorized" {
                            // The addon decides when the confirmation goes out as the
                            // payment is authorized; that choice sticks.
                            t.insert(
                                "klarna_confirmation_mail".into(),
                                json!(settings.confirmation_mail),
                            );
                        }
                    }
                }
                let mail_now = txs.get(&source).is_some_and(|t| {
                    str_of(t, "state") == "authorized"
                        && str_of(t, "klarna_confirmation_mail") == "authorization"
                });
                if mail_now {
                    self.send_confirmation(reference, "authorization", source, 0.0);
                }
            }
            "captured" => {
                let target = find(txs, false).unwrap_or_else(|| {
                    let whole = minor == event["authorized_minor"].as_i64().unwrap_or(-1)
                        && in_family.is_empty();
                    if whole {
                        source
                    } else {
                        create_child(txs, source, amount, false, named.clone()).unwrap_or(source)
                    }
                });
                if target != source {
                    name_after_operation(txs, target);
                }
                set_state(txs, target, "done");
                update_source_state(txs, source, decimals);
                let mail_on_capture = txs.get(&source).is_some_and(|s| {
                    let chosen = match str_of(s, "klarna_confirmation_mail") {
                        "" => settings.confirmation_mail.as_str(),
                        chosen => chosen,
                    };
                    chosen == "capture"
                });
                if mail_on_capture {
                    let captured = if target == source {
                        txs.get(&source).map_or(0.0, amount_of)
                    } else {
                        from_minor(
                            family(txs, source)
                                .iter()
                                .filter_map(|id| txs.get(id))
                                .filter(|t| !is_refund(t) && str_of(t, "state") == "done")
                                .map(|t| to_minor(amount_of(t), decimals))
                                .sum(),
                            decimals,
                        )
                    };
                    self.send_confirmation(reference, "capture", source, captured);
                }
            }
            "refunded" => {
                let target = find(txs, true).unwrap_or_else(|| {
                    // Made elsewhere (Klarna's portal, the CLI): under the capture it names.
                    let parent = event["capture_operation_id"]
                        .as_i64()
                        .map(|c| format!("{OPERATION_REFERENCE}{c}"))
                        .and_then(|r| {
                            in_family.iter().copied().find(|id| {
                                txs.get(id)
                                    .is_some_and(|t| str_of(t, "provider_reference") == r)
                            })
                        })
                        .unwrap_or(source);
                    create_child(txs, parent, amount, true, named.clone()).unwrap_or(source)
                });
                name_after_operation(txs, target);
                set_state(txs, target, "done");
            }
            "released" => {
                let draft = in_family.iter().copied().find(|id| {
                    txs.get(id).is_some_and(|t| {
                        parent_of(t) == Some(source)
                            && !is_refund(t)
                            && str_of(t, "state") == "draft"
                    })
                });
                let target = draft.or_else(|| {
                    let s = txs.get(&source)?;
                    let processed: i64 = txs
                        .values()
                        .filter(|t| parent_of(t) == Some(source) && !is_refund(t))
                        .filter(|t| matches!(str_of(t, "state"), "done" | "cancel"))
                        .map(|t| to_minor(amount_of(t), decimals))
                        .sum();
                    let rest = to_minor(amount_of(s), decimals) - processed;
                    (rest > 0)
                        .then(|| {
                            create_child(
                                txs,
                                source,
                                from_minor(rest, decimals),
                                false,
                                json!(false),
                            )
                        })
                        .flatten()
                });
                match target {
                    Some(child) => {
                        set_state(txs, child, "cancel");
                        update_source_state(txs, source, decimals);
                    }
                    None => set_state(txs, source, "done"),
                }
            }
            "cancelled" | "expired" => set_state(txs, source, "cancel"),
            // The order was edited: the payment is for the new amount.
            "authorization_updated" => {
                if let Some(s) = txs.get_mut(&source) {
                    s.insert("amount".into(), json!(amount));
                }
            }
            _ => {}
        }
        if let Some(s) = txs.get_mut(&source)
            && let Some(message) = event["message"].as_str()
        {
            s.insert("state_message".into(), json!(message));
            if kind == "error" && matches!(str_of(s, "state"), "draft" | "pending") {
                s.insert("state".into(), json!("error"));
            }
        }
        seen.insert(event_id);
        Ok("ok")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(event: &str, amount_minor: i64, operation: Option<i64>) -> Value {
        json!({
            "event_id": uuid::Uuid::new_v4().to_string(),
            "event": event,
            "reference": "S00043",
            "klarna_order_id": "k-1",
            "currency": "EUR",
            "amount_minor": amount_minor,
            "authorized_minor": 70_028,
            "operation_id": operation,
            "capture_operation_id": null,
        })
    }

    fn txs(db: &Database) -> Vec<(String, String, String, f64, String)> {
        db.records("payment.transaction")
            .iter()
            .map(|t| {
                (
                    str_of(t, "reference").to_owned(),
                    str_of(t, "operation").to_owned(),
                    str_of(t, "state").to_owned(),
                    amount_of(t),
                    str_of(t, "provider_reference").to_owned(),
                )
            })
            .collect()
    }

    fn authorized() -> Database {
        let db = Database::demo();
        db.apply_gateway_event(&update("authorized", 70_028, None))
            .expect("authorized");
        db
    }

    #[test]
    fn a_refund_from_a_capture_is_a_grandchild_completed_by_its_update() {
        let db = authorized();
        let capture = db.press(1, Button::Capture, Some(300.0)).expect("capture");
        assert_eq!(capture.path, "/admin/payments/k-1/captures");
        assert_eq!(capture.idempotency_key, "odoo-capture-k-1-30000-0-0");
        assert_eq!(
            capture.body,
            json!({"amount": 30_000, "expected_captured": 0, "expected_refunded": 0})
        );
        db.answered(&capture, Some(7));
        db.apply_gateway_event(&update("captured", 30_000, Some(7)))
            .expect("captured");
        let refund = db.press(2, Button::Refund, Some(100.0)).expect("refund");
        assert_eq!(
            refund.body,
            json!({"amount": 10_000, "expected_captured": 30_000, "expected_refunded": 0,
                   "capture_operation_id": 7})
        );
        assert_eq!(refund.idempotency_key, "odoo-refund-k-1-10000-30000-0");
        db.answered(&refund, Some(8));
        db.apply_gateway_event(&update("refunded", 10_000, Some(8)))
            .expect("refunded");
        assert_eq!(
            txs(&db),
            [
                (
                    "S00043".into(),
                    "online_direct".into(),
                    "authorized".into(),
                    700.28,
                    "k-1".into()
                ),
                (
                    "P-S00043".into(),
                    "online_direct".into(),
                    "done".into(),
                    300.0,
                    "klarna-op-7".into()
                ),
                (
                    "R-P-S00043".into(),
                    "refund".into(),
                    "done".into(),
                    -100.0,
                    "klarna-op-8".into()
                ),
            ]
        );
        let wizard = db.refund_wizard(2).expect("wizard");
        assert_eq!(
            (wizard.refunded, wizard.amount_available_for_refund),
            (100.0, 200.0)
        );
        assert!(
            db.press(2, Button::Refund, Some(200.01)).is_err(),
            "over the wizard's limit"
        );
        assert_eq!(txs(&db).len(), 3, "a refused button leaves nothing behind");
    }

    #[test]
    fn an_update_that_overtakes_the_buttons_answer_completes_its_draft() {
        let db = authorized();
        let capture = db.press(1, Button::Capture, Some(300.0)).expect("capture");
        db.apply_gateway_event(&update("captured", 30_000, Some(7)))
            .expect("captured");
        db.answered(&capture, Some(7));
        let all = txs(&db);
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(
            (all[1].2.as_str(), all[1].4.as_str()),
            ("done", "klarna-op-7")
        );
    }

    #[test]
    fn a_refused_button_rolls_its_draft_back() {
        let db = authorized();
        let capture = db.press(1, Button::Capture, Some(300.0)).expect("capture");
        db.answered(&capture, None);
        assert_eq!(txs(&db).len(), 1);
    }

    #[test]
    fn captures_and_a_release_make_the_payment_done() {
        let db = authorized();
        for (op, amount) in [(1, 30_000), (2, 20_000)] {
            let call = db
                .press(1, Button::Capture, Some(from_minor(amount, 2)))
                .expect("capture");
            db.answered(&call, Some(op));
            db.apply_gateway_event(&update("captured", amount, Some(op)))
                .expect("captured");
        }
        let void = db.press(1, Button::Void, None).expect("void");
        assert_eq!(void.path, "/admin/payments/k-1/release");
        assert_eq!(
            void.body,
            json!({"expected_captured": 50_000, "expected_refunded": 0})
        );
        db.answered(&void, Some(3));
        db.apply_gateway_event(&update("released", 0, None))
            .expect("released");
        let all = txs(&db);
        assert_eq!(all[0].2, "done", "{all:?}");
        assert_eq!((all[3].2.as_str(), all[3].3), ("cancel", 200.28));
    }

    #[test]
    fn the_payment_user_needs_billing_rights() {
        let db = Database::demo();
        assert!(db.settings().billing_group);
        assert_eq!(db.settings().confirmation_mail, "authorization");
    }
}
