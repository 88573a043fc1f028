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


def queued_receipt(payment, status=ReceiptStatus.QUEUED):
    # What the receipt queue (payments.payment_received's handler) records for a payment whose receipt is due.
    return FiscalReceipt.objects.create(
        payment=payment,
        operation="sell",
        provider="atol",
        status=status,
        uuid="u-1" if status == ReceiptStatus.SENT else "",
        amount=payment.amount,
        external_id=f"abn-pay-{payment.pk}",
        created_at=T0,
        next_attempt_at=T0,
    )


def mark_done(receipt):
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


LINK = "https://check.example.ru/?fn=9999078900004312&i=101&fp=3449555941"


def test_a_payment_is_told_by_the_drain_once_per_channel_and_a_repeat_tells_nothing(
    make_subscriber, with_email, django_capture_on_commit_callbacks
):
    subscriber = with_email(make_subscriber())
    with clock.travel_to(T0), django_capture_on_commit_callbacks(execute=True):
        payment = receive(subscriber).payment
    # Nothing in the payment's request: the outbox row only.
    assert not Message.objects.exists()
    notice = PaymentNotice.objects.get()
    assert (notice.kind, notice.subscriber_id, notice.payload) == (
        NoticeKind.PAYMENT_RECEIVED,
        subscriber.pk,
        {"payment_id": payment.pk},
    )
    with clock.travel_to(T0 + dt.timedelta(seconds=40)):
        assert drain_payment_notices() == 1
    rows = {m.channel: m for m in Message.objects.filter(event=Event.PAYMENT_RECEIVED)}
    assert set(rows) == {Channel.SMS, Channel.EMAIL}
    assert rows[Channel.SMS].dedup_key == f"payment:{payment.pk}:sms"
    assert "650.00 ₽ received" in rows[Channel.SMS].body and "balance 650.00 ₽" in rows[Channel.SMS].body
    # No receipt to wait for (no cash register configured): due at the drain.
    assert rows[Channel.SMS].next_attempt_at == T0 + dt.timedelta(seconds=40)
    assert rows[Channel.EMAIL].subject == "Payment received"
    # The event delivered again (a replay, a second worker), the same payment told again by its channel, a rerun.
    _dispatch("payments.payment_received", {"payment_id": payment.pk})
    with django_capture_on_commit_callbacks(execute=True):
        assert receive(subscriber).created is False
    assert drain_payment_notices() == 0
    assert Message.objects.count() == 2 and PaymentNotice.objects.count() == 1


def test_the_balance_told_is_the_one_right_after_the_payment(make_subscriber):
    subscriber = make_subscriber()
    first = receive(subscriber, "t1", "100.00").payment
    second = receive(subscriber, "t2", "50.00").payment
    # Both drained after the second was posted (one chunk): each its own balance.
    assert drain_payment_notices() == 2
    bodies = dict(Message.objects.values_list("dedup_key", "body"))
    assert "balance 100.00 ₽" in bodies[f"payment:{first.pk}:sms"]
    assert "balance 150.00 ₽" in bodies[f"payment:{second.pk}:sms"]


def test_a_payment_in_suspense_is_told_when_assigned_with_the_balance_it_made(
    make_subscriber, admin, django_capture_on_commit_callbacks
):
    subscriber = make_subscriber()
    receive(subscriber, "t0", "30.00")
    with django_capture_on_commit_callbacks(execute=True):
        parked = payments.do_receive_payment(
            channel="agent:qiwi", method=PaymentMethod.TERMINAL, external_id="x", amount="10", account_ref="1"
        ).payment
    assert PaymentNotice.objects.count() == 1 and drain_payment_notices() == 1
    assert not Message.objects.filter(dedup_key__startswith=f"payment:{parked.pk}:").exists()
    payments.do_assign_payment(parked, subscriber=subscriber, acting_user=admin)
    receive(subscriber, "t2", "5.00")  # posted after the assignment, before the drain
    assert drain_payment_notices() == 2
    assert "10.00 ₽ received" in Message.objects.get(dedup_key=f"payment:{parked.pk}:sms").body
    assert "balance 40.00 ₽" in Message.objects.get(dedup_key=f"payment:{parked.pk}:sms").body


