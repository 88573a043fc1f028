"""Attack review of the terminal ``pay`` through the intake (SQLite, or the fast path off): the number was looked up
without a lock and the intake locked the subscriber by id later, so an old number moved to another subscriber in
that gap credited its previous holder. The lookup now takes the row lock the intake credits under."""

import base64
import re
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test import Client

from abonent.billing.selectors import get_balance
from abonent.payments.actions.agents import do_create_agent
from abonent.payments.models import Payment
from abonent.payments.protocols import osmp
from abonent.payments.selectors.agents import forget_agent
from abonent.subscribers import actions as subscribers

D = Decimal
URL = "/pay/agents/qiwi/"


@pytest.fixture(autouse=True)
def _slow_path(settings):
    settings.ABONENT_AGENT_FAST_PATH = False
    forget_agent()
    yield
    forget_agent()


@pytest.fixture
def terminal(admin):
    _agent, secret = do_create_agent(code="qiwi", name="QIWI", login="qiwi", networks="127.0.0.0/8", acting_user=admin)
    token = base64.b64encode(f"qiwi:{secret}".encode()).decode()
    return Client(headers={"Authorization": f"Basic {token}"})


def call(client, **params) -> dict:
    return dict(re.findall(r"<(prv_txn|result)>(.*?)</\1>", client.get(URL, params).content.decode()))


@pytest.mark.django_db
def test_pay_looks_the_number_up_under_the_lock_it_credits_under(terminal, make_subscriber, admin, monkeypatch):
    holder = make_subscriber(last_name="Прежний", phone="+79161230011")
    subscribers.do_set_legacy_account(holder, "173829", by=admin)
    lookups = []
    real = osmp.subscriber_by_account

    def spy(number, **kwargs):
        lookups.append((kwargs.get("lock", False), connection.in_atomic_block))
        return real(number, **kwargs)

    monkeypatch.setattr(osmp, "subscriber_by_account", spy)
    assert call(terminal, command="pay", txn_id="1", account="173829", sum="100")["result"] == "0"
    assert lookups == [(True, True)]
    assert Payment.objects.get().subscriber_id == holder.pk and get_balance(holder).balance == D("100.00")


def _waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PostgreSQL's row locks")
@pytest.mark.django_db(transaction=True)
def test_an_old_number_moved_while_a_pay_waits_never_credits_its_previous_holder(terminal, make_subscriber, admin):
    previous = make_subscriber(last_name="Прежний", phone="+79161230012")
    current = make_subscriber(last_name="Нынешний", phone="+79161230013")
    subscribers.do_set_legacy_account(previous, "173829", by=admin)
    moved, release, answers = threading.Event(), threading.Event(), []

    def move():
        # The import moves the number, its transaction still open while the terminal's pay arrives.
        try:
            with transaction.atomic():
                subscribers.do_set_legacy_accounts([(previous.pk, None), (current.pk, "173829")], by=None)
                moved.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def pay():
        try:
            answers.append(call(terminal, command="pay", txn_id="7", account="173829", sum="650"))
        finally:
            connection.close()

    mover = threading.Thread(target=move)
    mover.start()
    assert moved.wait(timeout=30)
    payer = threading.Thread(target=pay)
    payer.start()
    deadline = time.monotonic() + 10
    while not _waiting_for_a_lock() and time.monotonic() < deadline:
        time.sleep(0.05)
    release.set()
    mover.join(timeout=30)
    payer.join(timeout=30)
    # The number named nobody when the pay got its lock (the fast path answers the same): 5, nothing taken.
    assert answers[0]["result"] == "5" and Payment.objects.count() == 0
    assert get_balance(previous).balance == D("0.00")
    # The terminal's retry finds the number's holder now.
    assert call(terminal, command="pay", txn_id="7", account="173829", sum="650")["result"] == "0"
    assert Payment.objects.get().subscriber_id == current.pk and get_balance(current).balance == D("650.00")
    assert get_balance(previous).balance == D("0.00")
