"""Attacks on the summary tables: rollups and rebuilds run at once, and what the reports' filters promise."""

import datetime as dt
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from abonent.payments.actions.intake import do_receive_payment
from abonent.reports import facts
from abonent.reports.models import PaymentFact
from tests.concurrency import together

D = Decimal


def pay(subscriber, amount: str, external_id: str):
    return do_receive_payment(
        channel="bank", external_id=external_id, amount=D(amount), method="bank", subscriber=subscriber
    )


def timed(call):
    def run():
        started = time.monotonic()
        result = call()
        return result, time.monotonic() - started

    return run


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent rollups need concurrent connections")
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("second", ["rollup", "rebuild"])
def test_a_second_rollup_or_a_rebuild_at_once_neither_stalls_nor_fails(make_subscriber, second):
    """The periodic rollup overlapping another (a slow one past its minute) or an operator's ``reports rebuild``:
    the one holding the positions' lock used to wait for the other's transaction (blocked on that very lock) until
    its deadline, then give up (the rollup) or raise (the rebuild)."""
    subscriber = make_subscriber(phone="+79160000021")
    pay(subscriber, "10.00", "c-1")
    facts.do_roll_up_facts()
    pay(subscriber, "20.00", "c-2")
    other = (
        (lambda: facts.do_roll_up_facts(wait_seconds=4))
        if second == "rollup"
        else (lambda: facts.do_rebuild_facts(since=dt.date(2000, 1, 1), wait_seconds=4))
    )
    outcomes = together(timed(lambda: facts.do_roll_up_facts(wait_seconds=4)), timed(other))
    for outcome in outcomes:
        assert not isinstance(outcome, Exception), outcome
        _result, seconds = outcome
        assert seconds < 3, f"waited {seconds:.1f} s for a transaction blocked on its own lock"
    assert PaymentFact.objects.aggregate(total=Sum("amount"))["total"] == D("30.00")
    assert facts.verify_facts().ok
