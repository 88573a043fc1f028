"""``/api/v1``: effective prices, individual and group prices, promotions and bundles (billing/pricing)."""

import datetime as dt
from decimal import Decimal

import pytest

from abonent.api.models import IdempotencyRecord
from abonent.billing import actions
from abonent.billing.models import Charge, ChargeKind
from abonent.billing.pricing.models import PriceOverride, Promotion
from abonent.billing.testing import run_on
from abonent.staff.models import Role
from abonent.subscribers.models import SubscriberGroup

D = Decimal
NOV, DEC = dt.date(2026, 11, 1), dt.date(2026, 12, 1)


@pytest.fixture
def subscription(monthly, subscriber, admin, on):
    with on(NOV):
        return actions.do_activate_subscription(subscriber, plan=monthly, acting_user=admin)


def codes(response):
    return [(f["field"], f["code"]) for f in response.json()["error"]["fields"]]


def test_individual_price_through_the_api_prices_the_run(api, subscription, monthly, on):
    body = {"plan_id": monthly.pk, "monthly_fee": "500.00", "valid_from": "2026-12-01", "reason": "Договор 17"}
    key = {"Idempotency-Key": "price-1"}
    with on(NOV):
        first = api.post(f"/api/v1/subscriptions/{subscription.pk}/price-overrides", body, headers=key)
        again = api.post(f"/api/v1/subscriptions/{subscription.pk}/price-overrides", body, headers=key)
    assert (first.status_code, again.status_code) == (201, 201) and again.json() == first.json()
    assert PriceOverride.objects.count() == 1 and IdempotencyRecord.objects.count() == 1
    with on(DEC):
        price = api.get(f"/api/v1/subscriptions/{subscription.pk}/price").json()
        listed = api.get(f"/api/v1/subscribers/{subscription.subscriber_id}/subscriptions").json()
    assert (price["source"], price["fee"], price["list_fee"], price["reason"]) == (
        "subscription",
        "500.00",
        "650.00",
        "Договор 17",
    )
    assert listed[0]["price"]["fee"] == "500.00"
    run_on(DEC)
    assert Charge.objects.get(subscription=subscription, period_start=DEC, kind=ChargeKind.FEE).amount == D("500.00")
    with on(DEC):
        ended = api.post(f"/api/v1/price-overrides/{first.json()['id']}/end", {"valid_until": "2026-12-31"})
    assert ended.status_code == 200 and ended.json()["valid_until"] == "2026-12-31"
    run_on(dt.date(2027, 1, 1))
    fee = Charge.objects.get(subscription=subscription, period_start=dt.date(2027, 1, 1), kind=ChargeKind.FEE)
    assert fee.amount == D("650.00")


def test_bad_input_is_a_422_with_codes_and_writes_nothing(api, subscription, monthly, on):
    url = f"/api/v1/subscriptions/{subscription.pk}/price-overrides"
    good = {"plan_id": monthly.pk, "monthly_fee": "500.00", "valid_from": "2026-12-01", "reason": "x"}
    with on(NOV):
        reversed_dates = api.post(url, {**good, "valid_until": "2026-11-30"})
        negative = api.post(url, {**good, "monthly_fee": "-5.00"})
        absurd = api.post(url, {**good, "monthly_fee": "99999999999"})
        no_plan = api.post(url, {**good, "plan_id": 999999})
        assert api.post(url, good).status_code == 201
        overlapping = api.post(url, {**good, "valid_from": "2027-01-01"})
        too_much = api.post("/api/v1/promotions", {"name": "x", "kind": "percent", "value": "100.5"})
        zero = api.post("/api/v1/promotions", {"name": "x", "kind": "amount", "value": "0"})
        bundle = api.post(
            "/api/v1/bundles",
            {"name": "x", "plan_ids": [monthly.pk], "total": "800", "valid_from": "2026-11-01"},
        )
    assert reversed_dates.status_code == 422 and codes(reversed_dates) == [("valid_until", "dates_reversed")]
    assert negative.status_code == 422 and codes(negative) == [("monthly_fee", "amount_negative")]
    assert absurd.status_code == 422
    assert no_plan.status_code == 422 and codes(no_plan) == [("plan_id", "does_not_exist")]
    assert overlapping.status_code == 422 and codes(overlapping) == [("valid_from", "overlapping")]
    assert too_much.status_code == 422 and codes(too_much) == [("value", "percent_too_large")]
    assert zero.status_code == 422 and codes(zero) == [("value", "value_not_positive")]
    assert bundle.status_code == 422 and codes(bundle) == [("plans", "bundle_plans")]
    assert PriceOverride.objects.count() == 1 and not Promotion.objects.exists()


