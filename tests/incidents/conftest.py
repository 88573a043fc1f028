"""Incidents' tests: a NAS with its subscribers online, a street of subscribers by house number, a subscriber of
another city, all on a 600 ₽ calendar-month plan (600 ₽ / 30 days in November = 20 ₽ a day)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from abonent.billing import actions as billing
from abonent.core import clock
from abonent.helpdesk.incidents import actions
from abonent.helpdesk.incidents.validation import AreaData, IncidentData
from abonent.network import actions as network
from abonent.network.models import Session, SessionStatus
from abonent.subscribers.actions import AddressData

# The tests' day: the incident starts on 20 November 2026 at 09:00 UTC.
START = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
_phones = itertools.count(1000)


@pytest.fixture
def nas(admin):
    return network.do_create_nas(
        acting_user=admin, secret="a-long-shared-secret-for-tests", vendor="mikrotik", name="bras-1",
        ip_address="10.9.0.1",
    )  # fmt: skip


@pytest.fixture
def other_nas(admin):
    return network.do_create_nas(
        acting_user=admin, secret="a-long-shared-secret-for-tests", vendor="mikrotik", name="bras-2",
        ip_address="10.9.0.2",
    )  # fmt: skip


@pytest.fixture
def plan(make_plan):
    return make_plan("home", "600.00", name="Домашний")


@pytest.fixture
def customer(make_subscriber, plan, admin):
    """``customer(house, city=..., street=..., branch_obj=...)``: a subscriber at that service address, on ``plan``
    since 1 November with 1,000 ₽ paid (November's 600 ₽ charged: 400 ₽ left)."""

    def make(house="5", *, city="Тверь", street="ул. Ленина", subscribe=True, on_plan=None, **fields):
        subscriber = make_subscriber(
            phone=f"+7916123{next(_phones):04d}",
            addresses=[AddressData(city=city, street=street, house=house, apartment="1")],
            **fields,
        )
        if subscribe:
            with clock.travel_to(dt.date(2026, 11, 1)):
                billing.do_post_payment(
                    subscriber, amount="1000.00", channel="test", external_id=f"opening-{subscriber.pk}"
                )
                billing.do_activate_subscription(subscriber, plan=on_plan or plan, acting_user=admin)
        return subscriber

    return make


_sessions = itertools.count(1)


def online(subscriber, nas, *, at=START - dt.timedelta(hours=1), open_=True):
    """A RADIUS session of ``subscriber`` on ``nas`` (as accounting writes it), last updated at ``at``."""
    n = next(_sessions)
    return Session.objects.create(
        nas=nas,
        unique_id=f"u{n}",
        acct_session_id=f"s{n}",
        subscriber=subscriber,
        username=f"login{n}",
        status=SessionStatus.OPEN if open_ else SessionStatus.CLOSED,
        started_at=at - dt.timedelta(hours=2),
        updated_at=at,
        stopped_at=None if open_ else at,
    )


def incident_data(*, nas=(), areas=(), title="Авария на Ленина", starts_at=START) -> IncidentData:
    return IncidentData(
        title=title,
        description="Не работает интернет в домах 1–12 по ул. Ленина. Восстановим к 18:00.",
        kind="outage",
        starts_at=starts_at,
        nas_ids=[n.pk for n in nas],
        areas=list(areas),
    )


@pytest.fixture
def open_incident(admin):
    """``open_incident(nas=[...], areas=[...])`` opened by the admin at 09:30 on the day."""

    def make(*, user=None, **kwargs):
        with clock.travel_to(START + dt.timedelta(minutes=30)):
            return actions.do_open_incident(incident_data(**kwargs), acting_user=user or admin)

    return make


LENINA_1_12 = AreaData("Тверь", "ул. Ленина", 1, 12)
