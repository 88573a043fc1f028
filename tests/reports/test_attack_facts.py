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


@pytest.mark.django_db
def test_arpu_of_a_plan_divides_by_that_plans_subscribers(make_plan, make_subscriber, admin):
    """ARPU with a plan (or service) filter summed that plan's revenue but divided it by every subscriber of the
    branch: a plan's ARPU was the smaller the more other plans the ISP sells."""
    from abonent.billing import actions
    from abonent.billing.testing import run_on
    from abonent.core import clock
    from abonent.reports.pages import ReportFilterForm, get_report
    from abonent.reports.results import do_compute_report

    cheap = make_plan("cheap", "300.00", name="Эконом")
    home = make_plan("home", "500.00", name="Домашний")
    gamer = make_plan("gamer", "900.00", name="Игровой")
    a, b, c = (make_subscriber(phone=f"+7916000003{n}") for n in range(3))
    with clock.travel_to(dt.date(2026, 11, 1)):
        actions.do_activate_subscription(a, plan=cheap, acting_user=admin)
        upgraded = actions.do_activate_subscription(b, plan=home, acting_user=admin)
        actions.do_activate_subscription(c, plan=gamer, acting_user=admin)
    with clock.travel_to(dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)):
        actions.do_change_plan(upgraded, plan=gamer, acting_user=admin)
    for day in range(2, 31):
        run_on(dt.date(2026, 11, day))
    facts.do_roll_up_facts()
    november = {"period": "custom", "start": "2026-11-01", "end": "2026-11-30"}

    def arpu(plan):
        with clock.travel_to(dt.date(2026, 12, 1)):
            form = ReportFilterForm({**november, "plan": plan.pk}, user=admin, report=get_report("arpu"))
            assert form.is_valid(), form.errors
            (row,) = do_compute_report("arpu", form.query().as_params()).rows
        return row["subscribers"], row["revenue"], row["arpu"]

    assert arpu(cheap) == (1, {"n": "300.00"}, {"n": "300.00"})
    # Домашний: 500 charged, 250 credited back at the upgrade, one subscriber on it for half the month.
    assert arpu(home) == (1, {"n": "250.00"}, {"n": "250.00"})
    # Игровой: 900 for the one on it all month, 450 for the second half of the upgraded one's.
    assert arpu(gamer) == (2, {"n": "1350.00"}, {"n": "675.00"})
