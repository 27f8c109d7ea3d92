//! The checkout component: start-up (SDK and session in parallel), the payment method
//! categories, the Pay button, and every outcome shown in words.

use std::rc::Rc;

use futures::future::{Either, join, select};
use gloo_timers::future::TimeoutFuture;
use klarna_types::contract::{AuthorizeResponse, SessionResponse};
use klarna_types::klarna::PaymentMethodCategory;
use leptos::html::Div;
use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::json;
use web_sys::HtmlElement;

use crate::config::WidgetConfig;
use crate::error::WidgetError;
use crate::events;
use crate::{api, sdk};

/// Where the checkout stands; the view is a function of this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Loading,
    Ready,
    Authorizing,
    Placing,
    Authorized {
        klarna_order_id: String,
    },
    Declined(String),
    /// Klarna will not offer this category for this purchase (`show_form: false`).
    Unavailable,
    Failed(String),
}

async fn with_timeout<T>(
    ms: u32,
    fut: impl std::future::Future<Output = Result<T, WidgetError>>,
) -> Result<T, WidgetError> {
    match select(std::pin::pin!(fut), TimeoutFuture::new(ms)).await {
        Either::Left((result, _)) => result,
        Either::Right(((), _)) => Err(WidgetError::Timeout),
    }
}

#[derive(Clone)]
struct Ctx {
    cfg: Rc<WidgetConfig>,
    host: HtmlElement,
    phase: RwSignal<Phase, LocalStorage>,
    session: RwSignal<Option<SessionResponse>, LocalStorage>,
    category: RwSignal<Option<String>, LocalStorage>,
    container: NodeRef<Div>,
}

impl Ctx {
    fn fail(&self, error: &WidgetError) {
        self.phase.set(Phase::Failed(error.to_string()));
        events::dispatch(
            &self.host,
            events::ERROR,
            &json!({"message": error.to_string()}),
        );
    }

    /// Starts the SDK script and the session request together; `init` waits for both.
    fn start(&self) {
        let ctx = self.clone();
        self.phase.set(Phase::Loading);
        spawn_local(async move {
            let t = ctx.cfg.timeout_ms;
            let (script, session) = join(
                with_timeout(t, sdk::ensure_loaded(&ctx.cfg.sdk_url)),
                with_timeout(t, api::create_session(&ctx.cfg)),
            )
            .await;
            let session = match script.and(session) {
                Ok(s) => s,
                Err(e) => return ctx.fail(&e),
            };
            if let Err(e) = sdk::init(&session.client_token) {
                return ctx.fail(&e);
            }
            let first = session
                .payment_method_categories
                .first()
                .map(|c| c.identifier.clone());
            ctx.session.set(Some(session));
            match first {
                Some(category) => ctx.load(category).await,
                None => ctx.phase.set(Phase::Unavailable),
            }
        });
    }

    async fn load(&self, category: String) {
        self.category.set(Some(category.clone()));
        self.phase.set(Phase::Loading);
        let Some(container) = self.container.get_untracked() else {
            return;
        };
        match sdk::load(&container, &category).await {
            Ok(r) if r.show_form => {
                self.phase.set(Phase::Ready);
                events::dispatch(&self.host, events::READY, &json!({"category": category}));
            }
            Ok(_) => self.phase.set(Phase::Unavailable),
            Err(e) => self.fail(&e),
        }
    }

    /// The Pay button. A click while anything is in flight is ignored, so a double
    /// click authorizes once.
    fn pay(&self) {
        if self.phase.get_untracked() != Phase::Ready {
            return;
        }
        let (Some(session), Some(category)) =
            (self.session.get_untracked(), self.category.get_untracked())
        else {
            return;
        };
        self.phase.set(Phase::Authorizing);
        let ctx = self.clone();
        spawn_local(async move {
            let result = match sdk::authorize(&category).await {
                Ok(r) => r,
                Err(e) => return ctx.fail(&e),
            };
            match (result.approved, result.authorization_token) {
                (true, Some(token)) => ctx.place(&session.session_id, &token).await,
                _ if !result.show_form => {
                    ctx.phase.set(Phase::Unavailable);
                    events::dispatch(
                        &ctx.host,
                        events::DECLINED,
                        &json!({"reason": "not_offered"}),
                    );
                }
                // The shopper closed Klarna's dialog or must fix something: try again.
                _ => ctx.phase.set(Phase::Ready),
            }
        });
    }

