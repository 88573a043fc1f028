"""The terminal ``pay`` fast path (``actions.fastpay``, the ``payments_terminal_pay`` function of migration 0008) and
the agents' lean ASGI route (``payments.agents_asgi``).

Parity: the same scenarios through the Python intake and through the function leave identical rows (payments,
ledger transactions with their request hashes, postings, balances, audit rows, conflicts, receipts) and identical
answers. Then what races: the same pay five times at once, a repeat through the other path, a held lock answered 1
within the deadline."""

import asyncio
import base64
import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from abonent.billing import ledger
from abonent.billing.models import LedgerAccount, LedgerTransaction, Posting
from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.payments.actions.agents import do_create_agent, do_update_agent
from abonent.payments.models import FiscalReceipt, Payment, PaymentConflict, PaymentNotice, PaymentStatus
from abonent.payments.selectors.agents import forget_agent
from abonent.subscribers import actions as subscribers

D = Decimal
URL = "/pay/agents/qiwi/"
MOMENT = dt.datetime(2026, 12, 5, 12, 30, tzinfo=dt.UTC)

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the fast path is PostgreSQL's (SQLite always takes the intake)"
)


@pytest.fixture(autouse=True)
def _fresh_agent_cache():
    forget_agent()
    yield
    forget_agent()


@pytest.fixture
def agent_and_secret(admin):
    agent, secret = do_create_agent(
        code="qiwi", name="QIWI", login="qiwi", networks="127.0.0.0/8", max_sum=D("999999999999.99"), acting_user=admin
    )
    # What the first payment of a channel creates: with them the fast path applies from the first pay.
    ledger.cash_account(agent.channel)
    ledger.system_account("suspense")
    return agent, secret


@pytest.fixture
def agent(agent_and_secret):
    return agent_and_secret[0]


@pytest.fixture
def terminal(agent_and_secret):
    token = base64.b64encode(f"qiwi:{agent_and_secret[1]}".encode()).decode()
    return Client(headers={"Authorization": f"Basic {token}"})


def answer(response) -> dict:
    assert response["Content-Type"] == "text/xml; charset=utf-8"
    return dict(
        re.findall(r"<(osmp_txn_id|prv_txn|prv_txn_date|sum|result|comment)>(.*?)</\1>", response.content.decode())
    )


def call(client, **params):
    return answer(client.get(URL, params, headers={"X-Request-ID": f"req-{params.get('txn_id')}"}))


def balance(subscriber) -> Decimal:
    account = LedgerAccount.objects.filter(subscriber=subscriber).first()
    return account.balance if account else D("0.00")


# --- Parity -------------------------------------------------------------------------------------------------------


def _snapshot(since_audit: int, since_tx: int) -> dict:
    """The rows a run wrote, with ids replaced by what names them (ids differ between runs)."""
    ext = dict(Payment.objects.values_list("pk", "external_id"))
    keys = dict(LedgerTransaction.objects.values_list("pk", "idempotency_key"))
    codes = dict(LedgerAccount.objects.values_list("pk", "code"))
    payments = sorted(
        (
            p.channel,
            p.external_id,
            p.method,
            p.amount,
            p.account_ref,
            p.subscriber_id,
            p.status,
            p.suspense_reason,
            p.received_at,
            p.credited_at,
            p.created_at,
            p.memo,
            p.details,
            p.refunded_amount,
            p.payer,
            p.payer_inn,
            p.taken_by_id,
            p.status_reason,
            keys[p.transaction_id],
        )
        for p in Payment.objects.all()
    )
    txs = sorted(
        (
            t.idempotency_key,
            # The hash covers the accounts' ids, which differ between runs: what must hold is that it is the one
            # ledger.request_hash computes for the transaction's own legs.
            t.request_hash
            == ledger.request_hash(t.kind, t.effective_date, list(t.postings.values_list("account_id", "amount"))),
            t.kind,
            t.effective_date,
            t.created_at,
            t.subscriber_id,
            t.memo,
            t.acting_user_id,
            t.reverses_id,
            t.legs,
            tuple(
                sorted(
                    (codes[a], m) for a, m in Posting.objects.filter(transaction=t).values_list("account_id", "amount")
                )
            ),
        )
        for t in LedgerTransaction.objects.filter(pk__gt=since_tx)
    )

    def object_name(e):
        if e.object_type == "payments.payment":
            return ext[int(e.object_id)]
        if e.object_type == "billing.ledgertransaction":
            return keys[int(e.object_id)]
        return e.object_id

    audit = sorted(
        (
            e.action,
            e.object_type,
            object_name(e),
            e.object_repr,
            e.subscriber_id,
            repr(e.before),
            repr(e.after),
            e.reason,
            e.actor_id,
            e.actor_label,
            str(e.ip_address),
            e.request_id,
            e.created_at,
        )
        for e in AuditEvent.objects.filter(pk__gt=since_audit)
    )
    conflicts = sorted(
        (ext[c.payment_id], c.amount, c.account_ref, c.times, c.first_at, c.last_at, c.resolved_at, c.resolution)
        for c in PaymentConflict.objects.all()
    )
    receipts = sorted(
        (
            ext[r.payment_id],
            r.operation,
            r.provider,
            r.external_id.replace(str(r.payment_id), "<id>"),
            r.generation,
            r.status,
            r.status_reason,
            r.amount,
            r.vat,
            r.attempts,
            r.next_attempt_at,
            r.last_error,
            r.request,
            r.refund_id,
            r.report,
        )
        for r in FiscalReceipt.objects.all()
    )
    # The outbox's "payment received" (the intake's queue_received_notice, the function's INSERT of migration 0010).
    notices = sorted(
        (
            n.kind,
            n.subscriber_id,
            ext[n.payload["payment_id"]],
            n.dedup_key.replace(str(n.payload["payment_id"]), "<id>"),
            n.created_at,
            n.delivered_at,
        )
        for n in PaymentNotice.objects.all()
    )
    balances = sorted(LedgerAccount.objects.values_list("code", "kind", "name", "balance", "subscriber_id"))
    return {
        "notices": notices,
        "payments": payments,
        "transactions": txs,
        "audit": audit,
        "conflicts": conflicts,
        "receipts": receipts,
        "balances": balances,
    }


