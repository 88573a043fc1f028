"""Subscribers walked into each access state through the movable clock, for the console and API tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from abonent.billing import actions as billing
from abonent.billing.testing import run_on
from abonent.catalog.models import FreezePolicy
from abonent.core import clock
from abonent.dunning import actions
from abonent.dunning.evaluation import sweep

# The clock of these tests: the subscriber paid 700 ₽ on 1 November for a 650 ₽ plan.
WARNED_AT = dt.datetime(2026, 11, 28, 12, tzinfo=dt.UTC)
RESTRICTED_AT = dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC)
SUSPENDED_AT = dt.datetime(2026, 12, 15, 7, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 12, 16, 9, tzinfo=dt.UTC)


def monthly_plan(make_plan):
    freeze = FreezePolicy.objects.create(name="F", min_days=7, max_days=60, yearly_quota_days=60, fee_per_day=0)
    return make_plan("internet-100", "650.00", name="Интернет-100", freeze_policy=freeze)


def paying_subscriber(make_subscriber, plan, admin, **fields):
    """700 ₽ paid on 1 November, November's 650 ₽ charged: 50 ₽ left for December's 650 ₽."""
    customer = make_subscriber(**fields)
    with clock.travel_to(dt.date(2026, 11, 1)):
        billing.do_post_payment(customer, amount="700.00", channel="test", external_id=f"opening-{customer.pk}")
        billing.do_activate_subscription(customer, plan=plan, acting_user=admin)
    return customer


def bring_to(subscriber, state: str, admin) -> dt.datetime:
    """Walk ``subscriber`` into ``state`` the way production does; returns the moment it got there."""
    if state == "active":
        with clock.travel_to(dt.datetime(2026, 11, 10, 12, tzinfo=dt.UTC)):
            sweep()
        return dt.datetime(2026, 11, 10, 12, tzinfo=dt.UTC)
    if state == "warned":
        with clock.travel_to(WARNED_AT):
            sweep()
        return WARNED_AT
    if state == "frozen":
        with clock.travel_to(dt.date(2026, 11, 20)):
            billing.do_freeze_subscription(
                subscriber.subscriptions.get(), starts_on=dt.date(2026, 11, 20), days=20, acting_user=admin
            )
        run_on(dt.date(2026, 11, 20))
        with clock.travel_to(WARNED_AT):
            sweep()
        return WARNED_AT
    if state in ("blocked", "terminated"):
        with clock.travel_to(WARNED_AT):
            do = actions.do_block_access if state == "blocked" else actions.do_terminate_access
            do(subscriber, acting_user=admin, reason="Порча оборудования")
        return WARNED_AT
    run_on(dt.date(2026, 12, 1))
    with clock.travel_to(RESTRICTED_AT):
        sweep()
    if state == "restricted":
        return RESTRICTED_AT
    with clock.travel_to(SUSPENDED_AT):
        sweep()
    assert state == "suspended"
    return SUSPENDED_AT


OWED = Decimal("600.00")
