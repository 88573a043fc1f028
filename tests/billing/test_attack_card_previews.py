# ruff: noqa: F811 - the fixtures of test_card are imported by name
"""Attack review of the card's freeze / promised-payment previews and the plan-change downgrade rule
(abonent/billing/offers.py, views.py, forms.PlanChangeForm).

The freeze preview behind a missed billing run (the two ``..._after_a_missed_run_...`` tests) failed on the
code attacked: it did not do the catch-up the action charges first. The rest are defences that held."""

import re
from decimal import Decimal

import pytest

from abonent.billing import actions
from abonent.billing.models import Subscription, SubscriptionStatus
from abonent.billing.testing import balance

from .test_card import DEC_16, HTMX, NOV_16, home, plans, url, written  # noqa: F401 - fixtures

D = Decimal
pytestmark = pytest.mark.django_db


def amount(text: str, name: str) -> Decimal:
    raw = re.search(rf'data-amount="{name}">([^<]*)</td>', text).group(1)
    return D(re.sub(r"[^\d.-]", "", raw))  # English: "1,350.00 ₽"


def test_freeze_preview_after_a_missed_run_refuses_as_the_action_does(operator_client, subscriber, home, on):
    """No billing run since November: do_freeze_subscription first charges December (650.00 of the 350.00 left),
    then refuses the fee. The preview did not catch up, and offered the freeze the action refused."""
    freeze_url = url(subscriber, f"subscriptions/{home.pk}/freeze/")
    with on(DEC_16):
        before = written()
        preview = operator_client.get(f"{freeze_url}preview/", {"days": "10"}, headers=HTMX)
        assert written() == before  # the preview's catch-up was rolled back
        response = operator_client.post(freeze_url, {"days": "10"}, headers=HTMX)

    assert (preview.status_code, response.status_code) == (422, 422)
    refusal = re.search(r'role="alert">\s*<div>([^<]+)</div>', preview.content.decode()).group(1)
    assert refusal in response.content.decode()
    assert Subscription.objects.get(pk=home.pk).status == SubscriptionStatus.ACTIVE


def test_freeze_preview_after_a_missed_run_shows_the_catch_up_it_charges_first(operator_client, subscriber, home, on):
    with on(NOV_16):
        actions.do_post_payment(subscriber, amount=D("1000.00"), channel="cash", external_id="c-2")
    freeze_url = url(subscriber, f"subscriptions/{home.pk}/freeze/")
    with on(DEC_16):
        before = written()
        text = operator_client.get(f"{freeze_url}preview/", {"days": "10"}, headers=HTMX).content.decode()
        assert written() == before
        assert amount(text, "catch-up") == D("-650.00")  # December, which the missed run did not charge
        assert amount(text, "balance-before") == balance(subscriber) == D("1350.00")
        shown = amount(text, "balance-after")
        response = operator_client.post(freeze_url, {"days": "10"}, headers=HTMX)

    assert response.status_code == 200
    assert Subscription.objects.get(pk=home.pk).status == SubscriptionStatus.FROZEN
    assert balance(subscriber) == shown


def test_freeze_preview_matches_the_freeze_in_a_billed_period(operator_client, subscriber, home, on):
    with on(NOV_16):
        text = operator_client.get(
            url(subscriber, f"subscriptions/{home.pk}/freeze/preview/"), {"days": "17"}, headers=HTMX
        ).content.decode()
        shown = amount(text, "balance-after")
        operator_client.post(url(subscriber, f"subscriptions/{home.pk}/freeze/"), {"days": "17"}, headers=HTMX)
    assert balance(subscriber) == shown


def test_downgrade_flag_sent_with_an_upgrade_changes_now_and_credits_nothing_odd(
    operator_client, subscriber, home, plans, on
):
    with on(NOV_16):
        response = operator_client.post(
            url(subscriber, f"subscriptions/{home.pk}/plan-change/"), {"plan": plans[1].pk, "force": "on"}, headers=HTMX
        )
    assert response.status_code == 200
    # 650 → 900 from 16 November: 15/30 of the difference charged now, nothing scheduled.
    home.refresh_from_db()
    assert home.plan_id == plans[1].pk  # now, not scheduled for the next period
    assert balance(subscriber) < D("350.00")


@pytest.mark.parametrize("days", ["-5", "1e3", "7.5", "\x00", "9" * 5000])
def test_freeze_preview_with_absurd_days_is_422_and_writes_nothing(operator_client, subscriber, home, on, days):
    with on(NOV_16):
        before = written()
        response = operator_client.get(
            url(subscriber, f"subscriptions/{home.pk}/freeze/preview/"), {"days": days}, headers=HTMX
        )
    assert response.status_code in (400, 422) and written() == before


@pytest.mark.parametrize("amount_", ["-100", "NaN", "Infinity", "1e400", "0.001", "9" * 5000])
def test_promised_preview_with_absurd_amounts_is_422(operator_client, subscriber, home, on, amount_):
    with on(NOV_16):
        before = written()
        response = operator_client.get(url(subscriber, "promised-payments/preview/"), {"amount": amount_}, headers=HTMX)
    assert response.status_code in (400, 422) and written() == before


def test_preview_of_another_branchs_subscription_is_404(make_staff, other_branch, subscriber, home, on):
    from django.test import Client

    from abonent.staff.permissions import Role

    client = Client()
    client.force_login(make_staff(Role.OPERATOR, branches=[other_branch]))
    with on(NOV_16):
        response = client.get(url(subscriber, f"subscriptions/{home.pk}/freeze/preview/"), {"days": "10"})
    assert response.status_code == 404
