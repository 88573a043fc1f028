"""Adversarial tests of the payment channels (terminals, bank statements, the cash desk, the console and the API).

Each test here FAILS on the code as reviewed: its comment says what breaks and why it matters. Do not "fix" a test
by weakening it; fix the code.
"""

import base64
import datetime as dt
import json
import re
import threading
import time
import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections, transaction
from django.test import Client

from abonent.billing import ledger
from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.payments import actions
from abonent.payments.actions.agents import do_create_agent, do_update_agent
from abonent.payments.models import Payment
from abonent.payments.selectors.agents import forget_agent
from abonent.staff.actions import do_create_api_token
from abonent.staff.permissions import Role

from .statement_samples import cp1251, document, statement

D = Decimal
FRESH = object()


class Api(Client):
    def post(self, path, data=None, *, key=FRESH, **extra):
        if key is FRESH:
            key = uuid.uuid4().hex
        if key is not None:
            extra["headers"] = {"Idempotency-Key": key, **extra.get("headers", {})}
        body = data if isinstance(data, str) else json.dumps(data or {})
        return super().post(path, body, content_type="application/json", **extra)


def api_for(user) -> Api:
    _token, plaintext = do_create_api_token(user=user, name="attack")
    return Api(headers={"Authorization": f"Bearer {plaintext}"}, raise_request_exception=False)


def balance(subscriber) -> Decimal:
    return get_balance(subscriber).balance


@pytest.fixture(autouse=True)
def _fresh_agent_cache():
    forget_agent()
    yield
    forget_agent()


# --- Terminals (the check/pay protocol) ------------------------------------------------------------------------

AGENT_URL = "/pay/agents/qiwi/"


@pytest.fixture
def agent_and_secret(admin):
    return do_create_agent(code="qiwi", name="QIWI", login="qiwi", networks="127.0.0.0/8", acting_user=admin)


@pytest.fixture
def terminal(agent_and_secret):
    token = base64.b64encode(f"qiwi:{agent_and_secret[1]}".encode()).decode()
    return Client(headers={"Authorization": f"Basic {token}"}, raise_request_exception=False)


def osmp(client, **params) -> dict:
    text = client.get(AGENT_URL, params).content.decode()
    return dict(re.findall(r"<(osmp_txn_id|prv_txn|prv_txn_date|sum|result|comment)>(.*?)</\1>", text))


@pytest.mark.django_db
def test_a_repeated_pay_after_the_agents_limits_changed_answers_the_same_prv_txn(
    terminal, agent_and_secret, subscriber, admin
):
    # What breaks: ``pay`` checks the sum against the agent's CURRENT min/max before it looks for the txn_id already
    # taken, so a retry of a payment we credited (the agent lost our answer) is answered 242 once staff lower the
    # maximum. 242 is final: the agent hands the 5,000 back to the payer, and the subscriber keeps the credit too.
    # Invariant: a repeated pay gets the same prv_txn, whatever changed since.
    agent, _secret = agent_and_secret
    first = osmp(terminal, command="pay", txn_id="9001", account=subscriber.account_number, sum="5000.00")
    assert first["result"] == "0"
    do_update_agent(agent, max_sum=D("1000.00"), acting_user=admin)
    again = osmp(terminal, command="pay", txn_id="9001", account=subscriber.account_number, sum="5000.00")
    assert (again["result"], again.get("prv_txn")) == ("0", first["prv_txn"])
    assert balance(subscriber) == D("5000.00") and Payment.objects.count() == 1
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_repeated_pay_after_the_agent_was_switched_off_answers_the_same_prv_txn(
    terminal, agent_and_secret, subscriber, admin
):
    # What breaks: a retry of a payment already credited is answered 7 ("payments switched off", final) once staff
    # switch the agent off, e.g. at the end of a contract while the agent still retries yesterday's lost answers.
    # The agent returns the money to the payer although the subscriber was credited: money paid out twice.
    agent, _secret = agent_and_secret
    first = osmp(terminal, command="pay", txn_id="9002", account=subscriber.account_number, sum="700.00")
    assert first["result"] == "0"
    do_update_agent(agent, active=False, acting_user=admin)
    again = osmp(terminal, command="pay", txn_id="9002", account=subscriber.account_number, sum="700.00")
    assert (again["result"], again.get("prv_txn")) == ("0", first["prv_txn"])
    assert balance(subscriber) == D("700.00") and Payment.objects.count() == 1


