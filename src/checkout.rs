//! The checkout: start-up (SDK and session in parallel, bounded by a timeout), one Klarna
//! container per payment method category, authorize and every outcome Klarna's SDK can
//! give, the two-step finalize, cart updates, and the modal dialog — all driven by
//! [`Ctx`], whose signals the view renders.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use klarna_types::contract::{AuthorizeResponse, ErrorCode, SessionResponse};
use klarna_types::klarna::FraudStatus;
use leptos::html::{Button, Div};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use web_sys::{AbortController, Element, HtmlElement, KeyboardEvent};

use crate::config::{Mode, Options, WidgetConfig};
use crate::error::WidgetError;
use crate::events::Val;
use crate::i18n::{Lang, Text, invalid_fields, t};
use crate::{api, events, sdk, task};

/// Where the checkout stands; the view is a function of this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Loading,
    Ready,
    Authorizing,
    /// Klarna approved with `finalize_required`: the shopper confirms, then `finalize`.
    Confirm,
    Placing,
    Authorized {
        pending: bool,
    },
    Declined,
    /// Klarna offers none of the categories for this purchase.
    Unavailable,
    Failed(Text),
}

impl Phase {
    /// The `data-phase` attribute (for styling, tests and the host page).
    pub fn name(self) -> &'static str {
        match self {
            Self::Loading => "loading",
            Self::Ready => "ready",
            Self::Authorizing => "authorizing",
            Self::Confirm => "confirm",
            Self::Placing => "placing",
            Self::Authorized { .. } => "authorized",
            Self::Declined => "declined",
            Self::Unavailable => "unavailable",
            Self::Failed(_) => "failed",
        }
    }

    fn busy(self) -> bool {
        matches!(self, Self::Authorizing | Self::Placing | Self::Confirm)
    }

    fn done(self) -> bool {
        matches!(self, Self::Authorized { .. } | Self::Declined)
    }
}

/// What a shopper is told about an error; the developer's details go into `klarna:error`.
fn error_text(e: &WidgetError) -> Text {
    match e {
        WidgetError::SdkLoad => Text::ErrorSdkLoad,
        WidgetError::Timeout => Text::ErrorTimeout,
        WidgetError::Network => Text::ErrorNetwork,
        WidgetError::Gateway(error) => match e.gateway_code() {
            Some(ErrorCode::OrderNotPayable) => not_payable(&error.fields),
            Some(ErrorCode::OrderNotFound | ErrorCode::InvalidRequest) => Text::ErrorOrder,
            Some(ErrorCode::AuthorizationExpired) => Text::ErrorExpired,
            Some(
                ErrorCode::KlarnaUnavailable | ErrorCode::OdooUnavailable | ErrorCode::RateLimited,
            ) => Text::ErrorNetwork,
            // A code this build does not know (a newer gateway) reads as generic too.
            _ => Text::ErrorGeneric,
        },
        WidgetError::MissingSetting(_) | WidgetError::Sdk { .. } | WidgetError::Answer(_) => {
            Text::ErrorGeneric
        }
    }
}

/// Why Klarna cannot take the order, from the fields the gateway names: a currency and
/// country Klarna does not pair (another payment method), or the order itself (the shop;
/// an address to correct is named in the notice, [`Ctx::fail`]).
fn not_payable(fields: &[String]) -> Text {
    let market = ["purchase_country", "purchase_currency", "locale"];
    if fields.iter().any(|f| market.contains(&f.as_str())) {
        Text::ErrorMarket
    } else {
        Text::ErrorOrder
    }
}

/// Whether a field at fault is one of the shopper's own details.
fn is_address(field: &str) -> bool {
    ["billing_address.", "shipping_address.", "customer."]
        .iter()
        .any(|p| field.starts_with(p))
}

/// Whether trying again can help: not when the order itself is what Klarna refuses.
fn retryable(text: Text) -> bool {
    !matches!(text, Text::ErrorOrder | Text::ErrorMarket)
}

