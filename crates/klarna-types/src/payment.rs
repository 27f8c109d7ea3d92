//! The payment state machine: a Klarna order as the gateway tracks it, and the operations
//! order management may apply to it.
//!
//! Every operation is a method that takes the current state and returns the next one, or
//! a typed [`Refusal`] — so a refused operation cannot have changed anything, and the
//! amounts can never reach captured > authorized or refunded > captured.

use serde::{Deserialize, Serialize};

use crate::klarna::FraudStatus;
use crate::money::{Currency, Money};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A Klarna session exists; nothing is authorized yet.
    SessionCreated,
    Authorized,
    PartCaptured,
    /// Everything that can be captured has been (the rest may have been released).
    Captured,
    Cancelled,
    /// The authorization ran out before it was (fully) captured.
    Expired,
}

/// One capture (one shipment) and what has been refunded of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capture {
    pub amount: i64,
    pub refunded: i64,
}

/// Index of a capture within its payment, in the order they were made.
pub type CaptureIndex = usize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    currency: Currency,
    status: Status,
    fraud: FraudStatus,
    authorized: i64,
    released: i64,
    captures: Vec<Capture>,
}

/// Why an operation was refused. Nothing changes when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the amount is in {got}, the payment in {expected}")]
    WrongCurrency { expected: Currency, got: Currency },
    #[error("the amount must be more than zero")]
    NotPositive,
    #[error("not allowed while the payment is {0:?}")]
    WrongStatus(Status),
    #[error("Klarna's fraud decision is {0:?}: nothing may be captured until it is ACCEPTED")]
    FraudNotAccepted(FraudStatus),
    #[error("capture of {requested} exceeds the remaining authorization of {remaining}")]
    CaptureExceedsRemaining { requested: i64, remaining: i64 },
    #[error("refund of {requested} exceeds the {refundable} captured and not yet refunded")]
    RefundExceedsCaptured { requested: i64, refundable: i64 },
    #[error("there is no capture number {0}")]
    UnknownCapture(CaptureIndex),
    #[error("the order has captures: it cannot be cancelled, only refunded")]
    CancelAfterCapture,
    #[error("nothing has been captured yet: cancel instead of releasing")]
    ReleaseWithoutCapture,
    #[error("the order is fully captured: there is no remaining authorization")]
    NothingToRelease,
    #[error("the new order amount {requested} is less than the {captured} already captured")]
    AmountBelowCaptured { requested: i64, captured: i64 },
}

impl Payment {
    /// A payment whose Klarna session exists.
    pub fn new(currency: Currency) -> Self {
        Self {
            currency,
            status: Status::SessionCreated,
            fraud: FraudStatus::Pending,
            authorized: 0,
            released: 0,
            captures: Vec::new(),
        }
    }

    /// A payment as it was stored: its status, fraud decision, amounts and captures.
    pub fn restore(
        currency: Currency,
        status: Status,
        fraud: FraudStatus,
        authorized: i64,
        released: i64,
        captures: Vec<Capture>,
    ) -> Self {
        Self {
            currency,
            status,
            fraud,
            authorized,
            released,
            captures,
        }
    }

    pub fn status(&self) -> Status {
        self.status
    }
    pub fn fraud_status(&self) -> FraudStatus {
        self.fraud
    }
    pub fn currency(&self) -> Currency {
        self.currency
    }
    pub fn authorized(&self) -> Money {
        Money::from_minor(self.authorized, self.currency)
    }
    pub fn captured(&self) -> Money {
        Money::from_minor(self.captures.iter().map(|c| c.amount).sum(), self.currency)
    }
    pub fn refunded(&self) -> Money {
        Money::from_minor(
            self.captures.iter().map(|c| c.refunded).sum(),
            self.currency,
        )
    }
    pub fn released(&self) -> Money {
        Money::from_minor(self.released, self.currency)
    }
    pub fn captures(&self) -> &[Capture] {
        &self.captures
    }

    /// What may still be captured.
    pub fn remaining(&self) -> Money {
        Money::from_minor(
            self.authorized - self.released - self.captured().minor(),
            self.currency,
        )
    }

    fn amount(&self, amount: Money) -> Result<i64, Refusal> {
        if amount.currency() != self.currency {
            return Err(Refusal::WrongCurrency {
                expected: self.currency,
                got: amount.currency(),
            });
        }
        if amount.minor() <= 0 {
            return Err(Refusal::NotPositive);
        }
        Ok(amount.minor())
    }

    fn open(&self) -> Result<(), Refusal> {
        match self.status {
            Status::Authorized | Status::PartCaptured => Ok(()),
            other => Err(Refusal::WrongStatus(other)),
        }
    }