# --- The cash desk: the day close ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("channel", ["cash", "manual"])
def test_a_closed_cash_day_cannot_be_bypassed_through_the_api(cashier, subscriber, channel):
    # What breaks: the console's cash desk refuses a payment once the cashier closed the day (cash_day_closed), but
    # POST /api/v1/payments with the same cashier's token takes cash (or a manual payment) at once: 201, credited,
    # taken_by the cashier, dated in the closed day. The frozen close (what the cashier handed over) no longer
    # matches the day's payments, and a cashier can pocket cash after the count. It must be refused as the
    # console refuses it, with nothing written.
    actions.do_close_cash_day(cashier, day=clock.today(), acting_user=cashier)
    response = api_for(cashier).post(
        "/api/v1/payments", {"channel": channel, "subscriber_id": subscriber.pk, "amount": "500.00"}
    )
    assert response.status_code == 422, response.content
    assert response.json()["error"]["fields"][0]["code"] == "cash_day_closed"
    assert Payment.objects.count() == 0 and balance(subscriber) == D("0.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_closed_past_cash_day_cannot_be_reopened_by_a_backdated_api_payment(cashier, subscriber):
    # What breaks: the API lets staff date a payment up to a year back (received_at); a cashier whose yesterday is
    # closed posts cash "received" yesterday and it lands in the closed, counted day (its report lists it, the
    # frozen totals do not). A closed day must take nothing more, whatever the channel and the date given.
    yesterday = clock.today() - dt.timedelta(days=1)
    with clock.travel_to(dt.datetime.combine(yesterday, dt.time(18, 0), tzinfo=clock.now().tzinfo)):
        actions.do_close_cash_day(cashier, day=yesterday, acting_user=cashier)
    moment = dt.datetime.combine(yesterday, dt.time(12, 0), tzinfo=clock.now().tzinfo)
    response = api_for(cashier).post(
        "/api/v1/payments",
        {"channel": "cash", "subscriber_id": subscriber.pk, "amount": "300.00", "received_at": moment.isoformat()},
    )
    assert response.status_code == 422, response.content
    assert Payment.objects.count() == 0 and balance(subscriber) == D("0.00")


# --- Absurd query parameters: never a 500 --------------------------------------------------------------------


@pytest.fixture
def console(admin):
    client = Client(raise_request_exception=False)
    client.force_login(admin)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["date_to=9999-12-31", "date_from=9999-12-31"])
@pytest.mark.parametrize("page", ["/staff/payments/", "/staff/payments/export.csv"])
def test_the_journal_with_the_last_representable_date_is_not_a_500(console, page, query):
    # What breaks: the journal's period ends at day_bounds(date_to)[1] = date_to + 1 day, which overflows for
    # 9999-12-31 (OverflowError: date value out of range): the journal and its CSV export answer 500. A date the
    # form itself accepts (the browser's date picker offers it) must give a page (empty) or a field error.
    response = console.get(f"{page}?{query}")
    assert response.status_code in (200, 422)


@pytest.mark.django_db
@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_a_cash_report_of_an_absurd_date_is_not_a_500(console, admin, day):
    # What breaks: /staff/payments/cash-reports/<me>/<date>/ parses any ISO date and computes the day's bounds:
    # 9999-12-31 overflows on every database, 0001-01-01 on SQLite (the aware midnight cannot be turned into UTC).
    # Any cashier can reach their own report: a 500 for a typed URL; it should be 404 (or an empty report).
    response = console.get(f"/staff/payments/cash-reports/{admin.pk}/{day}/")
    assert response.status_code in (200, 404)


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "received_from=0001-01-01T00:00:00%2B05:00",
        "received_to=9999-12-31T23:59:59-05:00",
        "subscriber_id=99999999999999999999999",
        "cursor=" + _cursor("0001-01-01T00:00:00+05:00|1"),
    ],
)
def test_the_payments_api_with_absurd_parameters_is_not_a_500(admin, query):
    # What breaks (SQLite, the embedded install): a moment at the edge of the calendar with an offset cannot be
    # converted to UTC for the query (OverflowError), and a subscriber_id past 2^63 cannot be bound (OverflowError):
    # GET /api/v1/payments answers 500 internal_error. PostgreSQL answers 200 []. It must be 422 (a field error) or
    # an empty page on every supported database.
    response = api_for(admin).get(f"/api/v1/payments?{query}")
    assert response.status_code in (200, 422), response.content