fn error_code(e: &WidgetError) -> &str {
    match e {
        WidgetError::MissingSetting(_) => "missing_setting",
        WidgetError::SdkLoad => "sdk_load_failed",
        WidgetError::Timeout => "timeout",
        WidgetError::Sdk { name, .. } => name,
        WidgetError::Network => "network",
        WidgetError::Answer(_) => "bad_answer",
        WidgetError::Gateway(error) => &error.code,
    }
}

/// A User Timing mark — `klarna:mount`, `klarna:started` (script and session both
/// there), `klarna:load` (Klarna's `load()` called), `klarna:ready` — for the host's
/// monitoring and the time-to-ready benchmark.
pub fn mark(name: &str) {
    if let Some(p) = web_sys::window().and_then(|w| w.performance()) {
        let _ = p.mark(name);
    }
}

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// Lets the view catch up with the signals just set (new containers in the DOM).
async fn next_tick() {
    task::sleep(0).await;
}

const FOCUSABLE: &str = "button:not([disabled]), input:not([disabled]), iframe, a[href], [tabindex]:not([tabindex=\"-1\"])";

thread_local! {
    static NEXT_ID: Cell<u32> = const { Cell::new(0) };
}

/// One mounted widget: its settings, its state, and the DOM it drives.
pub struct Ctx {
    /// Options given to `mount`/`update` (the data attributes are read anew each time).
    pub options: RefCell<Options>,
    cfg: RefCell<WidgetConfig>,
    pub host: HtmlElement,
    id: u32,
    lang: RwSignal<Lang, LocalStorage>,
    mode: RwSignal<Mode, LocalStorage>,
    phase: RwSignal<Phase, LocalStorage>,
    /// A message beside the phase: which fields to fix, a category not offered, the cart
    /// changed.
    notice: RwSignal<Option<String>, LocalStorage>,
    session: RwSignal<Option<SessionResponse>, LocalStorage>,
    selected: RwSignal<Option<String>, LocalStorage>,
    loaded: RwSignal<Vec<String>, LocalStorage>,
    unavailable: RwSignal<Vec<String>, LocalStorage>,
    open: RwSignal<bool, LocalStorage>,
    root: NodeRef<Div>,
    dialog: NodeRef<Div>,
    trigger: NodeRef<Button>,
    /// Bumped by every (re)start and cart update: work begun under an older value (an
    /// authorization for the old cart) is dropped, never posted.
    generation: Cell<u32>,
    /// Aborts the session request in flight when a restart supersedes it or it times out.
    in_flight: RefCell<Option<AbortController>>,
    alive: Cell<bool>,
    mounted_at: Cell<f64>,
    inert: RefCell<Vec<Element>>,
    /// What had focus when the dialog opened (the trigger, or the host's own button).
    opener: RefCell<Option<HtmlElement>>,
}

impl Ctx {
    pub fn new(host: HtmlElement, options: Options, cfg: WidgetConfig) -> Rc<Self> {
        let id = NEXT_ID.with(|n| {
            n.set(n.get() + 1);
            n.get()
        });
        Rc::new(Self {
            options: RefCell::new(options),
            lang: RwSignal::new_local(Lang::from_locale(&cfg.locale)),
            mode: RwSignal::new_local(cfg.mode),
            cfg: RefCell::new(cfg),
            host,
            id,
            phase: RwSignal::new_local(Phase::Loading),
            notice: RwSignal::new_local(None),
            session: RwSignal::new_local(None),
            selected: RwSignal::new_local(None),
            loaded: RwSignal::new_local(Vec::new()),
            unavailable: RwSignal::new_local(Vec::new()),
            open: RwSignal::new_local(false),
            root: NodeRef::new(),
            dialog: NodeRef::new(),
            trigger: NodeRef::new(),
            generation: Cell::new(0),
            in_flight: RefCell::new(None),
            alive: Cell::new(true),
            mounted_at: Cell::new(now_ms()),
            inert: RefCell::new(Vec::new()),
            opener: RefCell::new(None),
        })
    }

    pub fn config(&self) -> WidgetConfig {
        self.cfg.borrow().clone()
    }

    fn lang(&self) -> Lang {
        self.lang.get_untracked()
    }

