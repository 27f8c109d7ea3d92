{
    'name': "Payment Provider: Klarna",
    'version': '18.0.0.1.0',
    'category': 'Accounting/Payment Providers',
    'sequence': 350,
    'summary': "Klarna at checkout, rendered by a WebAssembly widget and backed by klarna-gateway.",
    'description': " ",  # Non-empty so Odoo does not load the README.rst.
    'depends': ['payment'],
    'data': [
        'views/payment_klarna_templates.xml',
    ],
    'post_init_hook': 'post_init_hook',
    'uninstall_hook': 'uninstall_hook',
    'license': 'LGPL-3',
}