# --- Bank statements --------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("date", "received"),
    [("31.12.9999", ""), ("01.12.2026", "31.12.9999"), ("01.12.2026", "01.01.0001")],
)
def test_a_statement_line_dated_at_the_ends_of_the_calendar_is_quarantined(make_subscriber, admin, date, received):
    # What breaks: a document's Дата/ДатаПоступило is taken as is when it is a valid calendar date. A line dated
    # 31.12.9999 is CREDITED with a ledger date in the year 9999 (every later period, balance-as-of and report sees
    # it in the wrong place, and the key built from that date never matches the real one); a ДатаПоступило of
    # 01.01.0001 is credited in the year 1 on PostgreSQL and raises OverflowError (the whole import a 500) on
    # SQLite. A hostile or garbled date must quarantine the line (broken, date_invalid) and credit nothing.
    ivanov = make_subscriber()
    content = cp1251(
        statement(document(number="5", date=date, received=received, purpose=f"л/с {ivanov.account_number}"))
    )
    s = actions.do_import_statement(content, acting_user=admin).statement
    line = s.lines.get()
    assert (line.status, line.reason_code) == ("broken", "date_invalid")
    assert Payment.objects.count() == 0 and balance(ivanov) == D("0.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_branch_cashier_can_import_a_statement_naming_another_branchs_subscriber(
    make_subscriber, make_staff, branch, other_branch
):
    # What breaks: the import credits each line "as" the uploading cashier, so the intake checks the cashier's
    # branch against each matched subscriber. One line paying a subscriber of another branch raises PermissionDenied
    # out of the whole import: the page answers a bare 403 and nothing of the ISP's statement is imported (and the
    # 403 tells the cashier that some account in the file belongs to a branch they cannot see). The bank account is
    # the whole ISP's: the file must import (the other branch's line credited or parked in suspense, not refused).
    ours = make_subscriber()
    theirs = make_subscriber(branch_obj=other_branch, last_name="Сидоров")
    cashier = make_staff(Role.CASHIER, branches=[branch])
    client = Client(raise_request_exception=False)
    client.force_login(cashier)
    content = cp1251(
        statement(
            document(number="77", amount="100.00", purpose=f"л/с {ours.account_number}"),
            document(number="78", amount="200.00", purpose=f"л/с {theirs.account_number}"),
        )
    )
    upload = SimpleUploadedFile("kl_to_1c.txt", content)
    response = client.post("/staff/payments/statements/", {"file": upload})
    assert response.status_code == 302, response.status_code
    assert balance(ours) == D("100.00")
    assert Payment.objects.filter(amount=D("200.00")).count() == 1
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_statement_of_a_million_short_lines_within_the_size_limit_does_not_hang_the_request(admin, settings):
    # What breaks: nothing bounds the number of documents, only the bytes (20 MB by default), and every document
    # costs a savepoint, an INSERT and an UPDATE of the statement's counters inside ONE transaction. A file of
    # 1,000,000 lines "СекцияДокумент=x" is 18 MB (under the limit) and is a million unclosed documents: measured
    # here on 20,000 of them and scaled to the limit, the upload holds its request and transaction for many
    # minutes (SQLite ≈ 7 min, PostgreSQL longer), far past any proxy/worker timeout, which then kills it and
    # rolls it back, so the operator retries it again and again. A hostile file must be refused (or imported)
    # within a deadline, e.g. by a limit on documents checked before the transaction.
    lines = ["1CClientBankExchange", "ВерсияФормата=1.03", "Кодировка=Windows", "РасчСчет=40702810900000012345"]
    content = "\r\n".join([*lines, *["СекцияДокумент=x"] * 20_000, "КонецФайла", ""]).encode("cp1251")
    started = time.monotonic()
    try:
        actions.do_import_statement(content, acting_user=admin)
    except ValidationError:
        return  # refused: what we want
    elapsed = time.monotonic() - started
    at_the_limit = elapsed * settings.ABONENT_BANK_STATEMENT_MAX_BYTES / len(content)
    assert at_the_limit < 60, f"a file at the size limit would take {at_the_limit:.0f} s in one request"