    fn current(&self, generation: u32) -> bool {
        self.alive.get() && self.generation.get() == generation
    }

    fn bump(&self) -> u32 {
        self.generation.set(self.generation.get() + 1);
        self.generation.get()
    }

    /// Aborts the session request in flight, if any: its answer would be dropped anyway.
    fn abort_in_flight(&self) {
        if let Some(controller) = self.in_flight.borrow_mut().take() {
            controller.abort();
        }
    }

    /// The widget is going away: nothing in flight may touch it any more.
    pub fn dispose(&self) {
        self.alive.set(false);
        self.abort_in_flight();
        self.close();
    }

    /// The shopper closed the dialog (its × or Escape). Unless a payment is under way or
    /// over, the host hears that nothing will be paid now.
    fn dismiss(&self) {
        if !self.open.get_untracked() {
            return;
        }
        self.close();
        let phase = self.phase.get_untracked();
        if !phase.busy() && !phase.done() {
            let category = self.selected.get_untracked().unwrap_or_default();
            events::dispatch(
                &self.host,
                events::CLOSED,
                &[
                    ("by", Val::Str("dialog")),
                    ("category", Val::Str(&category)),
                ],
            );
        }
    }

    fn fail(&self, error: &WidgetError) {
        let text = error_text(error);
        if let WidgetError::Gateway(gateway) = error
            && gateway.fields.iter().any(|f| is_address(f))
        {
            self.notice
                .set(Some(invalid_fields(self.lang(), &gateway.fields)));
        }
        self.phase.set(Phase::Failed(text));
        events::dispatch(
            &self.host,
            events::ERROR,
            &[
                ("code", Val::Str(error_code(error))),
                ("message", Val::Str(&error.to_string())),
            ],
        );
    }

    /// New settings (a changed cart, a new access token or locale): Klarna's session is
    /// updated by the gateway and every category loaded again, as Klarna requires.
    pub fn reconfigure(self: &Rc<Self>, cfg: WidgetConfig) {
        if matches!(self.phase.get_untracked(), Phase::Authorized { .. }) {
            return;
        }
        self.lang.set(Lang::from_locale(&cfg.locale));
        self.mode.set(cfg.mode);
        *self.cfg.borrow_mut() = cfg;
        self.apply_theme();
        self.start(None);
    }

    /// Starts (or restarts) the checkout: the SDK script and the session request go out
    /// together and `init` runs when both are back; either failing, or the two together
    /// taking longer than the timeout, shows the error with a retry button.
    pub fn start(self: &Rc<Self>, notice: Option<Text>) {
        let generation = self.bump();
        self.abort_in_flight();
        let controller = AbortController::new().ok();
        let signal = controller.as_ref().map(AbortController::signal);
        self.in_flight.replace(controller);
        self.phase.set(Phase::Loading);
        self.notice
            .set(notice.map(|n| t(self.lang(), n).to_owned()));
        self.loaded.set(Vec::new());
        self.unavailable.set(Vec::new());
        let ctx = self.clone();
        spawn_local(async move {
            let cfg = ctx.config();
            let both = task::try_join(
                sdk::ensure_loaded(&cfg.sdk_url),
                api::create_session(&cfg, signal.as_ref()),
            );
            let result = task::timeout(cfg.timeout_ms, both).await;
            if !ctx.current(generation) {
                return;
            }
            // Answered: nothing left to abort. Failed or timed out (the session request
            // may still be out, when the SDK failed first): aborted, its answer unread.
            if result.is_err() {
                ctx.abort_in_flight();
            } else {
                ctx.in_flight.take();
            }
            let ((), session) = match result {
                Ok(r) => r,
                Err(e) => return ctx.fail(&e),
            };
            mark("klarna:started");
            if let Err(e) = sdk::init(&session.client_token) {
                return ctx.fail(&e);
            }
            let ids: Vec<String> = session
                .payment_method_categories
                .iter()
                .map(|c| c.identifier.clone())
                .collect();
            let first = cfg
                .category
                .clone()
                .filter(|c| ids.contains(c))
                .or_else(|| ctx.selected.get_untracked().filter(|c| ids.contains(c)))
                .or_else(|| ids.first().cloned());
            ctx.session.set(Some(session));
            match first {
                Some(category) => ctx.show(category, generation).await,
                None => ctx.none_offered(),
            }
        });
    }

