"""``/api/v1``: plans, a subscriber's balance, ledger and subscriptions, and the billing writes staff make."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.test import Client

from abonent.api.models import IdempotencyRecord
from abonent.billing import actions
from abonent.billing.models import LedgerTransaction, PromisedPayment, Subscription
from abonent.billing.testing import balance
from abonent.core.models import AuditEvent
from abonent.staff.actions import do_create_api_token
from abonent.staff.permissions import Role

D = Decimal
NOV_1, NOV_16 = dt.date(2026, 11, 1), dt.date(2026, 11, 16)


class Api(Client):
    """JSON in and out, with a staff user's API token."""

    def post(self, path, data=None, **extra):
        return super().post(path, json.dumps(data or {}), content_type="application/json", **extra)

    def put(self, path, data=None, **extra):
        return super().put(path, json.dumps(data or {}), content_type="application/json", **extra)


@pytest.fixture
def api_of(make_staff):
    def make(role, **kwargs) -> Api:
        _token, plaintext = do_create_api_token(user=make_staff(role, **kwargs), name="tests")
        return Api(headers={"Authorization": f"Bearer {plaintext}"})

    return make


@pytest.fixture
def api(api_token) -> Api:
    return Api(headers={"Authorization": f"Bearer {api_token}"})


@pytest.fixture
def plans(make_plan, freeze_policy, promised_policy):
    policies = {"freeze_policy": freeze_policy, "promised_payment_policy": promised_policy}
    return (
        make_plan("home-100", "650.00", name="Домашний 100", download_kbps=100_000, upload_kbps=50_000, **policies),
        make_plan("game-300", "900.00", name="Игровой 300", download_kbps=300_000, upload_kbps=100_000, **policies),
    )


@pytest.fixture
def subscription(plans, subscriber, admin, on):
    with on(NOV_1):
        return actions.do_activate_subscription(subscriber, plan=plans[0], acting_user=admin)


def field_codes(response) -> list[tuple[str | None, str]]:
    return [(f["field"], f["code"]) for f in response.json()["error"]["fields"]]


def written() -> tuple[int, int, int]:
    return LedgerTransaction.objects.count(), AuditEvent.objects.count(), Subscription.objects.count()


# --- plans -----------------------------------------------------------------------------------------------


def test_plans_list_with_todays_price_as_a_string(api, plans, make_plan, on):
    make_plan("old", "400.00", name="Архивный", is_archived=True)
    with on(NOV_16):
        response = api.get("/api/v1/plans")
        everything = api.get("/api/v1/plans", {"include_archived": "true"})
    assert response.status_code == 200
    body = response.json()
    assert [p["code"] for p in body] == ["home-100", "game-300"]
    assert body[0]["current_price"] == {
        "valid_from": "2020-01-01",
        "monthly_fee": "650.00",
        "daily_fee": None,
        "activation_fee": "0.00",
    }
    assert body[1]["service"] == {"id": plans[1].service_id, "code": "internet", "name": "Интернет", "kind": "internet"}
    assert (body[1]["download_kbps"], body[1]["upload_kbps"], body[1]["included_bytes"]) == (300_000, 100_000, None)
    assert [p["code"] for p in everything.json()] == ["old", "home-100", "game-300"]


def test_plan_detail_lists_every_price_version_newest_first(api, plans, admin, on):
    from abonent.catalog.actions import do_add_plan_price

    with on(NOV_16):
        do_add_plan_price(plans[0], valid_from=dt.date(2027, 1, 1), monthly_fee=D("700"), acting_user=admin)
        body = api.get(f"/api/v1/plans/{plans[0].pk}").json()
    assert body["current_price"]["monthly_fee"] == "650.00"
    assert [(p["valid_from"], p["monthly_fee"]) for p in body["prices"]] == [
        ("2027-01-01", "700.00"),
        ("2020-01-01", "650.00"),
    ]
    assert body["switchable_to"] == []
    assert api.get("/api/v1/plans/999999").status_code == 404


