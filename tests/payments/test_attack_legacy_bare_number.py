"""Attack review of an old account number standing alone in a bank transfer's purpose (docs/adr/0019): a postcode,
an order or a receipt number equal to somebody's old number must not credit that stranger. The bare number is the
last rule (after the contract and the INN) and credits only when the payer's name is the subscriber's; otherwise
the line waits in suspense with that subscriber shown as the candidate."""

from decimal import Decimal

import pytest

from abonent.billing import ledger
from abonent.billing.selectors import get_balance
from abonent.payments import actions
from abonent.payments.models import Payment, StatementLine
from abonent.payments.statements.matching import match_line
from abonent.subscribers import actions as subscribers

from .statement_samples import cp1251, document, statement

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def semenov(make_subscriber, admin):
    subscriber = make_subscriber(last_name="Семенов", first_name="Пётр", phone="+79161230001")
    subscribers.do_set_legacy_account(subscriber, "173829", by=admin, reason="migration")
    return subscriber


@pytest.fixture
def perm_postcode(make_subscriber, admin):
    """A migrated subscriber whose old number happens to be Perm's postcode."""
    subscriber = make_subscriber(last_name="Индексова", first_name="Анна", phone="+79161230002")
    subscribers.do_set_legacy_account(subscriber, "614000", by=admin, reason="migration")
    return subscriber


def test_a_bare_number_credits_only_a_payer_of_the_same_name(semenov):
    purpose = "Оплата за интернет 173829 Семенов"
    assert match_line(purpose, "", "Семёнов Пётр Иванович").subscriber == semenov
    assert match_line(purpose, "", "СЕМЕНОВ ПЕТР ИВАНОВИЧ").subscriber == semenov
    stranger = match_line(purpose, "", "Петров Иван Сергеевич")
    assert (stranger.subscriber, stranger.candidates, stranger.unconfirmed) == (None, [semenov.pk], True)
    assert match_line(purpose, "", "").subscriber is None


@pytest.mark.parametrize(
    "purpose",
    [
        "Оплата услуг связи. Адрес: 614000, г. Пермь, ул. Ленина, д. 5, кв. 12",
        "Оплата по заказу 614000 за роутер",
        "Квитанция 614000 оплата интернета",
    ],
)
def test_a_postcode_or_an_order_number_is_not_a_strangers_account(perm_postcode, purpose):
    match = match_line(purpose, "", "Петров Пётр Петрович")
    assert match.subscriber is None and match.candidates == [perm_postcode.pk]


def test_a_contract_named_in_the_purpose_wins_over_a_bare_number(semenov, make_subscriber, admin):
    holder = make_subscriber(last_name="Договоров", phone="+79161230003", contract_number="Д-2026/77")
    match = match_line("Оплата по договору Д-2026/77, заказ 173829", "", "Семенов Пётр")
    assert (match.rule, match.subscriber) == ("contract", holder)


def test_the_payers_inn_wins_over_a_bare_number(semenov, make_subscriber, admin):
    org = make_subscriber(
        kind="organization", organization_name="ООО «Ромашка»", inn="5902123458", last_name="", first_name=""
    )
    match = match_line("Оплата по счету за интернет, заказ 173829", "5902123458", "ООО Ромашка")
    assert (match.rule, match.subscriber) == ("inn", org)


def test_an_organisations_bare_number_needs_its_name(make_subscriber, admin):
    org = make_subscriber(
        kind="organization", organization_name="ООО «Ромашка»", inn="5902999990", last_name="", first_name=""
    )
    subscribers.do_set_legacy_account(org, "554433", by=admin)
    assert match_line("Оплата за интернет 554433", "", 'ООО "РОМАШКА"').subscriber == org
    assert match_line("Оплата за интернет 554433", "", "ООО «Лютик»").subscriber is None


def test_a_statement_line_from_a_stranger_waits_in_suspense_with_the_candidate(semenov, perm_postcode, admin):
    content = cp1251(
        statement(
            document(number="31", amount="650.00", payer="Семёнов Пётр Иванович", purpose="Оплата за интернет 173829"),
            document(number="32", amount="700.00", payer="Петров Иван", purpose="Оплата за интернет 173829 Семенов"),
            document(
                number="33", amount="800.00", payer="Петров Иван", purpose="Оплата. 614000, г. Пермь, ул. Мира, 1"
            ),
        )
    )
    imported = actions.do_import_statement(content, filename="s.txt", acting_user=admin)
    assert (imported.statement.credited, imported.statement.suspense) == (1, 2)
    assert get_balance(semenov).balance == D("650.00") and get_balance(perm_postcode).balance == D("0.00")
    for number, candidate in (("32", semenov), ("33", perm_postcode)):
        line = StatementLine.objects.get(number=number)
        assert (line.status, line.rule, line.candidates, line.reason_code) == (
            "suspense",
            "legacy_account",
            [candidate.pk],
            "unconfirmed",
        )
        payment = line.payment
        assert (payment.status, payment.subscriber_id, payment.suspense_reason, payment.details["candidates"]) == (
            "suspense",
            None,
            "unconfirmed",
            [candidate.pk],
        )
    assert Payment.objects.filter(status="suspense").count() == 2 and ledger.verify() == []


def test_the_review_screen_offers_the_unconfirmed_candidate(semenov, admin, client):
    content = cp1251(statement(document(number="41", payer="Петров Иван", purpose="Оплата за интернет 173829 Семенов")))
    imported = actions.do_import_statement(content, filename="s.txt", acting_user=admin)
    client.force_login(admin)
    page = client.get(f"/staff/payments/statements/{imported.statement.pk}/").content.decode()
    assert semenov.account_number in page and semenov.display_name in page