    fn none_offered(&self) {
        self.phase.set(Phase::Unavailable);
        events::dispatch(
            &self.host,
            events::DECLINED,
            &[("reason", Val::Str("not_offered"))],
        );
    }

    /// The container of a category's Klarna form.
    fn container(&self, category: &str) -> Option<Element> {
        let root = self.root.get_untracked()?;
        let nodes = root.query_selector_all(".kw-container").ok()?;
        (0..nodes.length())
            .filter_map(|i| nodes.item(i)?.dyn_into::<Element>().ok())
            .find(|el| el.get_attribute("data-category").as_deref() == Some(category))
    }

    /// Shows `category`, loading Klarna's form for it first if needed. A category Klarna
    /// will not offer (`show_form: false`) is marked and the next one tried.
    async fn show(self: &Rc<Self>, mut category: String, generation: u32) {
        loop {
            self.selected.set(Some(category.clone()));
            if self.loaded.get_untracked().contains(&category) {
                self.phase.set(Phase::Ready);
                return;
            }
            self.phase.set(Phase::Loading);
            next_tick().await;
            if !self.current(generation) {
                return;
            }
            let Some(container) = self.container(&category) else {
                return self.fail(&WidgetError::Sdk {
                    name: "InvalidContainerSelectorError".into(),
                    message: format!("no container for {category}"),
                });
            };
            mark("klarna:load");
            let result = sdk::load(&container, &category).await;
            if !self.current(generation) {
                return;
            }
            match result {
                Ok(r) if r.show_form => {
                    self.loaded.update(|l| l.push(category.clone()));
                    self.phase.set(Phase::Ready);
                    mark(events::READY);
                    events::dispatch(
                        &self.host,
                        events::READY,
                        &[
                            ("category", Val::Str(&category)),
                            ("elapsed_ms", Val::Num(now_ms() - self.mounted_at.get())),
                        ],
                    );
                    return;
                }
                Ok(_) => match self.not_offered(&category) {
                    Some(next) => category = next,
                    None => return,
                },
                Err(e) => return self.fail(&e),
            }
        }
    }

    /// Klarna will not offer `category` here: hide it, say so, and return the next one
    /// (or, with none left, end in [`Phase::Unavailable`]).
    fn not_offered(&self, category: &str) -> Option<String> {
        self.unavailable.update(|u| u.push(category.to_owned()));
        let off = self.unavailable.get_untracked();
        let next = self.session.get_untracked().and_then(|s| {
            s.payment_method_categories
                .into_iter()
                .map(|c| c.identifier)
                .find(|c| !off.contains(c))
        });
        match &next {
            Some(_) => self
                .notice
                .set(Some(t(self.lang(), Text::CategoryUnavailable).into())),
            None => {
                self.notice.set(None);
                self.none_offered();
            }
        }
        next
    }

    /// The shopper picked another category.
    pub fn select(self: &Rc<Self>, category: String) {
        let phase = self.phase.get_untracked();
        if phase.busy()
            || phase.done()
            || self.unavailable.get_untracked().contains(&category)
            || self.selected.get_untracked().as_deref() == Some(category.as_str())
        {
            return;
        }
        self.notice.set(None);
        let ctx = self.clone();
        let generation = self.generation.get();
        spawn_local(async move { ctx.show(category, generation).await });
    }