def _nobodys() -> str:
    from django.core.exceptions import ValidationError

    from abonent.subscribers.models import Subscriber
    from abonent.subscribers.validators import validate_account_number

    for number in range(100000000, 100001000):
        try:
            validate_account_number(str(number))
        except ValidationError:
            continue
        if not Subscriber.objects.filter(account_number=str(number)).exists():
            return str(number)
    raise AssertionError("no free account number")


def _scenario(terminal, agent, admin, *, open_one, closed_one, big_one, on_commit) -> list:
    """Every outcome of a pay, in order; the answers with prv_txn replaced by the payment's txn_id."""
    a = open_one.account_number

    def pay(txn_id, account, amount, **extra):
        with on_commit(execute=True):
            got = call(terminal, command="pay", txn_id=txn_id, account=account, sum=amount, **extra)
        if "prv_txn" in got:
            got["prv_txn"] = Payment.objects.get(pk=got["prv_txn"]).external_id
        return got

    answers = [
        pay("p1", a, "100.50", txn_date="20261205101500"),  # new, the ledger account made on first use
        pay("p1", a, "100.50", txn_date="20261205101500"),  # a repeat
        pay("p2", a, "7"),  # no txn_date: now
        pay("p1", a, "999"),  # another sum: a conflict, recorded and audited
        pay("p1", a, "999"),  # the same conflict again: counted
        pay("p1", big_one.account_number, "100.50"),  # another account: another conflict
        pay("p3", _nobodys(), "10"),  # well-formed, nobody's: 5, nothing written
        pay("p7", a, "99999999999.00"),  # within the agent's max_sum, past what a payment may be: 300
        pay("p4", a[:-1] + str((int(a[-1]) + 1) % 10), "10"),  # our length, a wrong check digit (a typo): 4
        pay("p5", closed_one.account_number, "10"),  # closed, the agent takes active accounts only: 79
    ]
    do_update_agent(agent, active_accounts_only=False, acting_user=admin)
    answers.append(pay("p6", closed_one.account_number, "10"))  # closed: to suspense
    answers.append(pay("p6", closed_one.account_number, "10"))
    for n in range(10):  # past what the balance column holds: to suspense, balance_limit
        answers.append(pay(f"big{n}", big_one.account_number, "9999999999.99"))
    answers.append(pay("big10", big_one.account_number, "9999999999.99"))
    answers.append(pay("big10", big_one.account_number, "9999999999.99"))
    return answers


