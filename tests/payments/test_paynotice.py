"""Every payment tells its subscriber once, whichever way it came in (issue 14, "payment received"): the cash desk
through the intake, a terminal's ``pay`` through the intake or through the PostgreSQL fast path's function (which
writes the outbox row itself, migration 0010), a repeated ``pay`` telling nothing more; and the message waits in
the outbox for the fiscal receipt's check link, issued by a local server speaking ATOL Online's protocol."""

import datetime as dt

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from abonent.core import clock
from abonent.notifications.events import drain_payment_notices
from abonent.notifications.models import Channel, Message, MessageStatus
from abonent.payments import actions
from abonent.payments.actions.agents import do_update_agent
from abonent.payments.actions.receipts import process_due_receipts
from abonent.payments.models import (
    FiscalReceipt,
    NoticeKind,
    Payment,
    PaymentMethod,
    PaymentNotice,
    PaymentStatus,
    ReceiptStatus,
)
from abonent.subscribers import actions as subscribers
from abonent.subscribers.models import ContactKind, ContactPoint

from . import test_terminals_fastpath as fastpath
from .test_cashdesk import client_for, take, take_token

# The fast path's fixtures (an agent ``qiwi`` allowing 127.0.0.1, its channel's ledger accounts made).
_fresh_agent_cache = fastpath._fresh_agent_cache
agent_and_secret = fastpath.agent_and_secret
terminal = fastpath.terminal
agent = fastpath.agent

T0 = dt.datetime(2026, 12, 6, 11, 0, tzinfo=dt.UTC)
ON_POSTGRES = connection.vendor == "postgresql"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_quiet_hours(settings):
    settings.ABONENT_QUIET_HOURS = ""


def reachable_by_email(subscriber):
    ContactPoint.objects.create(subscriber=subscriber, kind=ContactKind.EMAIL, value="ivanov@example.ru")
    return subscriber


def messages_of(payment) -> dict[str, Message]:
    return {m.channel: m for m in Message.objects.filter(dedup_key__startswith=f"payment:{payment.pk}:")}


def test_a_cash_desk_payment_is_told_once_per_channel_after_the_drain(
    cashier, subscriber, django_capture_on_commit_callbacks
):
    reachable_by_email(subscriber)
    client = client_for(cashier)
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        token = take_token(client, subscriber)
        assert take(client, subscriber, "650,00", token).status_code == 302
        assert take(client, subscriber, "650,00", token).status_code == 302  # the form sent twice
    payment = Payment.objects.get()
    assert not Message.objects.exists()  # nothing in the cashier's request
    with clock.travel_to(T0 + dt.timedelta(minutes=1)):
        assert drain_payment_notices() == 1
        assert drain_payment_notices() == 0
    rows = messages_of(payment)
    assert set(rows) == {Channel.SMS, Channel.EMAIL} and Message.objects.count() == 2
    assert all(m.status == MessageStatus.QUEUED and "650.00 ₽ received" in m.body for m in rows.values())
    assert PaymentNotice.objects.get().delivered_at == T0 + dt.timedelta(minutes=1)


@pytest.mark.parametrize(
    "fast",
    [pytest.param(True, id="fast-path", marks=pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's")), False],
)
def test_a_terminal_payment_is_told_once_and_a_repeated_pay_tells_nothing_more(terminal, subscriber, fast):
    reachable_by_email(subscriber)
    params = {"command": "pay", "txn_id": "f1", "account": subscriber.account_number, "sum": "250.00"}
    with override_settings(ABONENT_AGENT_FAST_PATH=fast), clock.travel_to(T0):
        with CaptureQueriesContext(connection) as captured:
            first = fastpath.call(terminal, **params)
        assert first["result"] == "0"
        if fast:
            # One round trip: the function wrote the notice, no statement of its own did.
            assert sum("payments_terminal_pay" in q["sql"] for q in captured.captured_queries) == 1
            assert not any("payments_paymentnotice" in q["sql"] for q in captured.captured_queries)
        payment = Payment.objects.get()
        notice = PaymentNotice.objects.get()
        assert (notice.kind, notice.subscriber_id, notice.payload, notice.dedup_key, notice.created_at) == (
            NoticeKind.PAYMENT_RECEIVED,
            subscriber.pk,
            {"payment_id": payment.pk},
            f"payment:{payment.pk}",
            T0,
        )
        assert drain_payment_notices() == 1
        rows = messages_of(payment)
        assert set(rows) == {Channel.SMS, Channel.EMAIL}
        assert "250.00 ₽ received" in rows[Channel.SMS].body and "balance 250.00 ₽" in rows[Channel.SMS].body
        # The agent sends the same pay again (it did not get our answer): the first payment, nothing more to tell.
        again = fastpath.call(terminal, **params)
        assert again["result"] == "0" and again["prv_txn"] == first["prv_txn"]
        assert drain_payment_notices() == 0
    assert PaymentNotice.objects.count() == 1 and Message.objects.count() == 2


@pytest.mark.skipif(not ON_POSTGRES, reason="the fast path is PostgreSQL's")
def test_a_fast_path_payment_to_suspense_queues_no_notice(terminal, agent, subscriber, admin):
    subscribers.do_close_subscriber(subscriber, reason="moved", acting_user=admin)
    do_update_agent(agent, active_accounts_only=False, acting_user=admin)
    with override_settings(ABONENT_AGENT_FAST_PATH=True), CaptureQueriesContext(connection) as captured:
        got = fastpath.call(terminal, command="pay", txn_id="s1", account=subscriber.account_number, sum="10")
    assert any("payments_terminal_pay" in q["sql"] for q in captured.captured_queries)
    assert got["result"] == "0" and Payment.objects.get().status == PaymentStatus.SUSPENSE
    assert not PaymentNotice.objects.exists()


def test_a_cash_payment_waits_in_the_outbox_for_its_atol_receipt_and_is_told_with_the_check_link(
    atol, subscriber, settings, django_capture_on_commit_callbacks
):
    settings.ABONENT_FISCAL_CHECK_URL = "https://check.example.ru/?fn={fn}&i={fd}&fp={fp}"
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        payment = actions.do_receive_payment(
            channel="cash", method=PaymentMethod.CASH, subscriber=subscriber, external_id="c1", amount="650.00"
        ).payment
    with clock.travel_to(T0):
        process_due_receipts()  # sent to ATOL, which has not fiscalized it yet
    receipt = FiscalReceipt.objects.get(payment=payment)
    assert receipt.status == ReceiptStatus.SENT
    with clock.travel_to(T0 + dt.timedelta(seconds=30)):
        assert drain_payment_notices() == 0
    assert not Message.objects.exists() and PaymentNotice.objects.get().delivered_at is None
    atol.finish(receipt.uuid)
    polled = T0 + dt.timedelta(minutes=1)
    with clock.travel_to(polled), django_capture_on_commit_callbacks(execute=True):
        process_due_receipts()  # the report says done: payments.receipt_done drains the notice at once
    receipt.refresh_from_db()
    assert receipt.status == ReceiptStatus.DONE
    message = Message.objects.get()
    assert "https://check.example.ru/?fn=9999078900004312&i=101&fp=3449555941" in message.body
    assert message.next_attempt_at == polled and PaymentNotice.objects.get().delivered_at == polled
