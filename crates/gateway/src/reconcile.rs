//! Reconcile: our records against Klarna's order and Odoo's transaction.
//!
//! Klarna's state wins: a capture or refund Klarna shows that we do not (made in Klarna's
//! portal, or lost in a crash) is recorded; an order Klarna cancelled or let expire is
//! closed here; a fraud decision is taken over. Odoo is told again whenever it disagrees:
//! its payment's state, and every capture and refund it holds no finished transaction for.
//! Odoo updates that waited in the review queue (Odoo was down longer than the job
//! schedule) go back to the queue once Odoo answers: Odoo applies each update once, so a
//! second delivery is harmless and a missing one is not. Whatever cannot be repaired
//! safely is marked for a person. Every repair and conflict is in the audit log.

use std::collections::HashSet;

use klarna_client::ErrorKind;
use klarna_types::klarna::{FraudStatus, Order, OrderStatus};
use serde::Serialize;

use crate::db::Tx;
use crate::error::GatewayError;
use crate::jobs;
use crate::odoo_sync;
use crate::odoo_update::{Event, Notification};
use crate::state::Gateway;
use crate::store::audit::Audit;
use crate::store::transactions::NewOperation;
use crate::store::{OpKind, OpState, Operation, Transaction, TxState};

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
#[schema(as = ReconcileReport)]
pub struct Report {
    pub checked: usize,
    /// What was repaired, one line each.
    pub repaired: Vec<String>,
    /// What needs a person, one line each.
    pub attention: Vec<String>,
    /// What Odoo was told again: a payment's state, or a capture or refund Odoo lacked.
    pub odoo_resent: Vec<String>,
    /// Odoo updates taken out of the review queue and queued again.
    pub odoo_revived: Vec<String>,
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
    // While Odoo does not answer, a revived update would only use up its attempts again
    // and leave the review queue (and its alert) empty for a day and a half.
    match gw.odoo.version().await {
        Ok(_) => revive_odoo_updates(gw, &mut report).await?,
        Err(e) => report.attention.push(format!(
            "Odoo does not answer ({e}): its updates in review stay there"
        )),
    }
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
    // Drift found: what was repaired adds up; what needs a person is the last run's count,
    // so an alert clears once the payments are dealt with.
    metrics::counter!("gateway_reconcile_repaired_total").increment(report.repaired.len() as u64);
    metrics::gauge!("gateway_reconcile_attention").set(report.attention.len() as f64);
    metrics::gauge!("gateway_reconcile_last_run_timestamp_seconds")
        .set(crate::db::now_ms() as f64 / 1000.0);
    gw.set_last_reconcile();
    Ok(report)
}

/// Puts the Odoo updates waiting in review back in the queue, each with an audit entry.
async fn revive_odoo_updates(gw: &Gateway, report: &mut Report) -> Result<(), GatewayError> {
    // The payments the updates are about, read before the write transaction begins.
    let mut payments = std::collections::HashMap::new();
    for n in jobs::odoo_updates_in_review(&gw.db).await? {
        let key = n
            .klarna_order_id
            .clone()
            .unwrap_or_else(|| n.reference.clone());
        if let Some(t) = gw.db.find_transaction(&key).await? {
            payments.insert(n.event_id, t.id);
        }
    }
    let mut tx = gw.db.begin_write().await?;
    let revived = jobs::revive_odoo_updates(&gw.db, &mut tx).await?;
    for (job, n, error) in &revived {
        let payment = payments.get(&n.event_id).copied();
        let line = format!(
            "{}: {} update (job {job}) queued again after: {}",
            n.reference,
            n.event.as_str(),
            error.as_deref().unwrap_or("no error recorded")
        );
        gw.db
            .audit(
                &mut tx,
                Audit {
                    transaction_id: payment,
                    order_reference: Some(&n.reference),
                    actor: "reconcile",
                    action: "odoo_update_revived",
                    before: Some("review"),
                    after: Some("queued"),
                    detail: Some(line.clone()),
                },
            )
            .await?;
        report.odoo_revived.push(line);
    }
    tx.commit().await?;
    if !revived.is_empty() {
        gw.wake_worker();
    }
    Ok(())
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
    let notes = sync_payment(gw, t.id, &order, "reconcile", None).await?;
    if !notes.is_empty() {
        report
            .repaired
            .push(format!("{}: {}", t.order_reference, notes.join("; ")));
    }
    let now = gw
        .db
        .transaction(t.id)
        .await?
        .ok_or_else(|| GatewayError::not_found(format!("payment {}", t.id)))?;

    // Odoo: does it show what we know? If not, tell it again.
    if let Err(e) = tell_odoo(gw, &now, &order_id, report).await {
        report.attention.push(format!(
            "{}: Odoo could not be read: {e}",
            t.order_reference
        ));
    }
    if let Some(a) = &now.attention {
        report.attention.push(format!("{}: {a}", t.order_reference));
    }
    gw.wake_worker();
    Ok(())
}

