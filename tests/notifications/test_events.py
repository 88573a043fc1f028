"""Other apps' events into messages: a payment received (with its receipt link), the payments notice outbox,
plan changes. Each repeat queues nothing twice."""

import datetime as dt
from decimal import Decimal

import pytest

from abonent.billing import actions as billing
from abonent.billing.engine import BillingRun, PlanSwitch, plans_switched
from abonent.core import clock
from abonent.core.events import _dispatch
from abonent.notifications.events import RECEIPT_WAIT, drain_payment_notices
from abonent.notifications.models import Channel, Event, Message, MessageStatus
from abonent.payments import actions as payments
from abonent.payments.actions.autopay import queue_notice
from abonent.payments.models import FiscalReceipt, NoticeKind, PaymentMethod, PaymentNotice, ReceiptStatus

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 12, 6, 11, 0, tzinfo=dt.UTC)


def receive(subscriber, external_id="t1", amount="650.00"):
    return payments.do_receive_payment(
        channel="agent:qiwi",
        method=PaymentMethod.TERMINAL,
        external_id=external_id,
        amount=amount,
        account_ref=subscriber.account_number,
    )


def test_a_payment_gives_one_message_per_channel_and_a_repeated_event_none(
    make_subscriber, with_email, django_capture_on_commit_callbacks
):
    subscriber = with_email(make_subscriber())
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        payment = receive(subscriber).payment
    rows = {m.channel: m for m in Message.objects.filter(event=Event.PAYMENT_RECEIVED)}
    assert set(rows) == {Channel.SMS, Channel.EMAIL}
    assert rows[Channel.SMS].dedup_key == f"payment:{payment.pk}:sms"
    assert "650.00 ₽ received" in rows[Channel.SMS].body and "balance 650.00 ₽" in rows[Channel.SMS].body
    assert rows[Channel.SMS].next_attempt_at == T0  # no receipt to wait for (no cash register configured)
    assert rows[Channel.EMAIL].subject == "Payment received"
    # The event delivered again (a replay, a second worker), and the same payment told again by its channel.
    _dispatch("payments.payment_received", {"payment_id": payment.pk})
    with django_capture_on_commit_callbacks(execute=True):
        assert receive(subscriber).created is False
    assert Message.objects.count() == 2


def test_the_balance_told_is_the_one_right_after_the_payment(make_subscriber, django_capture_on_commit_callbacks):
    subscriber = make_subscriber()
    first = receive(subscriber, "t1", "100.00").payment
    receive(subscriber, "t2", "50.00")
    # The first payment's event handled after the second was posted (a slow queue): its own balance, 100.
    _dispatch("payments.payment_received", {"payment_id": first.pk})
    assert "balance 100.00 ₽" in Message.objects.get().body


