"""Traffic charged exactly once: two runs at once (PostgreSQL threads), the schema's own guard, and a Hypothesis
property: whatever order daily usage arrives in, and however often rating runs meanwhile, what was charged for a
period equals the rating of its final totals."""

from __future__ import annotations

import datetime as dt
import os
import threading
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, connections, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abonent.billing import actions
from abonent.billing.ledger import verify
from abonent.billing.models import Charge, ChargeKind, UsageRating
from abonent.billing.rating.common import overage
from abonent.billing.rating.traffic import rate_usage
from abonent.core import clock
from tests.billing.usage_helpers import DEC, GB, NOV, add_usage, overage_plan, rate_on, spread, usage_charges

D = Decimal
settings.register_profile("usage", max_examples=int(os.environ.get("ABONENT_PROPERTY_EXAMPLES", 25)), deadline=None)


def together(*fns):
    barrier = threading.Barrier(len(fns))
    out = []

    def wrap(fn):
        try:
            barrier.wait(timeout=10)
            out.append(fn())
        except Exception as exc:
            out.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wrap, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_charge_once(make_plan, make_subscriber, admin):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL: threads with their own connections")
    plan = overage_plan(make_plan)
    subs = []
    for n in range(6):
        who = make_subscriber(last_name=f"Абонент{n}", phone=f"+7916000000{n}")
        with clock.travel_to(NOV):
            subs.append(actions.do_activate_subscription(who, plan=plan, acting_user=admin))
        spread(who, NOV, 30, (510 + n) * GB)

    def run():
        with clock.travel_to(DEC):
            result = rate_usage(DEC, chunk_size=2)
        return result.amount

    out = together(run, run, run)
    # The chunks may be shared out between the runs in any way; what they charge together is each period once.
    assert len(out) == 3 and sum(out, D("0.00")) == D("150.00"), out
    assert Charge.objects.filter(kind=ChargeKind.USAGE).count() == 6
    assert UsageRating.objects.count() == 6
    assert verify() == []


@pytest.mark.django_db(transaction=True)
def test_late_usage_rated_by_two_runs_at_once_is_one_adjustment(make_plan, subscriber, admin):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL: threads with their own connections")
    plan = overage_plan(make_plan)
    with clock.travel_to(NOV):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    spread(subscriber, NOV, 30, 510 * GB)
    rate_on(DEC)
    add_usage(subscriber, dt.date(2026, 11, 12), download=5 * GB)

    def run():
        with clock.travel_to(dt.date(2026, 12, 2)):
            return rate_usage(dt.date(2026, 12, 2)).adjustments

    assert sorted(together(run, run)) == [0, 1]
    assert [(c[0], c[2], c[4]) for c in usage_charges(subscription)] == [
        (ChargeKind.USAGE, D("20.00"), 0),
        (ChargeKind.USAGE_ADJUSTMENT, D("10.00"), 1),
    ]
    assert verify() == []


def test_the_schema_refuses_a_second_charge_of_the_same_revision(make_plan, subscriber, admin):
    plan = overage_plan(make_plan)
    with clock.travel_to(NOV):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    spread(subscriber, NOV, 30, 510 * GB)
    rate_on(DEC)
    first = Charge.objects.get(subscription=subscription, kind=ChargeKind.USAGE)
    for kind in (ChargeKind.USAGE, ChargeKind.USAGE_ADJUSTMENT):
        with pytest.raises(IntegrityError), transaction.atomic():
            Charge.objects.create(
                subscription=subscription,
                kind=kind,
                period_start=NOV,
                period_end=DEC,
                amount=D("20.00"),
                cycle=0,
                transaction=first.transaction,
            )
    with pytest.raises(IntegrityError), transaction.atomic():
        UsageRating.objects.create(
            subscription=subscription,
            period_start=NOV,
            period_end=DEC,
            used_bytes=0,
            included_bytes=0,
            charged_bytes=0,
            amount=D("0.00"),
            rated_at=clock.now(),
            updated_at=clock.now(),
        )


# --- the property -------------------------------------------------------------------------------------------

ROUNDINGS = ["per_gb", "per_mb", "per_byte"]


@st.composite
def histories(draw):
    """Usage of November arriving in batches (each ``(day, download, upload)``), a rating run after some of them
    (on 1–20 December), and the plan's terms."""
    rounding = draw(st.sampled_from(ROUNDINGS))
    price = draw(st.decimals(min_value=D("0.0001"), max_value=D("50"), places=4))
    included = draw(st.integers(min_value=0, max_value=40)) * GB // 4
    direction = draw(st.sampled_from(["both", "download", "upload", "greater"]))
    batches = draw(
        st.lists(
            st.tuples(
                st.integers(min_value=1, max_value=30),
                st.integers(min_value=0, max_value=5 * GB),
                st.integers(min_value=0, max_value=5 * GB),
                st.booleans(),  # rate after this batch
            ),
            min_size=1,
            max_size=12,
        )
    )
    return rounding, price, included, direction, batches


@settings(
    settings.get_profile("usage"), suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(history=histories())
def test_charged_total_equals_the_rating_of_the_final_totals(make_plan, subscriber, admin, history):
    rounding, price, included, direction, batches = history
    with transaction.atomic():
        plan = make_plan(
            "metered",
            "100.00",
            included_bytes=included,
            overage_price_per_gb=price,
            overage_rounding=rounding,
            traffic_policy="overage",
            traffic_direction=direction,
        )
        with clock.travel_to(NOV):
            subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        run_day = DEC
        for day, download, upload, rate_now in batches:
            add_usage(subscriber, dt.date(2026, 11, day), download=download, upload=upload)
            if rate_now:
                rate_on(run_day)
                run_day += dt.timedelta(days=1)
        rate_on(run_day)
        total_in = sum(b[2] for b in batches)
        total_out = sum(b[1] for b in batches)
        counted = {
            "both": total_in + total_out,
            "download": total_out,
            "upload": total_in,
            "greater": max(total_in, total_out),
        }[direction]
        _bytes, expected = overage(counted - included, price, rounding)
        charges = usage_charges(subscription)
        assert sum((c[2] for c in charges), D("0.00")) == expected
        assert all(c[2] > 0 for c in charges)
        assert [c[4] for c in charges] == list(range(charges[0][4], charges[0][4] + len(charges))) if charges else True
        assert UsageRating.objects.get(subscription=subscription).amount == expected
        assert verify() == []
        transaction.set_rollback(True)
