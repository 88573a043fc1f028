"""Queueing: one row per reachable channel, rendered in the subscriber's language, unique by key."""

import datetime as dt
import zoneinfo

import pytest
from django.core.exceptions import ValidationError

from abonent.notifications.models import Channel, Event, Message, MessageStatus, Preference
from abonent.notifications.placeholders import check_template
from abonent.notifications.queueing import after_quiet_hours, notify
from abonent.subscribers.models import ContactKind, ContactPoint

pytestmark = pytest.mark.django_db

MSK = zoneinfo.ZoneInfo("Europe/Moscow")


def test_one_row_per_channel_with_an_address_and_repeats_are_no_ops(make_subscriber, settings):
    settings.ABONENT_QUIET_HOURS = ""
    subscriber = make_subscriber()
    ContactPoint.objects.create(subscriber=subscriber, kind=ContactKind.EMAIL, value="a@example.ru")
    context = {"amount": "650.00", "balance": "12.00", "paid_at": "06.12.2026", "receipt_link": ""}
    assert notify(subscriber.pk, Event.PAYMENT_RECEIVED, key="pay:1", context=context) == 2
    assert notify(subscriber.pk, Event.PAYMENT_RECEIVED, key="pay:1", context=context) == 0
    rows = {m.channel: m for m in Message.objects.all()}
    assert set(rows) == {Channel.EMAIL, Channel.SMS}
    assert rows[Channel.SMS].address == "+79161234567"
    assert "650.00" in rows[Channel.SMS].body and subscriber.account_number in rows[Channel.SMS].body
    assert rows[Channel.EMAIL].subject


def test_channel_off_is_recorded_as_skipped(make_subscriber):
    subscriber = make_subscriber()
    Preference.objects.create(subscriber=subscriber, sms=False, updated_at=dt.datetime.now(dt.UTC))
    notify(subscriber.pk, Event.RESTORED, key="r:1", context={"balance": "1"})
    message = Message.objects.get()
    assert (message.status, message.error) == (MessageStatus.SKIPPED, "channel_off")


def test_unknown_placeholder_is_refused():
    with pytest.raises(ValidationError) as error:
        check_template(Event.RESTRICTED, "Pay {amount_due} by {tomorrow}")
    assert error.value.code == "unknown_placeholder"
    with pytest.raises(ValidationError):
        check_template(Event.RESTRICTED, "{name.__class__}")


def test_quiet_hours_cross_midnight():
    quiet = (dt.time(21), dt.time(9))
    late = dt.datetime(2026, 12, 6, 22, 30, tzinfo=MSK)
    assert after_quiet_hours(late, MSK, quiet) == dt.datetime(2026, 12, 7, 9, 0, tzinfo=MSK)
    early = dt.datetime(2026, 12, 7, 3, 0, tzinfo=MSK)
    assert after_quiet_hours(early, MSK, quiet) == dt.datetime(2026, 12, 7, 9, 0, tzinfo=MSK)
    noon = dt.datetime(2026, 12, 7, 12, 0, tzinfo=MSK)
    assert after_quiet_hours(noon, MSK, quiet) == noon
