//! A property of all money movement: whatever a caller does — captures, refunds and
//! cancels, retried with the same key or (after its side rolled back) with a new one,
//! several at once, with the gateway crashing mid-way and restarting — the payment never
//! holds more captured than authorized or more refunded than captured, and Klarna's
//! figures are ours. On SQLite (the concurrency and crash tests run on both databases).

mod common;

use std::collections::HashMap;

use common::{ORDER, TOKEN, sqlite, system};
use klarna_gateway::manage;
use klarna_gateway::store::{OpKind, OpState};
use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What the caller (Odoo) asks for.
#[derive(Debug, Clone, Copy)]
enum Ask {
    Capture(i64),
    Refund(i64),
    Cancel,
}

/// One thing that happens.
#[derive(Debug, Clone)]
enum Step {
    /// A new request, with the caller's current beliefs.
    Ask(Ask),
    /// The same, twice at once with one key (a double click).
    Twice(Ask),
    /// A new request during which the gateway dies (after recording it, or after
    /// Klarna did it) and restarts; the caller's side rolls back and forgets it.
    Crash(Ask, &'static str),
    /// The request before, sent again under its key.
    RetrySameKey,
    /// The request before, sent again under a new key with the beliefs it had then.
    RetryNewKey,
}

fn ask() -> impl Strategy<Value = Ask> {
    prop_oneof![
        4 => (1i64..=40_000).prop_map(Ask::Capture),
        3 => (1i64..=30_000).prop_map(Ask::Refund),
        1 => Just(Ask::Cancel),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => ask().prop_map(Step::Ask),
        1 => ask().prop_map(Step::Twice),
        2 => (ask(), prop_oneof![Just("after_intent"), Just("after_klarna")])
            .prop_map(|(a, at)| Step::Crash(a, at)),
        1 => Just(Step::RetrySameKey),
        2 => Just(Step::RetryNewKey),
    ]
}

/// A request as sent: its path, key and body.
#[derive(Debug, Clone)]
struct Sent {
    path: String,
    key: String,
    body: Value,
}

/// The caller: what it believes the payment holds, from the answers it got.
struct Caller {
    order_id: String,
    captured: i64,
    refunded: i64,
    keys: usize,
    last: Option<Sent>,
    /// Captures and refunds the merchant meant, however often each was sent.
    intents: HashMap<&'static str, usize>,
}

impl Caller {
    fn request(&mut self, ask: Ask) -> Sent {
        self.keys += 1;
        let expected =
            json!({"expected_captured": self.captured, "expected_refunded": self.refunded});
        let (path, mut body) = match ask {
            Ask::Capture(amount) => ("captures", json!({"amount": amount})),
            Ask::Refund(amount) => ("refunds", json!({"amount": amount})),
            Ask::Cancel => ("cancel", json!({})),
        };
        *self.intents.entry(path).or_default() += 1;
        if let (Value::Object(b), Value::Object(e)) = (&mut body, expected) {
            b.extend(e);
        }
        Sent {
            path: format!("/admin/payments/{}/{path}", self.order_id),
            key: format!("odoo-{}", self.keys),
            body,
        }
    }

