"""Attack review of the portal's money (issue 15): Pay, plan changes and the services. Each test is a defect found
by attacking the area; each fails on the code it was written against and says why in its docstring."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, connections

from abonent.billing.actions import plan_changes
from abonent.billing.models import (
    Freeze,
    PromisedPayment,
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
    TurboActivation,
)
from abonent.billing.selectors import get_balance
from abonent.catalog import actions as catalog
from abonent.core import clock
from abonent.payments.models import Checkout
from abonent.portal import plans_data, services_data
from abonent.subscribers.actions import do_close_subscriber
from tests.payments.yookassa_fake import fake_fixture, yookassa_fixture  # noqa: F401

from .conftest import TODAY, api_of, signed_in
from .test_plans import posted_form
from .test_services import sell_turbo

D = Decimal


def _subscription(subscriber) -> Subscription:
    return Subscription.objects.get(subscriber=subscriber)


def staggered(*calls, gap: float = 0.3):
    """Run each call in its own thread (its own database connection), each ``gap`` seconds after the one
    before, on the portal tests' day; an exception raised is returned in place of the answer."""
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            with clock.travel_to(TODAY):
                results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = []
    for index, call in enumerate(calls):
        thread = threading.Thread(target=run, args=(index, call))
        thread.start()
        threads.append(thread)
        time.sleep(gap)
    for thread in threads:
        thread.join(timeout=60)
    return results


def _status(result):
    return result.status_code if hasattr(result, "status_code") else repr(result)


# --- races on PostgreSQL -----------------------------------------------------------------------------------------

