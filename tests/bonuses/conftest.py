"""Bonuses: payments taken through the payments intake with their after-commit events run, the clock at will."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from abonent.bonuses import actions
from abonent.core import clock
from abonent.payments.actions import do_receive_payment


@pytest.fixture
def rules(admin):
    def set_rules(**values):
        return actions.do_update_rules(acting_user=admin, **values)

    return set_rules


@pytest.fixture
def pay(django_capture_on_commit_callbacks):
    """``pay(subscriber, "650.00", on=date, ref="x")``: a cash payment through the intake, its events delivered."""

    def pay_(subscriber, amount, *, on: dt.date, ref: str):
        moment = dt.datetime.combine(on, dt.time(12), tzinfo=dt.UTC)
        with clock.travel_to(moment), django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            intake = do_receive_payment(
                channel="cash", external_id=ref, amount=amount, method="cash", subscriber=subscriber
            )
        return intake.payment

    return pay_


@pytest.fixture
def monthly_plan(make_plan):
    return make_plan("internet-100", "650.00", name="Интернет-100")


NOV_1_NOON = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _today():
    with clock.travel_to(dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)):
        yield


@pytest.fixture
def postgres_only():
    """First in a threaded test's arguments: skipped on SQLite before any fixture writes the ledger (a
    transactional test's flush cannot empty the append-only ledger there)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks and concurrent transactions: PostgreSQL")
