//! Reconcile: our records against Klarna's order and Odoo's transaction.
//!
//! Klarna's state wins: a capture or refund Klarna shows that we do not (made in Klarna's
//! portal, or lost in a crash) is recorded; an order Klarna cancelled or let expire is
//! closed here; a fraud decision is taken over. Odoo is told again whenever it disagrees.
//! Whatever cannot be repaired safely is marked for a person. Every repair and conflict is
//! in the audit log.

use klarna_client::ErrorKind;
use klarna_types::klarna::{FraudStatus, Order, OrderStatus};
use serde::Serialize;

use crate::Gateway;
use crate::error::GatewayError;
use crate::odoo_sync::{self, Event, Notification};
use crate::store::audit::Audit;
use crate::store::transactions::NewOperation;
use crate::store::{OpKind, OpState, Operation, Transaction, TxState};

pub const JOB: &str = "reconcile";

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub checked: usize,
    /// What was repaired, one line each.
    pub repaired: Vec<String>,
    /// What needs a person, one line each.
    pub attention: Vec<String>,
    /// Payments whose state Odoo was told again.
    pub odoo_resent: Vec<String>,
}

fn state_of(o: &Order) -> TxState {
    match o.status {
        OrderStatus::Authorized => TxState::Authorized,
        OrderStatus::PartCaptured => TxState::PartCaptured,
        OrderStatus::Captured | OrderStatus::Closed => TxState::Captured,
        OrderStatus::Cancelled => TxState::Cancelled,
        OrderStatus::Expired => TxState::Expired,
    }
}

/// The Odoo transaction state our records imply.
fn odoo_state(t: &Transaction) -> &'static str {
    match (t.state, t.fraud_status) {
        (_, Some(FraudStatus::Pending)) if t.state.is_open() => "pending",
        (TxState::Authorized | TxState::PartCaptured, _) => "authorized",
        (TxState::Captured, _) => "done",
        (TxState::Cancelled | TxState::Expired, _) => "cancel",
        (TxState::Placing, _) => "pending",
    }
}

/// Checks every payment Klarna may still change.
pub async fn run(gw: &Gateway) -> Result<Report, GatewayError> {
    let mut report = Report::default();
    for t in gw.db.unsettled_transactions().await? {
        report.checked += 1;
        if let Err(e) = one(gw, &t, &mut report).await {
            report
                .attention
                .push(format!("{}: reconcile failed: {e}", t.order_reference));
        }
    }
    tracing::info!(
        checked = report.checked,
        repaired = report.repaired.len(),
        attention = report.attention.len(),
        "reconcile done"
    );
    gw.set_last_reconcile();
    Ok(report)
}

