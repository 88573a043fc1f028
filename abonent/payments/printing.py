"""What the printed cash receipt and cash report need besides the data: the amount in words."""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import get_language
from num2words import num2words

from abonent.core.money import currency, quantize

# num2words knows these currencies' names and their plural forms in Russian and English.
_NAMED_CURRENCIES = {"RUB", "USD", "EUR", "KZT", "BYN", "UZS"}


def amount_in_words(amount: Decimal, *, language: str | None = None) -> str:
    """``1234.50`` → "Одна тысяча двести тридцать четыре рубля, пятьдесят копеек" (the active language's words;
    the installation's currency). A currency num2words does not name gets the number in words and its code."""
    amount = quantize(amount)
    lang = (language or get_language() or "ru").split("-")[0]
    if lang not in {"ru", "en"}:
        lang = "ru"
    code = currency()
    try:
        if code not in _NAMED_CURRENCIES:
            raise NotImplementedError(code)
        text = num2words(amount, lang=lang, to="currency", currency=code)
    except (NotImplementedError, KeyError):
        text = f"{num2words(int(amount), lang=lang)} {code} {int(amount * 100) % 100:02d}"
    return text[:1].upper() + text[1:]
