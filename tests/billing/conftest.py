import datetime as dt
from decimal import Decimal

import pytest

from abonent.catalog.models import FreezePolicy, PromisedPaymentPolicy
from abonent.core import clock


@pytest.fixture
def freeze_policy(db) -> FreezePolicy:
    return FreezePolicy.objects.create(
        name="Стандарт", min_days=7, max_days=60, yearly_quota_days=30, fee_per_day=Decimal("3.00")
    )


@pytest.fixture
def promised_policy(db) -> PromisedPaymentPolicy:
    return PromisedPaymentPolicy.objects.create(
        name="До 500 ₽", max_amount=Decimal("500.00"), days=3, max_debt=Decimal("300.00")
    )


@pytest.fixture
def subscriber(make_subscriber):
    return make_subscriber()


@pytest.fixture
def on():
    """``with on(date):`` — the clock for actions in the block."""
    return clock.travel_to


@pytest.fixture
def monthly(make_plan, freeze_policy, promised_policy):
    """650 ₽ a calendar month, freezable (7–60 days, 3 ₽ a day), promised payments up to 500 ₽."""
    return make_plan(
        "internet-100",
        "650.00",
        name="Интернет-100",
        freeze_policy=freeze_policy,
        promised_payment_policy=promised_policy,
    )


@pytest.fixture
def subscribed(monthly, subscriber, admin, on):
    """On ``monthly`` since 1 November 2026 with 5,000 ₽ paid, December charged by the run of 1 December."""
    from abonent.billing import actions
    from abonent.billing.testing import run_on

    with on(dt.date(2026, 11, 1)):
        actions.do_post_payment(subscriber, amount="5000.00", channel="test", external_id="opening")
        subscription = actions.do_activate_subscription(subscriber, plan=monthly, acting_user=admin)
    run_on(dt.date(2026, 12, 1))
    return subscription


# --- time plans (test_time_*.py) ---------------------------------------------------------------------------


@pytest.fixture
def time_plan(make_plan):
    """1.00 ₽ per started minute, by time online (pay as you go), calendar periods."""
    return make_plan(
        "wifi-minute",
        "0.00",
        name="Wi-Fi поминутно",
        charge_mode="time",
        time_unit="minute",
        unit_price=Decimal("1.00"),
    )


@pytest.fixture
def nas(admin):
    from abonent.network import actions as network

    return network.do_create_nas(
        acting_user=admin,
        secret="a-long-shared-secret-for-tests",
        vendor="mikrotik",
        name="hotspot",
        ip_address="10.9.0.1",
    )


@pytest.fixture
def on_time(time_plan, subscriber, admin, on):
    """On ``time_plan`` since 1 November 2026 with 500 ₽ paid."""
    from abonent.billing import actions

    with on(dt.date(2026, 11, 1)):
        actions.do_post_payment(subscriber, amount="500.00", channel="test", external_id="time-opening")
        return actions.do_activate_subscription(subscriber, plan=time_plan, acting_user=admin)
