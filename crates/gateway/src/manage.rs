//! Order management: capture, refund, cancel, release the rest, extend, and update the
//! authorization to an order edited before it shipped.
//!
//! Each operation runs the same four steps, and survives a crash between any two:
//! 1. check it against the state machine (counting operations still in flight),
//! 2. persist it with its idempotency key (the intent),
//! 3. call Klarna with that key,
//! 4. persist Klarna's answer, the new state, the audit entry and Odoo's notification.
//!
//! An operation left pending — by a crash, a timeout or an outage — is resumed by the job
//! worker: it first asks Klarna whether the work was done (the capture or refund carries
//! our reference), and otherwise sends it again with the same key, so Klarna never
//! captures or refunds twice. After its last retry it waits in the review queue and the
//! payment is marked as needing attention, in Odoo too.

use klarna_client::{ClientError, IdempotencyKey};
use klarna_types::contract::PaymentFigures;
use klarna_types::klarna::{
    CaptureRequest, OrderLine, OrderStatus, RefundRequest, ShippingInfo, UpdateAuthorization,
    UpdateShippingInfo,
};
use klarna_types::payment::Payment;
use klarna_types::rules::{
    RuleViolation, check_capture, check_refund, check_shipping_info_update,
    check_update_authorization,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::GatewayError;
use crate::jobs::{self, Job, JobError};
use crate::odoo_order::Snapshot;
use crate::odoo_sync;
use crate::odoo_update::{Event, Notification};
use crate::state::Gateway;
use crate::store::audit::{Audit, AuditEntry};
use crate::store::transactions::NewOperation;
use crate::store::{OpKind, OpState, Operation, Transaction, TxState};

/// What to do to a payment.
#[derive(Debug, Clone)]
pub enum Command {
    Capture(CaptureArgs),
    Refund(RefundArgs),
    Cancel,
    Release,
    Extend,
    UpdateAuthorization(EditArgs),
}

/// An order edited before it shipped (a line removed, a quantity changed, a fee added):
/// Klarna's authorization becomes the order as Odoo has it now, mapped as a new order is.
/// The admin API's body is this with [`Expected`].
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct EditArgs {
    /// The order's records as Odoo's `read` gives them, by model (`sale.order`,
    /// `sale.order.line`, …; the fields `klarna_types::odoo_fields::MODEL_FIELDS` names). The
    /// addon sends them from the transaction that edits the order, which Odoo commits only
    /// once Klarna accepted the edit. Without them, the gateway reads the order from Odoo.
    #[schema(value_type = Option<Object>)]
    pub odoo_records: Option<Snapshot>,
    /// What changed, for Klarna's records (at most 255 characters).
    pub description: Option<String>,
}

/// One shipment: an amount (default: all that remains), and its lines and tracking. The
/// admin API's capture body is this with [`Expected`].
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct CaptureArgs {
    /// Minor units; all that remains when absent.
    pub amount: Option<i64>,
    /// The shipment's lines, for Klarna's records (their total is `amount`).
    pub order_lines: Vec<OrderLine>,
    /// How the shipment travels: carrier, tracking number and link.
    pub shipping_info: Vec<ShippingInfo>,
    pub description: Option<String>,
}

/// An amount (default: all refundable), from one capture (the gateway's
/// `capture_operation_id`, as Odoo's refund from a capture's transaction names it, or
/// Klarna's capture id) or from the oldest captures first, optionally by line. The admin
/// API's refund body is this with [`Expected`].
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct RefundArgs {
    /// Minor units; all that is refundable when absent.
    pub amount: Option<i64>,
    /// Klarna's id of the capture to refund from.
    pub capture_id: Option<String>,
    /// The gateway's operation id of the capture to refund from.
    pub capture_operation_id: Option<i64>,
    pub order_lines: Vec<OrderLine>,
    pub description: Option<String>,
}

/// What the caller believes the payment holds (minor units), captures and refunds it
/// asked for and was answered on included. When given, an operation is done only if the
/// gateway's own figures — operations still in flight included — agree; otherwise it is
/// refused with `409 state_changed` and the figures. A retry of one intent after a crash or
/// a rollback on the caller's side then finds the payment changed instead of moving money
/// again, whatever key it carries; a deliberate second capture, asked with the figures
/// that include the first, is done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::Args, utoipa::ToSchema)]
pub struct Expected {
    /// Refuse unless the payment has this much authorized (minor units): an order edit
    /// made from what the caller saw, not from an authorization changed since.
    #[serde(default)]
    #[arg(long)]
    pub expected_authorized: Option<i64>,
    /// Refuse unless the payment has this much captured (minor units; captures in flight
    /// count).
    #[serde(default)]
    #[arg(long)]
    pub expected_captured: Option<i64>,
    /// Refuse unless the payment has this much refunded (minor units; refunds in flight
    /// count).
    #[serde(default)]
    #[arg(long)]
    pub expected_refunded: Option<i64>,
}

impl Expected {
    /// Refuses when `p` (the payment as it will be once what is in flight lands) is not
    /// what the caller expects.
    fn check(&self, t: &Transaction, p: &Payment) -> Result<(), GatewayError> {
        let captured = p.captured().minor();
        let refunded = p.refunded().minor();
        let mut differs = Vec::new();
        let authorized = p.authorized().minor();
        if let Some(expected) = self.expected_authorized
            && expected != authorized
        {
            differs.push(format!(
                "{authorized} authorized, not the {expected} expected"
            ));
        }
        if let Some(expected) = self.expected_captured
            && expected != captured
        {
            differs.push(format!("{captured} captured, not the {expected} expected"));
        }
        if let Some(expected) = self.expected_refunded
            && expected != refunded
        {
            differs.push(format!("{refunded} refunded, not the {expected} expected"));
        }
        if differs.is_empty() {
            return Ok(());
        }
        Err(GatewayError::StateChanged {
            differs: format!("{} {}", t.currency, differs.join(" and ")),
            payment: Box::new(PaymentFigures {
                currency: t.currency.clone(),
                authorized,
                captured,
                refunded,
                captured_in_flight: captured - t.captured_amount,
                refunded_in_flight: refunded - t.refunded_amount,
            }),
        })
    }
}

/// The result of an operation request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OpOutcome {
    pub operation: Operation,
    pub payment: Transaction,
}