@pytest.mark.django_db(transaction=True)
def test_two_overlapping_statements_with_lines_in_another_order_imported_at_once_both_import(
    make_subscriber, admin, cashier, together
):
    # What breaks (PostgreSQL): two files holding the same payment orders in opposite order (the bank's daily file
    # and a re-export of the week) uploaded at the same moment lock each other's line keys crosswise: one import
    # dies on a deadlock (observed: "deadlock detected ... billing_account_code_uniq", the subscribers' ledger
    # accounts created crosswise) and its upload is a 500 instead of "imported, N imported before".
    # The overlap itself is handled (unique keys); the order of the lines must not turn it into an error.
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL; SQLite serialises the whole database")
    people = [make_subscriber(last_name=f"Абонент{i}") for i in range(6)]
    docs = [
        document(number=str(10 + i), amount="100.00", purpose=f"л/с {p.account_number}") for i, p in enumerate(people)
    ]
    forward = cp1251(statement(*docs))
    backward = cp1251(statement(*reversed(docs), end="02.12.2026"))
    out = together(
        lambda: actions.do_import_statement(forward, acting_user=admin),
        lambda: actions.do_import_statement(backward, acting_user=cashier),
    )
    assert all(isinstance(o, actions.StatementImport) for o in out), out
    assert Payment.objects.count() == 6 and all(balance(p) == D("100.00") for p in people)
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_statement_imported_by_a_cashier_is_not_cash_the_cashier_must_hand_over(cashier, make_subscriber):
    # What breaks: the import takes every line in "as" the uploading cashier (Payment.taken_by), and the cash day
    # counts every payment taken_by the cashier whatever its channel. A cashier (the role holding payment.import)
    # who uploads today's statement sees the bank transfers in "to hand over": 100 of cash taken at the desk plus
    # 1,500 that went to the bank account close as 1,600 of cash, so the cash count is short by 1,500 (or the
    # cashier is blamed for it). Only cash the cashier took belongs in the day's close.
    ivanov = make_subscriber()
    today = clock.today().strftime("%d.%m.%Y")
    content = cp1251(
        statement(
            document(number="31", date=today, amount="1500.00", purpose=f"л/с {ivanov.account_number}"),
            start=today,
            end=today,
        )
    )
    actions.do_import_statement(content, acting_user=cashier)
    actions.do_take_cash_payment(ivanov, amount=D("100.00"), token=uuid.uuid4().hex, acting_user=cashier)
    day = actions.do_close_cash_day(cashier, day=clock.today(), acting_user=cashier)
    assert balance(ivanov) == D("1600.00")
    assert day.net_total == D("100.00"), f"the cashier is to hand over {day.net_total}"
    assert ledger.verify() == []


# --- Payment agents' console pages: never a 500 ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
@pytest.mark.parametrize("page", ["report/", "report.csv"])
def test_an_agents_reconciliation_report_of_an_absurd_day_is_not_a_500(console, agent_and_secret, page, day):
    # What breaks: agent_day_report(day) computes the day's end as start + 1 day, which overflows for 9999-12-31 on
    # every database (and 0001-01-01 in the agent's zone cannot be converted to UTC on SQLite): the reconciliation
    # page and its CSV answer 500 for a date the form accepts. A day out of range must be a form error or empty.
    agent, _secret = agent_and_secret
    response = console.get(f"/staff/payments/agents/{agent.pk}/{page}?day={day}")
    assert response.status_code in (200, 422)