def test_a_payment_in_suspense_tells_nobody(make_subscriber, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        payments.do_receive_payment(
            channel="agent:qiwi", method=PaymentMethod.TERMINAL, external_id="x", amount="10", account_ref="1"
        )
    assert not Message.objects.exists()


def test_a_message_waits_for_the_receipt_and_gets_its_check_link(make_subscriber, settings):
    settings.ABONENT_FISCAL_CHECK_URL = "https://check.example.ru/?fn={fn}&i={fd}&fp={fp}"
    subscriber = make_subscriber()
    with clock.travel_to(T0):
        payment = receive(subscriber).payment
        receipt = FiscalReceipt.objects.create(
            payment=payment,
            operation="sell",
            provider="atol",
            status=ReceiptStatus.QUEUED,
            amount=payment.amount,
            external_id=f"abn-pay-{payment.pk}",
            created_at=T0,
            next_attempt_at=T0,
        )
        _dispatch("payments.payment_received", {"payment_id": payment.pk})
    message = Message.objects.get()
    assert message.next_attempt_at == T0 + RECEIPT_WAIT and "check.example.ru" not in message.body
    # The provider's report (as receipts.do_poll writes it): done, with the fiscal attributes.
    FiscalReceipt.objects.filter(pk=receipt.pk).update(
        status=ReceiptStatus.DONE,
        uuid="u-1",
        fn_number="9999078900004312",
        fiscal_document_number=101,
        fiscal_document_attribute=3449555941,
        fiscal_receipt_number=1,
        receipt_datetime=T0,
    )
    later = T0 + dt.timedelta(seconds=20)
    with clock.travel_to(later):
        _dispatch("payments.receipt_done", {"receipt_id": receipt.pk})
    message.refresh_from_db()
    assert "https://check.example.ru/?fn=9999078900004312&i=101&fp=3449555941" in message.body
    assert message.next_attempt_at == later and Message.objects.count() == 1


def test_a_failed_receipt_releases_the_message_without_a_link(make_subscriber, settings):
    settings.ABONENT_FISCAL_CHECK_URL = "https://check.example.ru/?fn={fn}"
    subscriber = make_subscriber()
    with clock.travel_to(T0):
        payment = receive(subscriber).payment
        receipt = FiscalReceipt.objects.create(
            payment=payment,
            operation="sell",
            provider="atol",
            status=ReceiptStatus.SENT,
            uuid="u-1",
            amount=payment.amount,
            external_id=f"abn-pay-{payment.pk}",
            created_at=T0,
            next_attempt_at=T0,
        )
        _dispatch("payments.payment_received", {"payment_id": payment.pk})
        _dispatch("payments.receipt_failed", {"receipt_id": receipt.pk})
    assert Message.objects.get().next_attempt_at == T0


def test_payment_notices_are_drained_once_and_marked_delivered(make_subscriber):
    subscriber = make_subscriber()
    with clock.travel_to(T0):
        queue_notice(
            NoticeKind.AUTOPAY_REMINDER,
            subscriber.pk,
            f"autopay_reminder:{subscriber.pk}:2026-12-10",
            amount=Decimal("650.00"),
            due_on=dt.date(2026, 12, 10),
            method="Visa •••• 4242",
        )
        queue_notice(NoticeKind.AUTOPAY_DECLINED, subscriber.pk, "autopay_declined:7", amount="650", reason="51")
        assert drain_payment_notices(chunk=1) == 2
    notices = list(PaymentNotice.objects.order_by("id"))
    assert all(n.delivered_at == T0 for n in notices)
    messages = {m.event: m for m in Message.objects.all()}
    assert set(messages) == {Event.AUTOPAY_REMINDER, Event.AUTOPAY_DECLINED}
    reminder = messages[Event.AUTOPAY_REMINDER]
    assert reminder.dedup_key == f"paynotice:{notices[0].pk}:sms"
    assert "on 10.12.2026 we will charge 650.00 ₽ to Visa •••• 4242" in reminder.body
    # A rerun finds nothing; a notice whose mark was lost (a crash after the messages) is queued no second time.
    assert drain_payment_notices() == 0
    PaymentNotice.objects.filter(pk=notices[0].pk).update(delivered_at=None)
    assert drain_payment_notices() == 1
    assert Message.objects.count() == 2


def test_a_plan_changed_now_is_told_with_its_fee_and_date(
    make_subscriber, make_plan, admin, django_capture_on_commit_callbacks
):
    subscriber = make_subscriber()
    basic, fast = make_plan("basic", "500.00", name="Базовый"), make_plan("fast", "900.00", name="Быстрый 500")
    receive(subscriber, "t1", "5000.00")
    with clock.travel_to(T0):
        subscription = billing.do_activate_subscription(subscriber, plan=basic, acting_user=admin)
        with django_capture_on_commit_callbacks(execute=True):
            billing.do_change_plan(subscription, plan=fast, acting_user=admin)
    message = Message.objects.get(event=Event.PLAN_CHANGED)
    assert message.dedup_key == f"plan:{subscription.pk}:{fast.pk}:2026-12-06:sms"
    assert "from 06.12.2026" in message.body and "Быстрый 500, 900.00 ₽ a month" in message.body


def test_a_plan_switched_by_the_billing_run_is_told_in_its_transaction(make_subscriber, make_plan):
    first, second = make_subscriber(), make_subscriber(phone="+79161234568")
    cheap = make_plan("cheap", "300.00", name="Эконом")
    on = dt.date(2027, 1, 1)
    switched = [
        PlanSwitch(subscription_id=10, subscriber_id=first.pk, from_plan_id=1, to_plan_id=cheap.pk, effective_on=on),
        PlanSwitch(subscription_id=11, subscriber_id=second.pk, from_plan_id=1, to_plan_id=cheap.pk, effective_on=on),
    ]
    # As the engine sends it (BillingRun._plans_switched), twice: a retried chunk.
    plans_switched.send(sender=BillingRun, switched=switched, as_of=on)
    plans_switched.send(sender=BillingRun, switched=switched, as_of=on)
    rows = Message.objects.filter(event=Event.PLAN_CHANGED).order_by("subscriber_id")
    assert [m.subscriber_id for m in rows] == [first.pk, second.pk]
    assert all("from 01.01.2027" in m.body and "Эконом, 300.00 ₽" in m.body for m in rows)
    assert all(m.status == MessageStatus.QUEUED for m in rows)