/// Compares Odoo's transactions for a payment with our records and queues what Odoo
/// lacks: each capture and refund it holds no finished transaction for (by the gateway's
/// operation, `klarna-op-<id>`), then the payment's state if it still differs. The
/// addon finds the transaction an update is about by its operation, so a re-sent update
/// completes Odoo's draft or adds the one missing transaction, never a second one.
async fn tell_odoo(
    gw: &Gateway,
    now: &Transaction,
    order_id: &str,
    report: &mut Report,
) -> Result<(), GatewayError> {
    let Some(odoo_source) = gw.odoo.transaction_state(order_id).await? else {
        // Odoo has never heard of the payment: its authorization update is still on the
        // way (or in review, and revived above).
        return Ok(());
    };
    let wanted = odoo_state(now);
    if odoo_source == "cancel" && wanted != "cancel" {
        // Odoo 18 moves a cancelled transaction nowhere (`_set_authorized`, `_set_done`
        // refuse it): an update would change nothing, every 15 minutes.
        report.attention.push(format!(
            "{}: Odoo shows the payment cancelled, Klarna {wanted}; no update can undo a cancel in Odoo: a person must",
            now.order_reference
        ));
        return Ok(());
    }
    // Captures and refunds whose update is on its way (queued by this run's repair, or
    // earlier) are not Odoo's to lack yet.
    let on_the_way: HashSet<i64> = jobs::unfinished_odoo_updates(&gw.db)
        .await?
        .iter()
        .filter(|n| matches!(n.event, Event::Captured | Event::Refunded))
        .filter_map(|n| n.operation_id)
        .collect();
    let ops = gw.db.operations(now.id).await?;
    let moved: Vec<&Operation> = ops
        .iter()
        .filter(|o| {
            o.state == OpState::Succeeded && matches!(o.kind, OpKind::Capture | OpKind::Refund)
        })
        .collect();
    let ids: Vec<i64> = moved.iter().map(|o| o.id).collect();
    let in_odoo = gw.odoo.operation_states(&ids).await?;
    let captures = moved.iter().filter(|o| o.kind == OpKind::Capture).count();
    let lacking: Vec<(&Operation, &str)> = moved
        .iter()
        .filter(|o| !on_the_way.contains(&o.id))
        .filter_map(|o| match in_odoo.get(&o.id).map(String::as_str) {
            // The addon books a single capture of the whole authorization on the payment's
            // own transaction, not on a child.
            None if o.kind == OpKind::Capture
                && captures == 1
                && o.amount == now.authorized_amount
                && odoo_source == "done" =>
            {
                None
            }
            None => Some((*o, "missing")),
            Some(s @ ("draft" | "pending" | "authorized")) => Some((*o, s)),
            Some(_) => None,
        })
        .collect();
    // The captures re-sent carry the payment's totals, which make it done in Odoo; a
    // state update on top would be a capture without an operation.
    let state_too = odoo_source != wanted
        && !(wanted == "done" && lacking.iter().any(|(o, _)| o.kind == OpKind::Capture));
    if lacking.is_empty() && !state_too {
        return Ok(());
    }
    let mut tx = gw.db.begin_write().await?;
    let mut lines = Vec::new();
    if state_too {
        let (event, amount, operation) = match wanted {
            // The last capture's update: Odoo finds its transaction by the operation,
            // instead of booking the captured total as one more capture.
            "done" => (
                Event::Captured,
                moved
                    .iter()
                    .rev()
                    .find(|o| o.kind == OpKind::Capture)
                    .map_or(now.captured_amount, |o| o.amount),
                moved
                    .iter()
                    .rev()
                    .find(|o| o.kind == OpKind::Capture)
                    .map(|o| o.id),
            ),
            "cancel" => (Event::Cancelled, now.authorized_amount, None),
            "pending" => (Event::Pending, now.authorized_amount, None),
            _ => (Event::Authorized, now.authorized_amount, None),
        };
        odoo_sync::enqueue(
            &gw.db,
            &mut tx,
            &Notification::new(
                now,
                event,
                amount,
                operation,
                Some("reconcile: Odoo differed from Klarna".into()),
            ),
        )
        .await?;
        lines.push(format!("Odoo showed {odoo_source}, Klarna {wanted}"));
    }
    for (op, seen) in &lacking {
        let event = if op.kind == OpKind::Capture {
            Event::Captured
        } else {
            Event::Refunded
        };
        odoo_sync::enqueue(
            &gw.db,
            &mut tx,
            &Notification::new(
                now,
                event,
                op.amount,
                Some(op.id),
                Some(format!("reconcile: Odoo lacked this {}", op.kind.as_str())),
            )
            .from_capture(op.capture_operation_id),
        )
        .await?;
        lines.push(format!(
            "{} {} of {} {} re-sent (Odoo: {seen})",
            op.kind.as_str(),
            op.id,
            op.amount,
            now.currency
        ));
    }
    gw.db
        .audit(
            &mut tx,
            Audit {
                transaction_id: Some(now.id),
                order_reference: Some(&now.order_reference),
                actor: "reconcile",
                action: "odoo_conflict",
                before: Some(&odoo_source),
                after: Some(wanted),
                detail: Some(format!(
                    "Odoo's transactions differed from Klarna's order; sent again: {}",
                    lines.join("; ")
                )),
            },
        )
        .await?;
    tx.commit().await?;
    report
        .odoo_resent
        .push(format!("{}: {}", now.order_reference, lines.join("; ")));
    Ok(())
}