def _register_covering_many_days() -> bytes:
    first = dt.date(2000, 1, 1)
    return "".join(f"{i};10.00;1;{first + dt.timedelta(days=i):%Y-%m-%d}\n" for i in range(17_000)).encode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "register",
    [b"1;10.00;100000009;99991231235959\n", _register_covering_many_days()],
    ids=["a-row-dated-9999-12-31", "17000-distinct-days"],
)
def test_comparing_a_hostile_agent_register_is_not_a_500(console, agent_and_secret, register):
    # What breaks: the register comparison builds one (start, start + 1 day) window per day the register names.
    # A row dated 9999-12-31 23:59:59 overflows (500 on every database); a register naming 17,000 distinct days
    # (0.4 MB, far under its 10 MB limit) becomes one query with 34,000 parameters: SQLite refuses it ("too many SQL
    # variables", a 500) and PostgreSQL runs an OR of 17,000 ranges. The page "reads only, whatever the file holds":
    # such rows must be unreadable lines (or the file refused), not a crash.
    agent, _secret = agent_and_secret
    upload = SimpleUploadedFile("register.csv", register)
    response = console.post(f"/staff/payments/agents/{agent.pk}/register/", {"register": upload})
    assert response.status_code in (200, 422)


def _osmp_result(response) -> str | None:
    found = re.search(r"<result>(\d+)</result>", response.content.decode("utf-8", "replace"))
    return found[1] if found else None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "how",
    ["nul-in-account", "too-many-fields", "body-over-the-limit", "json-nested-too-deep"],
)
def test_a_terminal_gets_an_osmp_answer_for_a_request_the_guard_refuses(terminal, agent_and_secret, subscriber, how):
    # What breaks: the site-wide request guard (core.middleware.RequestGuardMiddleware) answers these requests
    # before the protocol view, in plain text ("txn_id: Null characters are not allowed.", 400/413/422), with no
    # XML and no <result>. The check/pay protocol promises the agent a result code for anything; an answer it cannot
    # parse is, for QIWI-style agents, a connection failure to retry forever (or an unknown state the payer waits
    # on). The agent endpoint must answer these in its own XML (300 or 4), as it does for every other bad request.
    params = {"command": "pay", "txn_id": "4001", "account": subscriber.account_number, "sum": "10.00"}
    if how == "nul-in-account":
        response = terminal.get(AGENT_URL, {**params, "account": "1000\x00009"})
    elif how == "too-many-fields":
        response = terminal.get(AGENT_URL, {**params, **{f"f{i}": "1" for i in range(1100)}})
    elif how == "body-over-the-limit":
        body = "&".join(f"{k}={v}" for k, v in params.items()) + "&pad=" + "x" * 3_000_000
        response = terminal.post(AGENT_URL, body, content_type="application/x-www-form-urlencoded")
    else:
        response = terminal.post(
            AGENT_URL + "?" + "&".join(f"{k}={v}" for k, v in params.items()),
            "[" * 100 + "]" * 100,
            content_type="application/json",
        )
    assert response["Content-Type"].startswith("text/xml"), (response.status_code, response.content[:120])
    assert _osmp_result(response) is not None
    assert Payment.objects.count() == 0


# --- Branches -----------------------------------------------------------------------------------------------


@pytest.fixture
def two_branch_statement(make_subscriber, make_staff, branch, other_branch, admin):
    """A statement with an ambiguous line (same INN in both branches) and one credited by INN in the other
    branch (no account number in the purpose); a cashier limited to ``branch``."""
    ours = make_subscriber(inn="500100732259")
    theirs = make_subscriber(branch_obj=other_branch, last_name="Сидоров", inn="500100732259")
    solo = make_subscriber(branch_obj=other_branch, last_name="Кузнецов", inn="7707083893")
    content = cp1251(
        statement(
            document(number="1", payer_inn="500100732259", purpose="за интернет"),
            document(number="2", payer_inn="7707083893", purpose="за интернет"),
        )
    )
    s = actions.do_import_statement(content, acting_user=admin).statement
    assert (s.ambiguous, s.credited) == (1, 1)
    return s, ours, theirs, solo, make_staff(Role.CASHIER, branches=[branch])


