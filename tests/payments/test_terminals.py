"""Payment agents' check/pay protocol (QIWI/OSMP) through the Django test client: who may call, what each result
code means, money credited once, nothing written on a refusal."""

import base64
import re
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.test import Client, override_settings

from abonent.billing import ledger
from abonent.billing.selectors import get_balance
from abonent.core.models import AuditEvent
from abonent.payments import actions
from abonent.payments.actions.agents import do_create_agent, do_rotate_agent_secret, do_update_agent
from abonent.payments.models import Payment, PaymentConflict, PaymentStatus
from abonent.payments.selectors.agents import forget_agent
from abonent.subscribers import actions as subscribers

D = Decimal
URL = "/pay/agents/qiwi/"


@pytest.fixture(autouse=True)
def _fresh_agent_cache():
    forget_agent()
    yield
    forget_agent()


@pytest.fixture
def agent_and_secret(admin):
    return do_create_agent(
        code="qiwi", name="QIWI", login="qiwi", networks="127.0.0.0/8\n10.1.0.0/16", acting_user=admin
    )


@pytest.fixture
def agent(agent_and_secret):
    return agent_and_secret[0]


@pytest.fixture
def terminal(agent_and_secret):
    """A client that speaks as the agent: its address (127.0.0.1) and HTTP Basic credentials."""
    token = base64.b64encode(f"qiwi:{agent_and_secret[1]}".encode()).decode()
    return Client(headers={"Authorization": f"Basic {token}"})


def answer(response) -> dict:
    assert response["Content-Type"] == "text/xml; charset=utf-8"
    text = response.content.decode()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return dict(re.findall(r"<(osmp_txn_id|prv_txn|prv_txn_date|sum|result|comment)>(.*?)</\1>", text))


def call(client, **params):
    return answer(client.get(URL, params))


def balance(subscriber) -> Decimal:
    return get_balance(subscriber).balance


@pytest.mark.django_db
def test_check_answers_ok_and_writes_nothing(terminal, subscriber):
    got = call(terminal, command="check", txn_id="1001", account=subscriber.account_number, sum="500.00")
    assert got["result"] == "0" and got["osmp_txn_id"] == "1001" and got["sum"] == "500.00"
    assert "prv_txn" not in got
    assert Payment.objects.count() == 0
    assert balance(subscriber) == D("0.00")


@pytest.mark.django_db
def test_pay_credits_once_and_a_repeat_answers_the_same_prv_txn(terminal, subscriber, agent):
    first = call(
        terminal, command="pay", txn_id="1001", account=subscriber.account_number, sum="500", txn_date="20261205101500"
    )
    again = call(
        terminal,
        command="pay",
        txn_id="1001",
        account=subscriber.account_number,
        sum="500.00",
        txn_date="20261205101500",
    )
    assert first["result"] == "0" and again["result"] == "0"
    payment = Payment.objects.get()
    assert first["prv_txn"] == again["prv_txn"] == str(payment.pk)
    assert first["sum"] == "500.00" and len(first["prv_txn_date"]) == 14
    assert payment.channel == "agent:qiwi" and payment.method == "terminal" and payment.external_id == "1001"
    assert payment.status == PaymentStatus.CREDITED and payment.subscriber == subscriber
    # txn_date is the agent's local time (the installation's zone here, Europe/Moscow = UTC+3).
    assert payment.received_at.isoformat() == "2026-12-05T07:15:00+00:00"
    assert balance(subscriber) == D("500.00")
    assert AuditEvent.objects.filter(action="payments.received", object_id=str(payment.pk)).count() == 1
    assert ledger.verify() == []


