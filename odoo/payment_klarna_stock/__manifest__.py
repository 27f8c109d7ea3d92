# Part of payment_klarna. See LICENSE file for full copyright and licensing details.
{
    'name': "Klarna: Capture on Delivery",
    'version': '18.0.1.0.0',
    'category': 'Accounting/Payment Providers',
    'summary': "Capture Klarna payments for what each validated delivery ships.",
    'description': " ",
    'depends': ['payment_klarna', 'sale_stock'],
    'auto_install': True,
    'license': 'LGPL-3',
}
