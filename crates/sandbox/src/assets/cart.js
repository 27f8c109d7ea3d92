/* The storefront stand-in's cart: what Odoo's cart does when a quantity changes — the
 * line's and the order's totals are printed again (Odoo re-renders them from the server;
 * here they are computed from each line's unit price in minor units). */
(function () {
    'use strict';
    function format(minor, decimals, currency) {
        return (minor / Math.pow(10, decimals)).toFixed(decimals) + ' ' + currency;
    }
    function recompute() {
        var cart = document.getElementById('cart');
        if (!cart) {
            return;
        }
        var decimals = parseInt(cart.dataset.decimals, 10);
        var currency = cart.dataset.currency;
        var total = 0;
        cart.querySelectorAll('tr[data-unit-minor]').forEach(function (row) {
            var qty = parseFloat(row.querySelector('input[name="qty"]').value) || 0;
            var line = Math.round(parseInt(row.dataset.unitMinor, 10) * qty);
            total += line;
            row.querySelector('.line_total').textContent = format(line, decimals, currency);
        });
        document.querySelector('#order_total .monetary_field').textContent = format(total, decimals, currency);
    }
    document.addEventListener('input', recompute);
})();