/// A payment with everything that happened to it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    pub payment: Transaction,
    pub operations: Vec<Operation>,
    pub timeline: Vec<AuditEntry>,
    /// The saved Klarna this checkout made (its reference, `GET /admin/tokens/{reference}`),
    /// if the shopper saved it.
    pub saved_token: Option<String>,
}

pub async fn view(gw: &Gateway, key: &str) -> Result<PaymentView, GatewayError> {
    let payment = gw
        .db
        .find_transaction(key)
        .await?
        .ok_or_else(|| GatewayError::PaymentNotFound(key.to_owned()))?;
    Ok(PaymentView {
        operations: gw.db.operations(payment.id).await?,
        timeline: gw.db.timeline(payment.id).await?,
        saved_token: gw
            .db
            .token_of_checkout(payment.id)
            .await?
            .map(|t| t.reference),
        payment,
    })
}

/// The payment as it will be once every operation in flight succeeds. Operations that
/// change the whole order (cancel, release, extend) admit nothing beside them.
fn projected(t: &Transaction, ops: &[Operation]) -> Result<Payment, GatewayError> {
    let mut p = t.payment(ops)?;
    for op in ops.iter().filter(|o| o.state == OpState::Pending) {
        p = match op.kind {
            OpKind::Capture => p.capture(t.money(op.amount)?).map(|(p, _)| p).unwrap_or(p),
            OpKind::Refund => p.refund(t.money(op.amount)?, None).unwrap_or(p),
            OpKind::Cancel | OpKind::Release | OpKind::Extend | OpKind::UpdateAuthorization => {
                return Err(GatewayError::OperationInProgress);
            }
        };
    }
    Ok(p)
}

/// Which succeeded capture (by position, as the state machine counts) a Klarna capture id
/// names, and its operation id.
fn capture_position(ops: &[Operation], klarna_capture_id: &str) -> Option<(usize, i64)> {
    ops.iter()
        .filter(|o| o.kind == OpKind::Capture && o.state == OpState::Succeeded)
        .enumerate()
        .find(|(_, o)| o.klarna_id.as_deref() == Some(klarna_capture_id))
        .map(|(i, o)| (i, o.id))
}

/// Which succeeded capture (by position) the gateway's operation `id` is; refused, naming
/// `capture_operation_id`, when it is not a succeeded capture of this payment (`ops`).
fn capture_operation_position(ops: &[Operation], id: i64) -> Result<(usize, i64), GatewayError> {
    let refuse = |why: String| Err(GatewayError::UnknownCaptureOperation(why));
    match ops.iter().find(|o| o.id == id) {
        None => refuse(format!("operation {id} is not one of this payment's")),
        Some(o) if o.kind != OpKind::Capture => refuse(format!(
            "operation {id} is a {}, not a capture",
            o.kind.as_str()
        )),
        Some(o) if o.state != OpState::Succeeded => refuse(format!(
            "capture {id} has not succeeded (it is {})",
            o.state.as_str()
        )),
        Some(_) => ops
            .iter()
            .filter(|o| o.kind == OpKind::Capture && o.state == OpState::Succeeded)
            .position(|o| o.id == id)
            .map(|i| (i, id))
            .ok_or_else(|| GatewayError::Internal(format!("capture {id} found and lost"))),
    }
}

