"""Attack review of old account numbers in bank-statement purposes (docs/adr/0019): a payer's initials "Л.С." read
as the marker "л/с", or a sum after the marker or after "сумма", must not credit a migrated subscriber whose short
old number happens to be that sum."""

import pytest

from abonent.payments.statements.matching import legacy_numbers_in, match_line
from abonent.subscribers import actions as subscribers

pytestmark = pytest.mark.django_db


@pytest.fixture
def holder_of_1500(make_subscriber, admin):
    subscriber = make_subscriber(last_name="Полторак")
    subscribers.do_set_legacy_account(subscriber, "1500", by=admin, reason="migration")
    return subscriber


@pytest.mark.parametrize(
    "purpose",
    [
        "Оплата за интернет Смирнова Л.С. 1500",  # initials, then the sum
        "Оплата услуг связи. Плательщик: Смирнова Л. С. 1500",
        "ОПЛАТА ЗА ИНТЕРНЕТ СМИРНОВА Л.С. 1500",
        "Оплата за интернет Смирнова Л.С. 1500 руб.",
        "Оплата интернет л/с 1500 руб.",  # a sum glued to the marker, the account forgotten
    ],
)
def test_initials_and_sums_do_not_name_an_old_account(holder_of_1500, purpose):
    assert match_line(purpose, "").subscriber is None


def test_a_sum_named_as_such_is_not_a_candidate():
    assert legacy_numbers_in("Оплата за интернет, сумма 15000, Иванов") == ([], [])
    assert legacy_numbers_in("Оплата на сумму 15000 Иванов") == ([], [])


@pytest.mark.parametrize(
    "purpose",
    ["Оплата по л.с. 1500 за интернет", "Оплата по Л.С. 1500", "Оплата по л/с 1500", "ЛС 1500 Смирнова Л.С."],
)
def test_the_marker_still_works_in_those_spellings(holder_of_1500, purpose):
    assert match_line(purpose, "").subscriber == holder_of_1500


def test_a_marked_number_naming_nobody_does_not_fall_back_to_a_stray_one(make_subscriber, admin):
    # The payer said which number is the account (a typo of it, or a number not migrated): the postcode further on
    # is not a second guess at it.
    postcode = make_subscriber(last_name="Индексов")
    subscribers.do_set_legacy_account(postcode, "614000", by=admin, reason="migration")
    match = match_line("Оплата по л/с 17382 за интернет, Иванов И.И., 614000 г. Пермь, ул. Ленина 5", "")
    assert match.subscriber is None and match.candidates == []
    # Alone, it still counts when the payer is the subscriber (test_attack_legacy_bare_number).
    assert match_line("Оплата за интернет 614000", "", "Индексов Иван").subscriber == postcode