@pytest.mark.django_db
def test_both_paths_write_identical_rows_and_answers(
    terminal, agent, admin, make_subscriber, django_capture_on_commit_callbacks
):
    open_one = make_subscriber(last_name="Open")
    closed_one = make_subscriber(last_name="Closed")
    big_one = make_subscriber(last_name="Big")
    subscribers.do_close_subscriber(closed_one, reason="moved", acting_user=admin)
    ledger.subscriber_account(big_one.pk)  # one account exists before, one is made by the payment
    audit_before = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    tx_before = LedgerTransaction.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    runs = {}
    for fast in (False, True):
        forget_agent()
        with override_settings(ABONENT_AGENT_FAST_PATH=fast), clock.travel_to(MOMENT), transaction.atomic():
            with CaptureQueriesContext(connection) as captured:
                answers = _scenario(
                    terminal,
                    agent,
                    admin,
                    open_one=open_one,
                    closed_one=closed_one,
                    big_one=big_one,
                    on_commit=django_capture_on_commit_callbacks,
                )
            used = sum("payments_terminal_pay" in q["sql"] for q in captured.captured_queries)
            assert used == (len(answers) - 1 if fast else 0)  # p7 is refused before the database
            assert ledger.verify() == []
            runs[fast] = (answers, _snapshot(audit_before, tx_before))
            transaction.set_rollback(True)
        agent.refresh_from_db()

    (old_answers, old_rows), (new_answers, new_rows) = runs[False], runs[True]
    assert new_answers == old_answers
    for table in old_rows:
        assert new_rows[table] == old_rows[table], table
    # What the scenario is about, so that the two being equal means something.
    results = [a["result"] for a in old_answers]
    assert results == ["0", "0", "0", "300", "300", "300", "5", "300", "4", "79", "0", "0"] + ["0"] * 12
    statuses = {p[1]: (p[6], p[7]) for p in old_rows["payments"]}
    assert statuses["p6"] == (PaymentStatus.SUSPENSE, "closed_account")
    assert statuses["big10"] == (PaymentStatus.SUSPENSE, "balance_limit")
    assert [c[3] for c in old_rows["conflicts"]] == [2, 1] or [c[3] for c in old_rows["conflicts"]] == [1, 2]
    assert {a[0] for a in old_rows["audit"]} >= {
        "billing.payment_posted",
        "payments.received",
        "payments.suspense",
        "payments.conflict",
    }
    assert len(old_rows["receipts"]) == 14 and {r[5] for r in old_rows["receipts"]} == {"not_required"}
    credited = sorted(p[1] for p in old_rows["payments"] if p[6] == PaymentStatus.CREDITED)
    assert sorted(n[2] for n in old_rows["notices"]) == credited and len(credited) >= 2


@pytest.mark.django_db
def test_an_open_promised_payment_is_left_to_the_intake(terminal, subscriber, make_plan, admin):
    from abonent.billing import actions as billing
    from abonent.billing.models import PromisedPayment
    from abonent.catalog.models import PromisedPaymentPolicy

    policy = PromisedPaymentPolicy.objects.create(name="p", max_amount=D("500"), days=3, max_debt=D("1000"))
    plan = make_plan("p", "650.00", promised_payment_policy=policy)
    billing.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    billing.do_take_promised_payment(subscriber, acting_user=admin, amount="300")
    got = call(terminal, command="pay", txn_id="t9", account=subscriber.account_number, sum="1000.00")
    assert got["result"] == "0"
    assert PromisedPayment.objects.get().status == "repaid"
    assert ledger.verify() == []


@pytest.mark.django_db
def test_an_agent_whose_payments_need_our_receipt_takes_the_intake(terminal, subscriber, settings):
    settings.ABONENT_FISCAL_OWN_AGENT_CHANNELS = ["agent:qiwi"]
    with CaptureQueriesContext(connection) as captured:
        got = call(terminal, command="pay", txn_id="r1", account=subscriber.account_number, sum="10")
    assert got["result"] == "0"
    assert not any("payments_terminal_pay" in q["sql"] for q in captured.captured_queries)
    assert balance(subscriber) == D("10.00") and ledger.verify() == []


# --- Races --------------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("paths", [(True,) * 5, (True, False, True, False, True)], ids=["fast", "mixed"])
def test_the_same_pay_five_times_at_once_credits_once(terminal, subscriber, together, settings, paths):
    params = {"command": "pay", "txn_id": "same", "account": subscriber.account_number, "sum": "250.00"}

    def one(fast):
        def run():
            with override_settings(ABONENT_AGENT_FAST_PATH=fast):
                return call(terminal, **params)

        return run

    answers = together(*[one(fast) for fast in paths])
    assert [a["result"] for a in answers] == ["0"] * 5, answers
    payment = Payment.objects.get()
    assert {a["prv_txn"] for a in answers} == {str(payment.pk)}
    assert balance(subscriber) == D("250.00")
    assert LedgerTransaction.objects.filter(kind="payment").count() == 1
    assert ledger.verify() == []


