"""Payers keep the number on their old receipts (docs/adr/0019): the terminal protocol and bank-statement matching
take the old system's account number beside ours, exactly, and do not mistake dates, sums, phones, INNs or invoice
numbers for one."""

import base64
import re
from decimal import Decimal

import pytest
from django.test import Client

from abonent.billing import ledger
from abonent.billing.selectors import get_balance
from abonent.payments import actions
from abonent.payments.actions.agents import do_create_agent
from abonent.payments.models import Payment, StatementLine
from abonent.payments.selectors.agents import forget_agent
from abonent.payments.statements.matching import legacy_numbers_in, match_line
from abonent.subscribers import actions as subscribers

from .statement_samples import cp1251, document, statement

D = Decimal
SEED = "173829"
URL = "/pay/agents/qiwi/"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_agent_cache():
    forget_agent()
    yield
    forget_agent()


@pytest.fixture
def migrated(make_subscriber, admin):
    """The seed article's subscriber: account 173829 in the old billing."""
    subscriber = make_subscriber(last_name="Семёнов")
    subscribers.do_set_legacy_account(subscriber, SEED, by=admin, reason="migration")
    return subscriber


@pytest.fixture
def zeros(make_subscriber, admin):
    subscriber = make_subscriber(last_name="Нулёв", phone="+79161234568")
    subscribers.do_set_legacy_account(subscriber, "007315", by=admin, reason="migration")
    return subscriber


@pytest.fixture
def terminal(admin):
    _agent, secret = do_create_agent(code="qiwi", name="QIWI", login="qiwi", networks="127.0.0.0/8", acting_user=admin)
    token = base64.b64encode(f"qiwi:{secret}".encode()).decode()
    return Client(headers={"Authorization": f"Basic {token}"})


def call(client, **params) -> dict:
    text = client.get(URL, params).content.decode()
    return dict(re.findall(r"<(prv_txn|sum|result|comment)>(.*?)</\1>", text))


def balance(subscriber) -> Decimal:
    return get_balance(subscriber).balance


# --- the terminal protocol ------------------------------------------------------------------------------------------


def test_check_and_pay_take_the_old_number_and_credit_its_subscriber_once(terminal, migrated):
    assert call(terminal, command="check", txn_id="1", account=SEED, sum="650")["result"] == "0"
    first = call(terminal, command="pay", txn_id="1", account=SEED, sum="650.00")
    again = call(terminal, command="pay", txn_id="1", account=SEED, sum="650.00")
    assert first["result"] == again["result"] == "0" and first["prv_txn"] == again["prv_txn"]
    payment = Payment.objects.get()
    assert (payment.subscriber_id, payment.account_ref, payment.amount, payment.status) == (
        migrated.pk,
        SEED,
        D("650.00"),
        "credited",
    )
    assert balance(migrated) == D("650.00") and ledger.verify() == []


def test_our_number_still_works_beside_the_old_one(terminal, migrated):
    paid = call(terminal, command="pay", txn_id="2", account=migrated.account_number, sum="100")
    assert paid["result"] == "0" and balance(migrated) == D("100.00")


def test_leading_zeros_are_part_of_the_number(terminal, zeros):
    assert call(terminal, command="check", txn_id="3", account="7315", sum="10")["result"] == "5"
    assert call(terminal, command="pay", txn_id="3", account="7315", sum="10")["result"] == "5"
    assert call(terminal, command="pay", txn_id="4", account="007315", sum="10")["result"] == "0"
    assert balance(zeros) == D("10.00") and Payment.objects.count() == 1


@pytest.mark.parametrize(
    ("account", "result"),
    [
        ("1738290", "5"),  # digits nobody has: not found
        ("17382", "5"),  # a prefix of an old number is another number
        ("١٧٣٨٢٩", "4"),  # Arabic-Indic digits are not a number a terminal sends
        ("9" * 21, "4"),
    ],
)
def test_what_names_nobody_is_refused_with_the_protocols_code_and_nothing_taken(terminal, migrated, account, result):
    for command in ("check", "pay"):
        assert call(terminal, command=command, txn_id="5", account=account, sum="10")["result"] == result
    assert Payment.objects.count() == 0 and balance(migrated) == D("0.00")