    /// The Pay button (or the host's, through `handle.pay()`). Anything but a ready form
    /// ignores it, so a double click (or a second submit) authorizes once. Returns whether
    /// it started.
    ///
    /// In modal mode with the dialog closed, it opens the dialog instead, whose own button
    /// pays: the shopper sees Klarna's form before paying, and a host's single button
    /// drives both modes. The outcome is reported by the same events (`klarna:closed` if
    /// the shopper closes the dialog).
    pub fn pay(self: &Rc<Self>) -> bool {
        let phase = self.phase.get_untracked();
        if self.mode.get_untracked() == Mode::Modal && !self.open.get_untracked() {
            if !matches!(phase, Phase::Ready | Phase::Loading) {
                return false;
            }
            self.open_modal();
            return true;
        }
        if phase != Phase::Ready {
            return false;
        }
        let Some(category) = self.selected.get_untracked() else {
            return false;
        };
        self.phase.set(Phase::Authorizing);
        self.notice.set(None);
        let ctx = self.clone();
        let generation = self.generation.get();
        let auto_finalize = self.cfg.borrow().auto_finalize;
        spawn_local(async move {
            let result = sdk::authorize(&category, auto_finalize).await;
            ctx.outcome(result, &category, generation).await;
        });
        true
    }

    /// The confirm button of the two-step flow: `finalize`, then as `authorize`.
    pub fn confirm(self: &Rc<Self>) {
        if self.phase.get_untracked() != Phase::Confirm {
            return;
        }
        let Some(category) = self.selected.get_untracked() else {
            return;
        };
        self.phase.set(Phase::Authorizing);
        let ctx = self.clone();
        let generation = self.generation.get();
        spawn_local(async move {
            let result = sdk::finalize(&category).await;
            ctx.outcome(result, &category, generation).await;
        });
    }

    async fn outcome(
        self: &Rc<Self>,
        result: Result<sdk::AuthorizeResult, WidgetError>,
        category: &str,
        generation: u32,
    ) {
        // The cart changed while Klarna's dialog was open: that approval is for the old
        // cart and is dropped; the restarted checkout asks again.
        if !self.current(generation) {
            return;
        }
        let r = match result {
            Ok(r) => r,
            Err(e) => return self.fail(&e),
        };
        match (r.approved, r.authorization_token, r.finalize_required) {
            (true, Some(token), _) => self.place(&token, generation).await,
            (true, None, true) => self.phase.set(Phase::Confirm),
            _ if !r.show_form => {
                events::dispatch(
                    &self.host,
                    events::DECLINED,
                    &[
                        ("reason", Val::Str("not_offered")),
                        ("category", Val::Str(category)),
                    ],
                );
                if let Some(next) = self.not_offered(category) {
                    self.show(next, generation).await;
                }
            }
            // Fields to fix, or the shopper closed Klarna's dialog: the form stays, and
            // the host hears it, so that it gives its own form back.
            _ if !r.invalid_fields.is_empty() => {
                let message = invalid_fields(self.lang(), &r.invalid_fields);
                self.notice.set(Some(message.clone()));
                self.phase.set(Phase::Ready);
                events::dispatch(
                    &self.host,
                    events::INVALID_FIELDS,
                    &[
                        ("fields", Val::List(&r.invalid_fields)),
                        ("message", Val::Str(&message)),
                        ("category", Val::Str(category)),
                    ],
                );
            }
            _ => {
                self.phase.set(Phase::Ready);
                events::dispatch(
                    &self.host,
                    events::CLOSED,
                    &[("by", Val::Str("klarna")), ("category", Val::Str(category))],
                );
            }
        }
    }

