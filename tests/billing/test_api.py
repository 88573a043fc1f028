"""``/api/v1``: plans, a subscriber's balance, ledger and subscriptions, and the billing writes staff make."""

import datetime as dt
import hashlib
from decimal import Decimal

import pytest

from abonent.api.models import IdempotencyRecord
from abonent.billing import actions
from abonent.billing.models import LedgerTransaction, PromisedPayment, Subscription
from abonent.billing.testing import balance
from abonent.core.models import AuditEvent
from abonent.staff.permissions import Role

D = Decimal
NOV_1, NOV_16 = dt.date(2026, 11, 1), dt.date(2026, 11, 16)


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
        "unit_price": None,
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
            # The price it pays and where it comes from (billing/pricing): the list price here.
            "price": {
                "subscription_id": subscription.pk,
                "plan_id": subscription.plan_id,
                "day": "2026-11-16",
                "list_fee": "650.00",
                "fee": "650.00",
                "source": "plan",
                "source_id": subscriptions[0]["price"]["source_id"],
                "reason": "",
                "valid_from": "2020-01-01",
                "valid_until": None,
                "discount": "0.00",
                "net": "650.00",
                "promotions": [],
            },
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


def last_line(api, subscriber) -> tuple[str, str]:
    """The newest ledger line's amount and the balance after it, as the API shows them."""
    line = api.get(f"/api/v1/subscribers/{subscriber.pk}/ledger", {"limit": 1}).json()[0]
    return line["amount"], line["running_balance"]


def test_freeze_unfreeze_and_terminate(api, subscriber, subscription, on):
    """650 ₽ a month charged on Nov 1 and 1,000 ₽ paid: 350.00. The freeze from Nov 16 returns the 15 unused
    days (325.00) and charges 10 days at 3 ₽ (30.00); the unfreeze on Nov 20 charges Nov 20–30 again (11 days,
    238.33) and gives back the freeze days not used beyond the policy's 7-day minimum (9.00); the termination on
    Nov 25 returns Nov 25–30 (6 days, 130.00)."""
    with on(NOV_16):
        actions.do_post_payment(subscriber, amount=D("1000"), channel="cash", external_id="1")
        frozen = api.post(f"/api/v1/subscriptions/{subscription.pk}/freeze", {"days": 10, "reason": "Dacha"})
    assert frozen.status_code == 200
    assert (frozen.json()["status"], frozen.json()["freeze"]["starts_on"], frozen.json()["freeze"]["ends_on"]) == (
        "frozen",
        "2026-11-16",
        "2026-11-26",
    )
    assert balance(subscriber) == D("645.00")
    with on(dt.date(2026, 11, 20)):
        unfrozen = api.post(f"/api/v1/subscriptions/{subscription.pk}/unfreeze", {})
    assert unfrozen.status_code == 200
    assert (unfrozen.json()["status"], unfrozen.json()["freeze"]) == ("active", None)
    assert balance(subscriber) == D("415.67")
    assert last_line(api, subscriber) == ("-238.33", "415.67")
    with on(dt.date(2026, 11, 25)):
        ended = api.post(f"/api/v1/subscriptions/{subscription.pk}/terminate", {"reason": "Moved away"})
    assert ended.status_code == 200
    assert (ended.json()["status"], ended.json()["ended_on"]) == ("terminated", "2026-11-25")
    assert balance(subscriber) == D("545.67")
    assert last_line(api, subscriber) == ("130.00", "545.67")
    before = written()
    again = api.post(f"/api/v1/subscriptions/{subscription.pk}/terminate", {"reason": "Twice"})
    assert again.status_code == 422 and field_codes(again) == [(None, "already_terminated")]
    assert written() == before
    assert balance(subscriber) == D("545.67")


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
    before = written()
    other = api.post(f"/api/v1/subscribers/{subscriber.pk}/adjustments", {"amount": "200", "reason": "x"}, headers=key)
    assert (first.status_code, second.status_code, other.status_code) == (201, 201, 409)
    assert second.json() == first.json()
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert written() == before
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


# --- Idempotency-Key on the writes that move money --------------------------------------------------------

ADJUST_100 = {"amount": "100", "reason": "Goodwill"}


@pytest.fixture
def installation(admin):
    from abonent.catalog import actions as catalog

    return catalog.do_create_service(
        code="installation", name="Подключение", kind="one_off", one_off_price=D("1500.00"), acting_user=admin
    )


