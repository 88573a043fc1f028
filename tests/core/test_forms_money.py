"""Amounts typed in the console: a comma or a point is the decimal mark in every language (catalog.money_field)."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from abonent.catalog.forms import money_field


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize(
    ("typed", "amount"),
    [("650,00", "650.00"), ("650.00", "650.00"), ("1 000,50", "1000.50"), ("1\u00a0000,5", "1000.5"), (" 7 ", "7")],
)
def test_a_comma_is_the_decimal_mark_in_every_language(language, typed, amount):
    # In English, Django's localized parsing took "650,00" for 65 000 (a comma as the thousands separator).
    with translation.override(language):
        assert money_field("x").clean(typed) == Decimal(amount)


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("typed", ["1e3", "1,000.50", "５", "6 5 0,0,0", "--5"])
def test_what_is_not_an_amount_is_refused(language, typed):
    with translation.override(language), pytest.raises(ValidationError):
        money_field("x").clean(typed)
