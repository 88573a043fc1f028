"""Where traffic is seen: the card's subscription line, ``GET /api/v1/subscriptions/{id}/usage``."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from abonent.billing import actions
from abonent.billing.rating.estimate import usage_estimate
from abonent.core import clock
from abonent.staff.permissions import Role
from tests.billing.usage_helpers import DEC, GB, NOV, add_usage, overage_plan, rate_on, spread

D = Decimal
NBSP = "\u00a0"
NOV_20 = dt.date(2026, 11, 20)


@pytest.fixture
def client_of(make_staff):
    def make(role, **kwargs) -> Client:
        client = Client()
        client.force_login(make_staff(role, **kwargs))
        return client

    return make


@pytest.fixture
def metered(make_plan, subscriber, admin):
    plan = overage_plan(make_plan)
    with clock.travel_to(NOV):
        actions.do_post_payment(subscriber, amount="5000.00", channel="test", external_id="opening")
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    spread(subscriber, NOV, 19, 512_300_000_000)
    return subscription


def test_estimate_of_the_issue_scenario(metered):
    estimate = usage_estimate(metered, NOV_20)
    assert (estimate.period_start, estimate.period_end) == (NOV, DEC)
    assert (estimate.used_bytes, estimate.included_bytes, estimate.over_bytes) == (
        512_300_000_000,
        500 * GB,
        12_300_000_000,
    )
    assert (estimate.charged_bytes, estimate.amount, estimate.charged) == (13 * GB, D("26.00"), True)
    assert (estimate.used_gb, estimate.charged_gb, estimate.percent_used) == (D("512.3"), D("13.0"), 100)


def test_estimate_equals_what_the_period_end_charges(metered, subscriber):
    add_usage(subscriber, dt.date(2026, 11, 30), download=GB)
    estimate = usage_estimate(metered, dt.date(2026, 11, 30))
    result = rate_on(DEC)
    assert result.amount == estimate.amount == D("28.00")


def test_no_estimate_for_a_plan_that_counts_no_traffic(make_plan, make_subscriber, admin):
    plan = make_plan("unlimited", "500.00")
    who = make_subscriber(last_name="Петров", phone="+79160000001")
    with clock.travel_to(NOV):
        subscription = actions.do_activate_subscription(who, plan=plan, acting_user=admin)
    assert usage_estimate(subscription, NOV_20) is None


def test_card_shows_the_traffic_line(client_of, metered, subscriber):
    with clock.travel_to(NOV_20):
        body = client_of(Role.OPERATOR).get(f"/staff/subscribers/{subscriber.pk}/").content.decode()
    line = body[body.index(f'data-testid="traffic-{metered.pk}"') :].split("</div>")[0]
    assert "512.3 GB used of 500.0 GB included" in line
    assert f"13 GB over: 26.00{NBSP}₽ to be charged on" in line


def test_api_usage_current_and_rated(api, metered, subscriber):
    rate_on(DEC)
    add_usage(subscriber, dt.date(2026, 12, 3), download=7 * GB, upload=GB)
    with clock.travel_to(dt.date(2026, 12, 5)):
        response = api.get(f"/api/v1/subscriptions/{metered.pk}/usage")
    assert response.status_code == 200
    body = response.json()
    assert body["current"] == {
        "period_start": "2026-12-01",
        "period_end": "2027-01-01",
        "used_bytes": 8 * GB,
        "included_bytes": 500 * GB,
        "over_bytes": 0,
        "charged_bytes": 0,
        "amount": "0.00",
        "charged": True,
        "price_per_gb": "2.0000",
        "rounding": "per_gb",
        "direction": "both",
        "policy": "overage",
    }
    [november] = body["rated"]
    assert {k: november[k] for k in ("period_start", "period_end", "used_bytes", "charged_bytes", "amount")} == {
        "period_start": "2026-11-01",
        "period_end": "2026-12-01",
        "used_bytes": 512_300_000_000,
        "charged_bytes": 13 * GB,
        "amount": "26.00",
    }


def test_api_usage_of_an_unknown_or_hidden_subscription_is_404(api, api_of, metered, other_branch):
    assert api.get("/api/v1/subscriptions/999999/usage").status_code == 404
    outsider = api_of(Role.OPERATOR, branches=[other_branch])
    assert outsider.get(f"/api/v1/subscriptions/{metered.pk}/usage").status_code == 404


def test_ledger_line_says_what_the_traffic_charge_was_for(metered, subscriber):
    from abonent.billing import selectors

    rate_on(DEC)
    add_usage(subscriber, dt.date(2026, 11, 29), download=2 * GB)
    rate_on(dt.date(2026, 12, 2))
    lines = [line for line in selectors.ledger_lines(subscriber) if line.kind == "usage"]
    assert [(line.memo, line.amount) for line in lines] == [
        ("Late traffic 01.11.2026–30.11.2026: 2 GB", D("-4.00")),
        ("Traffic over the included volume 01.11.2026–30.11.2026: 13 GB", D("-26.00")),
    ]
