"""Giving one charge back through the API and the console (issue 11): before, neither could reverse a fee at all.
The admin role only, with a reason; the money is asserted, not just the status."""

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from django.test import Client

from abonent.billing import actions, ledger
from abonent.billing.models import Charge, ChargeKind
from abonent.billing.testing import balance
from abonent.staff.actions import do_create_api_token
from abonent.staff.permissions import Role

D = Decimal
NOV_1 = dt.date(2026, 11, 1)


@pytest.fixture
def subscription(make_plan, subscriber, admin, on):
    """650 ₽ from 1 November: November's fee charged, balance −650.00."""
    plan = make_plan("home-100", "650.00", name="Домашний 100")
    with on(NOV_1):
        return actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)


@pytest.fixture
def fee(subscription):
    return Charge.objects.get(subscription=subscription, kind=ChargeKind.FEE)


def api_client(user) -> Client:
    _token, plaintext = do_create_api_token(user=user, name="tests")
    return Client(headers={"Authorization": f"Bearer {plaintext}"})


def post_json(client, path, data, *, key: str | None = "fresh"):
    headers = {} if key is None else {"Idempotency-Key": uuid.uuid4().hex if key == "fresh" else key}
    return client.post(path, json.dumps(data), content_type="application/json", headers=headers)


# --- API ----------------------------------------------------------------------------------------------------------


def test_the_api_lists_charges_and_gives_days_of_a_fee_back(subscription, fee, subscriber, admin, on):
    api = api_client(admin)
    with on(dt.date(2026, 11, 20)):
        response = post_json(
            api,
            f"/api/v1/charges/{fee.pk}/reversals",
            {"reason": "no link 10–14 Nov", "first_day": "2026-11-10", "until": "2026-11-15"},
        )

    assert response.status_code == 201, response.content
    body = response.json()
    # 5 of November's 30 days: R(10) − R(15) = round(650 × 21/30) − round(650 × 16/30) = 455.00 − 346.67.
    assert body["reversal"]["amount"] == "-108.33"
    assert body["reversal"]["reverses_id"] == fee.pk
    assert body["balance"]["balance"] == "-541.67"
    assert balance(subscriber) == D("-541.67")
    listed = api.get(f"/api/v1/subscriptions/{subscription.pk}/charges").json()
    assert [(c["kind"], c["amount"], c["reversed"]) for c in listed] == [
        ("reversal", "-108.33", "0.00"),
        ("fee", "650.00", "108.33"),
    ]
    assert ledger.verify() == []


def test_a_retried_reversal_gives_back_once_and_needs_a_key(subscription, fee, subscriber, admin):
    api = api_client(admin)
    path = f"/api/v1/charges/{fee.pk}/reversals"

    missing = post_json(api, path, {"reason": "outage"}, key=None)
    first = post_json(api, path, {"reason": "outage"}, key="k-1")
    retry = post_json(api, path, {"reason": "outage"}, key="k-1")
    again = post_json(api, path, {"reason": "outage"})

    assert missing.status_code == 400 and missing.json()["error"]["code"] == "idempotency_key_required"
    assert (first.status_code, retry.status_code) == (201, 201) and retry.json() == first.json()
    assert again.status_code == 422
    assert balance(subscriber) == D("0.00")
    assert Charge.objects.filter(kind=ChargeKind.REVERSAL).count() == 1


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.CASHIER, Role.SUPPORT])
def test_only_the_admin_role_gives_a_charge_back(subscription, fee, subscriber, make_staff, role):
    response = post_json(api_client(make_staff(role)), f"/api/v1/charges/{fee.pk}/reversals", {"reason": "please"})

    assert response.status_code == 403
    assert balance(subscriber) == D("-650.00")
    assert not Charge.objects.filter(kind=ChargeKind.REVERSAL).exists()


def test_an_admin_limited_to_another_branch_gets_404(subscription, fee, subscriber, make_staff, other_branch):
    admin_elsewhere = make_staff(Role.ADMIN, branches=[other_branch])
    response = post_json(api_client(admin_elsewhere), f"/api/v1/charges/{fee.pk}/reversals", {"reason": "x"})
    assert response.status_code == 404
    assert balance(subscriber) == D("-650.00")


def test_days_outside_the_charge_are_a_422_with_a_field_code(subscription, fee, subscriber, admin):
    response = post_json(
        api_client(admin),
        f"/api/v1/charges/{fee.pk}/reversals",
        {"reason": "x", "first_day": "2026-10-25", "until": "2026-11-05"},
    )
    assert response.status_code == 422
    assert [(f["field"], f["code"]) for f in response.json()["error"]["fields"]] == [("until", "days_out_of_range")]
    assert balance(subscriber) == D("-650.00")


def test_an_adjustment_is_undone_through_the_api(subscriber, admin):
    api = api_client(admin)
    made = post_json(api, f"/api/v1/subscribers/{subscriber.pk}/adjustments", {"amount": "100.00", "reason": "typo"})
    tx_id = made.json()["transaction_id"]

    undone = post_json(api, f"/api/v1/transactions/{tx_id}/reversal", {"reason": "typo"})

    assert undone.status_code == 201, undone.content
    assert (undone.json()["amount"], undone.json()["balance"]["balance"]) == ("-100.00", "0.00")
    assert balance(subscriber) == D("0.00")


# --- console ------------------------------------------------------------------------------------------------------


def console(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_console_shows_charges_and_an_admin_gives_a_fee_back(subscription, fee, subscriber, admin, on):
    client = console(admin)
    page = client.get(f"/staff/subscribers/{subscriber.pk}/billing/subscriptions/{subscription.pk}/charges/")
    assert page.status_code == 200
    assert f'data-charge="{fee.pk}"' in page.content.decode() and "Give back" in page.content.decode()

    with on(dt.date(2026, 11, 20)):
        response = client.post(
            f"/staff/subscribers/{subscriber.pk}/billing/subscriptions/{subscription.pk}/charges/{fee.pk}/reversal/",
            {"reason": "outage", "first_day": "2026-11-10", "last_day": "2026-11-14"},
        )

    assert response.status_code == 302
    assert balance(subscriber) == D("-541.67")
    assert Charge.objects.get(kind=ChargeKind.REVERSAL).reverses_id == fee.pk


def test_the_console_refuses_without_a_reason_and_writes_nothing(subscription, fee, subscriber, admin):
    response = console(admin).post(
        f"/staff/subscribers/{subscriber.pk}/billing/subscriptions/{subscription.pk}/charges/{fee.pk}/reversal/",
        {"reason": ""},
    )
    assert response.status_code == 422
    assert balance(subscriber) == D("-650.00")


def test_an_operator_sees_charges_but_no_give_back_and_cannot_post(subscription, fee, subscriber, operator):
    client = console(operator)
    page = client.get(f"/staff/subscribers/{subscriber.pk}/billing/subscriptions/{subscription.pk}/charges/")
    posted = client.post(
        f"/staff/subscribers/{subscriber.pk}/billing/subscriptions/{subscription.pk}/charges/{fee.pk}/reversal/",
        {"reason": "please"},
    )

    assert page.status_code == 200 and "Give back" not in page.content.decode()
    assert posted.status_code == 403
    assert balance(subscriber) == D("-650.00")
