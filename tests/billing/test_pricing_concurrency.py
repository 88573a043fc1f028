"""Pricing under concurrency (PostgreSQL): two runs at once write each fee and its discount line once; two
overlapping individual prices added at once leave one."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from abonent.billing import actions, ledger
from abonent.billing.engine import BillingRun
from abonent.billing.models import Charge, ChargeKind, Subscription
from abonent.billing.pricing import actions as pricing
from abonent.billing.pricing.models import PriceOverride
from abonent.core import clock
from tests.concurrency import together

pytestmark = pytest.mark.django_db(transaction=True)
NOV, DEC = dt.date(2026, 11, 1), dt.date(2026, 12, 1)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL")


def test_two_runs_at_once_write_each_fee_and_discount_once(make_subscriber, monthly, admin):
    subscriptions = []
    with clock.travel_to(NOV):
        pricing.do_create_promotion(name="−20 %", kind="percent", value="20", acting_user=admin)
        for n in range(6):
            subscriber = make_subscriber(phone=f"+7916000000{n}")
            subscriptions.append(actions.do_activate_subscription(subscriber, plan=monthly, acting_user=admin))
        pricing.do_set_price_override(
            subscription=subscriptions[0],
            plan=monthly,
            monthly_fee="500",
            valid_from=DEC,
            reason="r",
            acting_user=admin,
        )
    with clock.travel_to(DEC):
        outcomes = together(lambda: BillingRun(DEC, workers=1).run(), lambda: BillingRun(DEC, workers=1).run())
    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    fees = Charge.objects.filter(kind=ChargeKind.FEE, period_start=DEC)
    discounts = Charge.objects.filter(kind=ChargeKind.DISCOUNT, period_start=DEC)
    assert fees.count() == discounts.count() == 6
    assert sum(fees.values_list("amount", flat=True)) == Decimal("500.00") + 5 * Decimal("650.00")
    assert sum(discounts.values_list("amount", flat=True)) == -(Decimal("100.00") + 5 * Decimal("130.00"))
    assert not Subscription.objects.filter(next_charge_on__lte=DEC).exists()
    assert ledger.verify() == []


def test_two_overlapping_prices_added_at_once_leave_one(make_subscriber, monthly, admin):
    with clock.travel_to(NOV):
        subscription = actions.do_activate_subscription(make_subscriber(), plan=monthly, acting_user=admin)

        def add(fee):
            return lambda: pricing.do_set_price_override(
                subscription=subscription,
                plan=monthly,
                monthly_fee=fee,
                valid_from=DEC,
                reason="r",
                acting_user=admin,
            )

        outcomes = together(add("500"), add("400"))
    refused = [o for o in outcomes if isinstance(o, ValidationError)]
    assert len(refused) == 1 and refused[0].error_dict["valid_from"][0].code == "overlapping"
    assert PriceOverride.objects.count() == 1