# --- reads of a subscriber -------------------------------------------------------------------------------


def test_balance_ledger_and_subscriptions(api, subscriber, subscription, admin, on):
    with on(NOV_16):
        actions.do_adjust_balance(subscriber, amount=D("150.00"), reason="Goodwill", acting_user=admin)
        actions.do_set_credit_limit(subscriber, amount=D("300"), reason="Trusted", acting_user=admin)
        balance_body = api.get(f"/api/v1/subscribers/{subscriber.pk}/balance").json()
        ledger = api.get(f"/api/v1/subscribers/{subscriber.pk}/ledger").json()
        subscriptions = api.get(f"/api/v1/subscribers/{subscriber.pk}/subscriptions").json()
    assert balance_body == {
        "subscriber_id": subscriber.pk,
        "balance": "-500.00",
        "credit_limit": "300.00",
        "available": "-200.00",
        "promised": "0.00",
        "currency": "RUB",
    }
    assert [(line["kind"], line["memo"], line["amount"], line["running_balance"]) for line in ledger] == [
        ("adjustment", "Goodwill", "150.00", "-500.00"),
        ("fee", ledger[1]["memo"], "-650.00", "-650.00"),
    ]
    assert subscriptions == [
        {
            "id": subscription.pk,
            "subscriber_id": subscriber.pk,
            "plan_id": subscription.plan_id,
            "plan_name": "Домашний 100",
            "service_id": subscription.plan.service_id,
            "status": "active",
            "started_on": "2026-11-01",
            "ended_on": None,
            "next_charge_on": "2026-12-01",
            "pending_plan_id": None,
            "pending_plan_from": None,
            "freeze": None,
        }
    ]


def test_ledger_limit(api, subscriber, subscription, admin):
    for i in range(3):
        actions.do_adjust_balance(subscriber, amount=D("1"), reason=f"n{i}", acting_user=admin)
    lines = api.get(f"/api/v1/subscribers/{subscriber.pk}/ledger", {"limit": 2}).json()
    assert [line["memo"] for line in lines] == ["n2", "n1"]


# --- plan change -----------------------------------------------------------------------------------------


def test_preview_gives_the_exact_amounts_and_writes_nothing(api, subscription, plans, on):
    before = written()
    with on(NOV_16):
        response = api.get(f"/api/v1/subscriptions/{subscription.pk}/plan-change-preview", {"plan_id": plans[1].pk})
    assert response.status_code == 200
    assert response.json() == {
        "subscription_id": subscription.pk,
        "from_plan_id": plans[0].pk,
        "to_plan_id": plans[1].pk,
        "immediate": True,
        "effective_on": "2026-11-16",
        "credit": "325.00",
        "charge": "450.00",
        "net": "125.00",
        "balance_before": "-650.00",
        "balance_after": "-775.00",
    }
    assert written() == before


def test_plan_change_makes_what_the_preview_showed(api, subscriber, subscription, plans, on):
    with on(NOV_16):
        response = api.post(
            f"/api/v1/subscriptions/{subscription.pk}/plan-change", {"plan_id": plans[1].pk, "reason": "Faster"}
        )
    assert response.status_code == 200
    assert (response.json()["plan_id"], response.json()["plan_name"]) == (plans[1].pk, "Игровой 300")
    assert balance(subscriber) == D("-775.00")


