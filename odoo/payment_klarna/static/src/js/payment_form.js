/** @odoo-module **/

import { _t } from '@web/core/l10n/translation';
import paymentForm from '@payment/js/payment_form';

/**
 * Klarna in Odoo's payment form. The WebAssembly widget (static/src/widget, loaded by the
 * inline form's module script) renders Klarna's categories when the shopper picks Klarna;
 * Odoo's own "Pay now" button — the only pay button on the page — creates the transaction
 * and asks the widget to pay (inline: Klarna's dialog opens; modal: the widget's dialog
 * opens, and its own button pays). Every outcome the widget reports gives Odoo's form back,
 * so that no shopper is left behind a disabled button (docs/embedding.md, "Events").
 */

/** The widget's events that end a payment attempt (docs/embedding.md). */
const OUTCOMES = [
    'klarna:authorized',
    'klarna:declined',
    'klarna:error',
    'klarna:invalid_fields',
    'klarna:closed',
    'klarna:cart_changed',
    'klarna:expired',
];

/** Resolves with `window.KlarnaWidget` once the widget's module has started. */
function klarnaWidget() {
    if (window.KlarnaWidget) {
        return Promise.resolve(window.KlarnaWidget);
    }
    return new Promise((resolve) => {
        document.addEventListener('klarna:loaded', () => resolve(window.KlarnaWidget), { once: true });
    });
}

/** Resolves with the first outcome the widget reports on `element`. */
function klarnaOutcome(element) {
    return new Promise((resolve) => {
        const listener = (ev) => {
            OUTCOMES.forEach((name) => element.removeEventListener(name, listener));
            resolve({ type: ev.type, detail: ev.detail || {} });
        };
        OUTCOMES.forEach((name) => element.addEventListener(name, listener));
    });
}

paymentForm.include({

    // #=== DOM MANIPULATION ===#

    /**
     * Mount the widget in the inline form of the selected Klarna payment method.
     *
     * @override method from @payment/js/payment_form
     * @private
     */
    async _prepareInlineForm(providerId, providerCode, paymentOptionId, paymentMethodCode, flow) {
        if (providerCode !== 'klarna') {
            this._super(...arguments);
            return;
        }
        if (flow === 'token') {
            // A saved Klarna: Odoo's token flow charges it on the server (no form to show).
            return;
        }
        this._setPaymentFlow('direct');
        const radio = document.querySelector('input[name="o_payment_radio"]:checked');
        const element = this._getInlineForm(radio)?.querySelector('[name="o_klarna_widget"]');
        if (!element) {
            return;
        }
        this.klarnaElement = element;
        if (!element.dataset.klarnaListening) {
            // An approval can come after the attempt that opened Klarna ended: the shopper
            // corrected wrong details in the widget's dialog and paid there. It pays all the
            // same; the status page shows it.
            element.dataset.klarnaListening = '1';
            element.addEventListener('klarna:authorized', () => {
                window.location = '/payment/status';
            });
        }
        const widget = await klarnaWidget();
        this.klarnaHandle = widget.mount(element, {});
    },

    /**
     * Start the widget's session again and wait until Klarna's form is ready.
     *
     * @private
     * @return {Promise<boolean>} Whether the form is ready.
     */
    _klarnaRestart() {
        const element = this.klarnaElement;
        const settled = new Promise((resolve) => {
            const done = (ev) => {
                element.removeEventListener('klarna:ready', done);
                element.removeEventListener('klarna:error', done);
                resolve(ev.type === 'klarna:ready');
            };
            element.addEventListener('klarna:ready', done);
            element.addEventListener('klarna:error', done);
        });
        this.klarnaHandle.update({});
        return settled;
    },

    // #=== PAYMENT FLOW ===#

    /**
     * Ask the widget to pay (Klarna's dialog opens) and finish like Odoo's other providers:
     * to the status page when the gateway placed the order, back to the form otherwise.
     *
     * @override method from @payment/js/payment_form
     * @private
     */
    async _processDirectFlow(providerCode, paymentOptionId, paymentMethodCode, processingValues) {
        if (providerCode !== 'klarna') {
            this._super(...arguments);
            return;
        }
        if (!this.klarnaHandle || !this.klarnaElement) {
            this._displayErrorDialog(_t("Payment processing failed"), _t("Klarna is not loaded."));
            this._enableButton();
            return;
        }
        // "Save my payment details": Odoo's checkout transaction, made just now, says whether
        // to save the payment method, and the gateway reads it there (never from this page).
        // The session made when Klarna was chosen could not know it: it is made again, so
        // that Klarna's form shows its terms for saving and its approval can be saved.
        const saving = Boolean(this.paymentContext.tokenizationRequested);
        if (saving || this.klarnaSaving) {
            this.klarnaSaving = saving;
            if (!(await this._klarnaRestart())) {
                this._displayErrorDialog(
                    _t("Klarna is not ready"), _t("Klarna's form could not be loaded again. Please pay again.")
                );
                this._enableButton();
                return;
            }
        }
        const outcome = klarnaOutcome(this.klarnaElement);
        // The shopper deals with Klarna now (its dialog, or the widget's): Odoo's blocking
        // overlay would cover it. The button stays disabled until the outcome.
        this.call('ui', 'unblock');
        if (!this.klarnaHandle.pay()) {
            this._displayErrorDialog(
                _t("Klarna is not ready"), _t("Please wait for Klarna's form to load, then pay again.")
            );
            this._enableButton();
            return;
        }
        const { type, detail } = await outcome;
        if (type === 'klarna:authorized') {
            window.location = '/payment/status';
            return;
        }
        if (type === 'klarna:declined') {
            this._displayErrorDialog(_t("Payment processing failed"), detail.reason === 'not_offered'
                ? _t("Klarna does not offer this option for this purchase. Please choose another Klarna option or another payment method.")
                : _t("Klarna could not approve this purchase. Please choose another payment method."));
        } else if (type === 'klarna:error') {
            this._displayErrorDialog(_t("Payment processing failed"), _t(
                "Klarna could not take this payment (%s). Please try again or choose another payment method.",
                detail.message || detail.code || _t("unknown error"),
            ));
        }
        // Wrong details, Klarna closed, a changed cart or an expired approval: the widget
        // says what to do in place, and the form is the shopper's again.
        this._enableButton();
    },

});
