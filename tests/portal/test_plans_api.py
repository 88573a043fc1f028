"""/api/v1/my/plans…: the offer, the preview and a change confirmed with the preview's net, once per
Idempotency-Key; 409 ``preview_changed`` with the fresh preview and nothing written when the net moved."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from abonent.api.models import IdempotencyRecord
from abonent.billing import actions as billing
from abonent.billing.models import Charge, ChargeKind, Subscription, SubscriptionEvent, SubscriptionEventKind
from abonent.billing.selectors import get_balance
from abonent.catalog import actions as catalog
from abonent.core import clock

from .conftest import TODAY

PRORATIONS = (ChargeKind.PRORATION_CHARGE, ChargeKind.PRORATION_CREDIT)


@pytest.fixture
def subscription(subscriber):
    return Subscription.objects.get(subscriber=subscriber)


def _prorations(subscription):
    return Charge.objects.filter(subscription=subscription, kind__in=PRORATIONS).count()


def test_my_plans_lists_the_plan_and_only_the_public_plans_offered(portal_api, subscription, portal_plans, now):
    portal_plans["home"].switchable_to.add(portal_plans["hidden"])
    response = portal_api.get("/api/v1/my/plans")
    assert response.status_code == 200
    body = response.json()
    assert body["currency"] == "RUB"
    [mine] = body["subscriptions"]
    assert mine["id"] == subscription.pk and mine["status"] == "active" and mine["service"] == "Интернет"
    assert mine["plan"]["name"] == "Интернет-100" and mine["plan"]["monthly_fee"] == "650.00"
    assert mine["plan"]["download_kbps"] == 100_000
    assert [(p["name"], p["monthly_fee"]) for p in mine["offered"]] == [("Домашний", "400.00"), ("Игровой", "900.00")]
    assert mine["pending_plan"] is None


def test_the_preview_of_the_seed_upgrade(portal_api, subscription, portal_plans, now):
    response = portal_api.get(
        "/api/v1/my/plans/preview", {"subscription": subscription.pk, "plan": portal_plans["gamer"].pk}
    )
    assert response.status_code == 200
    assert response.json() == {
        "subscription": subscription.pk,
        "from_plan": portal_plans["home"].pk,
        "to_plan": portal_plans["gamer"].pk,
        "immediate": True,
        "effective_on": "2026-11-20",
        "catch_up": "0.00",
        "credit": "238.33",
        "charge": "330.00",
        "net": "91.67",
        "balance_before": "350.00",
        "balance_after": "258.33",
    }


def test_the_change_with_the_previews_net_once_however_often_retried(
    portal_api, subscriber, subscription, portal_plans, now
):
    body = {"subscription": subscription.pk, "plan": portal_plans["gamer"].pk, "expected_net": "91.67"}
    first = portal_api.post("/api/v1/my/plans/change", body, key="change-1")
    assert first.status_code == 200
    assert first.json()["net"] == "91.67" and first.json()["balance_after"] == "258.33"
    # A retry with the same key (the answer was lost) is answered, not repeated
    again = portal_api.post("/api/v1/my/plans/change", body, key="change-1")
    assert again.status_code == 200 and again.json() == first.json()
    assert get_balance(subscriber).balance == Decimal("258.33")
    assert _prorations(subscription) == 2
    assert (
        SubscriptionEvent.objects.filter(subscription=subscription, kind=SubscriptionEventKind.PLAN_CHANGED).count()
        == 1
    )
    assert IdempotencyRecord.objects.filter(subscriber=subscriber, key="change-1").count() == 1
    # Another key for the same change: the subscription is on that plan now, nothing more is done
    other = portal_api.post("/api/v1/my/plans/change", body, key="change-2")
    assert other.status_code == 422
    assert other.json()["error"]["fields"][0]["code"] == "plan_not_offered"
    assert get_balance(subscriber).balance == Decimal("258.33")


def test_without_an_idempotency_key_nothing_is_changed(portal_api, subscriber, subscription, portal_plans, now):
    body = {"subscription": subscription.pk, "plan": portal_plans["gamer"].pk, "expected_net": "91.67"}
    response = portal_api.post("/api/v1/my/plans/change", body, key=None)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"
    assert Subscription.objects.get(pk=subscription.pk).plan == portal_plans["home"]


def test_a_net_that_moved_is_409_with_the_fresh_preview_and_nothing_written(
    portal_api, subscriber, subscription, portal_plans, now
):
    # The app previewed on 20 November (net 91.67) and confirms the next day
    body = {"subscription": subscription.pk, "plan": portal_plans["gamer"].pk, "expected_net": "91.67"}
    with clock.travel_to(TODAY + dt.timedelta(days=1)):
        response = portal_api.post("/api/v1/my/plans/change", body, key="late")
        assert response.status_code == 409
        error, preview = response.json()["error"], response.json()["preview"]
        assert error["code"] == "preview_changed"
        assert (preview["credit"], preview["charge"], preview["net"]) == ("216.67", "300.00", "83.33")
        assert Subscription.objects.get(pk=subscription.pk).plan == portal_plans["home"]
        assert _prorations(subscription) == 0 and get_balance(subscriber).balance == Decimal("350.00")
        assert not IdempotencyRecord.objects.filter(key="late").exists()
        # The app confirms the fresh net (the same key may be used: nothing was stored under it)
        confirmed = portal_api.post("/api/v1/my/plans/change", {**body, "expected_net": "83.33"}, key="late")
        assert confirmed.status_code == 200
    assert get_balance(subscriber).balance == Decimal("266.67")


def test_a_price_changed_between_is_409(portal_api, subscriber, subscription, portal_plans, admin, now):
    catalog.do_add_plan_price(
        portal_plans["gamer"], valid_from=dt.date(2026, 11, 21), monthly_fee=Decimal("960.00"), acting_user=admin
    )
    body = {"subscription": subscription.pk, "plan": portal_plans["gamer"].pk, "expected_net": "83.33"}
    with clock.travel_to(TODAY + dt.timedelta(days=1)):
        response = portal_api.post("/api/v1/my/plans/change", body)
    assert response.status_code == 409
    assert response.json()["preview"]["charge"] == "320.00"  # 960 × 10/30
    assert _prorations(subscription) == 0


def test_plans_not_offered_are_422_plan_not_offered_with_nothing_written(
    portal_api, subscriber, subscription, portal_plans, make_plan, admin, now
):
    tv = catalog.do_create_service(code="tv", name="ТВ", kind="iptv", acting_user=admin)
    archived = make_plan("old", "700.00", is_archived=True)
    other_service = make_plan("tv-basic", "300.00", service=tv)
    portal_plans["home"].switchable_to.add(portal_plans["hidden"], archived, other_service)
    for plan_id in (portal_plans["hidden"].pk, archived.pk, other_service.pk, portal_plans["home"].pk, 999_999):
        preview = portal_api.get("/api/v1/my/plans/preview", {"subscription": subscription.pk, "plan": plan_id})
        change = portal_api.post(
            "/api/v1/my/plans/change", {"subscription": subscription.pk, "plan": plan_id, "expected_net": "0.00"}
        )
        for response in (preview, change):
            assert response.status_code == 422
            assert [(f["field"], f["code"]) for f in response.json()["error"]["fields"]] == [
                ("plan", "plan_not_offered")
            ]
    subscription.refresh_from_db()
    assert subscription.plan == portal_plans["home"] and subscription.pending_plan is None
    assert _prorations(subscription) == 0 and get_balance(subscriber).balance == Decimal("350.00")


def test_the_strangers_subscription_is_404_everywhere(portal_api, stranger, portal_plans, now):
    theirs = Subscription.objects.get(subscriber=stranger)
    billing.do_change_plan(theirs, plan=portal_plans["cheap"], acting_user=None, channel="portal")
    plan = portal_plans["home"].pk
    assert portal_api.get("/api/v1/my/plans/preview", {"subscription": theirs.pk, "plan": plan}).status_code == 404
    change = {"subscription": theirs.pk, "plan": plan, "expected_net": "0.00"}
    assert portal_api.post("/api/v1/my/plans/change", change).status_code == 404
    assert portal_api.post("/api/v1/my/plans/cancel-pending", {"subscription": theirs.pk}).status_code == 404
    theirs.refresh_from_db()
    assert (theirs.plan, theirs.pending_plan) == (portal_plans["gamer"], portal_plans["cheap"])
    assert get_balance(stranger).balance == Decimal("100.00")


def test_a_downgrade_scheduled_and_cancelled_through_the_api(portal_api, subscriber, subscription, portal_plans, now):
    params = {"subscription": subscription.pk, "plan": portal_plans["cheap"].pk}
    preview = portal_api.get("/api/v1/my/plans/preview", params).json()
    assert (preview["immediate"], preview["effective_on"], preview["net"]) == (False, "2026-12-01", "0.00")
    done = portal_api.post("/api/v1/my/plans/change", {**params, "expected_net": "0.00"})
    assert done.status_code == 200 and done.json()["immediate"] is False
    listed = portal_api.get("/api/v1/my/plans").json()["subscriptions"][0]
    assert listed["pending_plan"]["name"] == "Домашний" and listed["pending_plan_from"] == "2026-12-01"
    cancelled = portal_api.post("/api/v1/my/plans/cancel-pending", {"subscription": subscription.pk})
    assert cancelled.status_code == 200 and cancelled.json()["pending_plan"] is None
    again = portal_api.post("/api/v1/my/plans/cancel-pending", {"subscription": subscription.pk})
    assert again.status_code == 422 and again.json()["error"]["fields"][0]["code"] == "no_pending_change"
    assert get_balance(subscriber).balance == Decimal("350.00")


def test_absurd_input_is_422(portal_api, subscription, portal_plans, now):
    for body in (
        {"subscription": subscription.pk, "plan": portal_plans["gamer"].pk, "expected_net": "1e3"},
        {"subscription": subscription.pk, "plan": portal_plans["gamer"].pk, "expected_net": "９１.６７"},
        {"subscription": "x", "plan": portal_plans["gamer"].pk, "expected_net": "91.67"},
        {"subscription": subscription.pk, "plan": 2**70, "expected_net": "91.67"},
        {"subscription": subscription.pk, "plan": portal_plans["gamer"].pk},
    ):
        assert portal_api.post("/api/v1/my/plans/change", body).status_code == 422, body
    assert Subscription.objects.get(pk=subscription.pk).plan == portal_plans["home"]
