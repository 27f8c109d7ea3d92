# Part of payment_klarna. See LICENSE file for full copyright and licensing details.
{
    'name': "Klarna: Capture on Delivery",
    'version': '18.0.1.1.0',
    'category': 'Accounting/Payment Providers',
    'summary': "Capture Klarna payments for what each validated delivery ships, with its "
               "carrier and tracking number.",
    'description': " ",
    # stock_delivery (carrier, tracking reference) is there wherever website_sale and
    # Inventory are: it installs itself with sale_stock and delivery.
    'depends': ['payment_klarna', 'stock_delivery'],
    'auto_install': True,
    'license': 'LGPL-3',
}