/// How often a read of Klarna's order that lacks an operation we recorded as done is read
/// again before it counts as Klarna's word.
const STALE_READS: usize = 3;

/// Brings our record of a payment in line with Klarna's order, through the state
/// machine: captures and refunds Klarna has and we do not are recorded, then Klarna's
/// cancel, expiry, release and fraud decision are applied. What the state machine refuses
/// (Klarna and we disagree) is kept as Klarna says and marked for a person. Returns what
/// changed. `event` (a webhook's id) is marked applied in the same transaction.
///
/// `order` was read before the payment was locked, so an operation may have been done
/// and recorded since — by this process or another instance. Such a read is older than our
/// records: applied as it is, it would take that capture or refund back out of our
/// amounts. It is read again instead; only a read that still lacks the operation after
/// [`STALE_READS`] tries is Klarna's word (and a disagreement for a person).
pub async fn sync_payment(
    gw: &Gateway,
    transaction_id: i64,
    order: &Order,
    actor: &str,
    event: Option<(&str, &str)>,
) -> Result<Vec<String>, GatewayError> {
    let _lock = gw.lock_payment(transaction_id).await;
    let mut fresh: Order;
    let mut order = order;
    for read in 1..=STALE_READS {
        let last = read == STALE_READS;
        match apply_order(gw, transaction_id, order, actor, event, last).await? {
            Applied::Done(notes) => return Ok(notes),
            Applied::OlderThanOurs(missing) => {
                tracing::debug!(
                    order = %order.order_id,
                    "Klarna's order as read lacks {missing}, recorded since: reading it again"
                );
                fresh = gw.klarna.get_order(&order.order_id).await?;
                order = &fresh;
            }
        }
    }
    Err(GatewayError::Internal(format!(
        "order {}: no read of Klarna's order could be applied",
        order.order_id
    )))
}

enum Applied {
    Done(Vec<String>),
    /// The read lacks this operation, which we recorded as done: nothing was changed.
    OlderThanOurs(String),
}

/// An operation we recorded as done at Klarna that `order` does not show: then `order`
/// was read before it was done. (Klarna's captures, refunds and cancel are never undone.)
fn missing_from(order: &Order, ops: &[Operation]) -> Option<String> {
    ops.iter()
        .filter(|o| o.state == OpState::Succeeded)
        .find_map(|o| {
            let shown = match (o.kind, o.klarna_id.as_deref()) {
                (OpKind::Capture, Some(id)) => order.captures.iter().any(|c| c.capture_id == id),
                (OpKind::Refund, Some(id)) => order.refunds.iter().any(|r| r.refund_id == id),
                (OpKind::Cancel, _) => order.status == OrderStatus::Cancelled,
                _ => true,
            };
            (!shown).then(|| format!("{} {}", o.kind.as_str(), o.id))
        })
}

