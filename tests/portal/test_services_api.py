"""/api/v1/my/services, /freeze, /unfreeze, /promised-payment, /turbo: terms first, writes once per
Idempotency-Key, 409 ``preview_changed`` with nothing written when the amount moved, 404 for another's ids."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from abonent.billing import actions as billing
from abonent.billing.models import Charge, ChargeKind, Freeze, PromisedPayment, Subscription, TurboActivation
from abonent.billing.selectors import get_balance
from abonent.catalog.models import FreezePolicy
from abonent.core import clock

from .conftest import TODAY
from .test_services import sell_turbo


@pytest.fixture
def turbo(admin, portal_plans):
    return sell_turbo(admin, portal_plans["home"])


@pytest.fixture
def subscription(subscriber):
    return Subscription.objects.get(subscriber=subscriber)


def test_my_services_shows_every_policy_first(portal_api, subscription, turbo, now):
    response = portal_api.get("/api/v1/my/services")
    assert response.status_code == 200
    body = response.json()
    assert (body["currency"], body["balance"], body["available"]) == ("RUB", "350.00", "350.00")
    [freeze] = body["freezes"]
    assert freeze["subscription"] == subscription.pk and freeze["days_left"] == 90 and freeze["active"] is None
    assert freeze["policy"] == {
        "min_days": 7, "max_days": 90, "yearly_quota_days": 90,
        "fee_per_day": "3.00", "fee_per_month": "0.00", "activation_fee": "0.00",
    }  # fmt: skip
    promised = body["promised_payment"]
    assert promised["available"] is True and promised["refusal"] is None and promised["due_on"] == "2026-11-23"
    assert promised["policy"] == {
        "max_amount": "500.00", "days": 3, "fee": "0.00", "once_per_month": True, "max_debt": "0.00"
    }  # fmt: skip
    [turbos] = body["turbos"]
    assert turbos["offered"] == [
        {
            "id": turbo.pk,
            "name": "Турбо 500",
            "download_kbps": 500_000,
            "upload_kbps": 250_000,
            "hours": 3,
            "price": "50.00",
        }
    ]
    assert turbos["active"] is None


def test_a_freeze_at_the_previews_fee_once_per_key(portal_api, subscriber, subscription, now):
    preview = portal_api.get("/api/v1/my/freeze/preview", {"subscription": subscription.pk, "days": 14}).json()
    assert (preview["fee"], preview["credit"], preview["balance_after"]) == ("42.00", "238.33", "546.33")
    assert preview["ends_on"] == "2026-12-04"
    body = {"subscription": subscription.pk, "days": 14, "expected_fee": "42.00"}
    first = portal_api.post("/api/v1/my/freeze", body, key="freeze-1")
    again = portal_api.post("/api/v1/my/freeze", body, key="freeze-1")
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert Freeze.objects.filter(subscription=subscription).count() == 1
    assert get_balance(subscriber).balance == Decimal("546.33")
    assert portal_api.post("/api/v1/my/freeze", body, key=None).status_code == 400


def test_a_freeze_behind_a_missed_run_previews_and_confirms_its_catch_up(portal_api, subscriber, subscription, now):
    """No billing run in December: the freeze charges December first. The preview did not, so the first confirm
    was always a 409 with a different credit; the preview now includes the catch-up and the confirm matches."""
    billing.do_post_payment(subscriber, amount=Decimal("1000.00"), channel="cash", external_id="t-catch-up")
    with clock.travel_to(dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)):
        preview = portal_api.get("/api/v1/my/freeze/preview", {"subscription": subscription.pk, "days": 14}).json()
        assert Decimal(preview["catch_up"]) > 0 and preview["balance_before"] == "1350.00"
        body = {"subscription": subscription.pk, "days": 14, "expected_fee": preview["fee"]}
        done = portal_api.post("/api/v1/my/freeze", body, key="freeze-behind")

    assert done.status_code == 200 and done.json() == preview
    assert get_balance(subscriber).balance == Decimal(preview["balance_after"])


def test_a_freeze_fee_that_moved_is_409_with_the_fresh_preview(portal_api, subscriber, subscription, now):
    FreezePolicy.objects.filter(name="Каникулы").update(activation_fee=Decimal("100.00"))
    body = {"subscription": subscription.pk, "days": 14, "expected_fee": "42.00"}
    response = portal_api.post("/api/v1/my/freeze", body)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "preview_changed" and response.json()["preview"]["fee"] == "142.00"
    assert not Freeze.objects.exists() and get_balance(subscriber).balance == Decimal("350.00")


def test_freeze_days_out_of_the_policy_are_422(portal_api, subscription, now):
    response = portal_api.get("/api/v1/my/freeze/preview", {"subscription": subscription.pk, "days": 3})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["code"] == "freeze_days_out_of_range"
    body = {"subscription": subscription.pk, "days": 400, "expected_fee": "0.00"}
    assert portal_api.post("/api/v1/my/freeze", body).status_code == 422
    assert not Freeze.objects.exists()


def test_unfreeze_through_the_api(portal_api, subscriber, subscription, now):
    billing.do_freeze_subscription(subscription, days=14, acting_user=None)
    with clock.travel_to(TODAY + dt.timedelta(days=3)):
        [block] = portal_api.get("/api/v1/my/services").json()["freezes"]
        shown = block["active"]["unfreeze"]
        assert (shown["refund"], shown["charge"], shown["net"]) == ("21.00", "173.33", "152.33")
        wrong = portal_api.post("/api/v1/my/unfreeze", {"subscription": subscription.pk, "expected_net": "1.00"})
        assert wrong.status_code == 409 and wrong.json()["preview"]["net"] == "152.33"
        assert Subscription.objects.get(pk=subscription.pk).status == "frozen"
        done = portal_api.post("/api/v1/my/unfreeze", {"subscription": subscription.pk, "expected_net": "152.33"})
        assert done.status_code == 200 and done.json()["balance_after"] == "394.00"
    assert get_balance(subscriber).balance == Decimal("394.00")


def test_a_promised_payment_once_per_key_and_refused_by_the_policy(portal_api, subscriber, now):
    first = portal_api.post("/api/v1/my/promised-payment", {"amount": "200.00"}, key="pp-1")
    again = portal_api.post("/api/v1/my/promised-payment", {"amount": "200.00"}, key="pp-1")
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert first.json() == {"amount": "200.00", "fee": "0.00", "due_on": "2026-11-23", "balance": "550.00"}
    assert PromisedPayment.objects.filter(subscriber=subscriber).count() == 1
    # Another key: the policy refuses (one is open), in billing's words and code
    refused = portal_api.post("/api/v1/my/promised-payment", {"amount": "100.00"}, key="pp-2")
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["code"] == "promised_already_open"
    services = portal_api.get("/api/v1/my/services").json()["promised_payment"]
    assert services["available"] is False and services["refusal_code"] == "promised_already_open"
    assert services["open"] == {"amount": "200.00", "fee": "0.00", "due_on": "2026-11-23"}
    assert get_balance(subscriber).balance == Decimal("550.00")


def test_a_promised_payment_with_a_fee_that_moved_is_409(portal_api, subscriber, now):
    response = portal_api.post("/api/v1/my/promised-payment", {"amount": "100.00", "expected_fee": "5.00"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "preview_changed"
    assert not PromisedPayment.objects.exists() and get_balance(subscriber).balance == Decimal("350.00")


def test_a_turbo_once_per_key(portal_api, subscriber, subscription, turbo, now):
    body = {"subscription": subscription.pk, "turbo": turbo.pk, "expected_price": "50.00"}
    first = portal_api.post("/api/v1/my/turbo", body, key="turbo-1")
    again = portal_api.post("/api/v1/my/turbo", body, key="turbo-1")
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert first.json()["price"] == "50.00" and first.json()["name"] == "Турбо 500"
    assert Charge.objects.filter(kind=ChargeKind.TURBO).count() == 1
    assert get_balance(subscriber).balance == Decimal("300.00")
    other = portal_api.post("/api/v1/my/turbo", body, key="turbo-2")
    assert other.status_code == 422 and other.json()["error"]["fields"][0]["code"] == "turbo_already_on"
    assert portal_api.post("/api/v1/my/turbo", body, key=None).status_code == 400
    ended = portal_api.post("/api/v1/my/turbo/end", {"subscription": subscription.pk})
    assert ended.status_code == 200
    assert get_balance(subscriber).balance == Decimal("300.00")


def test_a_turbo_at_another_price_is_409_and_another_plans_turbo_422(portal_api, subscriber, subscription, turbo, now):
    wrong = portal_api.post(
        "/api/v1/my/turbo", {"subscription": subscription.pk, "turbo": turbo.pk, "expected_price": "1.00"}
    )
    assert wrong.status_code == 409
    unknown = portal_api.post("/api/v1/my/turbo", {"subscription": subscription.pk, "turbo": 999_999})
    assert unknown.status_code == 422 and unknown.json()["error"]["fields"][0]["code"] == "turbo_not_offered"
    assert not TurboActivation.objects.exists() and get_balance(subscriber).balance == Decimal("350.00")


def test_the_strangers_subscription_is_404_for_every_service(portal_api, stranger, portal_plans, turbo, now):
    portal_plans["gamer"].turbos.add(turbo)
    theirs = Subscription.objects.get(subscriber=stranger).pk
    assert portal_api.get("/api/v1/my/freeze/preview", {"subscription": theirs, "days": 14}).status_code == 404
    for path, body in (
        ("/api/v1/my/freeze", {"subscription": theirs, "days": 14, "expected_fee": "42.00"}),
        ("/api/v1/my/unfreeze", {"subscription": theirs}),
        ("/api/v1/my/turbo", {"subscription": theirs, "turbo": turbo.pk}),
        ("/api/v1/my/turbo/end", {"subscription": theirs}),
    ):
        assert portal_api.post(path, body).status_code == 404, path
    assert get_balance(stranger).balance == Decimal("100.00")
    assert not Freeze.objects.exists() and not TurboActivation.objects.exists()
