"""``/my/usage/``: the current period's traffic against the included volume, and what going over will cost."""

import datetime as dt
from decimal import Decimal

import pytest

from abonent.catalog.models import Plan
from abonent.core import clock
from abonent.network.models import UsageDay

GB = 1000**3
NBSP = "\u00a0"


def _used(subscriber, total):
    for day in range(1, 11):
        UsageDay.objects.create(
            subscriber=subscriber, day=dt.date(2026, 11, day), input_octets=0, output_octets=total // 10
        )


def quota_cards(client) -> list[str]:
    with clock.travel_to(dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)):
        response = client.get("/my/usage/")
    assert response.status_code == 200
    body = response.content.decode()
    return [part.split("</section>")[0] for part in body.split('data-testid="usage-quota"')[1:]]


def test_overage_plan_shows_what_the_period_end_charges(portal_client, subscriber, portal_plans):
    Plan.objects.filter(pk=portal_plans["home"].pk).update(
        included_bytes=500 * GB, overage_price_per_gb=Decimal("2"), traffic_policy="overage"
    )
    _used(subscriber, 512_300_000_000)
    [card] = quota_cards(portal_client)
    assert "Included 500 GB, used 512.3 GB." in card
    assert f"13 GB over: 26.00{NBSP}₽ at the end of the period." in card


def test_under_the_volume_shows_the_price_past_it(portal_client, subscriber, portal_plans):
    Plan.objects.filter(pk=portal_plans["home"].pk).update(
        included_bytes=500 * GB, overage_price_per_gb=Decimal("2.5"), traffic_policy="both"
    )
    _used(subscriber, 100 * GB)
    [card] = quota_cards(portal_client)
    assert "Included 500 GB, used 100.0 GB." in card and "each GB costs 2.50 ₽" in card
    assert 'aria-valuenow="20"' in card


def test_fup_plan_over_the_volume_says_the_speed_is_cut(portal_client, subscriber, portal_plans):
    Plan.objects.filter(pk=portal_plans["home"].pk).update(included_bytes=50 * GB, traffic_policy="fup")
    _used(subscriber, 60 * GB)
    [card] = quota_cards(portal_client)
    assert "the speed is reduced" in card and "₽" not in card


@pytest.mark.parametrize("included", [None])
def test_no_card_for_a_plan_without_a_volume(portal_client, subscriber, included):
    _used(subscriber, 60 * GB)
    assert quota_cards(portal_client) == []


def test_only_the_subscribers_own_traffic(portal_client, subscriber, stranger, portal_plans):
    Plan.objects.filter(pk__in=[portal_plans["home"].pk, portal_plans["gamer"].pk]).update(
        included_bytes=500 * GB, overage_price_per_gb=Decimal("2"), traffic_policy="overage"
    )
    _used(stranger, 900 * GB)
    [card] = quota_cards(portal_client)
    assert "used 0.0 GB" in card