fn op_reference(key: &str) -> String {
    format!("gw-{}", &key[..key.len().min(36)])
}

/// A request Klarna's Order Management would refuse is refused here, before anything is
/// recorded or sent: the first broken rule names the field, the message names them all.
fn klarnas_rules(violations: &[RuleViolation]) -> Result<(), GatewayError> {
    match violations.first() {
        None => Ok(()),
        Some(first) => {
            let more = violations[1..].iter().map(|v| format!("; {v}"));
            Err(GatewayError::invalid(
                first.field.clone(),
                std::iter::once(first.reason.clone())
                    .chain(more)
                    .collect::<String>(),
            ))
        }
    }
}

/// The Klarna request that makes the authorization the order `t` as Odoo has it now:
/// the addon's records of it, or else Odoo's own, mapped exactly as a new order is.
async fn edited_order(
    gw: &Gateway,
    t: &Transaction,
    edit: &EditArgs,
) -> Result<UpdateAuthorization, GatewayError> {
    let body =
        crate::checkout::records_body(gw, &t.order_reference, edit.odoo_records.as_ref()).await?;
    if body.purchase_currency != t.currency {
        return Err(GatewayError::invalid(
            "currency_id",
            format!(
                "the order is in {}, the payment in {}",
                body.purchase_currency, t.currency
            ),
        ));
    }
    Ok(UpdateAuthorization {
        order_amount: body.order_amount,
        description: edit.description.clone(),
        order_lines: body.order_lines,
    })
}