def test_a_closed_account_found_by_its_old_number_answers_79(terminal, migrated, admin):
    subscribers.do_close_subscriber(migrated, reason="moved", acting_user=admin)
    assert call(terminal, command="pay", txn_id="6", account=SEED, sum="10")["result"] == "79"
    assert Payment.objects.count() == 0


# --- bank statements ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "purpose",
    [
        "Оплата по л/с 173829 за интернет",
        "Оплата услуг связи по л/с №173829 за декабрь 2026 г. НДС не облагается",
        "ОПЛАТА ЗА ИНТЕРНЕТ ЛС173829 ИВАНОВ И.И.",
        "Оплата по лицевому счету 173829, сумма 650-00, без НДС",
        "Лиц. счет: 173829. Интернет-100 за 12.2026",
        "Payment for internet, account 173829",
    ],
)
def test_a_purpose_naming_the_old_number_matches_its_subscriber(migrated, purpose):
    match = match_line(purpose, "")
    assert (match.rule, match.subscriber) == ("legacy_account", migrated)


@pytest.mark.parametrize(
    "purpose",
    [
        "Оплата по счету № 173829 от 01.12.2026",  # an invoice number
        "Оплата за интернет 1738290",  # a longer number that starts with it
        "Оплата 17382 руб. за интернет",  # a sum
        "ИНН 173829 оплата",  # said to be an INN
        "Тел. 173829, оплата услуг",  # said to be a phone
        "Оплата 1738.29 за интернет",
        "Оплата 173829,00 за интернет",
        "Оплата за период 17.38.29",
        "Оплата по договору 173829",  # a contract number: the contract rule's, not this one's
    ],
)
def test_numbers_that_only_look_like_it_do_not_match(migrated, purpose):
    assert match_line(purpose, "").subscriber is None


def test_short_numbers_match_only_after_a_marker(make_subscriber, admin):
    short = make_subscriber(last_name="Кратов", phone="+79161234569")
    subscribers.do_set_legacy_account(short, "2026", by=admin)
    assert match_line("Оплата за интернет за 2026 год", "").subscriber is None
    assert match_line("Оплата л/с 2026 за интернет", "").subscriber == short


def test_phones_dates_and_sums_are_not_candidates():
    marked, alone = legacy_numbers_in(
        "Иванов И.И., тел. 8 (916) 123-45-67, +7 903 111 22 33, за 01.12.2026, 1 500,00 руб., НДС 20% 250.00"
    )
    assert (marked, alone) == ([], [])


def test_two_accounts_named_in_one_purpose_go_to_suspense_as_ambiguous(migrated, make_subscriber, admin):
    other = make_subscriber(last_name="Другов", phone="+79161234570")
    subscribers.do_set_legacy_account(other, "555001", by=admin)
    match = match_line("Оплата л/с 173829 и л/с 555001", "")
    assert match.subscriber is None and match.candidates == sorted([migrated.pk, other.pk])
    ours_and_old = match_line(f"Оплата л/с 173829, новый {other.account_number}", "")
    assert ours_and_old.ambiguous and ours_and_old.candidates == sorted([migrated.pk, other.pk])


def test_a_statement_credits_by_the_old_number_and_re_import_adds_nothing(migrated, make_staff):
    from abonent.staff.permissions import Role

    cashier = make_staff(Role.CASHIER)
    content = cp1251(
        statement(
            document(number="21", amount="650.00", purpose="Оплата по л/с 173829 за интернет"),
            document(number="22", amount="650.00", purpose="Оплата по л/с 1738290 за интернет"),
        )
    )
    first = actions.do_import_statement(content, filename="s.txt", acting_user=cashier)
    again = actions.do_import_statement(content, filename="s.txt", acting_user=cashier)
    assert (first.statement.credited, first.statement.suspense) == (1, 1) and not again.created
    line = StatementLine.objects.get(number="21")
    assert (line.status, line.rule, line.payment.subscriber_id) == ("credited", "legacy_account", migrated.pk)
    assert balance(migrated) == D("650.00") and Payment.objects.count() == 2 and ledger.verify() == []
