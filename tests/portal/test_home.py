"""The portal's home page and ``GET /api/v1/my/home``: the balance and how long it lasts, the next charge, the
access state with what brings access back (in states built by the billing run and the dunning sweep at the right
clock), the plans, the connection."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from abonent.billing import actions as billing
from abonent.billing.models import Charge, ChargeKind, Subscription
from abonent.billing.testing import run_on
from abonent.core import clock
from abonent.dunning import actions as dunning
from abonent.dunning.evaluation import sweep

from .conftest import TODAY, api_of, signed_in

pytestmark = pytest.mark.django_db
NBSP = "\u00a0"


def rub(amount: str) -> str:
    return f"{amount}{NBSP}₽"


def home_json(subscriber) -> dict:
    response = api_of(subscriber).get("/api/v1/my/home")
    assert response.status_code == 200, response.content
    return response.json()


def page(subscriber) -> str:
    response = signed_in(subscriber).get("/my/")
    assert response.status_code == 200
    return response.content.decode()


def sweep_on(moment: dt.datetime) -> None:
    with clock.travel_to(moment):
        sweep()


def test_a_paid_up_subscriber_sees_the_balance_the_days_it_lasts_and_the_next_charge(subscriber, now):
    # Given 350 ₽ left after November's 650 ₽, on 20 November; when the home page is read
    data = home_json(subscriber)
    # Then the money lasts to the charge of 1 December, which takes 650 ₽: 300 ₽ short
    assert (data["balance"], data["credit_limit"], data["promised"]) == ("350.00", "0.00", "0.00")
    assert (data["days_left"], data["runout_on"]) == (11, "2026-12-01")
    assert (data["next_charge_on"], data["next_charge_amount"]) == ("2026-12-01", "650.00")
    assert (data["pay_amount"], data["pay_minimum"]) == ("300.00", "0.00")
    assert data["access"] | {"since": None} == {"state": "active", "label": "Active", "since": None, "reason": ""}
    assert data["plans"] == [
        {
            "subscription_id": Subscription.objects.get(subscriber=subscriber).pk,
            "plan": "Интернет-100",
            "status": "active",
            "download_kbps": 100_000,
            "upload_kbps": 100_000,
            "monthly_fee": "650.00",
            "daily_fee": None,
            "charged_daily": False,
            "frozen_until": None,
            "pending_plan": None,
            "pending_plan_from": None,
            "next_charge": {"on": "2026-12-01", "amount": "650.00", "plan": "Интернет-100", "downgrade": False},
        }
    ]
    html = page(subscriber)
    assert rub("350.00") in html
    assert "Enough for 11 days at today's fees, until Dec. 1, 2026" in html
    assert f"Next charge: {rub('650.00')} on Dec. 1, 2026" in html
    assert "100 / 100 Mbit/s" in html
    assert 'href="/my/pay/?amount=300.00"' in html


def text_of(html: str) -> str:
    """The page's words, one space between them: what a reader sees, whatever the markup's line breaks."""
    import re

    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def test_restricted_after_the_billing_run_shows_what_restores_access(subscriber):
    # Given the charge of 1 December (650 ₽ on 350 ₽) and the sweep that restricts the subscriber
    run_on(dt.date(2026, 12, 1))
    sweep_on(dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC))
    with clock.travel_to(dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)):
        # When the home page is read
        data = home_json(subscriber)
        html = page(subscriber)
    # Then 300 ₽ restores access and 650 ₽ more pays January: 950 ₽ to pay
    assert (data["balance"], data["access"]["state"]) == ("-300.00", "restricted")
    assert (data["pay_minimum"], data["pay_amount"]) == ("300.00", "950.00")
    assert (data["next_charge_on"], data["next_charge_amount"]) == ("2027-01-01", "650.00")
    assert (data["days_left"], data["runout_on"]) == (0, "2026-12-01")
    words = text_of(html)
    assert "Access is restricted: the balance is below zero." in words
    assert f"Pay {rub('950.00')} to restore access." in words
    assert f"{rub('300.00')} restores access now; the rest pays the charge of Jan. 1, 2027" in words
    assert html.count('href="/my/pay/?amount=950.00"') == 1
    assert 'data-testid="home-days-left"' not in html


def test_suspended_after_the_days_restricted_shows_the_same_amount(subscriber):
    # Given restricted on 1 December and still unpaid 14 days later
    run_on(dt.date(2026, 12, 1))
    sweep_on(dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC))
    sweep_on(dt.datetime(2026, 12, 15, 7, tzinfo=dt.UTC))
    with clock.travel_to(dt.datetime(2026, 12, 15, 12, tzinfo=dt.UTC)):
        data = home_json(subscriber)
        words = text_of(page(subscriber))
    assert (data["access"]["state"], data["pay_minimum"], data["pay_amount"]) == ("suspended", "300.00", "950.00")
    assert "Access is suspended for debt." in words
    assert f"Pay {rub('950.00')} to restore access." in words


def test_paying_what_home_asks_restores_access_and_pays_the_next_charge(subscriber):
    # Given a restricted subscriber told to pay 950 ₽
    run_on(dt.date(2026, 12, 1))
    sweep_on(dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC))
    with clock.travel_to(dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)):
        amount = Decimal(home_json(subscriber)["pay_amount"])
        # When exactly that is paid
        billing.do_post_payment(subscriber, amount=amount, channel="test", external_id="restore")
        sweep()
        data = home_json(subscriber)
    # Then access is back and the money lasts to the charge after January's
    assert (data["access"]["state"], data["balance"], data["pay_amount"]) == ("active", "650.00", "0.00")
    assert (data["runout_on"], data["days_left"]) == ("2027-02-01", 62)
    run_on(dt.date(2027, 1, 1))
    sweep_on(dt.datetime(2027, 1, 1, 6, tzinfo=dt.UTC))
    with clock.travel_to(dt.datetime(2027, 1, 1, 12, tzinfo=dt.UTC)):
        assert home_json(subscriber)["access"]["state"] == "active"


def _restricted_then_promised(subscriber, policy):
    """Restricted at -300 ₽ on 1 December, then a promised payment of 500 ₽ for 3 days (the policy allows the
    debt): 200 ₽ on the account until 4 December."""
    policy.max_debt = Decimal("1000.00")
    policy.save(update_fields=["max_debt"])
    run_on(dt.date(2026, 12, 1))
    sweep_on(dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC))
    with clock.travel_to(dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)):
        billing.do_take_promised_payment(subscriber, acting_user=None, amount=Decimal("500.00"))
        sweep()


def test_an_open_promised_payment_is_shown_apart_and_counted_in_what_to_pay(subscriber, portal_plans):
    _restricted_then_promised(subscriber, portal_plans["home"].promised_payment_policy)
    with clock.travel_to(dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)):
        data = home_json(subscriber)
        words = text_of(page(subscriber))
    # The balance holds the promise; any payment repays it first, so 950 ₽ leaves 650 ₽ for January
    assert (data["balance"], data["promised"], data["promised_due"]) == ("200.00", "500.00", "2026-12-04")
    assert (data["access"]["state"], data["pay_amount"], data["pay_minimum"]) == ("active", "950.00", "0.00")
    assert f"Of it, a promised payment of {rub('500.00')} until Dec. 4, 2026" in words


def test_the_money_runs_out_when_a_promise_covering_a_debt_ends(subscriber, portal_plans):
    _restricted_then_promised(subscriber, portal_plans["home"].promised_payment_policy)
    with clock.travel_to(dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)):
        data = home_json(subscriber)
    assert (data["days_left"], data["runout_on"]) == (4, "2026-12-05")


def test_a_block_by_staff_shows_the_reason_and_the_phone(subscriber, admin, now, settings):
    settings.ABONENT_COMPANY_PHONE = "+74951234567"
    dunning.do_block_access(subscriber, acting_user=admin, reason="Порча оборудования")
    data = home_json(subscriber)
    words = text_of(page(subscriber))
    assert data["access"] | {"since": None} == {
        "state": "blocked",
        "label": "Blocked by operator",
        "since": None,
        "reason": "Порча оборудования",
    }
    assert data["support_phone"] == "+74951234567"
    assert "Access is blocked by the operator. Reason: Порча оборудования Please call us: +7 495 123-45-67." in words


def test_termination_without_a_phone_setting_still_says_to_call(subscriber, admin, now, settings):
    settings.ABONENT_COMPANY_PHONE = ""
    dunning.do_terminate_access(subscriber, acting_user=admin, reason="Расторжение по заявлению")
    words = text_of(page(subscriber))
    assert "The service is terminated by the operator. Reason: Расторжение по заявлению Please call us." in words


def test_a_frozen_subscription_says_when_it_resumes_and_what_it_will_charge(subscriber):
    subscription = Subscription.objects.get(subscriber=subscriber)
    with clock.travel_to(TODAY):
        billing.do_freeze_subscription(subscription, days=10, acting_user=None)
        sweep()
        data = home_json(subscriber)
        words = text_of(page(subscriber))
    assert data["access"]["state"] == "frozen"
    assert data["plans"][0]["frozen_until"] == "2026-11-30"
    predicted = data["plans"][0]["next_charge"]
    assert predicted == {"on": "2026-11-30", "amount": "21.67", "plan": "Интернет-100", "downgrade": False}
    assert "The service is frozen; it resumes on Nov. 30, 2026" in words
    # When the freeze ends and the run charges: exactly what home said
    run_on(dt.date(2026, 11, 30))
    charge = Charge.objects.filter(subscription=subscription, kind=ChargeKind.FEE).latest("id")
    assert (charge.period_start, charge.amount) == (dt.date(2026, 11, 30), Decimal(predicted["amount"]))


def test_a_scheduled_downgrade_shows_the_new_plans_price_as_the_next_charge(subscriber, portal_plans, now):
    subscription = Subscription.objects.get(subscriber=subscriber)
    billing.do_change_plan(subscription, plan=portal_plans["cheap"], acting_user=None, channel="portal")
    data = home_json(subscriber)
    line = data["plans"][0]
    assert (line["plan"], line["pending_plan"], line["pending_plan_from"]) == ("Интернет-100", "Домашний", "2026-12-01")
    assert line["next_charge"] == {"on": "2026-12-01", "amount": "400.00", "plan": "Домашний", "downgrade": True}
    assert (data["next_charge_amount"], data["pay_amount"], data["days_left"]) == ("400.00", "50.00", 11)
    words = text_of(page(subscriber))
    assert f"Next charge {rub('400.00')} on Dec. 1, 2026 (plan “Домашний”)" in words
    assert "Switching to “Домашний” on Dec. 1, 2026" in words
    run_on(dt.date(2026, 12, 1))
    fee = Charge.objects.filter(subscription__subscriber=subscriber, kind=ChargeKind.FEE).latest("id")
    assert (fee.period_start, fee.amount) == (dt.date(2026, 12, 1), Decimal("400.00"))


def test_a_daily_plan_shows_the_days_share_of_the_fee(make_subscriber, make_plan, admin):
    daily = make_plan("daily", "600.00", name="Посуточный", charge_mode="daily", download_kbps=50_500)
    customer = make_subscriber(phone="+79160000001")
    with clock.travel_to(dt.date(2026, 11, 1)):
        billing.do_post_payment(customer, amount="100.00", channel="test", external_id="d1")
        billing.do_activate_subscription(customer, plan=daily, acting_user=admin)
    run_on(dt.date(2026, 11, 20))
    with clock.travel_to(TODAY):
        data = home_json(customer)
        words = text_of(page(customer))
    # 600 ₽ over November's 30 days: 20 ₽ a day, 20 days charged (1–20 November)
    assert data["balance"] == "-300.00"
    assert data["plans"][0]["next_charge"] == {
        "on": "2026-11-21",
        "amount": "20.00",
        "plan": "Посуточный",
        "downgrade": False,
    }
    assert data["plans"][0]["charged_daily"] is True
    assert f"{rub('600.00')} a month, charged by the day" in words
    assert "50.5 / — Mbit/s" in words


def test_a_subscriber_without_a_plan_sees_a_sensible_page(make_subscriber, now):
    customer = make_subscriber(phone="+79160000002")
    data = home_json(customer)
    assert (data["balance"], data["plans"], data["next_charge_on"], data["days_left"]) == ("0.00", [], None, None)
    assert (data["pay_amount"], data["access"]["state"]) == ("0.00", "active")
    words = text_of(page(customer))
    assert "No plan is connected to this account." in words
    assert "Top up" in words


def test_a_closed_account_says_so_and_offers_no_payment(subscriber, admin, now, django_capture_on_commit_callbacks):
    from abonent.subscribers.actions import do_close_subscriber

    with django_capture_on_commit_callbacks(execute=True):
        do_close_subscriber(subscriber, reason="Переезд", acting_user=admin)
    data = home_json(subscriber)
    assert (data["closed"], data["days_left"], data["runout_on"]) == (True, None, None)
    html = page(subscriber)
    assert "Your contract is closed: there is no service on this account." in text_of(html)
    assert 'data-testid="home-pay"' not in html


def test_signed_out_or_with_an_ended_session_home_shows_nothing(subscriber, now):
    from django.test import Client

    from abonent.portal.models import PortalSession

    assert Client().get("/my/").status_code == 302
    assert Client().get("/api/v1/my/home").status_code == 401
    browser = signed_in(subscriber)
    PortalSession.objects.filter(subscriber=subscriber).update(revoked_at=TODAY)
    response = browser.get("/my/")
    assert (response.status_code, response["Location"]) == (302, "/my/login/?next=%2Fmy%2F")
    idle = signed_in(subscriber)
    assert idle.get("/my/").status_code == 200
    with clock.travel_to(TODAY + dt.timedelta(days=2)):  # idle for more than a day
        assert idle.get("/my/").status_code == 302