/// Steps 1 and 2: check, then persist the intent (naming it in the admin request's
/// `claim`, when there is one, in the same transaction). Returns the pending operation.
async fn prepare(
    gw: &Gateway,
    key: &str,
    cmd: &Command,
    expected: Expected,
    actor: &str,
    claim: Option<&str>,
) -> Result<Operation, GatewayError> {
    let found = gw
        .db
        .find_transaction(key)
        .await?
        .ok_or_else(|| GatewayError::PaymentNotFound(key.to_owned()))?;
    // Odoo is read before anything is locked.
    let edited = match cmd {
        Command::UpdateAuthorization(edit) => Some(edited_order(gw, &found, edit).await?),
        _ => None,
    };
    let _lock = gw.lock_payment(found.id).await;
    let mut tx = gw.db.begin_write().await?;
    let t = gw.db.lock_transaction(&mut tx, found.id).await?;
    let ops = gw.db.operations_in(&mut tx, t.id).await?;
    let p = projected(&t, &ops)?;
    expected.check(&t, &p)?;
    let idempotency_key = IdempotencyKey::new();
    let reference = op_reference(idempotency_key.as_str());
    let (kind, amount, capture_op, request) = match cmd {
        Command::Capture(CaptureArgs {
            amount,
            order_lines,
            shipping_info,
            description,
        }) => {
            let amount = amount
                .or_else(|| {
                    (!order_lines.is_empty())
                        .then(|| order_lines.iter().map(|l| l.total_amount).sum())
                })
                .unwrap_or_else(|| p.remaining().minor());
            p.capture(t.money(amount)?)?;
            let request = CaptureRequest {
                captured_amount: amount,
                description: description.clone(),
                reference: Some(reference),
                order_lines: order_lines.clone(),
                shipping_info: shipping_info.clone(),
                shipping_delay: None,
            };
            klarnas_rules(&check_capture(&request))?;
            (OpKind::Capture, amount, None, json!(request))
        }
        Command::Refund(RefundArgs {
            amount,
            capture_id,
            capture_operation_id,
            order_lines,
            description,
        }) => {
            let by_klarna = match capture_id {
                Some(id) => Some(capture_position(&ops, id).ok_or_else(|| {
                    GatewayError::invalid(
                        "capture_id",
                        format!("no succeeded capture {id} on this payment"),
                    )
                })?),
                None => None,
            };
            let by_operation = match capture_operation_id {
                Some(id) => Some(capture_operation_position(&ops, *id)?),
                None => None,
            };
            let from = match (by_klarna, by_operation) {
                (Some((_, a)), Some((_, b))) if a != b => {
                    return Err(GatewayError::UnknownCaptureOperation(format!(
                        "capture {b} is not the capture_id's (operation {a})"
                    )));
                }
                (a, b) => a.or(b),
            };
            let refundable = match from {
                Some((i, _)) => p.captures().get(i).map_or(0, |c| c.amount - c.refunded),
                None => p.captured().minor() - p.refunded().minor(),
            };
            let amount = amount
                .or_else(|| {
                    (!order_lines.is_empty())
                        .then(|| order_lines.iter().map(|l| l.total_amount).sum())
                })
                .unwrap_or(refundable);
            p.refund(t.money(amount)?, from.map(|(i, _)| i))?;
            let request = RefundRequest {
                refunded_amount: amount,
                description: description.clone(),
                reference: Some(reference),
                order_lines: order_lines.clone(),
            };
            klarnas_rules(&check_refund(&request))?;
            (
                OpKind::Refund,
                amount,
                from.map(|(_, id)| id),
                json!(request),
            )
        }
        Command::Cancel => {
            p.cancel()?;
            (OpKind::Cancel, 0, None, json!({}))
        }
        Command::Release => {
            let remaining = p.remaining().minor();
            p.release_remaining()?;
            (OpKind::Release, remaining, None, json!({}))
        }
        Command::Extend => {
            p.extend()?;
            (OpKind::Extend, 0, None, json!({}))
        }
        Command::UpdateAuthorization(_) => {
            let request = edited
                .ok_or_else(|| GatewayError::Internal("an order edit without its order".into()))?;
            p.update_authorization(t.money(request.order_amount)?)?;
            klarnas_rules(&check_update_authorization(&request))?;
            (
                OpKind::UpdateAuthorization,
                request.order_amount,
                None,
                json!(request),
            )
        }
    };
    if t.klarna_order_id.is_none() {
        return Err(GatewayError::Refused(
            "the order was never placed at Klarna".into(),
        ));
    }
    let id = gw
        .db
        .insert_operation(
            &mut tx,
            NewOperation {
                transaction_id: t.id,
                kind,
                amount,
                capture_operation_id: capture_op,
                request: &request,
                idempotency_key: idempotency_key.as_str(),
                requested_by: actor,
            },
        )
        .await?;
    if let Some(claim) = claim {
        gw.db.link_request(&mut tx, claim, id).await?;
    }
    gw.db
        .audit(
            &mut tx,
            Audit {
                transaction_id: Some(t.id),
                order_reference: Some(&t.order_reference),
                actor,
                action: &format!("{}_requested", kind.as_str()),
                before: Some(t.state.as_str()),
                after: Some(t.state.as_str()),
                detail: Some(format!("operation {id}, amount {amount} {}", t.currency)),
            },
        )
        .await?;
    tx.commit().await?;
    gw.db
        .operation(id)
        .await?
        .ok_or_else(|| GatewayError::not_found(format!("operation {id}")))
}

/// Runs an operation on a payment (a Klarna order id or an Odoo order reference).
/// `claim` is the admin request's `Idempotency-Key`, already claimed by the caller
/// ([`crate::store::idempotency`]): the operation is recorded under it.
pub async fn run(
    gw: &Gateway,
    key: &str,
    cmd: Command,
    expected: Expected,
    actor: &str,
    claim: Option<&str>,
) -> Result<OpOutcome, GatewayError> {
    let op = prepare(gw, key, &cmd, expected, actor, claim).await?;
    gw.checkpoint("after_intent")?;
    execute(gw, op.id, actor).await?;
    outcome(gw, op.id).await
}

/// What became of shipping info added to a capture.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShippingInfoAdded {
    /// The gateway's operation id of the capture.
    pub capture_operation_id: i64,
    /// Klarna's id of the capture.
    pub klarna_capture_id: String,
    /// False when this very shipping info was added to this capture before: nothing was
    /// sent again.
    pub added: bool,
    pub shipping_info: Vec<ShippingInfo>,
}

/// The audit action that records shipping info added to a capture.
const SHIPPING_INFO_ADDED: &str = "shipping_info_added";

