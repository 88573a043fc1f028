"""The money rules of a document as properties: VAT inside a price, per line; totals are the sums of the lines;
the amount in words reads back the roubles and kopecks."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abonent.documents import content

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999999.99"), places=2)
rates = st.sampled_from([None, 5, 7, 10, 20, 22])


@given(amount=amounts, rate=rates)
def test_vat_is_inside_the_price_and_rounded_to_a_kopeck(amount, rate):
    line = content.make_line("Интернет", amount, rate=rate)

    if rate is None:
        assert line["vat_amount"] is None and line["vat_label"] == "Без НДС"
        assert Decimal(line["amount_net"]) == amount
        return
    vat = Decimal(line["vat_amount"])
    exact = amount * rate / (100 + rate)
    assert abs(vat - exact) <= Decimal("0.005")
    assert vat + Decimal(line["amount_net"]) == amount
    assert vat.as_tuple().exponent == -2


@given(parts=st.lists(amounts, min_size=1, max_size=8), rate=rates)
def test_totals_are_the_sums_of_the_rounded_lines(parts, rate):
    lines = [content.make_line(f"Услуга {i}", amount, rate=rate) for i, amount in enumerate(parts)]

    total, vat = content.totals(lines)

    assert total == sum(parts)
    if rate is None:
        assert vat is None
    else:
        assert vat == sum(Decimal(line["vat_amount"]) for line in lines)


@given(amount=st.decimals(min_value=Decimal("0.00"), max_value=Decimal("999999999.99"), places=2))
def test_amount_in_words_ends_with_the_kopecks_in_figures(amount):
    words = content.amount_in_words(amount)

    kopecks = int(amount * 100) % 100
    assert f" {kopecks:02d} копе" in words
    assert words[0].isupper()
    assert ("рубл" in words) and not words.startswith("Минус")


def test_a_negative_amount_in_words():
    assert content.amount_in_words(Decimal("-5.50")) == "Минус пять рублей 50 копеек"


@pytest.mark.parametrize(("roubles", "form"), [(1, "рубль"), (2, "рубля"), (5, "рублей"), (11, "рублей"), (21, "рубль"),
                                               (112, "рублей"), (1004, "рубля")])  # fmt: skip
def test_rouble_forms(roubles, form):
    assert content.amount_in_words(Decimal(roubles)).endswith(f" {form} 00 копеек")