# Added (fixmoney): SQLite has one writer (its transactions here are IMMEDIATE), so these races cannot happen there;
# the check is before the fixtures, whose charges a transactional test on SQLite could not flush afterwards.
on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_double_click_on_the_upgrade_confirmation_is_not_a_500(subscriber, portal_plans, monkeypatch):
    """Attack: double-click "Confirm" of an upgrade (two POSTs, the second sent while the first still runs).

    Harm: the second request is a 500. It read the subscription (plan "Интернет-100") before the first committed,
    then waits in ``plans_data.lock`` (plans_data.py:189), a ``SELECT … FOR UPDATE`` joined to ``plan`` and
    ``subscriber``: once the first commits, PostgreSQL re-checks the join against the updated row, whose plan is
    now "Игровой", and returns no row: ``Subscription.DoesNotExist``. The page promises "A second click … does
    nothing more" (docs/portal-plans.md). The same happens to any write on the subscription racing a plan change
    (billing's ``_lock_subscription`` joins the plan too). The first request is slowed a little so that the
    second reliably arrives during it.
    """
    subscription = _subscription(subscriber)
    real_balance_now = plans_data.balance_now

    def slow_balance_now(who):
        time.sleep(1.0)  # inside the first confirmation's transaction, after the change
        return real_balance_now(who)

    monkeypatch.setattr(plans_data, "balance_now", slow_balance_now)
    client = signed_in(subscriber)
    client.raise_request_exception = False
    url = f"/my/plan/{subscription.pk}/change/{portal_plans['gamer'].pk}/"
    form = {"immediate": "1", "effective_on": "2026-11-20", "credit": "238.33", "charge": "330.00",
            "balance_after": "258.33"}  # fmt: skip

    first, second = staggered(lambda: client.post(url, form), lambda: client.post(url, form))

    assert _status(first) == 302
    assert _status(second) == 302, second  # "You are on Игровой now", not a server error
    assert get_balance(subscriber).balance == D("258.33")
    changes = SubscriptionEvent.objects.filter(subscription=subscription, kind=SubscriptionEventKind.PLAN_CHANGED)
    assert changes.count() == 1


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_my_upgrade_and_another_subscribers_freeze_at_once_are_not_a_deadlock(
    subscriber, stranger, portal_plans, monkeypatch
):
    """Attack: two subscribers act at the same moment: Иванов upgrades "Интернет-100" → "Игровой", Петров (who is
    on "Игровой") freezes.

    Harm: a deadlock, and Петров's freeze is a 500. The subscription locks take ``FOR UPDATE`` on the joined plan
    and service rows too (``plans_data.lock``, plans_data.py:189, and billing's ``_lock_subscription``,
    billing/actions/common.py:196, ``select_related`` without ``of=``): Петров's lock holds the "Игровой" plan row
    and waits for the service row, which Иванов's change holds while its history event references "Игровой"
    (a foreign-key check, ``FOR KEY SHARE`` on that plan row). One subscriber's action thus blocks or kills
    another's. The upgrade is slowed a little (inside its transaction) to make the interleaving certain.
    """
    mine, theirs = _subscription(subscriber), _subscription(stranger)
    real_preview = plan_changes.checked_preview

    def slow_preview(*args, **kwargs):
        time.sleep(1.0)
        return real_preview(*args, **kwargs)

    monkeypatch.setattr(plan_changes, "checked_preview", slow_preview)
    api_mine, api_theirs = api_of(subscriber), api_of(stranger)
    api_mine.raise_request_exception = api_theirs.raise_request_exception = False
    change = {"subscription": mine.pk, "plan": portal_plans["gamer"].pk, "expected_net": "91.67"}
    freeze = {"subscription": theirs.pk, "days": 14, "expected_fee": "42.00"}

    upgraded, frozen = staggered(
        lambda: api_mine.post("/api/v1/my/plans/change", change),
        lambda: api_theirs.post("/api/v1/my/freeze", freeze),
    )

    assert (_status(upgraded), _status(frozen)) == (200, 200), (upgraded.content, frozen.content)
    assert Freeze.objects.filter(subscription=theirs).count() == 1


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_retry_racing_the_first_request_with_the_same_key_gets_the_first_answer(subscriber, monkeypatch):
    """Attack: the app sends "take a promised payment" and, its answer being slow, retries with the same
    Idempotency-Key while the first is still running.

    Harm: the retry is answered 422 ``promised_already_open`` instead of the first answer (201): the app tells the
    subscriber their request failed although it went through. ``api.idempotency.idempotent`` looks for a stored
    answer only before running the handler (idempotency.py:122) and, when the handler then fails because the
    first request's write has committed, never looks again (only an ``IntegrityError`` does). The docs promise
    "a retry with the same key gets the first answer" (docs/portal-plans.md).
    """
    real_take = services_data.take_promised_as_seen

    def slow_take(*args, **kwargs):
        promised = real_take(*args, **kwargs)
        time.sleep(1.0)  # the first request's answer is slow; its transaction is still open
        return promised

    monkeypatch.setattr(services_data, "take_promised_as_seen", slow_take)
    api = api_of(subscriber)
    api.raise_request_exception = False

    first, retry = staggered(
        lambda: api.post("/api/v1/my/promised-payment", {}, key="promise-1"),
        lambda: api.post("/api/v1/my/promised-payment", {}, key="promise-1"),
    )

    assert _status(first) == 201
    assert PromisedPayment.objects.filter(subscriber=subscriber).count() == 1
    assert _status(retry) == 201, retry.content
    assert retry.json() == first.json()


# --- what is shown is what is charged (the API) ------------------------------------------------------------------