@pytest.mark.django_db(transaction=True)
def test_the_same_txn_id_for_two_accounts_at_once_is_one_payment_and_one_conflict(terminal, make_subscriber, together):
    first, second = make_subscriber(last_name="A"), make_subscriber(last_name="B")
    answers = together(
        lambda: call(terminal, command="pay", txn_id="x", account=first.account_number, sum="5"),
        lambda: call(terminal, command="pay", txn_id="x", account=second.account_number, sum="5"),
    )
    assert sorted(a["result"] for a in answers) == ["0", "300"]
    payment = Payment.objects.get()
    assert PaymentConflict.objects.get().payment == payment
    assert balance(first) + balance(second) == D("5.00")
    assert ledger.verify() == []


@pytest.mark.django_db
@pytest.mark.parametrize("first_fast", [True, False], ids=["fast-then-intake", "intake-then-fast"])
def test_a_repeat_through_the_other_path_answers_the_first_payment(terminal, subscriber, first_fast):
    params = {"command": "pay", "txn_id": "r", "account": subscriber.account_number, "sum": "40"}
    with override_settings(ABONENT_AGENT_FAST_PATH=first_fast):
        first = call(terminal, **params)
    with override_settings(ABONENT_AGENT_FAST_PATH=not first_fast):
        again = call(terminal, **params)
        conflict = call(terminal, **{**params, "sum": "41"})
    assert first["result"] == again["result"] == "0" and first["prv_txn"] == again["prv_txn"]
    assert first["prv_txn_date"] == again["prv_txn_date"]
    assert conflict["result"] == "300" and conflict["prv_txn"] == first["prv_txn"]
    assert balance(subscriber) == D("40.00") and Payment.objects.count() == 1
    assert PaymentConflict.objects.get().amount == D("41.00")
    assert ledger.verify() == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("held", ["ledger account", "subscriber"])
def test_a_held_lock_answers_1_within_the_deadline_and_writes_nothing(terminal, subscriber, settings, held):
    import time

    settings.ABONENT_AGENT_DB_TIMEOUT = 0.3
    account = ledger.subscriber_account(subscriber.pk)
    table, pk = (
        (LedgerAccount._meta.db_table, account.pk)
        if held == "ledger account"
        else ("subscribers_subscriber", subscriber.pk)
    )
    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE", [pk])
            started = time.monotonic()
            with CaptureQueriesContext(connection) as captured:
                got = call(terminal, command="pay", txn_id="slow", account=subscriber.account_number, sum="10")
            took = time.monotonic() - started
            cursor.execute("ROLLBACK")
    finally:
        holder.close()
    assert got["result"] == "1"
    assert any("payments_terminal_pay" in q["sql"] for q in captured.captured_queries)
    assert took < 3
    assert Payment.objects.count() == 0 and balance(subscriber) == D("0.00")
    assert ledger.verify() == []


# --- The lean route -----------------------------------------------------------------------------------------------