def test_money_writes_without_an_idempotency_key_are_400_and_write_nothing(
    api, make_subscriber, subscriber, subscription, plans, installation
):
    newcomer = make_subscriber(last_name="Сидоров", phone="+79031112233")
    before = written()
    responses = [
        api.post(f"/api/v1/subscribers/{newcomer.pk}/subscriptions", {"plan_id": plans[0].pk}, key=None),
        api.post(f"/api/v1/subscriptions/{subscription.pk}/plan-change", {"plan_id": plans[1].pk}, key=None),
        api.post(f"/api/v1/subscriptions/{subscription.pk}/freeze", {"days": 10}, key=None),
        api.post(f"/api/v1/subscriptions/{subscription.pk}/unfreeze", {}, key=None),
        api.post(f"/api/v1/subscriptions/{subscription.pk}/terminate", {"reason": "x"}, key=None),
        api.post(f"/api/v1/subscribers/{subscriber.pk}/adjustments", ADJUST_100, key=None),
        api.post(
            f"/api/v1/subscribers/{subscriber.pk}/one-off-charges", {"service_id": installation.pk, "reason": "x"},
            key=None,
        ),
        api.post(f"/api/v1/subscribers/{subscriber.pk}/promised-payments", {}, key=None),
        # A blank header is no key.
        api.post(f"/api/v1/subscribers/{subscriber.pk}/adjustments", ADJUST_100, headers={"Idempotency-Key": " "}),
    ]  # fmt: skip
    message = "This request moves money: send an Idempotency-Key header, and the same key when you retry it."
    for response in responses:
        assert response.status_code == 400
        assert response.json() == {"error": {"code": "idempotency_key_required", "message": message, "fields": []}}
    assert written() == before
    assert balance(subscriber) == D("-650.00")
    assert not newcomer.subscriptions.exists()
    subscription.refresh_from_db()
    assert (subscription.status, subscription.plan_id) == ("active", plans[0].pk)
    assert not PromisedPayment.objects.exists() and not IdempotencyRecord.objects.exists()


def test_same_key_with_the_same_json_spelt_another_way_gets_the_first_answer(api, subscriber, subscription):
    path = f"/api/v1/subscribers/{subscriber.pk}/adjustments"
    first = api.post(path, '{"amount": "100", "reason": "Goodwill"}', key="adj-1")
    retry = api.post(path, '{\n  "reason":"Goodwill",\n  "amount":"100"\n}', key="adj-1")
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert LedgerTransaction.objects.filter(kind="adjustment").count() == 1
    assert balance(subscriber) == D("-550.00")


def test_a_retry_that_finds_no_stored_answer_still_posts_once(api, admin, subscriber, subscription, on):
    """With the stored answer gone, the adjustment's ledger key, derived from the user and the Idempotency-Key
    (it was random), still lets the ledger post it once: the retry gets the transaction already posted."""
    path = f"/api/v1/subscribers/{subscriber.pk}/adjustments"
    with on(NOV_16):
        first = api.post(path, ADJUST_100, key="adj-1")
        IdempotencyRecord.objects.all().delete()
        retry = api.post(path, ADJUST_100, key="adj-1")
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    adjustment = LedgerTransaction.objects.get(kind="adjustment")
    assert adjustment.idempotency_key == f"adjustment:api:{admin.pk}:{hashlib.sha256(b'adj-1').hexdigest()}"
    assert AuditEvent.objects.filter(action="billing.balance_adjusted").count() == 1
    assert balance(subscriber) == D("-550.00")


def test_a_retry_after_the_stored_answer_expired_is_409_not_a_second_posting(api, subscriber, subscription, on):
    from abonent.api.tasks import prune_idempotency_records

    path = f"/api/v1/subscribers/{subscriber.pk}/adjustments"
    with on(NOV_16):
        assert api.post(path, ADJUST_100, key="adj-1").status_code == 201
    with on(NOV_16 + dt.timedelta(days=8)):
        assert prune_idempotency_records.call() == 1
        before = written()
        retry = api.post(path, ADJUST_100, key="adj-1")
    assert retry.status_code == 409 and retry.json()["error"]["code"] == "idempotency_key_reused"
    assert written() == before
    assert balance(subscriber) == D("-550.00")


@pytest.fixture
def operator_api(make_staff, branch, api_as):
    """An operator of the subscriber's branch and the client holding their token."""
    user = make_staff(Role.OPERATOR, branches=[branch])
    return user, api_as(user)


def test_replay_after_the_role_lost_the_right_is_403_not_the_stored_answer(operator_api, subscriber, subscription):
    user, client = operator_api
    path = f"/api/v1/subscribers/{subscriber.pk}/adjustments"
    assert client.post(path, ADJUST_100, key="adj-1").status_code == 201
    user.role = Role.CASHIER
    user.save(update_fields=["role"])
    before = written()

    retry = client.post(path, ADJUST_100, key="adj-1")

    assert retry.status_code == 403
    assert retry.json()["error"]["code"] == "permission_denied"
    assert "transaction_id" not in retry.json()
    assert written() == before
    assert balance(subscriber) == D("-550.00")