    /// Learns from an answer what Odoo would: a capture or refund the gateway accepted.
    fn learn(&mut self, status: StatusCode, answer: &Value) {
        if !matches!(status, StatusCode::OK | StatusCode::ACCEPTED) {
            return;
        }
        let amount = answer["operation"]["amount"].as_i64().unwrap_or(0);
        match answer["operation"]["kind"].as_str() {
            Some("capture") => self.captured += amount,
            Some("refund") => self.refunded += amount,
            _ => {}
        }
    }
}

async fn send(s: &common::System, sent: &Sent) -> (StatusCode, Value) {
    s.admin_keyed(&sent.path, &sent.key, &sent.body).await
}

/// The invariants, checked once the system is at rest.
async fn holds(s: &common::System, caller: &Caller, steps: &[Step]) {
    let order_id = caller.order_id.as_str();
    s.settle().await;
    let (t, ops) = s.payment(order_id).await;
    let klarna = s.sandbox.state().orders[order_id].order.clone();
    assert!(
        t.captured_amount <= t.authorized_amount,
        "captured {} > authorized {} after {steps:?}",
        t.captured_amount,
        t.authorized_amount
    );
    assert!(
        t.refunded_amount <= t.captured_amount,
        "refunded {} > captured {} after {steps:?}",
        t.refunded_amount,
        t.captured_amount
    );
    assert_eq!(
        (klarna.captured_amount, klarna.refunded_amount),
        (t.captured_amount, t.refunded_amount),
        "Klarna's figures against ours after {steps:?}"
    );
    let succeeded = |kind| {
        ops.iter()
            .filter(|o| o.kind == kind && o.state == OpState::Succeeded)
            .count()
    };
    assert_eq!(
        (klarna.captures.len(), klarna.refunds.len()),
        (succeeded(OpKind::Capture), succeeded(OpKind::Refund)),
        "one Klarna capture or refund per operation after {steps:?}"
    );
    // However a request was retried, one intent moves money once.
    let meant = |path| caller.intents.get(path).copied().unwrap_or(0);
    assert!(
        succeeded(OpKind::Capture) <= meant("captures")
            && succeeded(OpKind::Refund) <= meant("refunds"),
        "{} captures and {} refunds for {:?} meant, after {steps:?}",
        succeeded(OpKind::Capture),
        succeeded(OpKind::Refund),
        caller.intents
    );
    let pending = ops.iter().filter(|o| o.state == OpState::Pending).count();
    assert_eq!(pending, 0, "nothing left pending after {steps:?}");
}

async fn run(steps: Vec<Step>) {
    let db = sqlite();
    let s = system(&db).await;
    let order_id = s.paid(ORDER, TOKEN).await;
    s.settle().await;
    let mut caller = Caller {
        order_id: order_id.clone(),
        captured: 0,
        refunded: 0,
        keys: 0,
        last: None,
        intents: HashMap::new(),
    };
    // The first answer to each key the caller kept.
    let mut answers: HashMap<String, (StatusCode, Value)> = HashMap::new();
    for step in &steps {
        match step {
            Step::Ask(ask) => {
                let sent = caller.request(*ask);
                let (status, answer) = send(&s, &sent).await;
                caller.learn(status, &answer);
                answers.insert(sent.key.clone(), (status, answer));
                caller.last = Some(sent);
            }
            Step::Twice(ask) => {
                let sent = caller.request(*ask);
                let (a, b) = tokio::join!(send(&s, &sent), send(&s, &sent));
                assert_eq!(a, b, "one key, one answer: {sent:?}");
                caller.learn(a.0, &a.1);
                answers.insert(sent.key.clone(), a);
                caller.last = Some(sent);
            }
            Step::Crash(ask, at) => {
                let sent = caller.request(*ask);
                s.gw().crash_at(at);
                // The caller sees no answer it keeps: its side rolls back and forgets.
                let _ = send(&s, &sent).await;
                // A request refused before the step never reached it.
                s.gw().clear_crash();
                manage::recover(s.gw()).await.expect("restart");
                caller.last = Some(sent);
            }
            Step::RetrySameKey => {
                if let Some(sent) = caller.last.clone() {
                    let (status, answer) = send(&s, &sent).await;
                    if let Some(first) = answers.get(&sent.key)
                        && !first.0.is_server_error()
                    {
                        assert_eq!(
                            &(status, answer.clone()),
                            first,
                            "a repeat gets the first answer"
                        );
                    } else {
                        caller.learn(status, &answer);
                        answers.insert(sent.key.clone(), (status, answer));
                    }
                }
            }
            Step::RetryNewKey => {
                if let Some(mut sent) = caller.last.clone() {
                    caller.keys += 1;
                    sent.key = format!("odoo-{}", caller.keys);
                    let (status, answer) = send(&s, &sent).await;
                    caller.learn(status, &answer);
                    answers.insert(sent.key.clone(), (status, answer));
                    caller.last = Some(sent);
                }
            }
        }
        holds(&s, &caller, &steps).await;
    }
    s.shutdown().await;
    db.cleanup().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn money_never_moves_twice_nor_beyond_the_authorization(
        steps in proptest::collection::vec(step(), 1..7)
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(run(steps));
    }
}