/// Adds shipping info (a tracking number known only after the shipment was captured) to
/// a succeeded capture of the payment `key`.
///
/// The request's content is its idempotency: Klarna gets a key made of the capture and
/// the shipping info, so the same info sent twice — concurrently, or again after a crash
/// between Klarna's answer and our record of it — is appended once (Klarna keeps keys 24
/// hours); after that the payment's timeline, which records each addition with the same
/// digest, answers `added: false` without calling Klarna.
pub async fn add_shipping_info(
    gw: &Gateway,
    key: &str,
    capture_operation_id: i64,
    info: UpdateShippingInfo,
    actor: &str,
) -> Result<ShippingInfoAdded, GatewayError> {
    let t = gw
        .db
        .find_transaction(key)
        .await?
        .ok_or_else(|| GatewayError::PaymentNotFound(key.to_owned()))?;
    let capture = gw
        .db
        .operations(t.id)
        .await?
        .into_iter()
        .find(|o| {
            o.id == capture_operation_id
                && o.kind == OpKind::Capture
                && o.state == OpState::Succeeded
        })
        .and_then(|o| o.klarna_id)
        .ok_or_else(|| {
            GatewayError::UnknownCaptureOperation(format!(
                "{capture_operation_id} is not a succeeded capture of this payment"
            ))
        })?;
    klarnas_rules(&check_shipping_info_update(&info))?;
    let order_id = t.klarna_order_id.clone().ok_or_else(|| {
        GatewayError::Corrupt(format!(
            "payment {} has a capture but no Klarna order",
            t.id
        ))
    })?;
    let digest = crate::store::hash_json(&(&order_id, &capture, &info));
    let done_before = gw.db.timeline(t.id).await?.iter().any(|e| {
        e.action == SHIPPING_INFO_ADDED && e.detail.as_deref().is_some_and(|d| d.contains(&digest))
    });
    let answer = |added| ShippingInfoAdded {
        capture_operation_id,
        klarna_capture_id: capture.clone(),
        added,
        shipping_info: info.shipping_info.clone(),
    };
    if done_before {
        return Ok(answer(false));
    }
    let klarna_key = IdempotencyKey::from_stored(format!("shipping-info-{}", &digest[..32]));
    gw.klarna
        .add_shipping_info(&order_id, &capture, &info, &klarna_key)
        .await?;
    let mut tx = gw.db.begin_write().await?;
    gw.db
        .audit(
            &mut tx,
            Audit {
                transaction_id: Some(t.id),
                order_reference: Some(&t.order_reference),
                actor,
                action: SHIPPING_INFO_ADDED,
                before: Some(t.state.as_str()),
                after: Some(t.state.as_str()),
                detail: Some(format!(
                    "capture operation {capture_operation_id}: {} ({digest})",
                    tracking_summary(&info.shipping_info)
                )),
            },
        )
        .await?;
    tx.commit().await?;
    Ok(answer(true))
}

