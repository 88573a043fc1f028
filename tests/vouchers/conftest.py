"""Prepaid cards: a dealer, a top-up series of 500 ₽ cards with its codes known to the test, a Wi-Fi series."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from abonent.core import clock
from abonent.vouchers import actions

TODAY = dt.date(2026, 11, 20)


@pytest.fixture(autouse=True)
def today():
    with clock.travel_to(dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)):
        yield TODAY


@pytest.fixture
def dealer(admin):
    return actions.do_create_dealer(name="Киоск «Связь»", commission_percent="5", acting_user=admin)


@pytest.fixture
def series(admin, dealer):
    """Ten 500 ₽ top-up cards valid to the end of 2027; 1–5 sold to the dealer."""
    created = actions.do_create_series(
        name="Весна-500", kind="topup", amount="500.00", count=10, expires_on=dt.date(2027, 12, 31), acting_user=admin
    )
    actions.do_sell_vouchers(created, dealer=dealer, first=1, last=5, key=str(uuid.uuid4()), acting_user=admin)
    return created


@pytest.fixture
def wifi_series(admin, dealer, make_plan, branch):
    """Five 100 ₽ Wi-Fi cards on a pay-as-you-go plan, all sold."""
    plan = make_plan(
        "wifi-hour", "0.00", name="Wi-Fi по времени", charge_mode="time", time_unit="hour", unit_price=Decimal("30.00")
    )
    created = actions.do_create_series(
        name="Wi-Fi 100", kind="wifi", amount="100.00", count=5, expires_on=dt.date(2027, 6, 30), plan=plan,
        branch=branch, acting_user=admin,
    )  # fmt: skip
    actions.do_sell_vouchers(created, dealer=dealer, first=1, last=5, key=str(uuid.uuid4()), acting_user=admin)
    return created


@pytest.fixture
def postgres_only():
    """First in a threaded test's arguments: skipped on SQLite before any fixture writes the ledger (a
    transactional test's flush cannot empty the append-only ledger there)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks and concurrent transactions: PostgreSQL")
