"""Date reminders: a promised payment about to expire, a freeze about to end; once per date, whatever the reruns."""

import datetime as dt
from decimal import Decimal

import pytest

from abonent.billing import actions as billing
from abonent.billing.models import LedgerAccount
from abonent.billing.testing import run_on
from abonent.catalog.models import FreezePolicy, PromisedPaymentPolicy
from abonent.core import clock
from abonent.core.scheduler import registered_jobs
from abonent.dunning.reminders import send_reminders
from abonent.notifications.models import Event, Message

pytestmark = pytest.mark.django_db
NOV_1 = dt.date(2026, 11, 1)


@pytest.fixture
def plan(make_plan):
    freeze = FreezePolicy.objects.create(name="F", min_days=7, max_days=60, yearly_quota_days=60, fee_per_day=0)
    promised = PromisedPaymentPolicy.objects.create(
        name="P", max_amount=Decimal("700.00"), days=3, max_debt=Decimal("700.00")
    )
    return make_plan("internet-100", "650.00", freeze_policy=freeze, promised_payment_policy=promised)


@pytest.fixture
def subscriber(make_subscriber, plan, admin, settings):
    settings.ABONENT_QUIET_HOURS = ""
    customer = make_subscriber()
    with clock.travel_to(NOV_1):
        billing.do_post_payment(customer, amount="700.00", channel="test", external_id="opening")
        billing.do_activate_subscription(customer, plan=plan, acting_user=admin)
    return customer


def messages(event):
    return list(Message.objects.filter(event=event).order_by("id").values_list("channel", "dedup_key", "body"))


def test_a_promised_payment_is_reminded_the_day_before_it_expires_and_once(subscriber, admin):
    run_on(dt.date(2026, 12, 1))  # 50 - 650: 600 owed
    with clock.travel_to(dt.date(2026, 12, 1)):
        billing.do_take_promised_payment(subscriber, acting_user=admin, amount=Decimal("700.00"))
    promised = subscriber.promised_payments.get()
    assert promised.due_on == dt.date(2026, 12, 4)

    assert send_reminders(dt.date(2026, 12, 2))["promised_queued"] == 0  # two days before: not yet
    counts = send_reminders(dt.date(2026, 12, 3))
    assert (counts["promised"], counts["promised_queued"]) == (1, 1)
    [(channel, key, body)] = messages(Event.PROMISED_EXPIRING)
    assert (channel, key) == ("sms", f"promised:{promised.pk}:2026-12-04:sms")
    # 700 promised on a debt of 600: 100 on the account; when the 700 goes, 600 must have been paid.
    assert "700,00" in body and "04.12.2026" in body and "600,00" in body
    assert send_reminders(dt.date(2026, 12, 3))["promised_queued"] == 0
    assert send_reminders(dt.date(2026, 12, 4))["promised_queued"] == 0  # the last day: same promise, same date
    assert len(messages(Event.PROMISED_EXPIRING)) == 1


def test_the_amount_due_counts_the_credit_limit_and_is_never_negative(subscriber, admin):
    run_on(dt.date(2026, 12, 1))  # 600 owed
    LedgerAccount.objects.filter(subscriber=subscriber).update(credit_limit=Decimal("200.00"))
    with clock.travel_to(dt.date(2026, 12, 1)):
        billing.do_take_promised_payment(subscriber, acting_user=admin, amount=Decimal("650.00"))
    # 50 on the account and 200 of credit; when the 650 goes, -600 + 200: 400 to pay.
    send_reminders(dt.date(2026, 12, 3))
    [(_channel, _key, body)] = messages(Event.PROMISED_EXPIRING)
    assert "650,00" in body and "400,00" in body

    Message.objects.all().delete()
    LedgerAccount.objects.filter(subscriber=subscriber).update(credit_limit=Decimal("5000.00"))
    send_reminders(dt.date(2026, 12, 3))
    [(_channel, _key, body)] = messages(Event.PROMISED_EXPIRING)
    assert "Pay 0,00" in body


def test_a_repaid_promised_payment_is_not_reminded(subscriber, admin):
    with clock.travel_to(dt.date(2026, 11, 20)):
        billing.do_take_promised_payment(subscriber, acting_user=admin, amount=Decimal("300.00"))
        billing.do_post_payment(subscriber, amount="1000.00", channel="test", external_id="repay")
    assert send_reminders(dt.date(2026, 11, 22)) == {
        "promised": 0,
        "promised_queued": 0,
        "freezes": 0,
        "freezes_queued": 0,
    }
    assert messages(Event.PROMISED_EXPIRING) == []


def test_a_freeze_is_reminded_three_days_before_it_ends(subscriber, admin, settings):
    subscription = subscriber.subscriptions.get()
    with clock.travel_to(dt.date(2026, 11, 10)):
        freeze = billing.do_freeze_subscription(subscription, days=10, acting_user=admin)
    assert freeze.ends_on == dt.date(2026, 11, 20)

    assert send_reminders(dt.date(2026, 11, 16))["freezes"] == 0
    assert send_reminders(dt.date(2026, 11, 17))["freezes_queued"] == 1
    assert send_reminders(dt.date(2026, 11, 18))["freezes_queued"] == 0
    [(_channel, key, body)] = messages(Event.FREEZE_ENDING)
    assert key == f"freeze:{freeze.pk}:2026-11-20:sms" and "20.11.2026" in body

    settings.ABONENT_FREEZE_REMIND_DAYS = 5
    assert send_reminders(dt.date(2026, 11, 18))["freezes_queued"] == 0  # a wider window finds the same reminder


def test_the_reminders_run_daily_in_the_morning():
    job = registered_jobs()["dunning.date_reminders"]
    assert job.daily_at == dt.time(10, 0) and job.every is None