def test_an_api_downgrade_on_the_first_before_the_run_charges_what_the_preview_did_not_show(subscriber, portal_plans):
    """Attack: on 1 December, before the billing run has charged December, the app previews "Интернет-100" (650 ₽)
    → "Домашний" (400 ₽) and confirms with the preview's ``expected_net``.

    Harm: the preview says "immediate, from 1 December, net 0.00, balance after 350.00"; the confirmation charges
    December at the old 650 ₽ (the catch-up in ``do_change_plan``), schedules the switch for 1 January instead, and
    answers 200 with balance −300.00: 650 ₽ the subscriber never saw, for a month they asked to spend on a 400 ₽
    plan. The API compares only ``net`` (api/plans.py:222 ``SeenPlanChange(net=…)``, plans_data.py ``matches``),
    and the preview ignores the unbilled period (billing/selectors.py:319), so both say 0.00. The web form would
    refuse it (it compares ``immediate`` and ``balance_after``); the API must answer 409 ``preview_changed``.
    """
    subscription = _subscription(subscriber)
    api = api_of(subscriber)
    # Adjusted (fixmoney): the preview now runs the confirmation's catch-up, so on 1 December it shows the December
    # charge (immediate false, net 650.00, balance after −300.00) and confirming it is right. The attack stands
    # for a preview the app took the day before (scheduled from 1 December, net 0.00) and confirmed on the 1st.
    with clock.travel_to(dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)):
        preview = api.get(
            "/api/v1/my/plans/preview", {"subscription": subscription.pk, "plan": portal_plans["cheap"].pk}
        ).json()
        assert (preview["immediate"], preview["net"], preview["balance_after"]) == (False, "0.00", "350.00")
    with clock.travel_to(dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)):
        response = api.post(
            "/api/v1/my/plans/change",
            {"subscription": subscription.pk, "plan": portal_plans["cheap"].pk, "expected_net": preview["net"]},
        )

        assert response.status_code == 409, response.json()
        assert response.json()["error"]["code"] == "preview_changed"
        assert get_balance(subscriber).balance == D("350.00")
        subscription.refresh_from_db()
        assert subscription.pending_plan_id is None and subscription.plan == portal_plans["home"]


def test_an_api_freeze_confirmed_a_day_after_its_preview_gives_back_less_than_shown(subscriber, now):
    """Attack: the app previews a 14-day freeze on 20 November (fee 42.00, 238.33 given back, balance after
    546.33) and the subscriber confirms it the next day with the preview's ``expected_fee``.

    Harm: the freeze is done from 21 November with 216.67 given back: the balance ends at 524.67, 21.66 ₽ less
    than the preview showed, and the freeze's dates differ too; the answer is 200. ``POST /freeze`` compares only
    the fee (api/services.py:302 ``SeenFreeze(fee=…)``), so the "amounts shown = amounts charged" rule holds on
    the page (which compares credit and balance) but not in the app.
    """
    subscription = _subscription(subscriber)
    api = api_of(subscriber)
    preview = api.get("/api/v1/my/freeze/preview", {"subscription": subscription.pk, "days": 14}).json()
    assert (preview["fee"], preview["credit"], preview["balance_after"]) == ("42.00", "238.33", "546.33")

    with clock.travel_to(TODAY + dt.timedelta(days=1)):
        response = api.post(
            "/api/v1/my/freeze", {"subscription": subscription.pk, "days": 14, "expected_fee": preview["fee"]}
        )

    assert response.status_code == 409, response.json()
    assert response.json()["error"]["code"] == "preview_changed"
    assert not Freeze.objects.filter(subscription=subscription).exists()
    assert get_balance(subscriber).balance == D("350.00")


# --- what is shown is what is bought (the page) ------------------------------------------------------------------


def test_a_turbo_whose_hours_were_cut_since_the_preview_is_not_bought_at_the_old_price(
    subscriber, portal_plans, admin, now
):
    """Attack (a stale page): the subscriber opens "Турбо 500" (3 hours, 50 ₽, "until 15:00"); before they confirm,
    the operator cuts the option to 1 hour at the same price.

    Harm: the confirmation buys 1 hour for 50 ₽ while the page showed 3 hours and the time it ends: the
    confirmation compares only the price (services_data.py ``buy_turbo_as_seen``, forms/plans.py
    ``TurboConfirmForm``), although docs/portal-plans.md lists "speed, hours, price, the time it ends" as shown
    first and promises that a stale form never charges for something that was not shown.
    """
    turbo = sell_turbo(admin, portal_plans["home"])
    subscription = _subscription(subscriber)
    client = signed_in(subscriber)
    action = f"/my/services/{subscription.pk}/turbo/{turbo.pk}/"
    page = client.get(action)
    assert page.status_code == 200
    form = posted_form(page, action)

    catalog.do_update_turbo(turbo, acting_user=admin, hours=1)
    response = client.post(action, form)

    assert response.status_code == 409
    assert not TurboActivation.objects.filter(subscription=subscription).exists()
    assert get_balance(subscriber).balance == D("350.00")


