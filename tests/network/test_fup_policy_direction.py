"""The FUP speed follows the plan's traffic policy and direction: only plans that cut the speed (fup, both)
throttle, and they count the traffic the way rating charges it (``network.usage.counted_bytes``)."""

import datetime as dt
from decimal import Decimal

import pytest

from abonent.billing import actions as billing
from abonent.catalog import actions as catalog
from abonent.catalog.models import Plan
from abonent.core import clock
from abonent.network import actions as network
from abonent.network.models import LoginKind, UsageDay
from abonent.network.selectors import subscribers_over_quota
from abonent.network.usage import counted_bytes, period_usage

pytestmark = pytest.mark.django_db

GB = 1_000_000_000
NOV_1 = dt.date(2026, 11, 1)


@pytest.fixture
def plan(admin, internet):
    return catalog.do_create_plan(
        code="lte-50",
        name="50 ГБ",
        service=internet,
        monthly_fee=Decimal("400.00"),
        valid_from=dt.date(2020, 1, 1),
        download_kbps=102400,
        upload_kbps=51200,
        included_bytes=50 * GB,
        fup_download_kbps=1024,
        fup_upload_kbps=512,
        acting_user=admin,
    )


@pytest.fixture
def subscriber(make_subscriber, plan, admin):
    subscriber = make_subscriber()
    with clock.travel_to(NOV_1):
        billing.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        network.do_create_login(
            subscriber, acting_user=admin, kind=LoginKind.PPPOE, username="ivanov", password="s3cret-pw"
        )
    # 40 GB down, 15 GB up: 55 GB both ways, over 50 only when both directions count.
    UsageDay.objects.create(
        subscriber=subscriber, day=dt.date(2026, 11, 5), input_octets=15 * GB, output_octets=40 * GB
    )
    return subscriber


@pytest.mark.parametrize(
    ("policy", "direction", "over"),
    [
        ("fup", "both", True),
        ("both", "both", True),
        ("overage", "both", False),  # charged per GB instead: never cut
        ("fup", "download", False),
        ("fup", "upload", False),
        ("fup", "greater", False),
    ],
)
def test_policy_and_direction(plan, subscriber, policy, direction, over):
    Plan.objects.filter(pk=plan.pk).update(traffic_policy=policy, traffic_direction=direction)
    assert subscribers_over_quota(NOV_1) == ({subscriber.pk} if over else set())


def test_download_only_cut_when_the_download_passes(plan, subscriber):
    Plan.objects.filter(pk=plan.pk).update(traffic_direction="download")
    UsageDay.objects.create(subscriber=subscriber, day=dt.date(2026, 11, 6), input_octets=0, output_octets=11 * GB)
    assert subscribers_over_quota(NOV_1) == {subscriber.pk}


def test_period_usage_and_the_direction_rule(subscriber):
    totals = period_usage(subscriber.pk, NOV_1, dt.date(2026, 12, 1))
    assert totals == (15 * GB, 40 * GB)
    assert [counted_bytes(d, *totals) for d in ("both", "download", "upload", "greater")] == [
        55 * GB,
        40 * GB,
        15 * GB,
        40 * GB,
    ]
    assert period_usage(subscriber.pk, NOV_1, dt.date(2026, 11, 5)) == (0, 0)