def test_downgrade_is_scheduled_unless_forced(api, subscriber, plans, admin, on):
    with on(NOV_1):
        subscription = actions.do_activate_subscription(subscriber, plan=plans[1], acting_user=admin)
    with on(NOV_16):
        preview = api.get(f"/api/v1/subscriptions/{subscription.pk}/plan-change-preview", {"plan_id": plans[0].pk})
        forced = api.get(
            f"/api/v1/subscriptions/{subscription.pk}/plan-change-preview",
            {"plan_id": plans[0].pk, "force": "true"},
        )
        scheduled = api.post(f"/api/v1/subscriptions/{subscription.pk}/plan-change", {"plan_id": plans[0].pk})
    assert {k: preview.json()[k] for k in ("immediate", "effective_on", "credit", "charge", "net")} == {
        "immediate": False,
        "effective_on": "2026-12-01",
        "credit": "0.00",
        "charge": "0.00",
        "net": "0.00",
    }
    assert {k: forced.json()[k] for k in ("immediate", "credit", "charge", "net", "balance_after")} == {
        "immediate": True,
        "credit": "450.00",
        "charge": "325.00",
        "net": "-125.00",
        "balance_after": "-775.00",
    }
    body = scheduled.json()
    assert (body["plan_id"], body["pending_plan_id"], body["pending_plan_from"]) == (
        plans[1].pk,
        plans[0].pk,
        "2026-12-01",
    )


def test_plan_not_offered_is_422_plan_not_offered_and_nothing_is_written(api, subscription, make_plan, on):
    hidden = make_plan("staff-only", "500.00", is_public=False)
    before = written()
    with on(NOV_16):
        preview = api.get(f"/api/v1/subscriptions/{subscription.pk}/plan-change-preview", {"plan_id": hidden.pk})
        change = api.post(f"/api/v1/subscriptions/{subscription.pk}/plan-change", {"plan_id": hidden.pk})
    for response in (preview, change):
        assert response.status_code == 422
        assert response.json() == {
            "error": {
                "code": "validation_error",
                "message": "This plan is not offered to this subscriber.",
                "fields": [
                    {
                        "field": "plan_id",
                        "code": "plan_not_offered",
                        "message": "This plan is not offered to this subscriber.",
                    }
                ],
            }
        }
    assert written() == before
    subscription.refresh_from_db()
    assert subscription.plan.code == "home-100"


def test_unknown_plan_is_422_naming_plan_id(api, subscription):
    response = api.post(f"/api/v1/subscriptions/{subscription.pk}/plan-change", {"plan_id": 999999})
    assert response.status_code == 422 and field_codes(response) == [("plan_id", "does_not_exist")]


def test_same_plan_and_frozen_subscription_are_refused_in_the_preview(api, subscriber, subscription, plans, on):
    same = api.get(f"/api/v1/subscriptions/{subscription.pk}/plan-change-preview", {"plan_id": plans[0].pk})
    assert field_codes(same) == [("plan_id", "same_plan")]
    actions.do_post_payment(subscriber, amount=D("1000"), channel="cash", external_id="1")
    with on(NOV_16):
        api.post(f"/api/v1/subscriptions/{subscription.pk}/freeze", {"days": 10})
        frozen = api.get(f"/api/v1/subscriptions/{subscription.pk}/plan-change-preview", {"plan_id": plans[1].pk})
    assert field_codes(frozen) == [(None, "subscription_not_active")]


# --- activation, freeze, termination ---------------------------------------------------------------------


def test_activate_replayed_with_the_same_idempotency_key_subscribes_once(api, subscriber, plans, on):
    key = {"Idempotency-Key": "activate-1"}
    with on(NOV_1):
        first = api.post(f"/api/v1/subscribers/{subscriber.pk}/subscriptions", {"plan_id": plans[0].pk}, headers=key)
        second = api.post(f"/api/v1/subscribers/{subscriber.pk}/subscriptions", {"plan_id": plans[0].pk}, headers=key)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert first.json()["next_charge_on"] == "2026-12-01"
    assert Subscription.objects.count() == 1 and IdempotencyRecord.objects.count() == 1
    assert balance(subscriber) == D("-650.00")


