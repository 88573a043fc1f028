"""Data for the dashboard's tests, built through the actions at fixed moments (``clock.travel_to``)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from abonent.billing import actions as billing
from abonent.core import clock
from abonent.payments.actions import do_receive_payment
from abonent.staff.permissions import Role

# "Today" in these tests: the middle of a month, in the operator's time zone (Europe/Moscow).
NOW = timezone.make_aware(dt.datetime(2026, 6, 15, 12, 0))
TODAY = NOW.date()


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


@pytest.fixture
def charge(admin, internet):
    """``charge(subscriber, amount, day)``: a one-off charge of the internet service booked on ``day``."""

    def make(subscriber, amount: str, day: dt.date):
        with clock.travel_to(at(day)):
            return billing.do_charge_one_off(subscriber, service=internet, acting_user=admin, amount=Decimal(amount))

    return make


@pytest.fixture
def pay(admin):
    """``pay(subscriber, amount, day)``: a bank payment booked on ``day``."""
    counter = iter(range(1, 10_000))

    def make(subscriber, amount: str, day: dt.date):
        with clock.travel_to(at(day)):
            return billing.do_post_payment(
                subscriber, amount=Decimal(amount), channel="bank", external_id=f"b-{next(counter)}", acting_user=admin
            )

    return make


@pytest.fixture
def receive():
    """``receive(subscriber, amount, moment, channel=..., acting_user=...)``: a payment through the payments intake,
    recorded at ``moment``."""
    counter = iter(range(1, 10_000))

    def make(subscriber, amount: str, moment: dt.datetime, *, channel="bank", method="bank", acting_user=None):
        with clock.travel_to(moment):
            return do_receive_payment(
                channel=channel,
                external_id=f"p-{next(counter)}",
                amount=Decimal(amount),
                method=method,
                subscriber=subscriber,
                acting_user=acting_user,
                received_at=moment,
            ).payment

    return make


@pytest.fixture
def client_of(make_staff):
    """``client_of(role, branches=...)``: a logged-in client of a new staff user and the user."""

    def make(role=Role.OPERATOR, **kwargs):
        user = make_staff(role, **kwargs)
        client = Client()
        client.force_login(user)
        return client, user

    return make