def test_a_notice_waits_for_the_receipt_and_its_message_gets_the_check_link(make_subscriber, settings):
    settings.ABONENT_FISCAL_CHECK_URL = "https://check.example.ru/?fn={fn}&i={fd}&fp={fp}"
    subscriber = make_subscriber()
    with clock.travel_to(T0):
        payment = receive(subscriber).payment
        receipt = queued_receipt(payment)
    # Drains within the wait leave it in the outbox, undelivered, with no message.
    with clock.travel_to(T0 + dt.timedelta(seconds=20)):
        assert drain_payment_notices() == 0
    assert not Message.objects.exists() and PaymentNotice.objects.get().delivered_at is None
    mark_done(receipt)
    later = T0 + dt.timedelta(seconds=30)
    with clock.travel_to(later):
        _dispatch("payments.receipt_done", {"receipt_id": receipt.pk})  # drains that one notice now
    message = Message.objects.get()
    assert LINK in message.body and message.next_attempt_at == later
    assert PaymentNotice.objects.get().delivered_at == later
    with clock.travel_to(T0 + dt.timedelta(minutes=5)):
        assert drain_payment_notices() == 0
    assert Message.objects.count() == 1


def test_the_next_drain_after_the_receipt_is_done_sends_it_with_the_link(make_subscriber, settings):
    # receipt_done's own drain lost (the worker died after the receipt's commit): the minute's drain does it.
    settings.ABONENT_FISCAL_CHECK_URL = "https://check.example.ru/?fn={fn}&i={fd}&fp={fp}"
    subscriber = make_subscriber()
    with clock.travel_to(T0):
        payment = receive(subscriber).payment
        mark_done(queued_receipt(payment))
    with clock.travel_to(T0 + dt.timedelta(seconds=50)):
        assert drain_payment_notices() == 1
    assert LINK in Message.objects.get().body


def test_a_receipt_late_past_the_wait_or_failed_lets_the_message_go_without_a_link(make_subscriber, settings):
    settings.ABONENT_FISCAL_CHECK_URL = "https://check.example.ru/?fn={fn}"
    subscriber = make_subscriber()
    with clock.travel_to(T0):
        late = receive(subscriber, "t1").payment
        failing = receive(subscriber, "t2").payment
        queued_receipt(late)
        failed = queued_receipt(failing, ReceiptStatus.SENT)
    with clock.travel_to(T0 + dt.timedelta(seconds=10)):
        FiscalReceipt.objects.filter(pk=failed.pk).update(status=ReceiptStatus.FAILED)
        _dispatch("payments.receipt_failed", {"receipt_id": failed.pk})
    assert list(Message.objects.values_list("dedup_key", flat=True)) == [f"payment:{failing.pk}:sms"]
    with clock.travel_to(T0 + RECEIPT_WAIT - dt.timedelta(seconds=1)):
        assert drain_payment_notices() == 0
    with clock.travel_to(T0 + RECEIPT_WAIT):
        assert drain_payment_notices() == 1
    bodies = list(Message.objects.values_list("body", flat=True))
    assert len(bodies) == 2 and not any("check.example.ru" in body for body in bodies)


def test_a_receipt_not_recorded_yet_is_waited_for_when_links_are_configured(make_subscriber, settings):
    # The drain ran between the payment's commit and the receipt queue's handler.
    subscriber = make_subscriber()
    with clock.travel_to(T0):
        receive(subscriber)
    settings.ABONENT_FISCAL_CHECK_URL = "https://check.example.ru/?fn={fn}"
    with clock.travel_to(T0 + dt.timedelta(seconds=5)):
        assert drain_payment_notices() == 0
    settings.ABONENT_FISCAL_CHECK_URL = ""  # no links at all: nothing to wait for
    with clock.travel_to(T0 + dt.timedelta(seconds=5)):
        assert drain_payment_notices() == 1


def test_a_waiting_notice_does_not_hold_up_the_ones_behind_it(make_subscriber, settings):
    settings.ABONENT_FISCAL_CHECK_URL = "https://check.example.ru/?fn={fn}"
    subscriber = make_subscriber()
    with clock.travel_to(T0):
        queued_receipt(receive(subscriber).payment)
    with clock.travel_to(T0 + dt.timedelta(seconds=1)):
        queue_notice(NoticeKind.AUTOPAY_DECLINED, subscriber.pk, "autopay_declined:7", amount="650", reason="51")
    with clock.travel_to(T0 + dt.timedelta(seconds=30)):
        assert drain_payment_notices(chunk=1) == 1
    assert list(Message.objects.values_list("event", flat=True)) == [Event.AUTOPAY_DECLINED]


def test_a_cancelled_payment_s_notice_is_delivered_with_no_message(make_subscriber, admin):
    subscriber = make_subscriber()
    payment = receive(subscriber).payment
    payments.do_cancel_payment(payment, reason="typo", acting_user=admin)
    assert drain_payment_notices() == 1
    assert not Message.objects.exists() and PaymentNotice.objects.get().delivered_at is not None


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