def test_another_branchs_subscription_is_a_404(api_of, make_subscriber, branch, other_branch, monthly, admin, on):
    stranger = make_subscriber(branch_obj=other_branch)
    with on(NOV):
        subscription = actions.do_activate_subscription(stranger, plan=monthly, acting_user=admin)
        theirs = PriceOverride.objects.create(
            subscription=subscription, plan=monthly, monthly_fee=D("1"), valid_from=DEC, reason="x", created_at=NOV
        )
    client = api_of(Role.ADMIN, branches=[branch])
    body = {"plan_id": monthly.pk, "monthly_fee": "1.00", "valid_from": "2027-01-01", "reason": "x"}
    for response in (
        client.get(f"/api/v1/subscriptions/{subscription.pk}/price"),
        client.get(f"/api/v1/subscriptions/{subscription.pk}/price-overrides"),
        client.post(f"/api/v1/subscriptions/{subscription.pk}/price-overrides", body),
        client.post(f"/api/v1/price-overrides/{theirs.pk}/end", {"valid_until": "2027-01-31"}),
    ):
        assert response.status_code == 404, response.content
    assert PriceOverride.objects.count() == 1 and PriceOverride.objects.get().valid_until is None


def test_operators_cannot_set_prices(api_of, subscription, monthly, on):
    client = api_of(Role.OPERATOR)
    body = {"plan_id": monthly.pk, "monthly_fee": "1.00", "valid_from": "2026-12-01", "reason": "x"}
    with on(NOV):
        assert client.post(f"/api/v1/subscriptions/{subscription.pk}/price-overrides", body).status_code == 403
        assert client.post("/api/v1/promotions", {"name": "x", "kind": "amount", "value": "1"}).status_code == 403
    assert not PriceOverride.objects.exists()


def test_group_price_promotion_and_bundle_through_the_api(api, subscription, subscriber, monthly, on):
    group = SubscriberGroup.objects.create(name="Школа")
    subscriber.groups.add(group)
    with on(NOV):
        added = api.post(
            f"/api/v1/subscriber-groups/{group.pk}/price-overrides",
            {"plan_id": monthly.pk, "monthly_fee": "400.00", "valid_from": "2026-12-01", "reason": "Школы"},
        )
        promo = api.post(
            "/api/v1/promotions",
            {"name": "−10 %", "kind": "percent", "value": "10", "plan_ids": [monthly.pk], "group_ids": [group.pk]},
        )
    assert added.status_code == 201 and promo.status_code == 201
    with on(DEC):
        price = api.get(f"/api/v1/subscriptions/{subscription.pk}/price").json()
    assert (price["source"], price["fee"], price["discount"], price["net"]) == ("group", "400.00", "40.00", "360.00")
    run_on(DEC)
    assert sorted(Charge.objects.filter(subscription=subscription, period_start=DEC).values_list("kind", "amount")) == [
        ("discount", D("-40.00")),
        ("fee", D("400.00")),
    ]
    with on(DEC):
        ended = api.post(f"/api/v1/promotions/{promo.json()['id']}/end", {})
        listed = api.get("/api/v1/promotions").json()
    assert ended.status_code == 200 and listed[0]["is_active"] is False
