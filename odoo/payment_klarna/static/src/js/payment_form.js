/** @odoo-module **/

import { _t } from '@web/core/l10n/translation';
import paymentForm from '@payment/js/payment_form';

/**
 * Klarna in Odoo's payment form. The WebAssembly widget (static/src/widget, loaded by the
 * inline form's module script) renders Klarna's categories when the shopper picks Klarna;
 * Odoo's own "Pay now" button creates the transaction and asks the widget to pay; the widget's
 * events decide what Odoo's form does next.
 */

/** Resolves with `window.KlarnaWidget` once the widget's module has started. */
function klarnaWidget() {
    if (window.KlarnaWidget) {
        return Promise.resolve(window.KlarnaWidget);
    }
    return new Promise((resolve) => {
        document.addEventListener('klarna:loaded', () => resolve(window.KlarnaWidget), { once: true });
    });
}

/** Resolves with the first of the widget's terminal events on `element`. */
function klarnaOutcome(element) {
    return new Promise((resolve) => {
        const names = ['klarna:authorized', 'klarna:declined', 'klarna:error'];
        const listener = (ev) => {
            names.forEach((name) => element.removeEventListener(name, listener));
            resolve({ type: ev.type, detail: ev.detail || {} });
        };
        names.forEach((name) => element.addEventListener(name, listener));
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
            return; // Klarna does not tokenize.
        }
        this._setPaymentFlow('direct');
        const radio = document.querySelector('input[name="o_payment_radio"]:checked');
        const element = this._getInlineForm(radio)?.querySelector('[name="o_klarna_widget"]');
        if (!element) {
            return;
        }
        this.klarnaElement = element;
        const widget = await klarnaWidget();
        this.klarnaHandle = widget.mount(element, {});
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
        const outcome = klarnaOutcome(this.klarnaElement);
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
        const message = type === 'klarna:declined'
            ? _t("Klarna could not approve this purchase. Please choose another payment method.")
            : (detail.message || _t("Something went wrong with Klarna."));
        this._displayErrorDialog(_t("Payment processing failed"), message);
        this._enableButton();
    },

});
