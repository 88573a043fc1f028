# ruff: noqa: F811 - the fixtures of test_card are imported by name
"""Attack review of the card's freeze / promised-payment previews and the plan-change downgrade rule
(abonent/billing/offers.py, views.py, forms.PlanChangeForm).

FAILING on h-card (defect): test_freeze_preview_after_a_missed_run_shows_what_the_freeze_does.
The rest are defences that hold."""

import re
from decimal import Decimal

import pytest

from abonent.billing.models import Subscription, SubscriptionStatus
from abonent.billing.testing import balance

from .test_card import DEC_16, HTMX, NOV_16, home, plans, url, written  # noqa: F401 - fixtures

D = Decimal
pytestmark = pytest.mark.django_db


def amount(text: str, name: str) -> Decimal:
    raw = re.search(rf'data-amount="{name}">([^<]*)</td>', text).group(1)
    return D(re.sub(r"[^\d.,-]", "", raw).replace(",", "."))


@pytest.mark.xfail(
    strict=True,
    reason="known (issue 17 note): the freeze preview does not include the catch-up of a missed billing run that "
    "do_freeze_subscription charges first, so after a missed run the preview can offer a freeze the action refuses",
)
def test_freeze_preview_after_a_missed_run_shows_what_the_freeze_does(operator_client, subscriber, home, on):
    """FAILS: no billing run since November. do_freeze_subscription first catches up December's period
    (_catch_up) and credits its unused part; offers.freeze_preview does neither, so the preview's credit and
    "balance after" are not what the confirmed freeze leaves on the account."""
    with on(DEC_16):
        preview = operator_client.get(
            url(subscriber, f"subscriptions/{home.pk}/freeze/preview/"), {"days": "10"}, headers=HTMX
        )
        assert preview.status_code == 200  # the preview offers the freeze: fee 30.00, balance after 645.00
        shown = amount(preview.content.decode(), "balance-after")
        response = operator_client.post(
            url(subscriber, f"subscriptions/{home.pk}/freeze/"), {"days": "10"}, headers=HTMX
        )
    # The action catches up December (-650) first and then refuses the fee it previewed as payable (422).
    assert response.status_code == 200, "the freeze the preview offered is refused by the action"
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
