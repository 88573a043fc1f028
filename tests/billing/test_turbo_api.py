"""``/api/v1``: the turbo options of the catalog, and buying and ending a subscription's turbo."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from abonent.api.models import IdempotencyRecord
from abonent.billing import actions
from abonent.billing.models import LedgerTransaction, TurboActivation, TurboStatus
from abonent.billing.testing import balance
from abonent.catalog import actions as catalog
from abonent.core.models import AuditEvent
from abonent.staff.permissions import Role

D = Decimal
NOV_1 = dt.date(2026, 11, 1)
# Noon in Moscow, in UTC as the clock gives it in production (and the API answers it).
NOON = dt.datetime(2026, 11, 10, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def plan(make_plan):
    return make_plan("home-100", "650.00", name="Домашний 100", download_kbps=100_000, upload_kbps=50_000)


@pytest.fixture
def turbos(admin, plan):
    """50 ₽ for 3 hours and 120 ₽ for 8, both offered on the plan."""
    return (
        catalog.do_create_turbo(
            code="turbo-500", name="Турбо 500", download_kbps=512_000, upload_kbps=256_000, hours=3, price="50.00",
            plans=[plan], acting_user=admin,
        ),
        catalog.do_create_turbo(
            code="turbo-1g", name="Турбо 1G", download_kbps=1_000_000, upload_kbps=500_000, hours=8,
            price="120.00", plans=[plan], acting_user=admin,
        ),
    )  # fmt: skip


@pytest.fixture
def subscription(plan, turbos, subscriber, admin, on):
    """700 ₽ paid, 650 ₽ charged: 50.00 left, enough for the cheap turbo only."""
    with on(NOV_1):
        subscription = actions.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
        actions.do_post_payment(subscriber, amount="700.00", channel="cash", external_id="1")
    return subscription


def field_codes(response) -> list[tuple[str | None, str]]:
    return [(f["field"], f["code"]) for f in response.json()["error"]["fields"]]


def written() -> tuple[int, int, int]:
    return LedgerTransaction.objects.count(), TurboActivation.objects.count(), AuditEvent.objects.count()


def option(turbo) -> dict:
    return {
        "id": turbo.pk,
        "code": turbo.code,
        "name": turbo.name,
        "download_kbps": turbo.download_kbps,
        "upload_kbps": turbo.upload_kbps,
        "hours": turbo.hours,
        "price": f"{turbo.price:.2f}",
        "is_active": turbo.is_active,
    }


# --- the catalog ---------------------------------------------------------------------------------------------


def bought_at_noon(bought, subscription, turbo) -> dict:
    """A Турбо 500 bought at NOON and still on, as the API shows it."""
    return {
        "id": bought.pk,
        "subscription_id": subscription.pk,
        "turbo": {"id": turbo.pk, "code": "turbo-500", "name": "Турбо 500"},
        "download_kbps": 512_000,
        "upload_kbps": 256_000,
        "price": "50.00",
        "starts_at": "2026-11-10T09:00:00Z",
        "ends_at": "2026-11-10T12:00:00Z",
        "status": "active",
        "ended_at": None,
    }


def test_turbo_options_with_the_plans_offering_them(api, turbos, plan, make_plan, admin):
    other = make_plan("game-300", "900.00", name="Игровой 300")
    catalog.do_update_turbo(turbos[0], acting_user=admin, plans=[plan, other])
    withdrawn = catalog.do_create_turbo(
        code="old", name="Старый", download_kbps=1000, upload_kbps=1000, hours=1, price="1", is_active=False,
        acting_user=admin,
    )  # fmt: skip
    response = api.get("/api/v1/turbos")
    everything = api.get("/api/v1/turbos", {"include_inactive": "true"})
    assert response.status_code == 200
    assert response.json() == [
        {**option(turbos[0]), "plans": sorted([plan.pk, other.pk])},
        {**option(turbos[1]), "plans": [plan.pk]},
    ]
    assert [t["code"] for t in everything.json()] == ["turbo-500", "turbo-1g", "old"]
    assert everything.json()[2] == {**option(withdrawn), "is_active": False, "price": "1.00", "plans": []}


def test_turbo_options_need_a_token_and_the_billing_view(api_of, turbos, db):
    assert Client().get("/api/v1/turbos").status_code == 401
    # Every role may view billing; the read is open to all of them.
    assert api_of(Role.ENGINEER).get("/api/v1/turbos").status_code == 200


# --- a subscription's turbo ----------------------------------------------------------------------------------


def test_subscription_turbos_lists_what_may_be_bought_and_the_one_on(api, subscription, turbos, admin, on):
    with on(NOON):
        before = api.get(f"/api/v1/subscriptions/{subscription.pk}/turbos").json()
        actions.do_activate_turbo(subscription, turbo=turbos[0], acting_user=admin)
        after = api.get(f"/api/v1/subscriptions/{subscription.pk}/turbos").json()
    assert before == {
        "subscription_id": subscription.pk,
        "offered": [option(turbos[0]), option(turbos[1])],
        "active": None,
    }
    bought = TurboActivation.objects.get()
    assert after["active"] == bought_at_noon(bought, subscription, turbos[0])


def test_buying_a_turbo_charges_the_balance_and_answers_201(api, subscriber, subscription, turbos, on):
    with on(NOON):
        response = api.post(
            f"/api/v1/subscriptions/{subscription.pk}/turbo", {"turbo_id": turbos[0].pk, "reason": "Game night"}
        )
    assert response.status_code == 201
    bought = TurboActivation.objects.get()
    assert response.json() == bought_at_noon(bought, subscription, turbos[0])
    assert balance(subscriber) == D("0.00")
    assert LedgerTransaction.objects.filter(kind="turbo").count() == 1
    assert bought.event.reason == "Game night"


def test_buying_replayed_with_the_same_idempotency_key_charges_once(api, subscriber, subscription, turbos, on):
    key = {"Idempotency-Key": "turbo-1"}
    path = f"/api/v1/subscriptions/{subscription.pk}/turbo"
    with on(NOON):
        first = api.post(path, {"turbo_id": turbos[0].pk}, headers=key)
    with on(NOON + dt.timedelta(minutes=1)):
        second = api.post(path, {"turbo_id": turbos[0].pk}, headers=key)
        other = api.post(path, {"turbo_id": turbos[1].pk}, headers=key)
    assert (first.status_code, second.status_code, other.status_code) == (201, 201, 409)
    assert second.json() == first.json()
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert TurboActivation.objects.count() == 1 and IdempotencyRecord.objects.count() == 1
    assert LedgerTransaction.objects.filter(kind="turbo").count() == 1
    assert balance(subscriber) == D("0.00")


def test_buying_or_ending_without_an_idempotency_key_is_400_and_writes_nothing(
    api, subscriber, subscription, turbos, admin, on
):
    with on(NOON):
        before = written()
        bought = api.post(f"/api/v1/subscriptions/{subscription.pk}/turbo", {"turbo_id": turbos[0].pk}, key=None)
        assert written() == before
        assert balance(subscriber) == D("50.00")
        actions.do_activate_turbo(subscription, turbo=turbos[0], acting_user=admin)
        before = written()
        ended = api.post(f"/api/v1/subscriptions/{subscription.pk}/turbo/end", {}, key=None)
    for response in (bought, ended):
        assert response.status_code == 400 and response.json()["error"]["code"] == "idempotency_key_required"
    assert written() == before
    assert TurboActivation.objects.get().status == TurboStatus.ACTIVE
    assert balance(subscriber) == D("0.00")
    assert not IdempotencyRecord.objects.exists()


def test_insufficient_funds_is_422_and_nothing_is_charged(api, subscriber, subscription, turbos, on):
    before = written()
    with on(NOON):
        response = api.post(f"/api/v1/subscriptions/{subscription.pk}/turbo", {"turbo_id": turbos[1].pk})
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "validation_error",
            "message": "The balance does not cover the turbo's price of 120.00\xa0₽.",
            "fields": [
                {
                    "field": None,
                    "code": "insufficient_funds",
                    "message": "The balance does not cover the turbo's price of 120.00\xa0₽.",
                }
            ],
        }
    }
    assert written() == before
    assert balance(subscriber) == D("50.00")


def test_refusals_name_the_field_as_sent_and_write_nothing(api, subscriber, subscription, turbos, admin, on):
    foreign = catalog.do_create_turbo(
        code="other", name="Чужой", download_kbps=1000, upload_kbps=1000, hours=1, price="0", acting_user=admin
    )
    actions.do_post_payment(subscriber, amount="100.00", channel="cash", external_id="2")
    path = f"/api/v1/subscriptions/{subscription.pk}/turbo"
    with on(NOON):
        actions.do_activate_turbo(subscription, turbo=turbos[0], acting_user=admin)
        before = written()
        not_offered = api.post(path, {"turbo_id": foreign.pk})
        unknown = api.post(path, {"turbo_id": 999999})
        already_on = api.post(path, {"turbo_id": turbos[0].pk})
        missing = api.post(path, {})
    assert field_codes(not_offered) == [("turbo_id", "turbo_not_offered")]
    assert field_codes(unknown) == [("turbo_id", "does_not_exist")]
    assert field_codes(already_on) == [(None, "turbo_already_on")]
    assert already_on.json()["error"]["message"].startswith("A turbo is already on (until 11/10/2026 3 p.m.)")
    assert field_codes(missing) == [("turbo_id", "missing")]
    assert {r.status_code for r in (not_offered, unknown, already_on, missing)} == {422}
    assert written() == before


def test_a_frozen_subscription_gets_no_turbo(api, subscriber, subscription, turbos, freeze_policy, on):
    subscription.plan.freeze_policy = freeze_policy
    subscription.plan.save()
    actions.do_post_payment(subscriber, amount="1000.00", channel="cash", external_id="2")
    with on(dt.date(2026, 11, 10)):
        assert api.post(f"/api/v1/subscriptions/{subscription.pk}/freeze", {"days": 10}).status_code == 200
    with on(NOON):
        response = api.post(f"/api/v1/subscriptions/{subscription.pk}/turbo", {"turbo_id": turbos[0].pk})
    assert response.status_code == 422 and field_codes(response) == [(None, "subscription_not_active")]
    assert not TurboActivation.objects.exists()


def test_end_now_answers_the_ended_turbo_and_refunds_nothing(api, subscriber, subscription, turbos, admin, on):
    with on(NOON):
        bought = actions.do_activate_turbo(subscription, turbo=turbos[0], acting_user=admin)
    with on(NOON + dt.timedelta(hours=1)):
        response = api.post(f"/api/v1/subscriptions/{subscription.pk}/turbo/end", {"reason": "Wrong account"})
        again = api.post(f"/api/v1/subscriptions/{subscription.pk}/turbo/end", {})
        listed = api.get(f"/api/v1/subscriptions/{subscription.pk}/turbos").json()
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"], body["ended_at"], body["ends_at"]) == (
        bought.pk,
        "ended_early",
        "2026-11-10T10:00:00Z",
        "2026-11-10T12:00:00Z",
    )
    assert again.status_code == 422 and field_codes(again) == [(None, "turbo_not_active")]
    assert listed["active"] is None
    bought.refresh_from_db()
    assert bought.status == TurboStatus.ENDED_EARLY
    assert AuditEvent.objects.get(action="billing.turbo_ended").reason == "Wrong account"
    assert balance(subscriber) == D("0.00")


def test_a_cashier_may_read_but_not_buy_or_end(api_of, subscriber, subscription, turbos, admin, on):
    cashier = api_of(Role.CASHIER)
    before = written()
    with on(NOON):
        bought = cashier.post(f"/api/v1/subscriptions/{subscription.pk}/turbo", {"turbo_id": turbos[0].pk})
        assert bought.status_code == 403 and bought.json()["error"]["code"] == "permission_denied"
        assert written() == before
        actions.do_activate_turbo(subscription, turbo=turbos[0], acting_user=admin)
        ended = cashier.post(f"/api/v1/subscriptions/{subscription.pk}/turbo/end", {})
        listed = cashier.get(f"/api/v1/subscriptions/{subscription.pk}/turbos")
    assert ended.status_code == 403
    assert listed.status_code == 200 and listed.json()["active"]["status"] == "active"
    assert TurboActivation.objects.get().status == TurboStatus.ACTIVE


def test_staff_of_another_branch_get_404_and_nothing_is_written(
    api_of, make_subscriber, branch, other_branch, plan, turbos, admin, on
):
    stranger = make_subscriber(branch_obj=other_branch)
    with on(NOV_1):
        subscription = actions.do_activate_subscription(stranger, plan=plan, acting_user=admin)
        actions.do_post_payment(stranger, amount="1000.00", channel="cash", external_id="s")
    client = api_of(Role.OPERATOR, branches=[branch])
    before = written()
    with on(NOON):
        for response in (
            client.get(f"/api/v1/subscriptions/{subscription.pk}/turbos"),
            client.post(f"/api/v1/subscriptions/{subscription.pk}/turbo", {"turbo_id": turbos[0].pk}),
            client.post(f"/api/v1/subscriptions/{subscription.pk}/turbo/end", {}),
        ):
            assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert written() == before