def test_replay_after_the_branch_was_taken_away_is_404_not_the_stored_answer(
    operator_api, subscriber, subscription, plans, other_branch
):
    user, client = operator_api
    path = f"/api/v1/subscriptions/{subscription.pk}/plan-change"
    assert client.post(path, {"plan_id": plans[1].pk}, key="change-1").status_code == 200
    user.branches.set([other_branch])

    retry = client.post(path, {"plan_id": plans[1].pk}, key="change-1")

    assert retry.status_code == 404
    assert retry.json()["error"]["code"] == "not_found"


# --- one-off charges -------------------------------------------------------------------------------------


def test_one_off_charge_at_the_list_price_returns_the_transaction_and_the_balance(
    api, subscriber, subscription, installation, on
):
    with on(NOV_16):
        response = api.post(
            f"/api/v1/subscribers/{subscriber.pk}/one-off-charges",
            {"service_id": installation.pk, "reason": "Second floor"},
        )
    assert response.status_code == 201
    assert response.json() == {
        "transaction_id": LedgerTransaction.objects.get(kind="one_off").pk,
        "effective_date": "2026-11-16",
        "service_id": installation.pk,
        "amount": "1500.00",
        "memo": "Подключение. Second floor",
        "balance": {
            "subscriber_id": subscriber.pk,
            "balance": "-2150.00",
            "credit_limit": "0.00",
            "available": "-2150.00",
            "promised": "0.00",
            "currency": "RUB",
        },
    }
    assert AuditEvent.objects.get(action="billing.one_off_charged").reason == "Second floor"


def test_one_off_charge_of_a_given_amount_retried_charges_once(api, admin, subscriber, subscription, installation):
    path = f"/api/v1/subscribers/{subscriber.pk}/one-off-charges"
    body = {"service_id": installation.pk, "amount": "350.50", "reason": "Cable 10 m"}
    first = api.post(path, body, key="cable-1")
    IdempotencyRecord.objects.all().delete()  # the stored answer gone: only the ledger key stands
    retry = api.post(path, body, key="cable-1")
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert first.json()["amount"] == "350.50"
    charge = LedgerTransaction.objects.get(kind="one_off")
    assert charge.idempotency_key == f"one_off:api:{admin.pk}:{hashlib.sha256(b'cable-1').hexdigest()}"
    assert balance(subscriber) == D("-1000.50")


def test_one_off_charge_refusals_name_the_field_and_write_nothing(api, subscriber, subscription, installation):
    path = f"/api/v1/subscribers/{subscriber.pk}/one-off-charges"
    before = written()
    unknown = api.post(path, {"service_id": 999999, "reason": "x"})
    negative = api.post(path, {"service_id": installation.pk, "amount": "-10", "reason": "x"})
    no_reason = api.post(path, {"service_id": installation.pk})
    assert field_codes(unknown) == [("service_id", "does_not_exist")]
    assert field_codes(negative) == [("amount", "amount_not_positive")]
    assert field_codes(no_reason) == [("reason", "missing")]
    assert {r.status_code for r in (unknown, negative, no_reason)} == {422}
    assert written() == before
    assert balance(subscriber) == D("-650.00")


def test_cashier_cannot_charge_a_one_off_and_nothing_is_written(api_of, subscriber, subscription, installation):
    cashier = api_of(Role.CASHIER)
    before = written()
    response = cashier.post(
        f"/api/v1/subscribers/{subscriber.pk}/one-off-charges", {"service_id": installation.pk, "reason": "x"}
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    assert written() == before
    assert balance(subscriber) == D("-650.00")


# --- money as sent ---------------------------------------------------------------------------------------


def test_money_with_non_ascii_digits_or_over_ten_integer_digits_is_422(api, subscriber, subscription, installation):
    """A full-width "５" was booked as 5.00; 11 integer digits could overflow numeric(14,2) in a sum."""
    before = written()
    responses = [
        api.post(f"/api/v1/subscribers/{subscriber.pk}/adjustments", {"amount": "５", "reason": "x"}),
        api.post(f"/api/v1/subscribers/{subscriber.pk}/adjustments", {"amount": "٣.00", "reason": "x"}),
        api.post(f"/api/v1/subscribers/{subscriber.pk}/adjustments", {"amount": "-12345678901", "reason": "x"}),
        api.post(
            f"/api/v1/subscribers/{subscriber.pk}/one-off-charges",
            {"service_id": installation.pk, "amount": "12345678901.00", "reason": "x"},
        ),
        api.post(f"/api/v1/subscribers/{subscriber.pk}/promised-payments", {"amount": "１００"}),
        api.put(f"/api/v1/subscribers/{subscriber.pk}/credit-limit", {"amount": "99999999999", "reason": "x"}),
    ]
    for response in responses:
        assert response.status_code == 422
        assert field_codes(response) == [("amount", "string_pattern_mismatch")]
    assert written() == before
    assert balance(subscriber) == D("-650.00")
