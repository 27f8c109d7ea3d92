# Part of payment_klarna. See LICENSE file for full copyright and licensing details.

import hashlib
import hmac


def gateway_signature(secret, timestamp, body):
    """ Sign an update from the gateway: `hex(HMAC-SHA256(secret, "<timestamp>.<raw body>"))`.

    :param str secret: The shared secret.
    :param int timestamp: Unix seconds, as sent in `X-Klarna-Gateway-Timestamp`.
    :param bytes body: The raw request body.
    :return: The hex signature.
    :rtype: str
    """
    message = f'{timestamp}.'.encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def admin_signature(secret, timestamp, nonce, method, path, idempotency_key, body):
    """ Sign a call to the gateway's admin API: `hex(HMAC-SHA256(secret, message))` over
    `"<timestamp>\n<nonce>\n<METHOD> <path>\n<Idempotency-Key>\n<body>"`.

    The nonce and the idempotency key are signed so that a copied request can be neither
    replayed (the gateway accepts each nonce once) nor sent again under another key.

    :param str secret: The shared secret.
    :param int timestamp: Unix seconds.
    :param str nonce: Unique per call (a UUID), sent as `X-Klarna-Gateway-Nonce`.
    :param str method: The HTTP method, upper case.
    :param str path: The path with its query string, as the gateway sees it.
    :param str idempotency_key: The `Idempotency-Key` header, '' when there is none.
    :param bytes body: The request body.
    :return: The hex signature.
    :rtype: str
    """
    message = f'{timestamp}\n{nonce}\n{method} {path}\n{idempotency_key}\n'.encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def to_minor(amount, currency):
    """ An Odoo amount (a float rounded to the currency) in minor units, as the gateway wants.

    Rounded, never truncated: 19.99 EUR is 1999, not 1998.

    :param float amount: The amount.
    :param recordset currency: The `res.currency`.
    :return: The amount in minor units.
    :rtype: int
    """
    return int(round(currency.round(amount) * 10 ** currency.decimal_places))


def from_minor(minor, currency):
    """ Minor units from the gateway as an Odoo amount of `currency`.

    :param int minor: The amount in minor units.
    :param recordset currency: The `res.currency`.
    :return: The amount.
    :rtype: float
    """
    return currency.round(minor / 10 ** currency.decimal_places)
