/* The sandbox's stand-in for Klarna's on-site messaging script
 * (https://js.klarna.com/web-sdk/v1/klarna.js): the <klarna-placement> element, rendered
 * from its data-key, data-locale, data-purchase-amount (minor units) and data-theme, and
 * rendered again when one of them changes; `Klarna.OnsiteMessaging.refresh()`. Like
 * Klarna's, it renders nothing without the script tag's data-client-id. Same-origin, no
 * eval, no inline style attributes: it runs under a strict Content-Security-Policy. */
(function () {
    'use strict';

    var script = document.currentScript;
    var clientId = script ? script.getAttribute('data-client-id') : null;
    // Pay in 3 is offered from this amount (minor units) up to MAX.
    var MIN = 3500;
    var MAX = 150000000;
    var CURRENCY = {
        US: 'USD', GB: 'GBP', SE: 'SEK', NO: 'NOK', DK: 'DKK', CH: 'CHF', PL: 'PLN',
        CZ: 'CZK', HU: 'HUF', RO: 'RON', AU: 'AUD', NZ: 'NZD', CA: 'CAD', MX: 'MXN',
    };
    var TEXT = {
        en: ['Pay in 3 interest-free payments of {amount}.', 'Pay in 3 interest-free payments on purchases from {amount}.'],
        de: ['Bezahle in 3 zinsfreien Raten à {amount}.', 'Bezahle in 3 zinsfreien Raten ab einem Einkauf von {amount}.'],
        sv: ['Dela upp betalningen på 3 räntefria delbetalningar à {amount}.', 'Dela upp betalningen på 3 räntefria delbetalningar vid köp från {amount}.'],
        nl: ['Betaal in 3 renteloze termijnen van {amount}.', 'Betaal in 3 renteloze termijnen bij aankopen vanaf {amount}.'],
        fr: ['Payez en 3 fois sans frais de {amount}.', 'Payez en 3 fois sans frais dès {amount} d\u2019achat.'],
    };

    function money(minor, locale, currency) {
        var decimals = new Intl.NumberFormat(locale, { style: 'currency', currency: currency })
            .resolvedOptions().maximumFractionDigits;
        return new Intl.NumberFormat(locale, { style: 'currency', currency: currency })
            .format(minor / Math.pow(10, decimals));
    }

    class Placement extends HTMLElement {
        static get observedAttributes() {
            return ['data-key', 'data-locale', 'data-purchase-amount', 'data-theme'];
        }

        connectedCallback() {
            this.render();
        }

        attributeChangedCallback() {
            if (this.isConnected) {
                this.render();
            }
        }

        render() {
            this.replaceChildren();
            this.removeAttribute('data-rendered-amount');
            var amount = parseInt(this.getAttribute('data-purchase-amount') || '', 10);
            if (!clientId || !(amount >= 0) || amount > MAX) {
                return;
            }
            var locale = this.getAttribute('data-locale') || 'en-US';
            var country = (locale.split('-')[1] || 'US').toUpperCase();
            var currency = CURRENCY[country] || 'EUR';
            var texts = TEXT[locale.split('-')[0]] || TEXT.en;
            var line = amount >= MIN
                ? texts[0].replace('{amount}', money(Math.floor(amount / 3), locale, currency))
                : texts[1].replace('{amount}', money(MIN, locale, currency));
            var box = document.createElement('div');
            box.className = 'klarna-osm-standin';
            box.setAttribute('role', 'note');
            var dark = this.getAttribute('data-theme') === 'dark';
            box.style.font = '14px/1.4 system-ui, sans-serif';
            box.style.padding = '8px 12px';
            box.style.borderRadius = '8px';
            box.style.background = dark ? '#17120f' : '#ffb3c7';
            box.style.color = dark ? '#ffffff' : '#17120f';
            box.style.maxWidth = '100%';
            box.style.overflowWrap = 'anywhere';
            var badge = document.createElement('strong');
            badge.textContent = 'Klarna. ';
            box.append(badge, document.createTextNode(line));
            this.append(box);
            this.setAttribute('data-rendered-amount', String(amount));
        }
    }

    if (!window.customElements.get('klarna-placement')) {
        window.customElements.define('klarna-placement', Placement);
    }
    window.Klarna = window.Klarna || {};
    window.Klarna.OnsiteMessaging = {
        refresh: function () {
            document.querySelectorAll('klarna-placement').forEach(function (p) {
                if (typeof p.render === 'function') {
                    p.render();
                }
            });
        },
    };
})();
