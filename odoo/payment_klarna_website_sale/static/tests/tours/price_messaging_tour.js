/** @odoo-module **/

import { registry } from "@web/core/registry";

// A shopper on a product page (120.00 in a currency of two decimals): Klarna's placement
// (rendered by the sandbox's stand-in for Klarna's script) shows a third of the price, and
// follows the quantity when Odoo's + button is pressed.
registry.category("web_tour.tours").add("payment_klarna_price_messaging", {
    steps: () => [
        {
            content: "Klarna's placement shows a third of 120.00",
            trigger: 'klarna-placement[data-purchase-amount="12000"][data-rendered-amount="12000"] [role=note]:contains(40)',
        },
        {
            content: "One more",
            trigger: '.js_main_product a.js_add_cart_json[title="Add one"]',
            run: "click",
        },
        {
            content: "The placement follows: a third of 240.00",
            trigger: 'klarna-placement[data-purchase-amount="24000"][data-rendered-amount="24000"] [role=note]:contains(80)',
        },
    ],
});