@pytest.mark.django_db
def test_the_api_suspense_queue_does_not_show_another_branchs_subscribers_as_candidates(two_branch_statement):
    # What breaks: GET /api/v1/payments/suspense gives a branch cashier the ambiguous payment's candidates as stored,
    # including the id of a subscriber in a branch they cannot see (and whose INN they can now pair with it). The
    # console's statement page hides exactly these ("and 1 in another branch"); the API must too.
    _s, ours, theirs, _solo, cashier = two_branch_statement
    items = api_for(cashier).get("/api/v1/payments/suspense").json()["items"]
    assert len(items) == 1 and ours.pk in items[0]["candidates"]
    assert theirs.pk not in items[0]["candidates"]


@pytest.mark.django_db
def test_the_statement_page_does_not_show_another_branchs_subscriber_a_line_was_credited_to(two_branch_statement):
    # What breaks: a branch cashier (payment.import) opens any statement and, for a line credited by INN to a
    # subscriber of another branch, the page shows that subscriber's account number with a link to their card:
    # which account a payer's INN belongs to, across branches. Candidates are filtered by branch on this very page;
    # the credited subscriber is not.
    s, _ours, _theirs, solo, cashier = two_branch_statement
    client = Client(raise_request_exception=False)
    client.force_login(cashier)
    body = client.get(f"/staff/payments/statements/{s.pk}/").content.decode()
    assert solo.account_number not in body


# --- Deadlines in the console ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_cash_desk_answers_a_lock_it_cannot_get_in_time_without_a_500(cashier, subscriber, settings):
    # What breaks (PostgreSQL): the intake's deadline works (lock_timeout, 55P03), but the console views do not
    # answer it: while the subscriber's ledger row is held (a long statement import holds it until its commit, the
    # billing run holds it), the cashier's "take" ends in OperationalError and a 500 page. The cashier, holding
    # the payer's cash, cannot tell whether it was taken. The API answers the same deadline 503 with a code; the
    # cash desk must say "busy, try again" (nothing was written), not crash.
    if connection.vendor != "postgresql":
        pytest.skip("lock timeouts need PostgreSQL")
    settings.ABONENT_PAYMENTS_LOCK_TIMEOUT = 0.5
    ledger.subscriber_account(subscriber.pk)
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                ledger.subscriber_account(subscriber.pk, lock=True)
                locked.set()
                release.wait(20)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        client = Client(raise_request_exception=False)
        client.force_login(cashier)
        response = client.post(
            f"/staff/payments/cashdesk/take/{subscriber.pk}/", {"amount": "500", "token": uuid.uuid4().hex}
        )
    finally:
        release.set()
        holder.join(30)
    assert response.status_code != 500
    assert Payment.objects.count() == 0 and balance(subscriber) == D("0.00")


@pytest.mark.django_db
def test_a_cashier_cannot_cancel_a_bank_transfer_because_they_imported_the_statement(cashier, make_subscriber):
    # What breaks: "a cashier cancels only their own payments of today" is decided by Payment.taken_by, and the
    # import sets taken_by to the uploading cashier. So the cashier may cancel any transfer of the statement they
    # uploaded: the 1,500 that really arrived on the bank account is reversed (status cancelled, not back in
    # suspense), and importing the statement again says "imported before": the money is recorded nowhere. A
    # transfer the bank reports is not the cashier's to cancel (only an administrator's, as with other channels).
    ivanov = make_subscriber()
    actions.do_import_statement(
        cp1251(statement(document(number="44", purpose=f"л/с {ivanov.account_number}"))), acting_user=cashier
    )
    payment = Payment.objects.get(channel="bank")
    client = Client(raise_request_exception=False)
    client.force_login(cashier)
    client.post(f"/staff/payments/{payment.pk}/cancel/", {"reason": "mistake", "token": uuid.uuid4().hex})
    payment.refresh_from_db()
    assert payment.status == "credited" and balance(ivanov) == D("1500.00")
    assert ledger.verify() == []