    /// Klarna placed the order for `amount`, with its fraud decision.
    pub fn authorize(&self, amount: Money, fraud: FraudStatus) -> Result<Self, Refusal> {
        if self.status != Status::SessionCreated {
            return Err(Refusal::WrongStatus(self.status));
        }
        let amount = self.amount(amount)?;
        Ok(Self {
            status: if fraud == FraudStatus::Rejected {
                Status::Cancelled
            } else {
                Status::Authorized
            },
            fraud,
            authorized: amount,
            ..self.clone()
        })
    }

    /// Klarna's decision on a PENDING order. A rejection cancels an uncaptured order; a
    /// decision on a cancelled order changes nothing (it must not resurrect it).
    pub fn decide_fraud(&self, decision: FraudStatus) -> Result<Self, Refusal> {
        if self.fraud != FraudStatus::Pending || decision == FraudStatus::Pending {
            return Ok(self.clone());
        }
        let mut next = self.clone();
        next.fraud = decision;
        if decision == FraudStatus::Rejected && self.open().is_ok() && self.captures.is_empty() {
            next.status = Status::Cancelled;
        }
        Ok(next)
    }

    /// Captures `amount` (a shipment). Returns the new state and the capture's index.
    pub fn capture(&self, amount: Money) -> Result<(Self, CaptureIndex), Refusal> {
        self.open()?;
        if self.fraud != FraudStatus::Accepted {
            return Err(Refusal::FraudNotAccepted(self.fraud));
        }
        let requested = self.amount(amount)?;
        let remaining = self.remaining().minor();
        if requested > remaining {
            return Err(Refusal::CaptureExceedsRemaining {
                requested,
                remaining,
            });
        }
        let mut next = self.clone();
        next.captures.push(Capture {
            amount: requested,
            refunded: 0,
        });
        next.status = if requested == remaining {
            Status::Captured
        } else {
            Status::PartCaptured
        };
        Ok((next, self.captures.len()))
    }

    /// Refunds `amount`, from one capture or, without one, from the oldest captures first.
    pub fn refund(&self, amount: Money, from: Option<CaptureIndex>) -> Result<Self, Refusal> {
        let requested = self.amount(amount)?;
        let refundable = match from {
            Some(i) => {
                let c = self.captures.get(i).ok_or(Refusal::UnknownCapture(i))?;
                c.amount - c.refunded
            }
            None => self.captured().minor() - self.refunded().minor(),
        };
        if requested > refundable {
            return Err(Refusal::RefundExceedsCaptured {
                requested,
                refundable,
            });
        }
        let mut next = self.clone();
        let mut left = requested;
        for (i, c) in next.captures.iter_mut().enumerate() {
            if from.is_some_and(|f| f != i) {
                continue;
            }
            let take = left.min(c.amount - c.refunded);
            c.refunded += take;
            left -= take;
        }
        Ok(next)
    }

    /// Cancels an order that has no captures.
    pub fn cancel(&self) -> Result<Self, Refusal> {
        self.open()?;
        if !self.captures.is_empty() {
            return Err(Refusal::CancelAfterCapture);
        }
        Ok(Self {
            status: Status::Cancelled,
            ..self.clone()
        })
    }

    /// Gives up the part of the authorization that will not be captured.
    pub fn release_remaining(&self) -> Result<Self, Refusal> {
        self.open()?;
        if self.captures.is_empty() {
            return Err(Refusal::ReleaseWithoutCapture);
        }
        let remaining = self.remaining().minor();
        if remaining == 0 {
            return Err(Refusal::NothingToRelease);
        }
        Ok(Self {
            status: Status::Captured,
            released: self.released + remaining,
            ..self.clone()
        })
    }

    /// Extends the authorization period; only an open authorization can be extended.
    pub fn extend(&self) -> Result<Self, Refusal> {
        self.open()?;
        Ok(self.clone())
    }

    /// The order was edited before it shipped: the authorization becomes `amount` (Klarna
    /// re-checks an increase, and may refuse it). Never below what was captured; an order
    /// edited down to what was captured is fully captured.
    pub fn update_authorization(&self, amount: Money) -> Result<Self, Refusal> {
        self.open()?;
        let requested = self.amount(amount)?;
        let captured = self.captured().minor();
        if requested < captured {
            return Err(Refusal::AmountBelowCaptured {
                requested,
                captured,
            });
        }
        Ok(Self {
            status: match (requested == captured, captured > 0) {
                (true, _) => Status::Captured,
                (false, true) => Status::PartCaptured,
                (false, false) => Status::Authorized,
            },
            authorized: requested,
            ..self.clone()
        })
    }