def test_second_subscription_to_the_same_service_is_422(api, subscriber, subscription, plans):
    before = written()
    response = api.post(f"/api/v1/subscribers/{subscriber.pk}/subscriptions", {"plan_id": plans[1].pk})
    assert response.status_code == 422 and field_codes(response) == [(None, "subscription_exists")]
    assert written() == before


def test_freeze_unfreeze_and_terminate(api, subscriber, subscription, on):
    actions.do_post_payment(subscriber, amount=D("1000"), channel="cash", external_id="1")
    with on(NOV_16):
        frozen = api.post(f"/api/v1/subscriptions/{subscription.pk}/freeze", {"days": 10, "reason": "Dacha"})
    assert frozen.status_code == 200
    assert (frozen.json()["status"], frozen.json()["freeze"]["starts_on"], frozen.json()["freeze"]["ends_on"]) == (
        "frozen",
        "2026-11-16",
        "2026-11-26",
    )
    with on(dt.date(2026, 11, 20)):
        unfrozen = api.post(f"/api/v1/subscriptions/{subscription.pk}/unfreeze", {})
    assert (unfrozen.json()["status"], unfrozen.json()["freeze"]) == ("active", None)
    with on(dt.date(2026, 11, 25)):
        ended = api.post(f"/api/v1/subscriptions/{subscription.pk}/terminate", {"reason": "Moved away"})
    assert (ended.json()["status"], ended.json()["ended_on"]) == ("terminated", "2026-11-25")
    again = api.post(f"/api/v1/subscriptions/{subscription.pk}/terminate", {"reason": "Twice"})
    assert again.status_code == 422 and field_codes(again) == [(None, "already_terminated")]


def test_freeze_over_the_policy_is_422_with_the_code(api, subscription):
    response = api.post(f"/api/v1/subscriptions/{subscription.pk}/freeze", {"days": 3})
    assert response.status_code == 422 and field_codes(response) == [("days", "freeze_days_out_of_range")]


# --- money moved by hand ---------------------------------------------------------------------------------


def test_adjustment_returns_the_transaction_and_the_new_balance(api, subscriber, subscription, on):
    with on(NOV_16):
        response = api.post(
            f"/api/v1/subscribers/{subscriber.pk}/adjustments", {"amount": "-49.5", "reason": "Cable 5 m"}
        )
    assert response.status_code == 201
    body = response.json()
    assert body == {
        "transaction_id": LedgerTransaction.objects.get(kind="adjustment").pk,
        "effective_date": "2026-11-16",
        "amount": "-49.50",
        "reason": "Cable 5 m",
        "balance": {
            "subscriber_id": subscriber.pk,
            "balance": "-699.50",
            "credit_limit": "0.00",
            "available": "-699.50",
            "promised": "0.00",
            "currency": "RUB",
        },
    }


def test_adjustment_replayed_with_the_same_key_moves_money_once(api, subscriber, subscription):
    key = {"Idempotency-Key": "adj-7"}
    first = api.post(f"/api/v1/subscribers/{subscriber.pk}/adjustments", {"amount": "100", "reason": "x"}, headers=key)
    second = api.post(f"/api/v1/subscribers/{subscriber.pk}/adjustments", {"amount": "100", "reason": "x"}, headers=key)
    other = api.post(f"/api/v1/subscribers/{subscriber.pk}/adjustments", {"amount": "200", "reason": "x"}, headers=key)
    assert (first.status_code, second.status_code, other.status_code) == (201, 201, 409)
    assert second.json() == first.json()
    assert LedgerTransaction.objects.filter(kind="adjustment").count() == 1
    assert balance(subscriber) == D("-550.00")


def test_adjustment_of_zero_is_422_amount_zero(api, subscriber, subscription):
    before = written()
    response = api.post(f"/api/v1/subscribers/{subscriber.pk}/adjustments", {"amount": "0.00", "reason": "x"})
    assert response.status_code == 422 and field_codes(response) == [("amount", "amount_zero")]
    assert written() == before


