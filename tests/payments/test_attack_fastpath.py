"""Adversarial review of the terminal fast path and its lean ASGI route (attack4). Every test here FAILS on the code
it was written against: each says what breaks and why it matters. Helpers come from test_terminals_fastpath."""

import base64
from decimal import Decimal

import pytest
from django.db import connection

from abonent.billing import ledger
from abonent.payments.models import Payment

from . import test_terminals_fastpath as base

URL = base.URL
_asgi = base._asgi
# The fixtures of the fast path's own tests.
_fresh_agent_cache = base._fresh_agent_cache
agent_and_secret = base.agent_and_secret
agent = base.agent
terminal = base.terminal
lean_route = base.lean_route

D = Decimal

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the fast path and its lean route are PostgreSQL's"
)


def _auth(agent_and_secret):
    secret = agent_and_secret[1]
    return [(b"authorization", b"Basic " + base64.b64encode(f"qiwi:{secret}".encode()))]


def _full_stack(method, path, *, query=b"", body=b"", headers=()):
    """The same request through Django's own ASGI application (what the lean route must answer like)."""
    from abonent import asgi
    from abonent.payments import agents_asgi

    original = agents_asgi.takes
    agents_asgi.takes = lambda scope: False
    try:
        return _asgi(method, path, query=query, body=body, headers=headers)
    finally:
        agents_asgi.takes = original
        assert asgi.agents_asgi is agents_asgi


def _lean(method, path, **kwargs):
    """The lean route's answer; an exception escaping the ASGI app is what a server turns into a 500."""
    try:
        return _asgi(method, path, **kwargs)
    except Exception as exc:
        return (500, {}, repr(exc).encode())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "content_type",
    [b"multipart/form-data; boundary=", b"multipart/form-data", b"multipart/form-data; boundary=\xff\xfe"],
    ids=["empty-boundary", "no-boundary", "latin1-boundary"],
)
def test_lean_route_malformed_multipart_post_is_400_not_500(agent_and_secret, subscriber, lean_route, content_type):
    # BREAKS: agents_asgi._serve catches RequestDataTooBig and SuspiciousOperation only. A POST whose Content-Type is
    # multipart with a missing/invalid boundary makes request.POST (read by views.terminals before its own try)
    # raise MultiPartParserError, which is neither: it escapes run_in_executor and the ASGI app, and the server
    # answers 500 (and logs a traceback per request). The full stack's RequestGuardMiddleware answers it in the
    # protocol (malformed_body).
    # Anyone reaching the endpoint - no credentials needed, the body is parsed before the agent is looked at - can
    # produce 500s at will, which the brief forbids ("no 500 on hostile input through the lean route").
    headers = [*_auth(agent_and_secret), (b"content-type", content_type)]
    body = b"command=pay&txn_id=mp1&account=" + subscriber.account_number.encode() + b"&sum=10"
    full = _full_stack("POST", URL, body=body, headers=headers)
    lean = _lean("POST", URL, body=body, headers=headers)
    assert full[0] != 500
    assert (lean[0], lean[2]) == (full[0], full[2])
    assert Payment.objects.count() == 0 and ledger.verify() == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("charset", [b"windows-1251", b"koi8-r", b"utf-7"])
def test_lean_route_urlencoded_post_in_a_legacy_charset_is_not_a_500(agent_and_secret, subscriber, lean_route, charset):
    # BREAKS: Django 5.2 refuses an application/x-www-form-urlencoded body declared in any charset but UTF-8 by
    # raising BadRequest from request.POST. BadRequest is not a SuspiciousOperation, so agents_asgi._serve does not
    # catch it (views.terminals reads request.POST before its own try): it escapes the ASGI app and the server
    # answers 500. The full stack's RequestGuardMiddleware answers result 300 "The request body cannot be read.".
    # Russian terminals and bank gateways routinely declare charset=windows-1251 even for an all-ASCII body: the
    # very first pay of such an agent, with perfectly valid parameters, gets a 500 from the lean route - which the
    # agent retries forever (a 5xx is "try again") instead of the final answer the full stack gives.
    headers = [*_auth(agent_and_secret), (b"content-type", b"application/x-www-form-urlencoded; charset=" + charset)]
    body = b"command=pay&txn_id=cs1&account=" + subscriber.account_number.encode() + b"&sum=10"
    full = _full_stack("POST", URL, body=body, headers=headers)
    lean = _lean("POST", URL, body=body, headers=headers)
    assert full[0] != 500
    assert (lean[0], lean[2]) == (full[0], full[2])
    assert Payment.objects.count() == 0 and ledger.verify() == []


