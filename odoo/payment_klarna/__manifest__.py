# Part of payment_klarna. See LICENSE file for full copyright and licensing details.
{
    'name': "Payment Provider: Klarna",
    'version': '18.0.1.3.0',
    'category': 'Accounting/Payment Providers',
    'sequence': 350,
    'summary': "Klarna at checkout (pay now, pay later, financing), rendered by a WebAssembly "
               "widget and backed by klarna-gateway.",
    'description': " ",  # Non-empty string to avoid loading the README file.
    'depends': ['payment', 'sale'],
    'data': [
        'security/ir.model.access.csv',

        'views/payment_klarna_templates.xml',
        'views/payment_provider_views.xml',
        'views/payment_klarna_review_views.xml',
        'views/payment_klarna_doctor_views.xml',
        'views/sale_order_views.xml',

        'data/payment_provider_data.xml',  # Depends on views/payment_klarna_templates.xml
    ],
    'post_init_hook': 'post_init_hook',
    'uninstall_hook': 'uninstall_hook',
    'assets': {
        'web.assets_frontend': [
            'payment_klarna/static/src/js/payment_form.js',
        ],
    },
    'license': 'LGPL-3',
}