    async fn place(&self, session_id: &str, token: &str) {
        self.phase.set(Phase::Placing);
        match api::authorize(&self.cfg, session_id, token).await {
            Ok(AuthorizeResponse::Authorized {
                order_reference,
                klarna_order_id,
                fraud_status,
            }) => {
                self.phase.set(Phase::Authorized {
                    klarna_order_id: klarna_order_id.clone(),
                });
                events::dispatch(
                    &self.host,
                    events::AUTHORIZED,
                    &json!({
                        "order_reference": order_reference,
                        "klarna_order_id": klarna_order_id,
                        "fraud_status": fraud_status,
                    }),
                );
            }
            Ok(AuthorizeResponse::Declined { reason }) => {
                self.phase.set(Phase::Declined(reason.clone()));
                events::dispatch(&self.host, events::DECLINED, &json!({"reason": reason}));
            }
            Err(e) => self.fail(&e),
        }
    }
}

fn status_text(phase: &Phase) -> String {
    match phase {
        Phase::Loading => "Loading Klarna…".into(),
        Phase::Ready => String::new(),
        Phase::Authorizing => "Waiting for Klarna…".into(),
        Phase::Placing => "Confirming your payment…".into(),
        Phase::Authorized { .. } => "Thank you! Your payment with Klarna is confirmed.".into(),
        Phase::Declined(_) => {
            "Klarna could not approve this purchase. Please choose another payment method.".into()
        }
        Phase::Unavailable => {
            "Klarna is not available for this purchase. Please choose another payment method."
                .into()
        }
        Phase::Failed(message) => format!("Something went wrong: {message}."),
    }
}

#[component]
fn CategoryOption(category: PaymentMethodCategory, selected: Signal<bool>) -> impl IntoView {
    let icon = category.asset_urls.standard.clone().unwrap_or_default();
    view! {
        <span class="kw-category" class:kw-selected=selected>
            <img class="kw-icon" src=icon alt="" width="48" height="24" />
            <span class="kw-name">{category.name}</span>
        </span>
    }
}

/// The whole widget, mounted inside `host`.
#[component]
pub fn Checkout(cfg: WidgetConfig, host: HtmlElement) -> impl IntoView {
    let ctx = Ctx {
        cfg: Rc::new(cfg),
        host,
        phase: RwSignal::new_local(Phase::Loading),
        session: RwSignal::new_local(None),
        category: RwSignal::new_local(None),
        container: NodeRef::new(),
    };
    let phase = ctx.phase;
    let session = ctx.session;
    let categories = move || {
        session
            .get()
            .map(|s| s.payment_method_categories)
            .unwrap_or_default()
    };
    let selected = ctx.category;
    let busy = move || !matches!(phase.get(), Phase::Ready);
    let finished = move || matches!(phase.get(), Phase::Authorized { .. });
    let container = ctx.container;
    ctx.start();
    // Handlers inside `Show` must be Send; the context (DOM handles) lives in the arena.
    let stored = StoredValue::new_local(ctx);
    let pay = move |_| stored.with_value(Ctx::pay);
    let retry = move |_| stored.with_value(Ctx::start);

    view! {
        <div class="kw" data-phase=move || format!("{:?}", phase.get()).split(['(', ' ']).next().unwrap_or("").to_lowercase()>
            <Show when=move || phase.get() == Phase::Loading && selected.get().is_none()>
                <div class="kw-skeleton" aria-hidden="true"><div></div><div></div></div>
            </Show>
            <div class="kw-categories">
                <For each=categories key=|c| c.identifier.clone() let:category>
                    {
                        let id = category.identifier.clone();
                        let is_selected = Signal::derive(move || selected.get().as_deref() == Some(id.as_str()));
                        view! { <CategoryOption category=category selected=is_selected /> }
                    }
                </For>
            </div>
            <div class="kw-container" node_ref=container hidden=finished></div>
            <Show when=move || !finished()>
                <button type="button" class="kw-pay" disabled=busy on:click=pay>
                    "Pay with Klarna"
                </button>
            </Show>
            <p class="kw-status" role="status" aria-live="polite">{move || status_text(&phase.get())}</p>
            <Show when=move || matches!(phase.get(), Phase::Failed(_))>
                <button type="button" class="kw-retry" on:click=retry>"Try again"</button>
            </Show>
        </div>
    }
}