@pytest.mark.django_db
def test_the_same_txn_id_with_another_sum_is_refused_and_kept_as_a_conflict(terminal, subscriber):
    call(terminal, command="pay", txn_id="77", account=subscriber.account_number, sum="100.00")
    got = call(terminal, command="pay", txn_id="77", account=subscriber.account_number, sum="1000.00")
    assert got["result"] == "300"
    conflict = PaymentConflict.objects.get()
    assert conflict.amount == D("1000.00") and conflict.payment.external_id == "77"
    assert balance(subscriber) == D("100.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_unknown_account_answers_5_to_check_and_pay_and_takes_nothing(terminal, subscriber):
    # Well-formed (Luhn) but nobody's: 5. A typo the check digit catches: 4.
    number = subscriber.account_number
    other = next(
        f"{int(number[:-1]) + i}{d}"
        for i in range(1, 50)
        for d in range(10)
        if call(terminal, command="check", txn_id="0", account=f"{int(number[:-1]) + i}{d}", sum="1")["result"] == "5"
    )
    typo = number[:-1] + str((int(number[-1]) + 1) % 10)
    for command in ("check", "pay"):
        assert call(terminal, command=command, txn_id="5", account=other, sum="10")["result"] == "5"
        assert call(terminal, command=command, txn_id="5", account=typo, sum="10")["result"] == "4"
        assert call(terminal, command=command, txn_id="5", account="абв", sum="10")["result"] == "4"
    assert Payment.objects.count() == 0
    assert ledger.verify() == []


@pytest.mark.django_db
def test_closed_account_answers_79_or_goes_to_suspense_when_the_agent_allows(terminal, subscriber, agent, admin):
    paid = call(terminal, command="pay", txn_id="1", account=subscriber.account_number, sum="10")
    subscribers.do_close_subscriber(subscriber, reason="moved", acting_user=admin)
    assert call(terminal, command="check", txn_id="2", account=subscriber.account_number, sum="10")["result"] == "79"
    assert call(terminal, command="pay", txn_id="2", account=subscriber.account_number, sum="10")["result"] == "79"
    # A repeat of the payment taken before the account closed still answers as the first time did.
    repeat = call(terminal, command="pay", txn_id="1", account=subscriber.account_number, sum="10")
    assert repeat["result"] == "0" and repeat["prv_txn"] == paid["prv_txn"]
    assert Payment.objects.count() == 1

    do_update_agent(agent, active_accounts_only=False, acting_user=admin)
    assert call(terminal, command="check", txn_id="3", account=subscriber.account_number, sum="10")["result"] == "0"
    taken = call(terminal, command="pay", txn_id="3", account=subscriber.account_number, sum="10")
    assert taken["result"] == "0"
    payment = Payment.objects.get(pk=taken["prv_txn"])
    assert payment.status == PaymentStatus.SUSPENSE and payment.suspense_reason == "closed_account"
    assert ledger.verify() == []


@pytest.mark.django_db
def test_a_disabled_agent_answers_7(terminal, subscriber, agent, admin):
    do_update_agent(agent, active=False, acting_user=admin)
    assert call(terminal, command="pay", txn_id="1", account=subscriber.account_number, sum="10")["result"] == "7"
    assert Payment.objects.count() == 0


@pytest.mark.django_db
def test_callers_from_other_networks_or_with_wrong_credentials_are_refused(agent_and_secret, subscriber, admin):
    agent, secret = agent_and_secret
    params = {"command": "pay", "txn_id": "1", "account": subscriber.account_number, "sum": "10"}

    def basic(login, password):
        return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}

    refused = [
        Client(headers=basic("qiwi", secret), REMOTE_ADDR="192.0.2.7").get(URL, params),  # foreign address
        Client(headers=basic("qiwi", secret + "x")).get(URL, params),  # wrong secret
        Client(headers=basic("other", secret)).get(URL, params),  # wrong login
        Client().get(URL, params),  # none
        Client(headers={"Authorization": "Basic !!!"}).get(URL, params),  # garbage
        Client(headers=basic("qiwi", secret)).get("/pay/agents/nosuch/", params),  # no such agent
        Client(REMOTE_ADDR="10.2.0.1").get(URL, {**params, "login": "qiwi", "password": secret}),
    ]
    for response in refused:
        assert response.status_code == 403
        assert answer(response)["result"] == "300"
    # Parameters instead of Basic, from the agent's second network: accepted.
    ok = Client(REMOTE_ADDR="10.1.2.3").post(URL, {**params, "login": "qiwi", "password": secret})
    assert ok.status_code == 200 and answer(ok)["result"] == "0"
    assert Payment.objects.count() == 1 and balance(subscriber) == D("10.00")

    # A rotated secret: the old one stops working.
    new = do_rotate_agent_secret(agent, acting_user=admin)
    assert Client(headers=basic("qiwi", secret)).get(URL, params).status_code == 403
    assert Client(headers=basic("qiwi", new)).get(URL, params).status_code == 200