    /// Posts the authorization to the gateway, which places the order with Klarna.
    async fn place(self: &Rc<Self>, token: &str, generation: u32) {
        let Some(session) = self.session.get_untracked() else {
            return;
        };
        self.phase.set(Phase::Placing);
        let cfg = self.config();
        let mut attempts = 0;
        let answer = loop {
            let answer = api::authorize(&cfg, &session.session_id, token).await;
            match &answer {
                Err(e)
                    if e.gateway_code() == Some(ErrorCode::AuthorizationInProgress)
                        && attempts < 10 =>
                {
                    attempts += 1;
                    task::sleep(1_000).await;
                }
                _ => break answer,
            }
        };
        if !self.alive.get() {
            return;
        }
        match answer {
            Ok(AuthorizeResponse::Authorized {
                order_reference,
                klarna_order_id,
                fraud_status,
            }) => {
                self.phase.set(Phase::Authorized {
                    pending: fraud_status == FraudStatus::Pending,
                });
                events::dispatch(
                    &self.host,
                    events::AUTHORIZED,
                    &[
                        ("order_reference", Val::Str(&order_reference)),
                        ("klarna_order_id", Val::Str(&klarna_order_id)),
                        ("fraud_status", Val::Str(fraud_status.as_str())),
                    ],
                );
            }
            Ok(AuthorizeResponse::Declined { reason }) => {
                self.phase.set(Phase::Declined);
                events::dispatch(
                    &self.host,
                    events::DECLINED,
                    &[("reason", Val::Str(&reason))],
                );
            }
            // The Odoo order changed after the shopper approved: the gateway placed
            // nothing and updated the session; load the new cart and ask again.
            Err(e) if e.gateway_code() == Some(ErrorCode::CartChanged) => {
                if self.current(generation) {
                    self.start(Some(Text::CartChanged));
                    events::dispatch(&self.host, events::CART_CHANGED, &[]);
                }
            }
            Err(e) if e.gateway_code() == Some(ErrorCode::AuthorizationExpired) => {
                self.notice
                    .set(Some(t(self.lang(), Text::ErrorExpired).into()));
                self.phase.set(Phase::Ready);
                events::dispatch(&self.host, events::EXPIRED, &[]);
            }
            Err(e) => self.fail(&e),
        }
    }

    /// Sets the theme's custom properties on the widget and its dialog.
    pub fn apply_theme(&self) {
        let props = self.cfg.borrow().theme.properties();
        let targets = [
            self.host.query_selector(".kw").ok().flatten(),
            self.dialog.get_untracked().map(Element::from),
        ];
        for el in targets.into_iter().flatten() {
            if let Some(el) = el.dyn_ref::<HtmlElement>() {
                for (name, value) in &props {
                    let _ = el.style().set_property(name, value);
                }
            }
        }
    }

    /// Opens the modal: the page behind becomes inert, focus moves into the dialog.
    pub fn open_modal(self: &Rc<Self>) {
        if self.open.get_untracked() {
            return;
        }
        *self.opener.borrow_mut() = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.active_element())
            .and_then(|a| a.dyn_into::<HtmlElement>().ok());
        self.open.set(true);
        let ctx = self.clone();
        spawn_local(async move {
            next_tick().await;
            let Some(dialog) = ctx.dialog.get_untracked() else {
                return;
            };
            let dialog: HtmlElement = dialog.into();
            // Everything on the page but the dialog is made inert (and given back on
            // close): every sibling of the dialog and of each of its ancestors.
            {
                let mut inert = ctx.inert.borrow_mut();
                let mut node = dialog.parent_element();
                while let Some(el) = node {
                    let parent = el.parent_element();
                    if let Some(p) = &parent {
                        let children = p.children();
                        for i in 0..children.length() {
                            if let Some(child) = children.item(i)
                                && child != el
                                && !child.has_attribute("inert")
                                && child.tag_name() != "SCRIPT"
                            {
                                let _ = child.set_attribute("inert", "");
                                inert.push(child);
                            }
                        }
                    }
                    node = parent.filter(|p| p.tag_name() != "HTML");
                }
            }
            let first = dialog
                .query_selector("input[type=radio]:checked")
                .ok()
                .flatten()
                .or_else(|| dialog.query_selector(FOCUSABLE).ok().flatten());
            match first.and_then(|f| f.dyn_into::<HtmlElement>().ok()) {
                Some(el) => {
                    let _ = el.focus();
                }
                None => {
                    let _ = dialog.focus();
                }
            }
        });
    }

    /// Closes the modal and gives focus back to the button that opened it.
    pub fn close(&self) {
        if !self.open.get_untracked() {
            return;
        }
        self.open.set(false);
        for el in self.inert.borrow_mut().drain(..) {
            let _ = el.remove_attribute("inert");
        }
        let opener = self.opener.borrow_mut().take().filter(|o| o.is_connected());
        if let Some(el) = opener.or_else(|| self.trigger.get_untracked().map(Into::into)) {
            let _ = el.focus();
        }
    }

    /// `Escape` closes; `Tab` and `Shift+Tab` stay inside the dialog.
    fn dialog_key(&self, e: &KeyboardEvent) {
        match e.key().as_str() {
            "Escape" => {
                e.prevent_default();
                self.dismiss();
            }
            "Tab" => {
                let Some(dialog) = self.dialog.get_untracked() else {
                    return;
                };
                let Ok(nodes) = dialog.query_selector_all(FOCUSABLE) else {
                    return;
                };
                let focusable: Vec<HtmlElement> = (0..nodes.length())
                    .filter_map(|i| nodes.item(i)?.dyn_into::<HtmlElement>().ok())
                    .filter(|el| el.offset_parent().is_some())
                    .collect();
                let (Some(first), Some(last)) = (focusable.first(), focusable.last()) else {
                    return;
                };
                let active = web_sys::window()
                    .and_then(|w| w.document())
                    .and_then(|d| d.active_element());
                let at = |el: &HtmlElement| active.as_ref() == Some(el.as_ref());
                if e.shift_key() && (at(first) || active.as_ref() == Some(dialog.as_ref())) {
                    e.prevent_default();
                    let _ = last.focus();
                } else if !e.shift_key() && at(last) {
                    e.prevent_default();
                    let _ = first.focus();
                }
            }
            _ => {}
        }
    }
}