def _asgi(method, path, *, query=b"", body=b"", headers=(), client=("127.0.0.1", 5000)):
    """One request through ``abonent.asgi.application``; (status, headers, body)."""
    from abonent.asgi import application

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [*([] if any(name == b"host" for name, _ in headers) else [(b"host", b"testserver")]), *headers],
        "client": client,
        "server": ("testserver", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent = []

    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # the client stays until the answer is sent (Django listens for a disconnect)

    async def send(message):
        sent.append(message)

    asyncio.run(application(scope, receive, send))
    start = sent[0]
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


@pytest.fixture
def lean_route():
    from abonent.payments import agents_asgi

    yield
    agents_asgi.close_connections()


@pytest.mark.django_db(transaction=True)
def test_the_lean_route_pays_once_and_keeps_the_agents_rules(agent_and_secret, subscriber, lean_route):
    from urllib.parse import urlencode

    secret = agent_and_secret[1]
    auth = [(b"authorization", b"Basic " + base64.b64encode(f"qiwi:{secret}".encode()))]
    query = urlencode({"command": "pay", "txn_id": "lean1", "account": subscriber.account_number, "sum": "12.00"})
    status, headers, body = _asgi("GET", URL, query=query.encode(), headers=auth)
    assert status == 200 and b"<result>0</result>" in body
    assert headers[b"content-length"] == str(len(body)).encode() and headers[b"cache-control"] == b"no-store"
    again = _asgi("GET", URL, query=query.encode(), headers=auth)
    assert again[2] == body
    payment = Payment.objects.get()
    event = AuditEvent.objects.get(action="payments.received")
    assert str(event.ip_address) == "127.0.0.1" and event.request_id == headers[b"x-request-id"].decode()
    assert balance(subscriber) == D("12.00") and payment.amount == D("12.00")
    # Another address, a wrong secret: 403 and nothing read.
    assert _asgi("GET", URL, query=query.encode(), headers=auth, client=("192.0.2.1", 5000))[0] == 403
    wrong = [(b"authorization", b"Basic " + base64.b64encode(b"qiwi:nope"))]
    assert _asgi("GET", URL, query=query.encode(), headers=wrong)[0] == 403
    # A body over the cap is refused before it is read; a NUL goes to the full stack's guard (422, as before).
    assert _asgi("POST", URL, body=b"x" * 3_000_000, headers=auth)[0] == 413
    big = [*auth, (b"content-length", b"99999999")]
    assert _asgi("POST", URL, body=b"", headers=big)[0] == 413
    # A NUL goes to the full stack, whose guard answers an agent in the protocol (result 300), not in plain text.
    nul = _asgi("GET", URL, query=b"command=pay&txn_id=%00", headers=auth)
    assert nul[0] == 200 and b"<result>300</result>" in nul[2]
    # POST urlencoded as the protocol allows.
    form = [*auth, (b"content-type", b"application/x-www-form-urlencoded")]
    post = _asgi("POST", URL, body=query.replace("lean1", "lean2").encode(), headers=form)
    assert post[0] == 200 and b"<result>0</result>" in post[2]
    assert balance(subscriber) == D("24.00") and ledger.verify() == []
    # What the skipped middleware refuses is refused as before: a foreign Host (400), plain HTTP under
    # SECURE_SSL_REDIRECT (a 301 to HTTPS) go to the full stack.
    assert _asgi("GET", URL, query=query.encode(), headers=[*auth, (b"host", b"evil.example")])[0] == 400
    assert b"x-frame-options" not in headers  # this route's own answer, not the full stack's
    with override_settings(SECURE_SSL_REDIRECT=True):
        # The full stack answers (its SecurityMiddleware read the setting at start-up: in production, a 301).
        delegated = _asgi("GET", URL, query=query.encode(), headers=auth)[1]
        assert b"x-frame-options" in {name.lower() for name in delegated}
    # Other paths are Django's as before.
    assert _asgi("GET", "/pay/agents/qiwi/extra/")[0] == 404


@pytest.mark.django_db
def test_a_restricted_subscriber_paying_at_a_terminal_is_restored_at_once(
    terminal, subscriber, make_plan, admin, django_capture_on_commit_callbacks
):
    """The fast path reads "is this subscriber anything but active?" with the payment (dunning's probe): a debtor
    is re-evaluated right after the commit, as after any payment."""
    from abonent.billing import actions as billing
    from abonent.dunning.evaluation import sweep
    from abonent.dunning.models import AccessState

    plan = make_plan("probe", "650.00")
    billing.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    billing.do_adjust_balance(subscriber, amount="-2000.00", reason="debt", acting_user=admin)
    sweep()
    assert AccessState.objects.get(subscriber=subscriber).state == "restricted"
    with django_capture_on_commit_callbacks(execute=True):
        got = call(terminal, command="pay", txn_id="probe-1", account=subscriber.account_number, sum="5000.00")
    assert got["result"] == "0"
    assert AccessState.objects.get(subscriber=subscriber).state == "active"


@pytest.mark.django_db
def test_an_active_subscriber_paying_at_a_terminal_costs_dunning_no_query(
    terminal, subscriber, django_capture_on_commit_callbacks
):
    """Most payers are active: the terminal's one statement answers dunning's question too, so the payment's
    after-commit work reads nothing from dunning's table (one query more per payment was a fifth of the rate)."""
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        got = call(terminal, command="pay", txn_id="probe-2", account=subscriber.account_number, sum="100.00")
    assert got["result"] == "0"
    statements = [q["sql"] for q in queries.captured_queries]
    assert any("payments_terminal_pay" in sql and "dunning_accessstate" in sql for sql in statements)
    assert not [sql for sql in statements if "dunning_accessstate" in sql and "payments_terminal_pay" not in sql]