async fn one(gw: &Gateway, t: &Transaction, report: &mut Report) -> Result<(), GatewayError> {
    let Some(order_id) = t.klarna_order_id.clone() else {
        return Ok(());
    };
    let order = match gw.klarna.get_order(&order_id).await {
        Ok(o) => o,
        Err(e) if e.kind == ErrorKind::NotFound => {
            mark_attention(gw, t, "Klarna does not know this order").await?;
            report.attention.push(format!(
                "{}: Klarna does not know order {order_id}",
                t.order_reference
            ));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let _lock = gw.lock_payment(t.id).await;
    let mut tx = gw.db.begin_write().await?;
    let mut now = gw.db.lock_transaction(&mut tx, t.id).await?;
    let ops = gw.db.operations_in(&mut tx, t.id).await?;
    let before = now.clone();
    let mut notes = Vec::new();
    let mut events: Vec<(Event, i64, Option<i64>)> = Vec::new();

    // Captures and refunds Klarna has and we do not (or left pending).
    for c in &order.captures {
        if ops
            .iter()
            .any(|o| o.klarna_id.as_deref() == Some(&c.capture_id))
        {
            continue;
        }
        let pending = ops.iter().find(|o| {
            o.kind == OpKind::Capture
                && o.state == OpState::Pending
                && c.reference.is_some()
                && o.request.get("reference").and_then(|r| r.as_str()) == c.reference.as_deref()
        });
        let op_id = adopt(
            gw,
            &mut tx,
            t,
            pending,
            OpKind::Capture,
            c.captured_amount,
            &c.capture_id,
            c.reference.as_deref(),
        )
        .await?;
        notes.push(format!(
            "capture {} of {} recorded from Klarna",
            c.capture_id, c.captured_amount
        ));
        events.push((Event::Captured, c.captured_amount, Some(op_id)));
    }
    for r in &order.refunds {
        if ops
            .iter()
            .any(|o| o.klarna_id.as_deref() == Some(&r.refund_id))
        {
            continue;
        }
        let pending = ops.iter().find(|o| {
            o.kind == OpKind::Refund
                && o.state == OpState::Pending
                && r.reference.is_some()
                && o.request.get("reference").and_then(|x| x.as_str()) == r.reference.as_deref()
        });
        let op_id = adopt(
            gw,
            &mut tx,
            t,
            pending,
            OpKind::Refund,
            r.refunded_amount,
            &r.refund_id,
            r.reference.as_deref(),
        )
        .await?;
        notes.push(format!(
            "refund {} of {} recorded from Klarna",
            r.refund_id, r.refunded_amount
        ));
        events.push((Event::Refunded, r.refunded_amount, Some(op_id)));
    }

    // Klarna's amounts, state and fraud decision win.
    let klarna_state = state_of(&order);
    if now.captured_amount != order.captured_amount
        || now.refunded_amount != order.refunded_amount
        || now.state != klarna_state
    {
        if now.state != klarna_state {
            notes.push(format!(
                "state {} → {} (Klarna)",
                now.state.as_str(),
                klarna_state.as_str()
            ));
            match klarna_state {
                TxState::Cancelled => events.push((Event::Cancelled, 0, None)),
                TxState::Expired => events.push((Event::Expired, 0, None)),
                _ => {}
            }
        }
        now.captured_amount = order.captured_amount;
        now.refunded_amount = order.refunded_amount;
        now.authorized_amount = order.original_order_amount;
        now.released_amount = (order.original_order_amount - order.order_amount).max(0);
        now.state = klarna_state;
    }
    if now.fraud_status != Some(order.fraud_status) {
        notes.push(format!(
            "fraud decision {:?} → {:?} (Klarna)",
            now.fraud_status, order.fraud_status
        ));
        if before.fraud_status == Some(FraudStatus::Pending)
            && order.fraud_status == FraudStatus::Accepted
        {
            events.push((Event::Authorized, now.authorized_amount, None));
        }
        now.fraud_status = Some(order.fraud_status);
    }
    if !notes.is_empty() {
        now.attention = None;
        gw.db.save_transaction(&mut tx, &now).await?;
        gw.db
            .audit(
                &mut tx,
                Audit {
                    transaction_id: Some(t.id),
                    order_reference: Some(&t.order_reference),
                    actor: "reconcile",
                    action: "repaired_from_klarna",
                    before: Some(before.state.as_str()),
                    after: Some(now.state.as_str()),
                    detail: Some(notes.join("; ")),
                },
            )
            .await?;
        for (event, amount, op) in &events {
            odoo_sync::enqueue(
                &gw.db,
                &mut tx,
                &Notification::new(&now, *event, *amount, *op, None),
            )
            .await?;
        }
        report
            .repaired
            .push(format!("{}: {}", t.order_reference, notes.join("; ")));
    }
    tx.commit().await?;

    // Odoo: does it show what we know? If not, tell it again.
    match gw.odoo.transaction_state(&order_id).await {
        Ok(Some(state)) if state != odoo_state(&now) => {
            let mut tx = gw.db.begin_write().await?;
            let event = match odoo_state(&now) {
                "done" => Event::Captured,
                "cancel" => Event::Cancelled,
                "pending" => Event::Pending,
                _ => Event::Authorized,
            };
            let amount = if event == Event::Captured {
                now.captured_amount
            } else {
                now.authorized_amount
            };
            odoo_sync::enqueue(
                &gw.db,
                &mut tx,
                &Notification::new(
                    &now,
                    event,
                    amount,
                    None,
                    Some("reconcile: Odoo differed from Klarna".into()),
                ),
            )
            .await?;
            gw.db
                .audit(&mut tx, Audit {
                    transaction_id: Some(t.id),
                    order_reference: Some(&t.order_reference),
                    actor: "reconcile",
                    action: "odoo_conflict",
                    before: Some(&state),
                    after: Some(odoo_state(&now)),
                    detail: Some("Odoo's transaction differed from Klarna's order; Klarna's state was sent again".into()),
                })
                .await?;
            tx.commit().await?;
            report.odoo_resent.push(format!(
                "{}: Odoo showed {state}, Klarna {}",
                t.order_reference,
                odoo_state(&now)
            ));
        }
        Ok(_) => {}
        Err(e) => report.attention.push(format!(
            "{}: Odoo could not be read: {e}",
            t.order_reference
        )),
    }
    if let Some(a) = &now.attention {
        report.attention.push(format!("{}: {a}", t.order_reference));
    }
    gw.wake_worker();
    Ok(())
}

/// Records a capture or refund Klarna has: completes our pending operation for it, or
/// adds one made outside the gateway.
#[allow(clippy::too_many_arguments)]
async fn adopt(
    gw: &Gateway,
    tx: &mut crate::db::Tx,
    t: &Transaction,
    pending: Option<&Operation>,
    kind: OpKind,
    amount: i64,
    klarna_id: &str,
    reference: Option<&str>,
) -> Result<i64, GatewayError> {
    let id = match pending {
        Some(op) => op.id,
        None => {
            let request = serde_json::json!({"reference": reference, "source": "klarna"});
            let key = format!("reconcile-{klarna_id}");
            gw.db
                .insert_operation(
                    tx,
                    NewOperation {
                        transaction_id: t.id,
                        kind,
                        amount,
                        capture_id: None,
                        request: &request,
                        idempotency_key: &key,
                        requested_by: "reconcile",
                    },
                )
                .await?
        }
    };
    gw.db
        .finish_operation(tx, id, OpState::Succeeded, Some(klarna_id), None)
        .await?;
    Ok(id)
}

async fn mark_attention(gw: &Gateway, t: &Transaction, why: &str) -> Result<(), GatewayError> {
    let mut tx = gw.db.begin_write().await?;
    let mut now = gw.db.lock_transaction(&mut tx, t.id).await?;
    if now.attention.as_deref() == Some(why) {
        return Ok(());
    }
    now.attention = Some(why.to_owned());
    gw.db.save_transaction(&mut tx, &now).await?;
    gw.db
        .audit(
            &mut tx,
            Audit {
                transaction_id: Some(t.id),
                order_reference: Some(&t.order_reference),
                actor: "reconcile",
                action: "needs_attention",
                before: Some(now.state.as_str()),
                after: Some(now.state.as_str()),
                detail: Some(why.to_owned()),
            },
        )
        .await?;
    odoo_sync::enqueue(
        &gw.db,
        &mut tx,
        &Notification::new(&now, Event::Error, 0, None, Some(why.to_owned())),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