@pytest.mark.django_db
def test_an_agent_with_no_networks_refuses_everyone(admin, subscriber):
    _agent, secret = do_create_agent(code="bank", name="Bank", login="bank", networks="", acting_user=admin)
    response = Client().get(
        "/pay/agents/bank/", {"command": "check", "account": "1", "login": "bank", "password": secret}
    )
    assert response.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "result"),
    [
        ({"sum": "1e3"}, "300"),
        ({"sum": "-5"}, "300"),
        ({"sum": "abc"}, "300"),
        ({"sum": "100.123"}, "300"),
        ({"sum": "100,50"}, "300"),
        ({"sum": " "}, "300"),
        ({"sum": "NaN"}, "300"),
        ({"sum": "Infinity"}, "300"),
        ({"sum": "9" * 13}, "300"),
        ({"sum": "9" * 12}, "242"),
        ({"sum": "15000.01"}, "242"),
        ({"sum": "0"}, "241"),
        ({"sum": "0.99"}, "241"),
        ({"sum": "١٠٠"}, "300"),  # Arabic-Indic digits: \d would take them, the protocol does not
        ({"txn_id": "x" * 1000}, "300"),
        ({"txn_id": ""}, "300"),
        ({"txn_id": "тест"}, "300"),
        ({"txn_id": "1 2"}, "300"),
        ({"account": ""}, "300"),
        ({"account": "1" * 1000}, "4"),
        ({"account": "😀"}, "4"),
        ({"txn_date": "2026"}, "300"),
        ({"txn_date": "20261345000000"}, "300"),
        ({"txn_date": "29991231000000"}, "300"),
        ({"command": "cancel"}, "300"),
        ({"command": ""}, "300"),
    ],
)
def test_malformed_input_answers_a_result_code_and_writes_nothing(terminal, subscriber, params, result):
    full = {"command": "pay", "txn_id": "42", "account": subscriber.account_number, "sum": "100", **params}
    response = terminal.get(URL, full)
    assert response.status_code == 200
    assert answer(response)["result"] == result
    assert Payment.objects.count() == 0 and balance(subscriber) == D("0.00")


@pytest.mark.django_db
def test_check_shows_masked_name_and_balance_when_the_agent_allows(terminal, subscriber, agent, admin):
    text = terminal.get(URL, {"command": "check", "txn_id": "1", "account": subscriber.account_number, "sum": "1"})
    assert b"<fields>" not in text.content
    do_update_agent(agent, show_details=True, acting_user=admin)
    text = terminal.get(URL, {"command": "check", "txn_id": "1", "account": subscriber.account_number, "sum": "1"})
    body = text.content.decode()
    assert '<field1 name="fio">И*** И. П.</field1>' in body and '<field2 name="balance">0.00</field2>' in body
    assert "Иванов" not in body