# --- a closed account ----------------------------------------------------------------------------------------------


def test_a_closed_account_buys_no_turbo_through_the_portal(subscriber, portal_plans, admin, now):
    """Attack: the operator closes Иванов's account (``do_close_subscriber``: the contracts end, RADIUS now rejects
    him); Иванов, still signed in to the app (closed subscribers keep portal access to see and pay what they owe),
    buys a turbo.

    Harm: 201 and 50 ₽ taken off a closed account for a speed boost RADIUS will never give (a closed contract is
    rejected). Neither the portal (api/services.py ``buy_turbo``) nor ``do_activate_turbo`` checks the account's
    status; the payments app refuses a closed account (checkouts.py:128) and billing refuses to activate a
    subscription for one, but the subscription is left active by closing.
    """
    turbo = sell_turbo(admin, portal_plans["home"])
    subscription = _subscription(subscriber)
    api = api_of(subscriber)
    do_close_subscriber(subscriber, reason="Moved away", acting_user=admin)

    response = api.post("/api/v1/my/turbo", {"subscription": subscription.pk, "turbo": turbo.pk})

    assert response.status_code in (404, 422), response.json()
    assert not TurboActivation.objects.filter(subscription=subscription).exists()
    assert get_balance(subscriber).balance == D("350.00")


def test_a_closed_account_takes_no_promised_payment(subscriber, admin, now):
    """Attack: as above, the closed account's holder takes a promised payment from the app.

    Harm: 201: 500 ₽ of credit opened on a closed account (``do_take_promised_payment`` checks the plan's policy,
    the debt and once-a-month, never that the account is closed; services_data.py ``take_promised_as_seen``
    neither), money the operator lent to a contract that no longer exists.
    """
    api = api_of(subscriber)
    do_close_subscriber(subscriber, reason="Moved away", acting_user=admin)

    response = api.post("/api/v1/my/promised-payment", {})

    assert response.status_code == 422, response.json()
    assert not PromisedPayment.objects.filter(subscriber=subscriber).exists()
    assert get_balance(subscriber).balance == D("350.00")


# --- Pay -----------------------------------------------------------------------------------------------------------


def test_a_checkout_flood_is_rate_limited(yookassa, subscriber, now):
    """Attack: a script with a subscriber's token (or a card tester with a stolen one) starts online payments as
    fast as it can, a new Idempotency-Key each time.

    Harm: every one of them is created and sent to YooKassa (40 in a moment here, nothing stops 40 000): the
    portal is a free card-testing front for the shop's merchant account, and the gateway's own limits then hit
    every subscriber's payments. ``POST /api/v1/my/payments`` (api/payments.py ``start``) and the page
    (views/pay.py ``pay``) have no limit, unlike the portal's comments (429 ``too_many_comments``).
    """
    api = api_of(subscriber)
    answers = [api.post("/api/v1/my/payments", {"amount": "10.00"}).status_code for _ in range(40)]

    assert 429 in answers, answers
    assert Checkout.objects.filter(subscriber=subscriber).count() < 40


def test_the_csv_link_of_a_statement_for_an_early_year_downloads_it(subscriber, now):
    """Attack (a clumsy user): a statement from 0001-01-01 to 0001-12-31 (the date picker allows it), then
    "Download as CSV".

    Harm: the page's own CSV link is ``?from=1-01-01&to=1-12-31`` (views/pay.py:304 formats the dates with
    ``%Y``, not zero-padded before year 1000), which the CSV view's form refuses: a 400 page instead of the file.
    """
    client = signed_in(subscriber)
    page = client.get("/my/pay/statement/", {"from": "0001-01-01", "to": "0001-12-31"})
    assert page.status_code == 200
    link = re.search(r'href="(/my/pay/statement\.csv\?[^"]+)"', page.content.decode())[1].replace("&amp;", "&")

    response = client.get(link)

    assert response.status_code == 200, link
    assert response["Content-Type"] == "text/csv; charset=utf-8"
