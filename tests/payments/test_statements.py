"""Bank statement import (1CClientBankExchange): real files in cp1251, cp866 and UTF-8, matching by account
number, contract and INN, quarantine of broken lines, and re-imports that add nothing."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from abonent.billing import ledger
from abonent.billing.selectors import get_balance
from abonent.payments import actions
from abonent.payments.models import BankStatement, Payment, PaymentStatus, StatementLine
from abonent.payments.statements.parser import parse_amount, parse_statement
from abonent.staff.permissions import Role
from abonent.subscribers import actions as subscribers

from .statement_samples import OTHER_ACCOUNT, OUR_ACCOUNT, cp1251, document, statement

D = Decimal
INN_ORG = "7707083893"
INN_PERSON = "500100732259"


def balance(subscriber) -> Decimal:
    return get_balance(subscriber).balance


def bank_suspense() -> Decimal:
    return sum((p.amount for p in ledger.system_account("suspense").postings.all()), D("0"))


def do_import(content: bytes, user, filename="statement.txt"):
    return actions.do_import_statement(content, filename=filename, acting_user=user)


@pytest.fixture
def ivanov(make_subscriber):
    return make_subscriber()


@pytest.fixture
def petrov(make_subscriber):
    return make_subscriber(last_name="Петров", first_name="Пётр", contract_number="Д-2026/77")


@pytest.fixture
def org(make_subscriber):
    return make_subscriber(
        kind="organization", organization_name="ООО Ромашка", inn=INN_ORG, last_name="", first_name=""
    )


@pytest.mark.django_db
def test_a_cp1251_statement_credits_by_account_number_contract_and_inn(ivanov, petrov, org, cashier):
    # Given a day's statement: three payers naming their account three ways, an outgoing payment, a broken line
    content = cp1251(
        statement(
            document(number="11", amount="650.00", purpose=f"Оплата интернета л/с {ivanov.account_number}, НДС нет"),
            document(number="12", amount="1 200,50", purpose="Оплата по договору № Д-2026/77 за декабрь"),
            document(number="13", amount="15000", payer="ООО Ромашка", payer_inn=INN_ORG, purpose="Оплата по счёту 5"),
            document(number="14", amount="99.00", payer_account=OUR_ACCOUNT, recipient_account=OTHER_ACCOUNT),
            document(number="15", amount="сто рублей", purpose=f"л/с {ivanov.account_number}"),
        )
    )
    # When a cashier imports it
    result = do_import(content, cashier)
    # Then each payer is credited once, by the rule that found them
    assert result.created
    s = result.statement
    assert (s.documents, s.credited, s.suspense, s.ambiguous, s.broken, s.ignored, s.repeated) == (5, 3, 0, 0, 1, 1, 0)
    assert s.credited_amount == D("16850.50") and s.encoding == "cp1251" and s.account == OUR_ACCOUNT
    assert (s.date_from, s.date_to) == (dt.date(2026, 12, 1), dt.date(2026, 12, 1))
    assert balance(ivanov) == D("650.00") and balance(petrov) == D("1200.50") and balance(org) == D("15000.00")
    rules = dict(StatementLine.objects.filter(status="credited").values_list("number", "rule"))
    assert rules == {"11": "account_number", "12": "contract", "13": "inn"}
    payment = Payment.objects.get(subscriber=org)
    assert (payment.channel, payment.method, payment.payer, payment.payer_inn) == (
        "bank",
        "bank",
        "ООО Ромашка",
        INN_ORG,
    )
    # No taken_by: bank money is reported by the bank, not taken by the uploading cashier (it must not count in their
    # cash day nor be "theirs" to cancel; test_attack_channels). The uploader is the statement's.
    assert timezone.localdate(payment.received_at) == dt.date(2026, 12, 1) and payment.taken_by is None
    assert payment.external_id == StatementLine.objects.get(number="13").key
    # The broken line is quarantined with its reason and raw text; the outgoing one is ignored
    broken = StatementLine.objects.get(status="broken")
    assert broken.reason_code == "amount_invalid" and broken.reason_detail == "сто рублей"
    assert "Сумма=сто рублей" in broken.raw and broken.payment is None
    ignored = StatementLine.objects.get(status="ignored")
    assert ignored.reason_code == "outgoing" and ignored.payment is None
    assert Payment.objects.count() == 3
    assert ledger.verify() == []


@pytest.mark.django_db
def test_importing_the_same_file_twice_creates_nothing(ivanov, cashier, admin):
    content = cp1251(statement(document(purpose=f"л/с {ivanov.account_number}")))
    first = do_import(content, cashier)
    again = do_import(content, admin, filename="another-name.txt")
    assert first.created and not again.created and again.statement.pk == first.statement.pk
    assert BankStatement.objects.count() == 1 and StatementLine.objects.count() == 1 and Payment.objects.count() == 1
    assert balance(ivanov) == D("1500.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_an_overlapping_statement_adds_only_the_new_lines(ivanov, petrov, cashier):
    monday = document(number="1", amount="300.00", purpose=f"л/с {ivanov.account_number}")
    broken = document(number="2", date="31.11.2026", purpose=f"л/с {ivanov.account_number}")
    tuesday = document(number="7", date="02.12.2026", amount="500.00", purpose="дог. Д-2026/77")
    do_import(cp1251(statement(monday, broken)), cashier)
    # The next day's statement covers both days (another file: other dates in the header)
    second = do_import(cp1251(statement(monday, broken, tuesday, end="02.12.2026")), cashier).statement
    assert (second.documents, second.credited, second.broken, second.repeated) == (3, 1, 0, 2)
    assert second.lines.count() == 1
    assert balance(ivanov) == D("300.00") and balance(petrov) == D("500.00")
    assert StatementLine.objects.count() == 3 and Payment.objects.count() == 2
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_payment_matching_two_subscribers_waits_in_suspense_with_both_as_candidates(make_subscriber, cashier):
    # Given a parent paying for two connections with the same INN, and a payment naming no account
    first = make_subscriber(inn=INN_PERSON)
    second = make_subscriber(inn=INN_PERSON, last_name="Иванова")
    content = cp1251(
        statement(
            document(number="21", amount="800.00", payer_inn=INN_PERSON, purpose="за интернет"),
            document(number="22", amount="100.00", purpose="за интернет, номер не помню"),
        )
    )
    s = do_import(content, cashier).statement
    assert (s.credited, s.suspense, s.ambiguous) == (0, 1, 1) and s.suspense_amount == D("900.00")
    line = StatementLine.objects.get(number="21")
    assert line.status == "ambiguous" and line.rule == "inn" and line.candidates == sorted([first.pk, second.pk])
    assert line.payment.status == PaymentStatus.SUSPENSE and line.payment.suspense_reason == "ambiguous"
    assert line.payment.details["candidates"] == line.candidates
    unknown = StatementLine.objects.get(number="22")
    assert unknown.status == "suspense" and unknown.payment.suspense_reason == "unknown_account"
    assert balance(first) == balance(second) == D("0.00") and bank_suspense() == D("900.00")
    # When staff assign the ambiguous one, the money reaches the chosen subscriber
    actions.do_assign_payment(line.payment, subscriber=second, acting_user=cashier)
    assert balance(second) == D("800.00") and bank_suspense() == D("100.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_account_numbers_are_whole_tokens_with_a_valid_check_digit(ivanov, cashier):
    number = ivanov.account_number
    typo = number[:-1] + str((int(number[-1]) + 1) % 10)
    content = cp1251(
        statement(
            document(number="31", amount="10.00", purpose=f"тел. 8{number}0 оплата"),  # inside a longer number
            document(number="32", amount="20.00", purpose=f"л/с {typo}"),  # a typo: the check digit fails
            document(number="33", amount="30.00", purpose=f"л/с№{number}."),
        )
    )
    s = do_import(content, cashier).statement
    assert (s.credited, s.suspense) == (1, 2) and balance(ivanov) == D("30.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_closed_subscribers_payment_is_matched_but_kept_in_suspense(ivanov, cashier, admin):
    subscribers.do_close_subscriber(ivanov, reason="moved away", acting_user=admin)
    s = do_import(cp1251(statement(document(purpose=f"л/с {ivanov.account_number}"))), cashier).statement
    line = s.lines.get()
    assert line.status == "matched" and line.payment.suspense_reason == "closed_account"
    assert s.suspense == 1 and balance(ivanov) == D("0.00") and bank_suspense() == D("1500.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_utf8_and_dos_files_read_the_same(ivanov, cashier):
    text = statement(document(number="41", purpose=f"Оплата л/с {ivanov.account_number}"), encoding="Windows")
    do_import("\ufeff".encode() + text.encode("utf-8"), cashier)  # UTF-8 with a BOM, still saying Windows
    dos = statement(document(number="42", amount="2.00", purpose=f"Оплата л/с {ivanov.account_number}"), encoding="DOS")
    s = do_import(dos.replace("«", '"').replace("»", '"').encode("cp866"), cashier).statement
    assert s.encoding == "cp866" and s.lines.get().payer == "Петров Пётр Петрович"
    assert BankStatement.objects.get(encoding="utf-8").lines.get().purpose.startswith("Оплата л/с")
    assert balance(ivanov) == D("1502.00")
    assert ledger.verify() == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "required"),
        (b"%PDF-1.4 binary", "statement_format"),
        (b"1CClientBankExchange\r\n\x00\x01\x02", "statement_encoding"),
        ("\ufeff1CClientBankExchange\r\nВерсияФормата=1.03".encode("utf-16"), "statement_encoding"),
        # cp1251 bytes 0x98 decode in neither cp1251 nor UTF-8, and cp866 shows no known key
        (b"1CClientBankExchange\r\n\x98\x98\x98=\x98\r\n", "statement_encoding"),
    ],
)
def test_a_file_that_is_not_a_readable_statement_is_refused_and_nothing_is_written(content, code, cashier):
    with pytest.raises(ValidationError) as exc:
        do_import(content, cashier)
    assert exc.value.error_dict["file"][0].code == code
    assert BankStatement.objects.count() == 0 and Payment.objects.count() == 0


@pytest.mark.django_db
def test_lines_with_missing_fields_bad_dates_or_absurd_amounts_are_quarantined(ivanov, cashier):
    ref = f"л/с {ivanov.account_number}"
    content = cp1251(
        statement(
            document(number="51", purpose=ref, drop=("Сумма",)),
            document(number="52", purpose=ref, date="2026-12-01"),
            document(number="53", purpose=ref, amount="-100.00"),
            document(number="54", purpose=ref, amount="0,00"),
            document(number="55", purpose=ref, amount="99999999999"),
            document(number="57", purpose=ref, amount="1e5"),
            document(number="58", purpose=ref, drop=("ПолучательСчет",)),
            document(number="59", amount="7.00", purpose=ref),
        )
    )
    s = do_import(content, cashier).statement
    assert (s.broken, s.credited) == (7, 1) and balance(ivanov) == D("7.00")
    codes = dict(StatementLine.objects.filter(status="broken").values_list("number", "reason_code"))
    assert codes == {
        "51": "fields_missing",
        "52": "date_invalid",
        "53": "amount_invalid",
        "54": "amount_invalid",
        "55": "amount_invalid",
        "57": "amount_invalid",
        "58": "fields_missing",
    }
    assert StatementLine.objects.get(number="51").reason_detail == "Сумма"
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_truncated_file_keeps_the_unclosed_document_in_quarantine(ivanov, cashier):
    whole = cp1251(statement(document(number="61", purpose=f"л/с {ivanov.account_number}")))
    cut = whole[: whole.index("КонецДокумента".encode("cp1251"))]
    s = do_import(cut, cashier).statement
    line = s.lines.get()
    assert line.status == "broken" and line.reason_code == "document_unclosed" and "Номер=61" in line.raw
    assert balance(ivanov) == D("0.00")


@pytest.mark.django_db
def test_configured_accounts_decide_which_lines_are_ours(ivanov, cashier, settings):
    settings.ABONENT_BANK_ACCOUNTS = [OTHER_ACCOUNT]
    content = cp1251(
        statement(
            document(number="71", amount="10.00", purpose=f"л/с {ivanov.account_number}"),
            document(
                number="72", amount="20.00", recipient_account=OTHER_ACCOUNT, purpose=f"л/с {ivanov.account_number}"
            ),
        )
    )
    s = do_import(content, cashier).statement
    assert (s.credited, s.ignored) == (1, 1) and balance(ivanov) == D("20.00")
    assert StatementLine.objects.get(number="71").reason_code == "other_account"


@pytest.mark.django_db
def test_who_may_import(make_staff, ivanov):
    content = cp1251(statement(document(purpose=f"л/с {ivanov.account_number}")))
    with pytest.raises(PermissionDenied):
        do_import(content, make_staff(Role.SUPPORT))
    assert BankStatement.objects.count() == 0 and balance(ivanov) == D("0.00")


@pytest.mark.django_db
def test_the_parser_reads_the_header_accounts_and_joined_purpose_lines():
    text = statement(
        document(number="81", purpose="", extra={"НазначениеПлатежа1": "Оплата", "НазначениеПлатежа2": "л/с 1"})
    )
    parsed = parse_statement(text.encode("cp1251"))
    assert parsed.accounts == [OUR_ACCOUNT] and parsed.header["ВерсияФормата"] == "1.03"
    assert len(parsed.documents) == 1 and parsed.documents[0].fields["НазначениеПлатежа1"] == "Оплата"


@pytest.mark.django_db
def test_the_command_imports_a_file_and_prints_the_counts(ivanov, tmp_path, admin, capsys):
    path = tmp_path / "kl_to_1c.txt"
    path.write_bytes(cp1251(statement(document(purpose=f"л/с {ivanov.account_number}"))))
    call_command("payments", "import-statement", str(path), "--user", admin.username)
    out = capsys.readouterr().out
    assert "credited 1" in out and balance(ivanov) == D("1500.00")
    call_command("payments", "import-statement", str(path), "--user", admin.username)
    assert "already imported" in capsys.readouterr().out
    assert Payment.objects.count() == 1 and ledger.verify() == []


@pytest.mark.django_db(transaction=True)
def test_the_same_file_uploaded_twice_at_once_imports_once(ivanov, cashier, admin, together):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL; SQLite serialises the whole database")
    content = cp1251(statement(document(purpose=f"л/с {ivanov.account_number}")))
    out = together(lambda: do_import(content, cashier), lambda: do_import(content, admin))
    assert all(isinstance(o, actions.StatementImport) for o in out), out
    assert sum(o.created for o in out) == 1 and {o.statement.pk for o in out} == {BankStatement.objects.get().pk}
    assert Payment.objects.count() == 1 and balance(ivanov) == D("1500.00")
    assert ledger.verify() == []


@pytest.mark.django_db(transaction=True)
def test_two_overlapping_statements_at_once_take_each_payment_in_once(ivanov, petrov, cashier, admin, together):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL; SQLite serialises the whole database")
    monday = document(number="1", amount="300.00", purpose=f"л/с {ivanov.account_number}")
    tuesday = document(number="2", date="02.12.2026", amount="500.00", purpose="дог. Д-2026/77")
    out = together(
        lambda: do_import(cp1251(statement(monday)), cashier),
        lambda: do_import(cp1251(statement(monday, tuesday, end="02.12.2026")), admin),
    )
    assert all(isinstance(o, actions.StatementImport) and o.created for o in out), out
    assert sorted(o.statement.repeated for o in out) == [0, 1]
    assert Payment.objects.count() == 2 and StatementLine.objects.count() == 2
    assert balance(ivanov) == D("300.00") and balance(petrov) == D("500.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_gateways_payout_is_ignored_not_put_in_suspense(ivanov, cashier, settings):
    settings.ABONENT_BANK_SETTLEMENT_INNS = ["7750005725"]  # the acquirer paying out what its payments took in
    content = cp1251(
        statement(
            document(number="91", amount="18450.00", payer="НКО ЮMoney", payer_inn="7750005725", purpose="Реестр 15"),
            document(number="92", amount="5.00", purpose=f"л/с {ivanov.account_number}"),
        )
    )
    s = do_import(content, cashier).statement
    assert (s.ignored, s.credited, s.suspense) == (1, 1, 0) and bank_suspense() == D("0")
    assert StatementLine.objects.get(number="91").reason_code == "settlement"


@pytest.mark.django_db
def test_a_file_past_the_size_limit_is_refused(cashier, settings, ivanov):
    content = cp1251(statement(document(purpose=f"л/с {ivanov.account_number}")))
    settings.ABONENT_BANK_STATEMENT_MAX_BYTES = len(content) - 1
    with pytest.raises(ValidationError) as exc:
        do_import(content, cashier)
    assert exc.value.error_dict["file"][0].code == "file_too_large" and BankStatement.objects.count() == 0


@pytest.mark.django_db
def test_the_command_reports_a_missing_file_a_bad_user_and_a_bad_file(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        call_command("payments", "import-statement", str(tmp_path / "none.txt"))
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff")
    with pytest.raises(CommandError, match="no active user"):
        call_command("payments", "import-statement", str(path), "--user", "nobody")
    with pytest.raises(CommandError, match="1CClientBankExchange"):
        call_command("payments", "import-statement", str(path))


@given(
    amount=st.decimals(min_value=D("0.01"), max_value=D("9999999999.99"), places=2),
    comma=st.booleans(),
    grouped=st.booleans(),
)
def test_amounts_read_back_whichever_way_the_bank_writes_them(amount, comma, grouped):
    text = f"{amount:,.2f}".replace(",", " " if grouped else "")
    if comma:
        text = text.replace(".", ",")
    assert parse_amount(text) == amount
