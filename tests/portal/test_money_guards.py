"""The guards the money attack review asked for (issue 15): the month not billed yet shown before a plan change,
every term compared, closed accounts refused, online payments limited per hour, the consent an app sends checked
against the wording shown, and a busy row answered 503 instead of a hanging request."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction

from abonent.billing import actions as billing
from abonent.billing.models import Freeze, PromisedPayment, Subscription, TurboActivation
from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.payments.models import AutopayPlan, Checkout
from abonent.portal import pay_data
from abonent.portal.actions import do_prune_login_records
from abonent.portal.models import ShownPreview
from abonent.subscribers.actions import do_close_subscriber
from tests.payments.yookassa_fake import fake_fixture, yookassa_fixture  # noqa: F401

from .conftest import TODAY, api_of, signed_in
from .test_pay import form_key, pay
from .test_pay_api import error, link
from .test_plans import amount, posted_form
from .test_services import sell_turbo

D = Decimal
FIRST_OF_DECEMBER = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)  # 12:00 in Moscow, before the billing run


def _subscription(subscriber) -> Subscription:
    return Subscription.objects.get(subscriber=subscriber)


# --- the month not billed yet -------------------------------------------------------------------------------------


def test_on_the_first_before_the_run_the_preview_shows_the_month_charged_first_and_the_change_does_that(
    subscriber, portal_plans
):
    subscription = _subscription(subscriber)
    api = api_of(subscriber)
    with clock.travel_to(FIRST_OF_DECEMBER):
        query = {"subscription": subscription.pk, "plan": portal_plans["cheap"].pk}
        preview = api.get("/api/v1/my/plans/preview", query).json()
        assert (preview["immediate"], preview["effective_on"], preview["catch_up"]) == (False, "2027-01-01", "650.00")
        assert (preview["credit"], preview["charge"], preview["net"]) == ("0.00", "0.00", "650.00")
        assert (preview["balance_before"], preview["balance_after"]) == ("350.00", "-300.00")
        # The preview wrote nothing: its catch-up was rolled back.
        assert get_balance(subscriber).balance == D("350.00")
        assert Subscription.objects.get(pk=subscription.pk).next_charge_on == dt.date(2026, 12, 1)

        done = api.post("/api/v1/my/plans/change", {**query, "expected_net": preview["net"]})

    assert done.status_code == 200, done.content
    assert done.json() == preview
    assert get_balance(subscriber).balance == D("-300.00")
    subscription.refresh_from_db()
    assert subscription.plan == portal_plans["home"] and subscription.pending_plan == portal_plans["cheap"]
    assert subscription.pending_plan_from == dt.date(2027, 1, 1)


def test_the_page_shows_the_month_not_billed_yet_and_its_form_confirms_it(subscriber, portal_plans):
    subscription = _subscription(subscriber)
    client = signed_in(subscriber)
    url = f"/my/plan/{subscription.pk}/change/{portal_plans['cheap'].pk}/"
    with clock.travel_to(FIRST_OF_DECEMBER):
        page = client.get(url)
        assert page.status_code == 200
        assert amount(page, "catch-up") == "−650.00 ₽" and amount(page, "balance-after") == "-300.00 ₽"
        form = posted_form(page, url)
        assert (form["catch_up"], form["immediate"], form["effective_on"]) == ("650.00", "0", "2027-01-01")

        assert client.post(url, form).status_code == 302

    assert get_balance(subscriber).balance == D("-300.00")
    assert _subscription(subscriber).pending_plan == portal_plans["cheap"]


def test_a_second_change_to_the_plan_already_taken_is_a_clean_422(portal_api, subscriber, portal_plans, now):
    subscription = _subscription(subscriber)
    body = {"subscription": subscription.pk, "plan": portal_plans["gamer"].pk, "expected_net": "91.67"}
    assert portal_api.post("/api/v1/my/plans/change", body).status_code == 200

    again = portal_api.post("/api/v1/my/plans/change", body)

    assert again.status_code == 422 and again.json()["error"]["fields"][0]["code"] == "plan_not_offered"
    assert get_balance(subscriber).balance == D("258.33")


# --- every term compared ------------------------------------------------------------------------------------------


def test_an_api_freeze_is_compared_with_the_whole_preview_this_token_was_shown(portal_api, subscriber, now):
    subscription = _subscription(subscriber)
    portal_api.get("/api/v1/my/freeze/preview", {"subscription": subscription.pk, "days": 14})
    shown = ShownPreview.objects.get(kind="freeze", subject=f"{subscription.pk}:14")
    assert shown.terms == {"fee": "42.00", "credit": "238.33", "starts_on": "2026-11-20", "ends_on": "2026-12-04"}
    body = {"subscription": subscription.pk, "days": 14, "expected_fee": "42.00"}

    with clock.travel_to(TODAY + dt.timedelta(days=1)):
        refused = portal_api.post("/api/v1/my/freeze", body)
        # The 409's preview is now the one shown: confirming it is confirming what the app was told.
        done = portal_api.post("/api/v1/my/freeze", body)

    assert refused.status_code == 409 and refused.json()["preview"]["credit"] == "216.67"
    assert done.status_code == 200 and done.json()["balance_after"] == "524.67"
    assert Freeze.objects.filter(subscription=subscription).count() == 1


def test_another_tokens_preview_is_not_this_ones(subscriber, now):
    subscription = _subscription(subscriber)
    api_of(subscriber).get("/api/v1/my/freeze/preview", {"subscription": subscription.pk, "days": 14})
    other = api_of(subscriber)

    with clock.travel_to(TODAY + dt.timedelta(days=1)):
        body = {"subscription": subscription.pk, "days": 14, "expected_fee": "42.00"}
        assert other.post("/api/v1/my/freeze", body).status_code == 200


def test_a_turbo_whose_hours_the_app_sent_and_that_moved_is_409(portal_api, subscriber, portal_plans, admin, now):
    turbo = sell_turbo(admin, portal_plans["home"])
    subscription = _subscription(subscriber)
    body = {"subscription": subscription.pk, "turbo": turbo.pk, "expected_price": "50.00", "expected_hours": 2}

    response = portal_api.post("/api/v1/my/turbo", body)

    assert response.status_code == 409 and response.json()["error"]["code"] == "preview_changed"
    assert not TurboActivation.objects.exists() and get_balance(subscriber).balance == D("350.00")


def test_a_promised_payment_page_for_other_days_takes_nothing(portal_client, subscriber, now):
    page = portal_client.get("/my/services/")
    form = posted_form(page, "/my/services/promised/")
    assert form["days"] == "3"

    response = portal_client.post("/my/services/promised/", {**form, "amount": "100", "days": "7"})

    assert response.status_code == 409
    assert not PromisedPayment.objects.exists() and get_balance(subscriber).balance == D("350.00")


# --- a closed account ---------------------------------------------------------------------------------------------


def test_billing_refuses_every_purchase_and_change_for_a_closed_account(subscriber, portal_plans, admin, now):
    subscription = _subscription(subscriber)
    turbo = sell_turbo(admin, portal_plans["home"])
    do_close_subscriber(subscriber, reason="Moved away", acting_user=admin)
    attempts = [
        lambda: billing.do_activate_turbo(subscription, turbo=turbo, acting_user=None),
        lambda: billing.do_take_promised_payment(subscriber, acting_user=None),
        lambda: billing.do_change_plan(subscription, plan=portal_plans["gamer"], acting_user=None),
        lambda: billing.do_freeze_subscription(subscription, days=14, acting_user=None),
    ]
    for attempt in attempts:
        with pytest.raises(ValidationError) as refused:
            attempt()
        assert refused.value.code == "subscriber_closed"
    assert get_balance(subscriber).balance == D("350.00")


def test_the_portal_offers_a_closed_account_nothing_and_refuses_it_in_billings_words(
    subscriber, portal_plans, admin, now
):
    subscription = _subscription(subscriber)
    sell_turbo(admin, portal_plans["home"])
    do_close_subscriber(subscriber, reason="Moved away", acting_user=admin)
    api = api_of(subscriber)

    services = api.get("/api/v1/my/services").json()
    preview = api.get("/api/v1/my/plans/preview", {"subscription": subscription.pk, "plan": portal_plans["gamer"].pk})
    frozen = api.post("/api/v1/my/freeze", {"subscription": subscription.pk, "days": 14, "expected_fee": "42.00"})
    changed = api.post(
        "/api/v1/my/plans/change",
        {"subscription": subscription.pk, "plan": portal_plans["gamer"].pk, "expected_net": "91.67"},
    )

    assert services["turbos"] == [] and services["promised_payment"]["refusal_code"] == "subscriber_closed"
    assert services["freezes"][0]["refusal"] == "The account is closed."
    for response in (preview, frozen, changed):
        assert error(response) == (422, "validation_error", [(None, "subscriber_closed")])
    assert not Freeze.objects.exists() and get_balance(subscriber).balance == D("350.00")


# --- online payments: at most so many an hour; the consent is the wording shown -----------------------------------


def test_past_the_hourly_allowance_a_new_payment_is_429_and_a_retry_of_one_started_is_not(
    yookassa, portal_api, settings, now
):
    settings.ABONENT_PORTAL_CHECKOUTS_PER_HOUR = 2
    first = portal_api.post("/api/v1/my/payments", {"amount": "10.00"}, key="k-1")
    assert portal_api.post("/api/v1/my/payments", {"amount": "10.00"}, key="k-2").status_code == 201

    refused = portal_api.post("/api/v1/my/payments", {"amount": "10.00"}, key="k-3")
    retried = portal_api.post("/api/v1/my/payments", {"amount": "10.00"}, key="k-1")
    with clock.travel_to(TODAY + dt.timedelta(hours=1, seconds=1)):
        later = portal_api.post("/api/v1/my/payments", {"amount": "10.00"}, key="k-4")

    assert error(refused)[:2] == (429, "too_many_requests")
    assert retried.status_code == 201 and retried.json()["id"] == first.json()["id"]
    assert later.status_code == 201
    assert Checkout.objects.count() == 3


def test_the_page_says_why_past_the_hourly_allowance(yookassa, portal_client, settings, now):
    settings.ABONENT_PORTAL_CHECKOUTS_PER_HOUR = 1
    assert pay(portal_client, "650", key=form_key(portal_client.get("/my/pay/"))).status_code == 302

    refused = pay(portal_client, "650", key=form_key(portal_client.get("/my/pay/")))

    assert refused.status_code == 429
    assert "You have started 1 online payment in the last hour, the most allowed." in refused.content.decode()
    assert Checkout.objects.count() == 1


def test_a_card_is_saved_only_with_the_consent_wording_shown(yookassa, portal_api, subscriber, now):
    made_up = {"amount": "650.00", "save_method": True, "consent_text": "Согласен на всё"}
    shown = {**made_up, "consent_text": pay_data.save_consent_text(subscriber) + "\n"}

    refused = portal_api.post("/api/v1/my/payments", made_up)
    started = portal_api.post("/api/v1/my/payments", shown)

    assert error(refused) == (422, "validation_error", [("consent_text", "consent_mismatch")])
    assert started.status_code == 201
    assert Checkout.objects.get().consent_text == pay_data.save_consent_text(subscriber)


def test_autopay_is_turned_on_only_with_the_consent_wording_shown(portal_api, subscriber, now):
    card = link(subscriber)
    settings = {"method_id": card.pk, "mode": "day", "debit_day": 5, "amount_mode": "cover"}

    refused = portal_api.put("/api/v1/my/autopay", {**settings, "consent_text": "Да"})

    assert error(refused) == (422, "validation_error", [("consent_text", "consent_mismatch")])
    assert not AutopayPlan.objects.exists()


# --- a busy row ----------------------------------------------------------------------------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite waits for its busy timeout instead")
@pytest.mark.django_db(transaction=True)
def test_a_write_waiting_for_a_row_held_elsewhere_is_503_busy_and_writes_nothing(subscriber):
    subscription = _subscription(subscriber)
    api = api_of(subscriber)
    held, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                Subscription.objects.select_for_update().filter(pk=subscription.pk).values_list("pk").get()
                held.set()
                release.wait(20)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        with clock.travel_to(TODAY):
            body = {"subscription": subscription.pk, "days": 14, "expected_fee": "42.00"}
            response = api.post("/api/v1/my/freeze", body)
    finally:
        release.set()
        holder.join(20)

    assert error(response) == (503, "busy", [])
    assert not Freeze.objects.exists() and get_balance(subscriber).balance == D("350.00")


def test_previews_shown_a_week_ago_are_pruned_with_the_login_records(portal_api, subscriber, now):
    subscription = _subscription(subscriber)
    portal_api.get("/api/v1/my/freeze/preview", {"subscription": subscription.pk, "days": 14})
    keep = {"attempts_older_than": dt.timedelta(days=30), "codes_older_than": dt.timedelta(days=1)}

    assert do_prune_login_records(**keep) == 0
    with clock.travel_to(TODAY + dt.timedelta(days=8)):
        assert do_prune_login_records(**keep) == 1
    assert not ShownPreview.objects.exists()