@pytest.mark.django_db(transaction=True)
def test_a_fallback_gets_a_second_full_deadline(terminal, subscriber, make_subscriber, make_plan, admin, settings):
    # BREAKS: "the endpoint's database work runs in one transaction with statement_timeout and lock_timeout of
    # ABONENT_AGENT_DB_TIMEOUT" (docs/payments-terminals.md, Deadlines). With the fast path a pay to an account with
    # an open promised payment is two transactions: the function may wait almost the whole deadline on the
    # subscriber's lock, find the promise and fall back; then the intake starts again, and its own
    # intake.deadline() (payments/actions/common.py) REPLACES the agent's SET LOCAL with ABONENT_PAYMENTS_LOCK_TIMEOUT
    # (3 s) / ABONENT_PAYMENTS_STATEMENT_TIMEOUT (10 s). Measured: 0.8 s in the function + 3.0 s on the promise's row
    # (which the intake locks and the function does not) = "1" after 3.8 s with ABONENT_AGENT_DB_TIMEOUT=1. An
    # operator who tightens the agents' deadline gets neither the bound nor the lean route's threads back in time.
    import threading
    import time

    from django.db import connections

    from abonent.billing import actions as billing
    from abonent.billing.models import PromisedPayment
    from abonent.catalog.models import PromisedPaymentPolicy

    deadline = 1.0
    settings.ABONENT_AGENT_DB_TIMEOUT = deadline
    policy = PromisedPaymentPolicy.objects.create(name="p", max_amount=D("500"), days=3, max_debt=D("1000"))
    plan = make_plan("p", "650.00", promised_payment_policy=policy)
    billing.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    promised = billing.do_take_promised_payment(subscriber, acting_user=admin, amount="300")
    before = PromisedPayment.objects.get(pk=promised.pk).status
    # A first pay elsewhere, so that what is timed below is the database work, not the first request's imports.
    other = make_subscriber()
    assert base.call(terminal, command="pay", txn_id="warm", account=other.account_number, sum="1")["result"] == "0"

    subscriber_holder = connections.create_connection("default")
    promise_holder = connections.create_connection("default")
    try:
        with subscriber_holder.cursor() as a, promise_holder.cursor() as b:
            a.execute("BEGIN")
            a.execute("SELECT 1 FROM subscribers_subscriber WHERE id = %s FOR UPDATE", [subscriber.pk])
            b.execute("BEGIN")
            b.execute("SELECT 1 FROM billing_promisedpayment WHERE id = %s FOR UPDATE", [promised.pk])
            # The subscriber's lock is let go just inside the deadline: the function gets it and falls back.
            release = threading.Timer(deadline * 0.8, lambda: a.execute("ROLLBACK"))
            release.start()
            started = time.monotonic()
            got = base.call(terminal, command="pay", txn_id="dl1", account=subscriber.account_number, sum="100")
            took = time.monotonic() - started
            release.join()
            b.execute("ROLLBACK")
    finally:
        subscriber_holder.close()
        promise_holder.close()
    assert got["result"] == "1"
    assert Payment.objects.filter(external_id="dl1").count() == 0
    assert PromisedPayment.objects.get(pk=promised.pk).status == before
    assert ledger.verify() == []
    # The promise: an answer within the deadline (plus a little for the request itself).
    assert took < deadline * 1.3, f"answered after {took:.2f}s with a {deadline}s deadline"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fast", [True, False], ids=["fast-path-fallback", "intake"])
def test_the_intake_replaces_the_agents_deadline_with_the_payments_one(
    terminal, subscriber, make_subscriber, make_plan, admin, settings, fast
):
    # BREAKS: views.terminals sets the agent's deadline (fastpay.agent_deadline: SET LOCAL lock_timeout and
    # statement_timeout = ABONENT_AGENT_DB_TIMEOUT) and then calls do_receive_payment, whose first statement is
    # intake.deadline(): SET LOCAL lock_timeout = ABONENT_PAYMENTS_LOCK_TIMEOUT (3 s), statement_timeout =
    # ABONENT_PAYMENTS_STATEMENT_TIMEOUT (10 s). The agent's setting is silently overridden on every pay the intake
    # takes (the fast path's fallbacks, SQLite, own-receipt agents, ABONENT_AGENT_FAST_PATH=0): a held lock is
    # answered after 3 s instead of ABONENT_AGENT_DB_TIMEOUT, and a slow statement may run 10 s (with the default
    # agent deadline of 5 s, the lock bound is in fact shorter and the statement bound twice as long).
    import time

    from django.db import connections

    from abonent.billing import actions as billing
    from abonent.catalog.models import PromisedPaymentPolicy

    deadline = 1.0
    settings.ABONENT_AGENT_DB_TIMEOUT = deadline
    settings.ABONENT_AGENT_FAST_PATH = fast
    policy = PromisedPaymentPolicy.objects.create(name="p", max_amount=D("500"), days=3, max_debt=D("1000"))
    plan = make_plan("p", "650.00", promised_payment_policy=policy)
    billing.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    promised = billing.do_take_promised_payment(subscriber, acting_user=admin, amount="300")
    other = make_subscriber()  # a first pay elsewhere: the timing below is the database's, not the imports'
    assert base.call(terminal, command="pay", txn_id="warm", account=other.account_number, sum="1")["result"] == "0"
    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT 1 FROM billing_promisedpayment WHERE id = %s FOR UPDATE", [promised.pk])
            started = time.monotonic()
            got = base.call(terminal, command="pay", txn_id="dl2", account=subscriber.account_number, sum="100")
            took = time.monotonic() - started
            cursor.execute("ROLLBACK")
    finally:
        holder.close()
    assert got["result"] == "1"
    assert not Payment.objects.filter(external_id="dl2").exists() and ledger.verify() == []
    assert took < deadline * 1.3, f"answered after {took:.2f}s with ABONENT_AGENT_DB_TIMEOUT={deadline}"
