from decimal import Decimal

import pytest
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from abonent.core.money import MoneyError, format_money, quantize, quantize_rate, to_decimal


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("650", Decimal("650.00")),
        ("0.005", Decimal("0.01")),  # half-up, not banker's rounding
        ("0.015", Decimal("0.02")),
        ("2.675", Decimal("2.68")),
        ("-0.005", Decimal("-0.01")),
        ("21,67", Decimal("21.67")),  # a Russian decimal comma typed by an operator
        (Decimal("1E+2"), Decimal("100.00")),
        (7, Decimal("7.00")),
    ],
)
def test_quantize_rounds_half_up_to_kopecks(raw, expected):
    assert quantize(raw) == expected
    assert quantize(raw).as_tuple().exponent == -2


@pytest.mark.parametrize("raw", [0.1, True, "abc", "NaN", "Infinity", ""])
def test_non_money_is_refused(raw):
    with pytest.raises(MoneyError):
        to_decimal(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "５",  # a full-width digit: Decimal() reads it as 5
        "٥٠٠",  # Arabic-Indic digits
        "१००",  # Devanagari digits
        "1_000",  # Decimal() reads underscores as digit grouping
        "1e3",
        "1.2.3",
        "--5",
        "+",
        ".",
    ],
)
def test_text_other_than_ascii_digits_is_refused(raw):
    with pytest.raises(MoneyError, match="use the digits 0–9"):
        to_decimal(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" 650 ", Decimal("650")), ("+5", Decimal("5")), (".5", Decimal("0.5")), ("5.", Decimal("5")), (42, Decimal(42))],
)
def test_ascii_amounts_are_read(raw, expected):
    assert to_decimal(raw) == expected


def test_rates_keep_four_places():
    assert quantize_rate("2.00005") == Decimal("2.0001")


@given(st.decimals(min_value=-(10**9), max_value=10**9, allow_nan=False, allow_infinity=False, places=6))
def test_quantize_is_within_half_a_kopeck(value):
    assert abs(quantize(value) - value) <= Decimal("0.005")


def test_format_money_follows_the_language(settings):
    settings.USE_THOUSAND_SEPARATOR = True
    with translation.override("ru"):
        assert format_money(Decimal("1234.5")) == "1\xa0234,50\xa0₽"
    with translation.override("en"):
        assert format_money(Decimal("1234.5")) == "1,234.50\xa0₽"


@pytest.mark.parametrize(("language", "shown"), [("ru", "12\xa0345\xa0678"), ("en", "12,345,678")])
def test_counts_group_through_the_number_filter_and_ids_stay_plain(language, shown):
    from django.template import Context, Template

    template = Template("{% load abonent %}{{ n|number }}|{{ n }}")
    with translation.override(language):
        assert template.render(Context({"n": 12_345_678})) == f"{shown}|12345678"
