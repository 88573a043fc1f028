"""Money: Decimal only, 2 places (kopecks), rounded half-up in exactly one place.

Amounts are plain ``Decimal`` in code and ``DecimalField(max_digits=14, decimal_places=2)`` in the
database; the currency is one setting per installation (``ABONENT_CURRENCY``, RUB by default).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import models
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

KOPECK = Decimal("0.01")
RATE_PLACES = Decimal("0.0001")
ZERO = Decimal("0.00")

CURRENCY_SYMBOLS = {"RUB": "₽", "USD": "$", "EUR": "€", "KZT": "₸", "BYN": "Br", "UZS": "сўм"}


class MoneyError(ValueError):
    """A value that cannot be an amount of money (float, NaN, infinity, garbage)."""


# What a person or an integration writes as an amount: ASCII digits, one decimal point or comma. Decimal() alone
# also takes other scripts' digits ("５" and "٥" are 5), "1_000" and "1e3": a typo or a trick must not become money.
_AMOUNT_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)")


def to_decimal(value: Decimal | int | str) -> Decimal:
    """Parse without ever going through float: floats are refused, not converted; text must be ASCII digits."""
    if isinstance(value, float):
        raise MoneyError(_("Money must not be a float; pass a Decimal or a string."))
    if isinstance(value, bool):
        raise MoneyError(_("Money must be a number."))
    if isinstance(value, Decimal):
        result = value
    else:
        text = str(value).strip()
        if not _AMOUNT_TEXT.fullmatch(text):
            raise MoneyError(_("“%(value)s” is not an amount of money: use the digits 0–9.") % {"value": value})
        result = Decimal(text.replace(",", "."))
    if not result.is_finite():
        raise MoneyError(_("“%(value)s” is not an amount of money.") % {"value": value})
    return result


def quantize(value: Decimal | int | str) -> Decimal:
    """Round to kopecks, half-up (the rounding Russian accounting and 54-FZ receipts use)."""
    return to_decimal(value).quantize(KOPECK, rounding=ROUND_HALF_UP)


def quantize_rate(value: Decimal | int | str) -> Decimal:
    """Rates (price per GB, per minute) keep 4 places; only postings are rounded to kopecks."""
    return to_decimal(value).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def currency() -> str:
    return settings.ABONENT_CURRENCY


def currency_symbol(code: str | None = None) -> str:
    code = code or currency()
    return CURRENCY_SYMBOLS.get(code, code)


def format_money(amount: Decimal | int | str, code: str | None = None) -> str:
    """Localised: ``1 234,50 ₽`` in Russian, ``1,234.50 ₽`` in English."""
    return f"{number_format(quantize(amount), decimal_pos=2, force_grouping=True)}\u00a0{currency_symbol(code)}"


class MoneyField(models.DecimalField):
    """An amount in the installation currency: 14 digits, 2 places."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_digits", 14)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.DecimalField", args, kwargs


# What one operation may move: numeric(14, 2) holds 12 integer digits, so a single amount is kept to 10 and any
# realistic sum of them (a balance) stays inside the column; a balance past ``BALANCE_LIMIT`` is refused. Without
# these, two adjustments of −999,999,999,999.99 were a 500 and the next billing run aborted on "numeric field
# overflow" for everyone in the chunk. Manual adjustments have a lower business limit
# (``ABONENT_MAX_MANUAL_AMOUNT``).
AMOUNT_LIMIT = Decimal("9999999999.99")
BALANCE_LIMIT = Decimal("99999999999.99")