@pytest.mark.django_db
def test_a_cancelled_payment_repeated_is_not_reported_as_fresh_success(terminal, subscriber, admin):
    paid = call(terminal, command="pay", txn_id="9", account=subscriber.account_number, sum="10")
    actions.do_cancel_payment(Payment.objects.get(pk=paid["prv_txn"]), reason="test", acting_user=admin)
    again = call(terminal, command="pay", txn_id="9", account=subscriber.account_number, sum="10")
    assert again["result"] == "300" and again["prv_txn"] == paid["prv_txn"]
    assert balance(subscriber) == D("0.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_other_methods_get_405(terminal):
    response = terminal.put(URL)
    assert response.status_code == 405 and answer(response)["result"] == "300"


@pytest.mark.django_db(transaction=True)
def test_a_statement_past_its_deadline_answers_1_and_writes_nothing(terminal, subscriber, settings):
    if connection.vendor != "postgresql":
        pytest.skip("statement_timeout is PostgreSQL's")
    settings.ABONENT_AGENT_DB_TIMEOUT = 0.2
    # Another transaction holds the subscriber's ledger account: the payment's lock waits past its deadline.
    from abonent.billing.models import LedgerAccount

    holder = connections.create_connection("default")  # a second connection, outside the request's transaction
    try:
        account = ledger.subscriber_account(subscriber.pk)
        with holder.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(f"SELECT 1 FROM {LedgerAccount._meta.db_table} WHERE id = %s FOR UPDATE", [account.pk])
            got = call(terminal, command="pay", txn_id="slow", account=subscriber.account_number, sum="10")
            cursor.execute("ROLLBACK")
    finally:
        holder.close()
    assert got["result"] == "1"
    assert Payment.objects.count() == 0 and balance(subscriber) == D("0.00")


@pytest.mark.django_db(transaction=True)
def test_five_identical_concurrent_pays_credit_once(terminal, subscriber, together):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL (SQLite serialises them)")
    params = {"command": "pay", "txn_id": "same", "account": subscriber.account_number, "sum": "250.00"}
    answers = together(*[lambda: call(terminal, **params)] * 5)
    assert [a["result"] for a in answers] == ["0"] * 5
    payment = Payment.objects.get()
    assert {a["prv_txn"] for a in answers} == {str(payment.pk)}
    assert balance(subscriber) == D("250.00")
    assert ledger.verify() == []


@pytest.mark.django_db
def test_bytes_no_text_can_hold_are_refused_not_a_500(terminal, subscriber):
    # NUL: refused before any view (core.middleware's request guard), answered in the protocol's XML (200, result 4
    # for the account: changed from a bare 4xx, which an agent cannot parse and retries for ever; see
    # test_attack_channels); bytes that are not UTF-8 arrive as U+FFFD and make an account nobody has.
    nul = terminal.get(f"{URL}?command=pay&txn_id=1&sum=10&account=%00{subscriber.account_number}")
    assert nul.status_code == 200 and answer(nul)["result"] == "4"
    not_utf8 = terminal.get(f"{URL}?command=pay&txn_id=1&sum=10&account=%FF%FE")
    assert not_utf8.status_code == 200 and answer(not_utf8)["result"] == "4"
    posted = terminal.post(
        URL, b"command=pay&txn_id=1&sum=10&account=%FF", content_type="application/x-www-form-urlencoded"
    )
    assert posted.status_code == 200 and answer(posted)["result"] == "4"
    assert Payment.objects.count() == 0


@pytest.mark.django_db
def test_a_fault_of_ours_answers_1_not_a_500(terminal, subscriber, monkeypatch):
    from abonent.payments.protocols import osmp

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(osmp, "find_subscriber", broken)
    response = terminal.get(URL, {"command": "pay", "txn_id": "1", "account": subscriber.account_number, "sum": "10"})
    assert response.status_code == 200 and answer(response)["result"] == "1"
    assert Payment.objects.count() == 0 and balance(subscriber) == D("0.00")


@pytest.mark.django_db
def test_query_counts_of_the_hot_path(terminal, subscriber):
    """Pinned (savepoints aside): the agent comes from the cache; a repeat reads the account and the payment."""
    from django.test.utils import CaptureQueriesContext

    def statements(**params):
        with CaptureQueriesContext(connection) as captured:
            assert call(terminal, account=subscriber.account_number, sum="10", **params)["result"] == "0"
        return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]

    deadline = 1 if connection.vendor == "postgresql" else 0
    # The agent cached, the channel's cash account and the subscriber's ledger account made.
    call(terminal, command="pay", txn_id="0", account=subscriber.account_number, sum="1")
    assert len(statements(command="check", txn_id="1")) == deadline + 1
    if connection.vendor == "postgresql":
        # The fast path (actions.fastpay): one function call, new or repeat, which sets the deadline itself.
        assert len(statements(command="pay", txn_id="1")) == 1
        assert len(statements(command="pay", txn_id="1")) == 1
    with override_settings(ABONENT_AGENT_FAST_PATH=False):
        # SQLite sets no deadlines (the view's and the intake's set_config are PostgreSQL's).
        # The "payment received" notice is one INSERT of them (the outbox; the drain does the rest off-request).
        assert len(statements(command="pay", txn_id="2")) == (14 if connection.vendor == "postgresql" else 12)
        assert len(statements(command="pay", txn_id="2")) == (4 if connection.vendor == "postgresql" else 2)