fn status(phase: Phase, lang: Lang) -> &'static str {
    match phase {
        Phase::Loading => t(lang, Text::Loading),
        Phase::Ready | Phase::Confirm => "",
        Phase::Authorizing => t(lang, Text::Waiting),
        Phase::Placing => t(lang, Text::Placing),
        Phase::Authorized { pending: false } => t(lang, Text::Authorized),
        Phase::Authorized { pending: true } => t(lang, Text::Pending),
        Phase::Declined => t(lang, Text::Declined),
        Phase::Unavailable => t(lang, Text::Unavailable),
        Phase::Failed(text) => t(lang, text),
    }
}

/// The categories, their forms, the buttons and the live status: the same in the page
/// (inline) and in the dialog (modal).
fn content(stored: StoredValue<Rc<Ctx>, LocalStorage>, in_dialog: bool) -> impl IntoView {
    let ctx = stored.with_value(Clone::clone);
    let (phase, lang, notice, session, selected, unavailable) = (
        ctx.phase,
        ctx.lang,
        ctx.notice,
        ctx.session,
        ctx.selected,
        ctx.unavailable,
    );
    let group = format!("kw-category-{}", ctx.id);
    let categories = move || {
        session
            .get()
            .map(|s| s.payment_method_categories)
            .unwrap_or_default()
    };
    let pay = move |_| {
        stored.with_value(|c| c.pay());
    };
    let pay_button = ctx.cfg.borrow().pay_button || in_dialog;
    let confirm = move |_| stored.with_value(|c| c.confirm());
    let retry = move |_| stored.with_value(|c| c.start(None));
    let text = move |x: Text| move || t(lang.get(), x);

    view! {
        <div class="kw-content" node_ref=ctx.root>
            <Show when=move || session.with(Option::is_none) && phase.get() == Phase::Loading>
                <div class="kw-skeleton" aria-hidden="true"><div></div><div></div></div>
            </Show>
            <fieldset class="kw-categories" hidden=move || session.with(Option::is_none) || phase.get().done()>
                <legend class="kw-legend">{text(Text::Choose)}</legend>
                {move || categories().into_iter().map(|category| {
                    let id = category.identifier.clone();
                    let key = StoredValue::new(id.clone());
                    let is_selected = move || selected.with(|s| key.with_value(|k| s.as_deref() == Some(k.as_str())));
                    let off = move || unavailable.with(|u| key.with_value(|k| u.contains(k)));
                    let select = move |_| stored.with_value(|ctx| ctx.select(key.get_value()));
                    let icon = category.asset_urls.standard.clone();
                    view! {
                        <div class="kw-option" class:kw-selected=is_selected class:kw-off=off>
                            <label class="kw-category">
                                <input type="radio" name=group.clone() value=id.clone()
                                    prop:checked=is_selected disabled=off on:change=select />
                                {icon.map(|src| view! { <img class="kw-icon" src=src alt="" width="48" height="24" /> })}
                                <span class="kw-name">{category.name}</span>
                            </label>
                            <div class="kw-container" data-category=id hidden=move || !is_selected()></div>
                        </div>
                    }
                }).collect_view()}
            </fieldset>
            <p class="kw-notice" hidden=move || notice.with(Option::is_none)>{move || notice.get()}</p>
            <Show when=move || phase.get() == Phase::Confirm>
                <p class="kw-confirm-intro">{text(Text::ConfirmIntro)}</p>
                <button type="button" class="kw-confirm" on:click=confirm>{text(Text::Confirm)}</button>
            </Show>
            <Show when=move || pay_button && matches!(phase.get(), Phase::Loading | Phase::Ready | Phase::Authorizing | Phase::Placing)>
                <button type="button" class="kw-pay" disabled=move || phase.get() != Phase::Ready on:click=pay>
                    {text(Text::Pay)}
                </button>
            </Show>
            <p class="kw-status" role="status" aria-live="polite">{move || status(phase.get(), lang.get())}</p>
            <Show when=move || matches!(phase.get(), Phase::Failed(text) if retryable(text))>
                <button type="button" class="kw-retry" on:click=retry>{text(Text::Retry)}</button>
            </Show>
        </div>
    }
}