def test_money_sent_as_a_number_is_refused(api, subscriber, subscription):
    before = written()
    response = api.post(f"/api/v1/subscribers/{subscriber.pk}/adjustments", {"amount": 0.1, "reason": "x"})
    assert response.status_code == 422 and field_codes(response) == [("amount", "string_type")]
    too_precise = api.post(f"/api/v1/subscribers/{subscriber.pk}/adjustments", {"amount": "0.001", "reason": "x"})
    assert field_codes(too_precise) == [("amount", "string_pattern_mismatch")]
    assert written() == before


def test_cashier_cannot_adjust_and_nothing_is_written(api_of, subscriber, subscription):
    cashier = api_of(Role.CASHIER)
    before = written()
    response = cashier.post(f"/api/v1/subscribers/{subscriber.pk}/adjustments", {"amount": "100", "reason": "x"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    assert written() == before
    assert balance(subscriber) == D("-650.00")
    # A cashier may still read the balance.
    assert cashier.get(f"/api/v1/subscribers/{subscriber.pk}/balance").json()["balance"] == "-650.00"


def test_credit_limit_put(api, subscriber, subscription):
    response = api.put(f"/api/v1/subscribers/{subscriber.pk}/credit-limit", {"amount": "300", "reason": "Trusted"})
    assert response.status_code == 200
    assert (response.json()["credit_limit"], response.json()["available"]) == ("300.00", "-350.00")
    negative = api.put(f"/api/v1/subscribers/{subscriber.pk}/credit-limit", {"amount": "-1", "reason": "x"})
    assert negative.status_code == 422 and field_codes(negative) == [("amount", "amount_negative")]


def test_promised_payment_defaults_to_the_policy_maximum(api, subscriber, subscription, admin, on):
    actions.do_adjust_balance(subscriber, amount=D("400"), reason="Correction", acting_user=admin)
    with on(NOV_16):
        response = api.post(f"/api/v1/subscribers/{subscriber.pk}/promised-payments", {})
        again = api.post(f"/api/v1/subscribers/{subscriber.pk}/promised-payments", {"amount": "100"})
    assert response.status_code == 201
    body = response.json()
    assert (body["amount"], body["fee"], body["due_on"], body["status"]) == ("500.00", "0.00", "2026-11-19", "open")
    assert (body["balance"]["balance"], body["balance"]["promised"]) == ("250.00", "500.00")
    assert again.status_code == 422 and field_codes(again) == [(None, "promised_already_open")]
    assert PromisedPayment.objects.count() == 1


# --- branches ----------------------------------------------------------------------------------------------


def test_staff_of_another_branch_get_404_and_nothing_is_written(
    api_of, make_subscriber, branch, other_branch, plans, admin, on
):
    stranger = make_subscriber(branch_obj=other_branch)
    with on(NOV_1):
        subscription = actions.do_activate_subscription(stranger, plan=plans[0], acting_user=admin)
    client = api_of(Role.OPERATOR, branches=[branch])
    before = written()
    for response in (
        client.get(f"/api/v1/subscribers/{stranger.pk}/balance"),
        client.get(f"/api/v1/subscribers/{stranger.pk}/ledger"),
        client.get(f"/api/v1/subscribers/{stranger.pk}/subscriptions"),
        client.get(f"/api/v1/subscriptions/{subscription.pk}/plan-change-preview", {"plan_id": plans[1].pk}),
        client.post(f"/api/v1/subscriptions/{subscription.pk}/plan-change", {"plan_id": plans[1].pk}),
        client.post(f"/api/v1/subscriptions/{subscription.pk}/terminate", {"reason": "x"}),
        client.post(f"/api/v1/subscribers/{stranger.pk}/adjustments", {"amount": "100", "reason": "x"}),
        client.put(f"/api/v1/subscribers/{stranger.pk}/credit-limit", {"amount": "100", "reason": "x"}),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert written() == before