    /// The authorization ran out: what was not captured can no longer be.
    pub fn expire(&self) -> Result<Self, Refusal> {
        self.open()?;
        Ok(Self {
            status: Status::Expired,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::new("EUR").expect("EUR"))
    }

    fn authorized(amount: i64, fraud: FraudStatus) -> Payment {
        Payment::new(Currency::new("EUR").expect("EUR"))
            .authorize(eur(amount), fraud)
            .expect("authorize")
    }

    #[test]
    fn partial_captures_then_refunds_per_capture() {
        let p = authorized(10_000, FraudStatus::Accepted);
        let (p, first) = p.capture(eur(4_000)).expect("first shipment");
        assert_eq!(p.status(), Status::PartCaptured);
        assert_eq!(
            p.capture(eur(6_001)).map(|_| ()),
            Err(Refusal::CaptureExceedsRemaining {
                requested: 6_001,
                remaining: 6_000
            })
        );
        let (p, second) = p.capture(eur(6_000)).expect("second shipment");
        assert_eq!(p.status(), Status::Captured);
        assert_eq!(
            p.capture(eur(1)).map(|_| ()),
            Err(Refusal::WrongStatus(Status::Captured))
        );
        let p = p.refund(eur(4_000), Some(first)).expect("refund first");
        assert_eq!(
            p.refund(eur(1), Some(first)),
            Err(Refusal::RefundExceedsCaptured {
                requested: 1,
                refundable: 0
            })
        );
        let p = p.refund(eur(6_000), Some(second)).expect("refund second");
        assert_eq!(p.refunded(), eur(10_000));
        assert_eq!(
            p.refund(eur(1), None).map(|_| ()),
            Err(Refusal::RefundExceedsCaptured {
                requested: 1,
                refundable: 0
            })
        );
    }

    #[test]
    fn cancel_only_before_capture_and_release_only_after() {
        let p = authorized(5_000, FraudStatus::Accepted);
        assert_eq!(p.release_remaining(), Err(Refusal::ReleaseWithoutCapture));
        let (captured, _) = p.capture(eur(1_000)).expect("capture");
        assert_eq!(captured.cancel(), Err(Refusal::CancelAfterCapture));
        let released = captured.release_remaining().expect("release");
        assert_eq!(released.status(), Status::Captured);
        assert_eq!(released.remaining(), eur(0));
        assert_eq!(p.cancel().map(|c| c.status()), Ok(Status::Cancelled));
    }

    #[test]
    fn fraud_gates_capture_and_a_late_decision_never_resurrects() {
        let pending = authorized(5_000, FraudStatus::Pending);
        assert_eq!(
            pending.capture(eur(100)).map(|_| ()),
            Err(Refusal::FraudNotAccepted(FraudStatus::Pending))
        );
        let rejected = pending.decide_fraud(FraudStatus::Rejected).expect("decide");
        assert_eq!(rejected.status(), Status::Cancelled);
        // WooCommerce KP issue 30: a notification for an order cancelled meanwhile.
        let cancelled = pending.cancel().expect("cancel");
        let late = cancelled
            .decide_fraud(FraudStatus::Accepted)
            .expect("decide");
        assert_eq!(late.status(), Status::Cancelled);
        assert!(late.capture(eur(1)).is_err());
    }

    #[test]
    fn an_edited_order_is_never_authorized_below_what_was_captured() {
        let p = authorized(10_000, FraudStatus::Accepted);
        let lower = p.update_authorization(eur(8_000)).expect("lower");
        assert_eq!(
            (lower.authorized(), lower.status()),
            (eur(8_000), Status::Authorized)
        );
        let (part, _) = lower.capture(eur(3_000)).expect("capture");
        assert_eq!(
            part.update_authorization(eur(2_999)),
            Err(Refusal::AmountBelowCaptured {
                requested: 2_999,
                captured: 3_000
            })
        );
        let more = part.update_authorization(eur(9_000)).expect("higher");
        assert_eq!(
            (more.remaining(), more.status()),
            (eur(6_000), Status::PartCaptured)
        );
        // Edited down to what shipped: nothing is left to capture.
        let done = part.update_authorization(eur(3_000)).expect("to captured");
        assert_eq!(
            (done.remaining(), done.status()),
            (eur(0), Status::Captured)
        );
        assert_eq!(
            done.update_authorization(eur(4_000)),
            Err(Refusal::WrongStatus(Status::Captured))
        );
        let cancelled = p.cancel().expect("cancel");
        assert_eq!(
            cancelled.update_authorization(eur(1_000)),
            Err(Refusal::WrongStatus(Status::Cancelled))
        );
        assert_eq!(p.update_authorization(eur(0)), Err(Refusal::NotPositive));
    }

    #[test]
    fn amounts_must_be_positive_and_in_the_payments_currency() {
        let p = authorized(5_000, FraudStatus::Accepted);
        assert_eq!(p.capture(eur(0)).map(|_| ()), Err(Refusal::NotPositive));
        let sek = Money::from_minor(100, Currency::new("SEK").expect("SEK"));
        assert!(matches!(p.capture(sek), Err(Refusal::WrongCurrency { .. })));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Capture(i64),
        Refund(i64, Option<usize>),
        Cancel,
        Release,
        Extend,
        Expire,
        Fraud(FraudStatus),
        Update(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let fraud = prop_oneof![
            Just(FraudStatus::Accepted),
            Just(FraudStatus::Pending),
            Just(FraudStatus::Rejected)
        ];
        prop_oneof![
            4 => (-10i64..6_000).prop_map(Op::Capture),
            3 => ((-10i64..6_000), proptest::option::of(0usize..4)).prop_map(|(a, c)| Op::Refund(a, c)),
            1 => Just(Op::Cancel),
            1 => Just(Op::Release),
            1 => Just(Op::Extend),
            1 => Just(Op::Expire),
            1 => fraud.prop_map(Op::Fraud),
            2 => (-10i64..12_000).prop_map(Op::Update),
        ]
    }

    fn apply(p: &Payment, op: &Op) -> Result<Payment, Refusal> {
        match op {
            Op::Capture(a) => p.capture(eur(*a)).map(|(p, _)| p),
            Op::Refund(a, c) => p.refund(eur(*a), *c),
            Op::Cancel => p.cancel(),
            Op::Release => p.release_remaining(),
            Op::Extend => p.extend(),
            Op::Expire => p.expire(),
            Op::Fraud(f) => p.decide_fraud(*f),
            Op::Update(a) => p.update_authorization(eur(*a)),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn amounts_never_exceed_what_came_before(
            amount in 1i64..20_000,
            fraud in prop_oneof![Just(FraudStatus::Accepted), Just(FraudStatus::Pending)],
            ops in proptest::collection::vec(op(), 0..40),
        ) {
            let mut p = authorized(amount, fraud);
            for op in &ops {
                // Operations take `&self` and return the next state, so a refusal leaves
                // `p` as it was; what is checked here is that each refusal is justified
                // and that a legal capture is never refused.
                let open = matches!(p.status(), Status::Authorized | Status::PartCaptured);
                match apply(&p, op) {
                    Ok(next) => p = next,
                    Err(Refusal::CaptureExceedsRemaining { requested, remaining }) => {
                        prop_assert_eq!(remaining, p.remaining().minor());
                        prop_assert!(requested > remaining);
                    }
                    Err(Refusal::RefundExceedsCaptured { requested, refundable }) => {
                        prop_assert!(requested > refundable);
                    }
                    Err(Refusal::WrongStatus(s)) => prop_assert_eq!(s, p.status()),
                    Err(Refusal::FraudNotAccepted(f)) => {
                        prop_assert_eq!(f, p.fraud_status());
                        prop_assert_ne!(f, FraudStatus::Accepted);
                    }
                    Err(Refusal::CancelAfterCapture) => prop_assert!(!p.captures().is_empty()),
                    Err(Refusal::NotPositive) => prop_assert!(matches!(op, Op::Capture(a) | Op::Refund(a, _) | Op::Update(a) if *a <= 0)),
                    Err(Refusal::AmountBelowCaptured { requested, captured }) => {
                        prop_assert_eq!(captured, p.captured().minor());
                        prop_assert!(requested < captured);
                    }
                    Err(other) => {
                        if let Op::Capture(a) = op {
                            prop_assert!(
                                !(open && p.fraud_status() == FraudStatus::Accepted && *a > 0 && *a <= p.remaining().minor()),
                                "a legal capture was refused: {other}"
                            );
                        }
                    }
                }
                let captured = p.captured().minor();
                prop_assert!(captured + p.released().minor() <= p.authorized().minor());
                prop_assert!(p.refunded().minor() <= captured);
                for c in p.captures() {
                    prop_assert!(c.refunded <= c.amount && c.amount > 0);
                }
                if p.status() == Status::Cancelled {
                    prop_assert!(p.captures().is_empty());
                }
                if !p.captures().is_empty() {
                    prop_assert_eq!(p.fraud_status(), FraudStatus::Accepted);
                }
            }
        }
    }
}
