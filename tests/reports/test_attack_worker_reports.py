"""Attack review of the worker-computed reports: results kept in the worker's language, unbounded computations, an
export before the first result, the forecast's freezes under the wrong plan, the debtors chart ignoring the filters."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from abonent.billing import actions
from abonent.catalog.models import FreezePolicy
from abonent.core import clock
from abonent.reports.pages import ReportFilterForm, get_report
from abonent.reports.results import do_compute_report

D = Decimal


def client_for(user, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def compute(user, slug: str, **params) -> list[dict]:
    form = ReportFilterForm(params, user=user, report=get_report(slug))
    assert form.is_valid(), form.errors
    return do_compute_report(slug, form.query().as_params()).rows


# --- the forecast's freezes -------------------------------------------------------------------------------------


@pytest.fixture
def downgrade_and_freeze(make_plan, make_subscriber, admin):
    """Харитонов on Игровой (900 ₽) asks on 25 November for Домашний (500 ₽), which takes effect on 1 December (a
    downgrade waits for the next period), and freezes from that day to 11 December (10 days of December)."""
    policy = FreezePolicy.objects.create(name="free", min_days=1, max_days=60)
    home = make_plan("home", "500.00", name="Домашний", freeze_policy=policy)
    gamer = make_plan("gamer", "900.00", name="Игровой", freeze_policy=policy)
    person = make_subscriber(last_name="Харитонов", phone="+79160000041")
    with clock.travel_to(dt.date(2026, 11, 1)):
        subscription = actions.do_activate_subscription(person, plan=gamer, acting_user=admin)
    with clock.travel_to(dt.date(2026, 11, 25)):
        actions.do_change_plan(subscription, plan=home, acting_user=admin)
        actions.do_freeze_subscription(subscription, days=16, acting_user=admin)
    subscription.refresh_from_db()
    assert subscription.pending_plan_id == home.pk and subscription.pending_plan_from == dt.date(2026, 12, 1)
    return {"home": home, "gamer": gamer}


@pytest.mark.django_db
def test_forecast_takes_the_freeze_off_the_plan_of_next_month(downgrade_and_freeze, admin):
    plans = downgrade_and_freeze
    with clock.travel_to(dt.date(2026, 11, 25)):
        whole = compute(admin, "forecast", period="last_month")[-1]
        home = compute(admin, "forecast", period="last_month", plan=str(plans["home"].pk))[-1]
        gamer = compute(admin, "forecast", period="last_month", plan=str(plans["gamer"].pk))[-1]
    # December on Домашний: 500 − 500 × 10 / 31 = 338.71 (not 500 − 900 × 10 / 31 = 209.68).
    assert whole["amount"] == {"n": "338.71"} and whole["subscriptions"] == 1
    assert home["amount"] == {"n": "338.71"} and home["subscriptions"] == 1
    # Nobody will be on Игровой in December: nothing, not −290.32.
    assert gamer["amount"] == {"n": "0.00"} and gamer["subscriptions"] == 0
