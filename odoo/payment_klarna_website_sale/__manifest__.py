# Part of payment_klarna. See LICENSE file for full copyright and licensing details.
{
    'name': "Klarna: Price Messaging in the Shop",
    'version': '18.0.1.1.0',
    'category': 'Accounting/Payment Providers',
    'summary': "Klarna's price messaging (\"Pay in 3 interest-free payments of …\") under the "
               "price on product pages and under the total in the cart.",
    'description': " ",
    'depends': ['payment_klarna', 'website_sale'],
    'data': [
        'views/payment_provider_views.xml',
        'views/templates.xml',
    ],
    'assets': {
        'web.assets_frontend': [
            'payment_klarna/static/src/js/klarna_messaging.js',
        ],
        'web.assets_tests': [
            'payment_klarna_website_sale/static/tests/tours/price_messaging_tour.js',
        ],
    },
    'auto_install': True,
    'license': 'LGPL-3',
}