/// The whole widget: inline, or a button that opens the same content in a dialog.
#[component]
pub fn Checkout(ctx: Rc<Ctx>) -> impl IntoView {
    let (phase, lang, mode, open) = (ctx.phase, ctx.lang, ctx.mode, ctx.open);
    let (trigger, dialog) = (ctx.trigger, ctx.dialog);
    // A host with its own button (`pay_button: false`) opens the dialog through
    // `handle.pay()`; the dialog's own button pays in every case.
    // (A class rather than one more attribute: the bundle's size budget.)
    let trigger_class = if ctx.cfg.borrow().pay_button {
        "kw-open"
    } else {
        "kw-open kw-hosted"
    };
    let title = StoredValue::new(format!("kw-title-{}", ctx.id));
    let stored = StoredValue::new_local(ctx);
    let open_modal = move |_| stored.with_value(|c| c.open_modal());
    let close = move |_| stored.with_value(|c| c.dismiss());
    let key = move |e: KeyboardEvent| stored.with_value(|c| c.dialog_key(&e));
    let modal = move || mode.get() == Mode::Modal;

    view! {
        <div class="kw" lang=move || lang.get().tag() data-phase=move || phase.get().name()
            data-mode=move || if modal() { "modal" } else { "inline" }>
            <Show when=modal fallback=move || content(stored, false)>
                <button type="button" class=trigger_class node_ref=trigger on:click=open_modal
                    aria-haspopup="dialog">
                    {move || t(lang.get(), Text::OpenModal)}
                </button>
                <p class="kw-status kw-status-trigger">{move || if open.get() { "" } else { status(phase.get(), lang.get()) }}</p>
                    // Not the `hidden` attribute: host pages' CSS (Bootstrap's, in Odoo) makes
                    // it `display: none !important`, and Klarna's iframes loaded into a
                    // dialog without layout stay 0 px high.
                    <div class="kw-backdrop" data-closed=move || !open.get()>
                        <div class="kw kw-dialog" role="dialog" aria-modal="true" aria-labelledby=move || title.get_value()
                            tabindex="-1" node_ref=dialog on:keydown=key lang=move || lang.get().tag()
                            data-phase=move || phase.get().name()>
                            <div class="kw-dialog-head">
                                <h2 class="kw-title" id=move || title.get_value()>{move || t(lang.get(), Text::DialogTitle)}</h2>
                                <button type="button" class="kw-close" on:click=close
                                    aria-label=move || t(lang.get(), Text::Close)>"×"</button>
                            </div>
                            {content(stored, true)}
                        </div>
                    </div>
            </Show>
        </div>
    }
}