/// [`sync_payment`] with one read of Klarna's order; unless `as_is`, a read older than
/// our records changes nothing.
async fn apply_order(
    gw: &Gateway,
    transaction_id: i64,
    order: &Order,
    actor: &str,
    event: Option<(&str, &str)>,
    as_is: bool,
) -> Result<Applied, GatewayError> {
    let mut tx = gw.db.begin_write().await?;
    let mut now = gw.db.lock_transaction(&mut tx, transaction_id).await?;
    if let Some((id, _)) = event
        && gw.db.event_applied_in(&mut tx, id).await?
    {
        return Ok(Applied::Done(Vec::new()));
    }
    let ops = gw.db.operations_in(&mut tx, transaction_id).await?;
    if !as_is && let Some(missing) = missing_from(order, &ops) {
        return Ok(Applied::OlderThanOurs(missing));
    }
    let before = now.clone();
    let mut p = now.payment(&ops)?;
    // The captures in the state machine's order, each with what it had refunded: the
    // ones Klarna has and we adopt join at the end, as they do in `p`.
    let mut captures: Vec<(i64, i64)> = ops
        .iter()
        .filter(|o| o.kind == OpKind::Capture && o.state == OpState::Succeeded)
        .map(|o| (o.id, o.refunded_amount))
        .collect();
    let mut refunds_adopted = false;
    let mut notes = Vec::new();
    let mut conflicts = Vec::new();
    let mut events: Vec<(Event, i64, Option<i64>)> = Vec::new();

    // Klarna's captures, then its refunds (a refund needs its capture first).
    let klarna_ops = order
        .captures
        .iter()
        .map(|c| {
            (
                OpKind::Capture,
                &c.capture_id,
                c.captured_amount,
                &c.reference,
            )
        })
        .chain(order.refunds.iter().map(|r| {
            (
                OpKind::Refund,
                &r.refund_id,
                r.refunded_amount,
                &r.reference,
            )
        }));
    for (kind, klarna_id, amount, reference) in klarna_ops {
        if ops
            .iter()
            .any(|o| o.klarna_id.as_deref() == Some(klarna_id))
        {
            continue;
        }
        let (applied, event) = match kind {
            OpKind::Capture => (
                p.capture(now.money(amount)?).map(|(next, _)| next),
                Event::Captured,
            ),
            _ => (p.refund(now.money(amount)?, None), Event::Refunded),
        };
        let fits = applied.is_ok();
        match applied {
            Ok(next) => p = next,
            Err(r) => conflicts.push(format!(
                "Klarna has {} {klarna_id} that our records refuse: {r}",
                kind.as_str()
            )),
        }
        let pending = ops.iter().find(|o| {
            o.kind == kind
                && o.state == OpState::Pending
                && reference.is_some()
                && o.request.get("reference").and_then(|x| x.as_str()) == reference.as_deref()
        });
        let op_id = adopt(
            gw,
            &mut tx,
            &now,
            pending,
            kind,
            amount,
            klarna_id,
            reference.as_deref(),
        )
        .await?;
        match kind {
            OpKind::Capture if fits => captures.push((op_id, 0)),
            OpKind::Refund if fits => refunds_adopted = true,
            _ => {}
        }
        notes.push(format!(
            "{} {klarna_id} of {amount} recorded from Klarna",
            kind.as_str()
        ));
        events.push((event, amount, Some(op_id)));
    }
    // Klarna's fraud decision; a decision on an order already cancelled changes nothing.
    if p.fraud_status() != order.fraud_status {
        let was = p.fraud_status();
        p = p.decide_fraud(order.fraud_status)?;
        notes.push(format!(
            "fraud decision {was:?} → {:?} (Klarna)",
            order.fraud_status
        ));
        if was == FraudStatus::Pending
            && order.fraud_status == FraudStatus::Accepted
            && p.status() != klarna_types::payment::Status::Cancelled
        {
            events.push((Event::Authorized, now.authorized_amount, None));
        }
        if p.status() == klarna_types::payment::Status::Cancelled
            && TxState::from_status(p.status()) != before.state
        {
            events.push((Event::Cancelled, 0, None));
        }
    }
    // An order edited at Klarna (in its portal, or an edit whose answer we lost): while
    // the authorization is open, Klarna's amount is the authorization.
    if state_of(order).is_open()
        && TxState::from_status(p.status()).is_open()
        && order.order_amount != p.authorized().minor()
    {
        match p.update_authorization(now.money(order.order_amount)?) {
            Ok(next) => {
                notes.push(format!(
                    "authorization {} → {} (Klarna: the order was edited)",
                    p.authorized().minor(),
                    order.order_amount
                ));
                events.push((Event::AuthorizationUpdated, order.order_amount, None));
                p = next;
            }
            Err(r) => conflicts.push(format!(
                "Klarna's order amount is {} but our records refuse it: {r}",
                order.order_amount
            )),
        }
    }
    let target = state_of(order);
    if TxState::from_status(p.status()) != target {
        let step = match target {
            TxState::Cancelled => Some(p.cancel()),
            TxState::Expired => Some(p.expire()),
            TxState::Captured if order.order_amount < order.original_order_amount => {
                Some(p.release_remaining())
            }
            _ => None,
        };
        match step {
            Some(Ok(next)) => {
                notes.push(format!(
                    "state {} → {} (Klarna)",
                    TxState::from_status(p.status()).as_str(),
                    target.as_str()
                ));
                events.push((
                    match target {
                        TxState::Cancelled => Event::Cancelled,
                        TxState::Expired => Event::Expired,
                        _ => Event::Released,
                    },
                    0,
                    None,
                ));
                p = next;
            }
            Some(Err(r)) => conflicts.push(format!(
                "Klarna shows {} but our records refuse it: {r}",
                target.as_str()
            )),
            None => conflicts.push(format!(
                "Klarna shows {} and our records {}",
                target.as_str(),
                TxState::from_status(p.status()).as_str()
            )),
        }
    }
    // Klarna's word stands where ours differs.
    now.state = if conflicts.is_empty() {
        TxState::from_status(p.status())
    } else {
        target
    };
    now.fraud_status = Some(order.fraud_status);
    now.captured_amount = order.captured_amount;
    now.refunded_amount = order.refunded_amount;
    now.authorized_amount = p.authorized().minor();
    // Klarna lowers `order_amount` to what was captured when the rest is released; the
    // edits before it are in `authorized_amount`.
    now.released_amount = (now.authorized_amount - order.order_amount).max(0);
    if !conflicts.is_empty() {
        now.attention = Some(conflicts.join("; "));
    } else if !notes.is_empty() {
        now.attention = None;
    }
    let changed = !notes.is_empty() || !conflicts.is_empty();
    if changed {
        gw.db.save_transaction(&mut tx, &now).await?;
        if refunds_adopted {
            // As a refund through us does: later operations start from these figures.
            gw.db
                .save_refunds_by_capture(&mut tx, &captures, &p)
                .await?;
        }
        let mut detail = notes.clone();
        detail.extend(conflicts.iter().map(|c| format!("CONFLICT: {c}")));
        if let Some((id, kind)) = event {
            detail.insert(0, format!("event {id} ({kind})"));
        }
        gw.db
            .audit(
                &mut tx,
                Audit {
                    transaction_id: Some(transaction_id),
                    order_reference: Some(&now.order_reference),
                    actor,
                    action: if event.is_some() {
                        "webhook_applied"
                    } else {
                        "repaired_from_klarna"
                    },
                    before: Some(before.state.as_str()),
                    after: Some(now.state.as_str()),
                    detail: Some(detail.join("; ")),
                },
            )
            .await?;
        for (e, amount, op) in &events {
            odoo_sync::enqueue(
                &gw.db,
                &mut tx,
                &Notification::new(&now, *e, *amount, *op, None),
            )
            .await?;
        }
        if !conflicts.is_empty() {
            odoo_sync::enqueue(
                &gw.db,
                &mut tx,
                &Notification::new(&now, Event::Error, 0, None, now.attention.clone()),
            )
            .await?;
        }
    } else if let Some((id, kind)) = event {
        gw.db
            .audit(
                &mut tx,
                Audit {
                    transaction_id: Some(transaction_id),
                    order_reference: Some(&now.order_reference),
                    actor,
                    action: "webhook_applied",
                    before: Some(before.state.as_str()),
                    after: Some(now.state.as_str()),
                    detail: Some(format!("event {id} ({kind}); nothing to change")),
                },
            )
            .await?;
    }
    if let Some((id, _)) = event {
        gw.db.mark_event_applied(&mut tx, id).await?;
    }
    tx.commit().await?;
    gw.wake_worker();
    let mut all = notes;
    all.extend(conflicts);
    Ok(Applied::Done(all))
}

/// Records a capture or refund Klarna has: completes our pending operation for it, or
/// adds one made outside the gateway.
#[allow(clippy::too_many_arguments)]
async fn adopt(
    gw: &Gateway,
    tx: &mut Tx,
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
                        capture_operation_id: None,
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
