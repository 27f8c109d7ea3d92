/* Klarna's price messaging ("Pay in 3 interest-free payments of …") on product and cart
 * pages: keeps each placement's amount — the price shown, times the quantity chosen — in
 * step with the page when the variant, the quantity or the cart changes. Klarna's own
 * script renders the placements; this file only sets their `data-purchase-amount` (minor
 * units). On a page without placements it does nothing, and it never blocks the page.
 *
 * A placement names where its amount comes from:
 *   data-klarna-amount-from    CSS selector of the monetary value (Odoo's `oe_price`, the
 *                              cart's total), looked up inside data-klarna-scope
 *   data-klarna-quantity-from  CSS selector of the quantity input, if any
 *   data-klarna-scope          CSS selector of the closest ancestor to look in (the
 *                              product's form); the document when absent
 */
(function () {
    'use strict';

    var PLACEMENTS = 'klarna-placement[data-klarna-amount-from]';

    // Odoo prints a monetary value with exactly its currency's decimals, whatever the
    // language's separators: its digits, read together, are the amount in minor units.
    function minorUnits(element) {
        var digits = (element.textContent || '').replace(/[^0-9]/g, '');
        return digits ? parseInt(digits, 10) : null;
    }

    function quantity(input) {
        var q = parseFloat(String(input.value).replace(',', '.'));
        return q > 0 ? q : 1;
    }

    function update(placement) {
        var scope = (placement.dataset.klarnaScope && placement.closest(placement.dataset.klarnaScope)) || document;
        var price = scope.querySelector(placement.dataset.klarnaAmountFrom);
        var unit = price ? minorUnits(price) : null;
        if (unit === null) {
            return false;
        }
        var input = placement.dataset.klarnaQuantityFrom
            ? scope.querySelector(placement.dataset.klarnaQuantityFrom) : null;
        var amount = String(Math.round(unit * (input ? quantity(input) : 1)));
        if (placement.getAttribute('data-purchase-amount') === amount) {
            return false;
        }
        placement.setAttribute('data-purchase-amount', amount);
        return true;
    }

    function updateAll() {
        var changed = false;
        document.querySelectorAll(PLACEMENTS).forEach(function (placement) {
            changed = update(placement) || changed;
        });
        var klarna = window.Klarna;
        if (changed && klarna && klarna.OnsiteMessaging && typeof klarna.OnsiteMessaging.refresh === 'function') {
            klarna.OnsiteMessaging.refresh();
        }
    }

    function start() {
        if (!document.querySelector(PLACEMENTS)) {
            return;
        }
        var pending = false;
        function soon() {
            if (!pending) {
                pending = true;
                window.requestAnimationFrame(function () {
                    pending = false;
                    updateAll();
                });
            }
        }
        // Typing a quantity; Odoo's new price for a variant or a quantity, and its new cart
        // total, arrive as changed text (attributes are not watched: ours would loop).
        document.addEventListener('input', soon, true);
        document.addEventListener('change', soon, true);
        new MutationObserver(soon).observe(document.body, {
            subtree: true, childList: true, characterData: true,
        });
        updateAll();
    }

    if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', start);
    } else {
        start();
    }
})();