/// `DHL 00340434161094042557, UPS 1Z…`: what an operator reads in the timeline.
fn tracking_summary(items: &[ShippingInfo]) -> String {
    items
        .iter()
        .map(|i| {
            let company = i.shipping_company.as_deref().unwrap_or("carrier not named");
            match &i.tracking_number {
                Some(number) => format!("{company} {number}"),
                None => company.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where an operation stands, as [`run`] answers it: Klarna's refusal is an error.
pub async fn outcome(gw: &Gateway, op_id: i64) -> Result<OpOutcome, GatewayError> {
    let operation = operation(gw, op_id).await?;
    let payment = gw
        .db
        .transaction(operation.transaction_id)
        .await?
        .ok_or_else(|| GatewayError::Corrupt(format!("operation {op_id} names no payment")))?;
    if operation.state == OpState::Failed {
        return Err(GatewayError::Refused(format!(
            "Klarna refused the {}: {}",
            operation.kind.as_str(),
            operation.error.as_deref().unwrap_or("no reason given")
        )));
    }
    Ok(OpOutcome { operation, payment })
}

async fn operation(gw: &Gateway, op_id: i64) -> Result<Operation, GatewayError> {
    gw.db
        .operation(op_id)
        .await?
        .ok_or_else(|| GatewayError::not_found(format!("operation {op_id}")))
}

/// Steps 3 and 4 for a pending operation. A transient failure leaves it pending with a
/// resume job queued and is not an error here.
async fn execute(gw: &Gateway, op_id: i64, actor: &str) -> Result<(), GatewayError> {
    let op = operation(gw, op_id).await?;
    let call = match call(gw, &op).await {
        Ok(call) => call,
        Err(e) => {
            // Nothing was sent. The worker tries again (a database that failed may be
            // back) and puts the operation in front of a person if it cannot.
            hand_to_worker(gw, op_id).await?;
            return Err(e);
        }
    };
    match send(gw, &call).await {
        Ok(klarna_id) => {
            gw.checkpoint("after_klarna")?;
            persist_success(gw, op_id, klarna_id.as_deref(), actor).await
        }
        Err(e) if e.is_retryable() => {
            gw.db.count_attempt(op_id, &e.to_string()).await?;
            hand_to_worker(gw, op_id).await?;
            tracing::warn!(
                operation = op_id,
                "Klarna unavailable, operation queued for retry: {e}"
            );
            Ok(())
        }
        // The caller is waiting and is told; nothing changed on either side, and nothing
        // needs a person.
        Err(e) if op.kind == OpKind::UpdateAuthorization => {
            fail(gw, op_id, &e.to_string(), actor, Told::Caller).await
        }
        Err(e) => persist_failure(gw, op_id, &e.to_string(), actor).await,
    }
}

/// What an operation sends to Klarna, read back from its stored row.
struct Call {
    order_id: String,
    key: IdempotencyKey,
    request: Request,
}

enum Request {
    Capture(CaptureRequest),
    Refund(RefundRequest),
    Cancel,
    Release,
    Extend,
    UpdateAuthorization(UpdateAuthorization),
}

/// Reads what `op` sends. A row that cannot be read is an error, never a guess: no
/// empty order id, no default request (a zero amount) ever reaches Klarna.
async fn call(gw: &Gateway, op: &Operation) -> Result<Call, GatewayError> {
    let t =
        gw.db.transaction(op.transaction_id).await?.ok_or_else(|| {
            GatewayError::Corrupt(format!("operation {} names no payment", op.id))
        })?;
    let order_id = t.klarna_order_id.ok_or_else(|| {
        GatewayError::Corrupt(format!(
            "operation {} is on payment {}, which was never placed at Klarna",
            op.id, t.id
        ))
    })?;
    let stored = |e: serde_json::Error| {
        GatewayError::Corrupt(format!(
            "operation {}'s stored {} request: {e}",
            op.id,
            op.kind.as_str()
        ))
    };
    let request = match op.kind {
        OpKind::Capture => {
            Request::Capture(serde_json::from_value(op.request.clone()).map_err(stored)?)
        }
        OpKind::Refund => {
            Request::Refund(serde_json::from_value(op.request.clone()).map_err(stored)?)
        }
        OpKind::Cancel => Request::Cancel,
        OpKind::Release => Request::Release,
        OpKind::Extend => Request::Extend,
        OpKind::UpdateAuthorization => Request::UpdateAuthorization(
            serde_json::from_value(op.request.clone()).map_err(stored)?,
        ),
    };
    Ok(Call {
        order_id,
        key: IdempotencyKey::from_stored(op.idempotency_key.clone()),
        request,
    })
}

/// Sends the operation to Klarna with its stored key; returns Klarna's capture/refund id.
async fn send(gw: &Gateway, call: &Call) -> Result<Option<String>, ClientError> {
    let (k, order_id, key) = (&gw.klarna, call.order_id.as_str(), &call.key);
    match &call.request {
        Request::Capture(req) => k.capture(order_id, req, key).await.map(Some),
        Request::Refund(req) => k.refund(order_id, req, key).await.map(Some),
        Request::Cancel => k.cancel_order(order_id, key).await.map(|()| None),
        Request::Release => k
            .release_remaining_authorization(order_id, key)
            .await
            .map(|()| None),
        Request::Extend => k
            .extend_authorization_time(order_id, key)
            .await
            .map(|()| None),
        Request::UpdateAuthorization(req) => k
            .update_authorization(order_id, req, key)
            .await
            .map(|()| None),
    }
}

/// Leaves the operation to the resume job (which retries, and after its last attempt
/// sends it to the review queue and marks the payment for attention).
async fn hand_to_worker(gw: &Gateway, op_id: i64) -> Result<(), GatewayError> {
    jobs::enqueue_now(
        &gw.db,
        &Job::ResumeOperation {
            operation_id: op_id,
        },
        None,
    )
    .await?;
    gw.wake_worker();
    Ok(())
}

/// Step 4: Klarna did it. Idempotent: an operation already recorded stays as it is.
pub async fn persist_success(
    gw: &Gateway,
    op_id: i64,
    klarna_id: Option<&str>,
    actor: &str,
) -> Result<(), GatewayError> {
    let op = operation(gw, op_id).await?;
    let _lock = gw.lock_payment(op.transaction_id).await;
    let mut tx = gw.db.begin_write().await?;
    let mut t = gw.db.lock_transaction(&mut tx, op.transaction_id).await?;
    let ops = gw.db.operations_in(&mut tx, t.id).await?;
    let Some(op) = ops.iter().find(|o| o.id == op_id).cloned() else {
        return Err(GatewayError::not_found(format!("operation {op_id}")));
    };
    if op.state != OpState::Pending {
        return Ok(());
    }
    let before = t.state;
    let p = t.payment(&ops)?;
    let amount = t.money(op.amount)?;
    let next = match op.kind {
        OpKind::Capture => p.capture(amount).map(|(p, _)| p),
        OpKind::Refund => {
            let from = op.capture_operation_id.and_then(|cid| {
                ops.iter()
                    .filter(|o| o.kind == OpKind::Capture && o.state == OpState::Succeeded)
                    .position(|o| o.id == cid)
            });
            p.refund(amount, from)
        }
        OpKind::Cancel => p.cancel(),
        OpKind::Release => p.release_remaining(),
        OpKind::Extend => p.extend(),
        OpKind::UpdateAuthorization => p.update_authorization(amount),
    };
    let (event, event_amount) = match op.kind {
        OpKind::Capture => (Some(Event::Captured), op.amount),
        OpKind::Refund => (Some(Event::Refunded), op.amount),
        OpKind::Cancel => (Some(Event::Cancelled), 0),
        OpKind::Release => (Some(Event::Released), op.amount),
        OpKind::Extend => (None, 0),
        OpKind::UpdateAuthorization => (Some(Event::AuthorizationUpdated), op.amount),
    };
    match next {
        Ok(next) => {
            t.state = TxState::from_status(next.status());
            t.authorized_amount = next.authorized().minor();
            t.captured_amount = next.captured().minor();
            t.refunded_amount = next.refunded().minor();
            t.released_amount = next.released().minor();
            if op.kind == OpKind::Refund {
                let captures: Vec<(i64, i64)> = ops
                    .iter()
                    .filter(|o| o.kind == OpKind::Capture && o.state == OpState::Succeeded)
                    .map(|o| (o.id, o.refunded_amount))
                    .collect();
                gw.db
                    .save_refunds_by_capture(&mut tx, &captures, &next)
                    .await?;
            }
        }
        Err(refusal) => {
            // Klarna did it, but our records say it could not be done: keep Klarna's word
            // and ask a person to look.
            t.attention = Some(format!(
                "Klarna completed {} {op_id}, which our records refused: {refusal}",
                op.kind.as_str()
            ));
        }
    }
    gw.db
        .finish_operation(&mut tx, op_id, OpState::Succeeded, klarna_id, None)
        .await?;
    gw.db.save_transaction(&mut tx, &t).await?;
    gw.db
        .audit(
            &mut tx,
            Audit {
                transaction_id: Some(t.id),
                order_reference: Some(&t.order_reference),
                actor,
                action: &format!("{}_succeeded", op.kind.as_str()),
                before: Some(before.as_str()),
                after: Some(t.state.as_str()),
                detail: Some(format!(
                    "operation {op_id}, amount {} {}{}",
                    op.amount,
                    t.currency,
                    klarna_id
                        .map(|k| format!(", klarna id {k}"))
                        .unwrap_or_default()
                )),
            },
        )
        .await?;
    if let Some(event) = event {
        odoo_sync::enqueue(
            &gw.db,
            &mut tx,
            &Notification::new(&t, event, event_amount, Some(op_id), None)
                .from_capture(op.capture_operation_id),
        )
        .await?;
    }
    tx.commit().await?;
    gw.wake_worker();
    metrics::counter!("gateway_operations_total", "kind" => op.kind.as_str(), "outcome" => "succeeded").increment(1);
    Ok(())
}

/// Klarna refused for good, or the retries ran out: the operation failed, the payment
/// needs a person, and Odoo is told.
pub async fn persist_failure(
    gw: &Gateway,
    op_id: i64,
    reason: &str,
    actor: &str,
) -> Result<(), GatewayError> {
    fail(gw, op_id, reason, actor, Told::Everyone).await
}

/// Who learns that an operation failed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Told {
    /// Only its caller, in the answer: Klarna refused an order edit while its caller
    /// waited, the payment is as it was, and Odoo keeps its order as Klarna has it —
    /// nothing for a person to do.
    Caller,
    /// The payment needs a person, and Odoo shows why.
    Everyone,
}

async fn fail(
    gw: &Gateway,
    op_id: i64,
    reason: &str,
    actor: &str,
    told: Told,
) -> Result<(), GatewayError> {
    let op = operation(gw, op_id).await?;
    let _lock = gw.lock_payment(op.transaction_id).await;
    let mut tx = gw.db.begin_write().await?;
    let mut t = gw.db.lock_transaction(&mut tx, op.transaction_id).await?;
    let message = format!("{} {} failed: {reason}", op.kind.as_str(), op_id);
    gw.db
        .finish_operation(&mut tx, op_id, OpState::Failed, None, Some(reason))
        .await?;
    if told == Told::Everyone {
        t.attention = Some(message.clone());
        gw.db.save_transaction(&mut tx, &t).await?;
    }
    gw.db
        .audit(
            &mut tx,
            Audit {
                transaction_id: Some(t.id),
                order_reference: Some(&t.order_reference),
                actor,
                action: &match told {
                    Told::Everyone => format!("{}_failed", op.kind.as_str()),
                    Told::Caller => format!("{}_refused", op.kind.as_str()),
                },
                before: Some(t.state.as_str()),
                after: Some(t.state.as_str()),
                detail: Some(message.clone()),
            },
        )
        .await?;
    if told == Told::Everyone {
        odoo_sync::enqueue(
            &gw.db,
            &mut tx,
            &Notification::new(&t, Event::Error, op.amount, Some(op_id), Some(message)),
        )
        .await?;
    }
    tx.commit().await?;
    gw.wake_worker();
    metrics::counter!("gateway_operations_total", "kind" => op.kind.as_str(), "outcome" => "failed").increment(1);
    Ok(())
}

/// Finishes a pending operation after a crash, a timeout or an outage (the resume job).
/// `Err` means "not yet": the job retries later.
pub async fn resume(gw: &Gateway, op_id: i64) -> Result<(), JobError> {
    let op = gw
        .db
        .operation(op_id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("no operation {op_id}")))?;
    if op.state != OpState::Pending {
        return Ok(());
    }
    let call = call(gw, &op).await?;
    // Did Klarna already do it? Beyond Klarna's 24 hours of idempotency this is what
    // keeps a second capture from happening.
    let order = gw
        .klarna
        .get_order(&call.order_id)
        .await
        .map_err(|e| JobError::Retryable(e.to_string()))?;
    let reference = op
        .request
        .get("reference")
        .and_then(|r| r.as_str())
        .map(str::to_owned);
    let done = match op.kind {
        OpKind::Capture => order
            .captures
            .iter()
            .find(|c| c.reference.is_some() && c.reference == reference)
            .map(|c| Some(c.capture_id.clone())),
        OpKind::Refund => order
            .refunds
            .iter()
            .find(|r| r.reference.is_some() && r.reference == reference)
            .map(|r| Some(r.refund_id.clone())),
        OpKind::Cancel => (order.status == OrderStatus::Cancelled).then_some(None),
        OpKind::Release => (order.remaining_authorized_amount == 0
            && order.status == OrderStatus::Captured
            && order.captured_amount < order.original_order_amount)
            .then_some(None),
        OpKind::Extend => None,
        // An edit sets the amount (and lines): Klarna having them is Klarna having done it.
        OpKind::UpdateAuthorization => match &call.request {
            Request::UpdateAuthorization(req) => (order.order_amount == req.order_amount
                && (req.order_lines.is_empty() || order.order_lines == req.order_lines))
                .then_some(None),
            _ => None,
        },
    };
    if let Some(klarna_id) = done {
        return Ok(persist_success(gw, op_id, klarna_id.as_deref(), "worker").await?);
    }
    match send(gw, &call).await {
        Ok(klarna_id) => Ok(persist_success(gw, op_id, klarna_id.as_deref(), "worker").await?),
        Err(e) if e.is_retryable() => {
            gw.db.count_attempt(op_id, &e.to_string()).await?;
            Err(JobError::Retryable(e.to_string()))
        }
        Err(e) => Ok(persist_failure(gw, op_id, &e.to_string(), "worker").await?),
    }
}

/// Queues every pending operation for resumption (at start-up, after a crash).
pub async fn recover(gw: &Gateway) -> Result<usize, GatewayError> {
    let pending = gw.db.pending_operations().await?;
    for op in &pending {
        jobs::enqueue_now(
            &gw.db,
            &Job::ResumeOperation {
                operation_id: op.id,
            },
            None,
        )
        .await?;
    }
    if !pending.is_empty() {
        tracing::info!(count = pending.len(), "resuming operations left pending");
        gw.wake_worker();
    }
    Ok(pending.len())
}

/// When a resume job goes to review: the payment needs a person, and Odoo shows it.
pub async fn gave_up(gw: &Gateway, op_id: i64, reason: &str) -> Result<(), GatewayError> {
    persist_failure(
        gw,
        op_id,
        &format!("still failing after every retry: {reason}"),
        "worker",
    )
    .await
}
