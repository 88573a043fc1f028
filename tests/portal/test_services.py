"""/my/services/: a freeze, a promised payment and a turbo, each with its terms and amounts shown first and
charged as shown; a refusal in billing's words; another subscriber's ids are 404."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from abonent.billing import actions as billing
from abonent.billing.models import (
    Charge,
    ChargeKind,
    Freeze,
    PromisedPayment,
    Subscription,
    SubscriptionStatus,
    TurboActivation,
    TurboStatus,
)
from abonent.billing.selectors import get_balance
from abonent.catalog import actions as catalog
from abonent.catalog.models import FreezePolicy, PromisedPaymentPolicy
from abonent.core import clock
from abonent.portal import services_data

from .conftest import TODAY
from .test_plans import amount, posted_form


def sell_turbo(admin, plan):
    """The option "Турбо 500": 500/250 Mbit/s for 3 hours at 50 ₽, sold with ``plan``."""
    option = catalog.do_create_turbo(
        code="turbo-500", name="Турбо 500", download_kbps=500_000, upload_kbps=250_000, hours=3, price="50.00",
        acting_user=admin,
    )  # fmt: skip
    plan.turbos.add(option)
    return option


@pytest.fixture
def turbo(admin, portal_plans):
    return sell_turbo(admin, portal_plans["home"])


@pytest.fixture
def subscription(subscriber):
    return Subscription.objects.get(subscriber=subscriber)


def freeze_url(subscription, days=None) -> str:
    return f"/my/services/{subscription.pk}/freeze/" + (f"?days={days}" if days else "")


def _freeze_fees(subscription):
    return list(
        Charge.objects.filter(subscription=subscription, kind=ChargeKind.FREEZE_FEE).values_list("amount", flat=True)
    )


# --- freeze -----------------------------------------------------------------------------------------------


def test_the_freeze_policy_is_shown_first(portal_client, subscription, now):
    page = portal_client.get("/my/services/")
    text = page.content.decode()
    assert "from 7 to 90 days" in text and "3.00\u00a0₽" in text
    assert amount(page, "days-left") == "90"
    assert f'action="{freeze_url(subscription)}"' in text


def test_the_freeze_fee_shown_is_the_fee_charged(portal_client, subscriber, subscription, now):
    # 14 days at 3 ₽ = 42 ₽; the unused 11 days of November's 650 ₽ (238.33) come back
    preview = portal_client.get(freeze_url(subscription, 14))
    assert preview.status_code == 200
    assert amount(preview, "fee") == "−42.00 ₽" and amount(preview, "credit") == "+238.33 ₽"
    assert amount(preview, "balance-after") == "546.33 ₽"
    assert 'data-testid="freeze-resumes">Dec. 4, 2026<' in preview.content.decode()
    form = posted_form(preview, freeze_url(subscription))
    # When confirmed twice (a double submit)
    assert portal_client.post(freeze_url(subscription), form).status_code == 302
    second = portal_client.post(freeze_url(subscription), form)
    assert second.status_code == 302
    # Then one freeze, its fee as shown, the balance as shown
    assert Freeze.objects.filter(subscription=subscription).count() == 1
    assert _freeze_fees(subscription) == [Decimal("42.00")]
    assert get_balance(subscriber).balance == Decimal("546.33")
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.FROZEN


def test_a_freeze_fee_changed_since_the_preview_charges_nothing(portal_client, subscriber, subscription, now):
    preview = portal_client.get(freeze_url(subscription, 14))
    FreezePolicy.objects.filter(name="Каникулы").update(fee_per_day=Decimal("5.00"))  # the operator, meanwhile
    refused = portal_client.post(freeze_url(subscription), posted_form(preview, freeze_url(subscription)))
    assert refused.status_code == 409
    assert amount(refused, "fee") == "−70.00 ₽"
    assert not Freeze.objects.filter(subscription=subscription).exists()
    assert _freeze_fees(subscription) == [] and get_balance(subscriber).balance == Decimal("350.00")


@pytest.mark.parametrize(
    ("days", "message"),
    [
        ("3", "A freeze lasts from 7 to 90 days."),
        ("91", "A freeze lasts from 7 to 90 days."),
        ("abc", "Enter a whole number."),
        ("99999999999999999999", "Ensure this value is less than or equal to 366."),
    ],
)
def test_freeze_days_out_of_the_policy_are_refused_with_its_words(portal_client, subscription, now, days, message):
    response = portal_client.get(f"{freeze_url(subscription)}?days={days}")
    assert response.status_code == 422
    assert message in response.content.decode()
    assert 'data-testid="confirm-freeze"' not in response.content.decode()


def test_the_yearly_quota_is_counted(portal_client, subscription, now):
    FreezePolicy.objects.filter(name="Каникулы").update(yearly_quota_days=20)
    response = portal_client.get(freeze_url(subscription, 21))
    assert response.status_code == 422
    assert "Only 20 freeze days are left this year." in response.content.decode()


def test_unfreeze_gives_back_and_charges_what_it_showed(portal_client, subscriber, subscription, now):
    billing.do_freeze_subscription(subscription, days=14, acting_user=None)  # 350 − 42 + 238.33 = 546.33
    with clock.travel_to(TODAY + dt.timedelta(days=3)):  # 23 November: 3 days used, the minimum 7 paid
        page = portal_client.get("/my/services/")
        # 14 − 7 days given back (21.00); November's last 8 days charged again: 650 × 8/30 = 173.33
        assert amount(page, "refund") == "+21.00 ₽" and amount(page, "unfreeze-charge") == "−173.33 ₽"
        assert amount(page, "balance-after") == "394.00 ₽"
        url = f"/my/services/{subscription.pk}/unfreeze/"
        form = posted_form(page, url)
        assert portal_client.post(url, form).status_code == 302
        again = portal_client.post(url, form, follow=True)
        assert "The subscription is not frozen." in again.content.decode()
    assert get_balance(subscriber).balance == Decimal("394.00")
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.ACTIVE


# --- promised payment -------------------------------------------------------------------------------------


def test_a_promised_payment_with_its_policy_shown_first(portal_client, subscriber, now):
    page = portal_client.get("/my/services/")
    assert amount(page, "promised-max") == "500.00 ₽"
    assert "once a calendar month" in page.content.decode()
    form = posted_form(page, "/my/services/promised/")
    response = portal_client.post("/my/services/promised/", {**form, "amount": "300"}, follow=True)
    assert "Promised payment of 300.00\u00a0₽ until 11/23/2026 inclusive." in response.content.decode()
    assert get_balance(subscriber).balance == Decimal("650.00")
    # A double submit takes nothing more, and says why
    again = portal_client.post("/my/services/promised/", {**form, "amount": "300"}, follow=True)
    assert "A promised payment is already open." in again.content.decode()
    assert PromisedPayment.objects.filter(subscriber=subscriber).count() == 1


def test_a_promised_payment_the_policy_forbids_shows_why_and_takes_nothing(portal_client, subscriber, now):
    # Given one taken and repaid this month (once a month)
    billing.do_take_promised_payment(subscriber, acting_user=None, amount="100.00")
    billing.do_post_payment(subscriber, amount="200.00", channel="test", external_id="repay")
    page = portal_client.get("/my/services/")
    assert "Not available now: A promised payment can be taken once a month." in page.content.decode()
    assert "/my/services/promised/" not in page.content.decode()
    response = portal_client.post("/my/services/promised/", {"amount": "100", "fee": "0.00"})
    assert response.status_code == 422
    assert "A promised payment can be taken once a month." in response.content.decode()
    assert PromisedPayment.objects.filter(subscriber=subscriber).count() == 1
    assert get_balance(subscriber).balance == Decimal("550.00")


def test_the_debt_refusal_is_billings_own_words(subscriber, now):
    billing.do_adjust_balance(subscriber, amount="-400.00", reason="test", acting_user=None)  # −50.00
    offer = services_data.promised_offer(subscriber)
    with pytest.raises(ValidationError) as refused:
        billing.do_take_promised_payment(subscriber, acting_user=None, amount="100.00")
    assert offer.refusal == refused.value.messages[0]
    assert offer.refusal == "The debt of 50.00\u00a0₽ is too large for a promised payment (at most 0.00\u00a0₽)."


def test_a_promised_payment_over_the_policy_or_absurd_is_refused(portal_client, subscriber, now):
    for value, message in (("501", "A promised payment is at most 500.00"), ("-5", "greater than or equal to 0")):
        response = portal_client.post("/my/services/promised/", {"amount": value, "fee": "0.00"})
        assert response.status_code == 422
        assert message in response.content.decode()
    assert not PromisedPayment.objects.filter(subscriber=subscriber).exists()


def test_a_promised_fee_changed_since_the_page_takes_nothing(portal_client, subscriber, now):
    PromisedPaymentPolicy.objects.filter(name="3 дня").update(fee=Decimal("10.00"))
    response = portal_client.post("/my/services/promised/", {"amount": "100", "fee": "0.00"})
    assert response.status_code == 409
    assert not PromisedPayment.objects.filter(subscriber=subscriber).exists()
    assert get_balance(subscriber).balance == Decimal("350.00")


# --- turbo ------------------------------------------------------------------------------------------------


def test_a_turbo_bought_once_with_a_double_submit(portal_client, subscriber, subscription, turbo, now):
    page = portal_client.get("/my/services/").content.decode()
    assert "Турбо 500" in page and "500/250 Mbit/s" in page and "for 3 hours" in page and "50.00\u00a0₽" in page
    url = f"/my/services/{subscription.pk}/turbo/{turbo.pk}/"
    preview = portal_client.get(url)
    assert amount(preview, "price") == "−50.00 ₽" and amount(preview, "balance-after") == "300.00 ₽"
    form = posted_form(preview, url)
    assert portal_client.post(url, form).status_code == 302
    second = portal_client.post(url, form, follow=True)
    assert "A turbo is already on" in second.content.decode()
    assert TurboActivation.objects.filter(subscription=subscription).count() == 1
    assert list(Charge.objects.filter(kind=ChargeKind.TURBO).values_list("amount", flat=True)) == [Decimal("50.00")]
    assert get_balance(subscriber).balance == Decimal("300.00")
    # It can be ended early; nothing is refunded
    page = portal_client.get("/my/services/").content.decode()
    assert "is on until" in page
    end = f"/my/services/{subscription.pk}/turbo/end/"
    assert portal_client.post(end).status_code == 302
    assert TurboActivation.objects.get(subscription=subscription).status == TurboStatus.ENDED_EARLY
    assert get_balance(subscriber).balance == Decimal("300.00")


def test_a_turbo_price_changed_since_the_preview_charges_nothing(
    portal_client, subscriber, subscription, turbo, admin, now
):
    url = f"/my/services/{subscription.pk}/turbo/{turbo.pk}/"
    form = posted_form(portal_client.get(url), url)
    catalog.do_update_turbo(turbo, price="80.00", acting_user=admin)
    refused = portal_client.post(url, form)
    assert refused.status_code == 409 and amount(refused, "price") == "−80.00 ₽"
    assert not TurboActivation.objects.filter(subscription=subscription).exists()
    assert get_balance(subscriber).balance == Decimal("350.00")


def test_a_turbo_the_plan_does_not_sell_is_404(portal_client, subscription, admin, now):
    other = catalog.do_create_turbo(
        code="t2", name="Другой", download_kbps=1000, upload_kbps=1000, hours=1, price="1.00", acting_user=admin
    )
    url = f"/my/services/{subscription.pk}/turbo/{other.pk}/"
    assert portal_client.get(url).status_code == 404
    assert portal_client.post(url, {"price": "1.00"}).status_code == 404
    assert not TurboActivation.objects.exists()


# --- the attacker -----------------------------------------------------------------------------------------


def test_the_strangers_subscription_is_404_for_every_service(portal_client, stranger, portal_plans, turbo, now):
    portal_plans["gamer"].turbos.add(turbo)
    theirs = Subscription.objects.get(subscriber=stranger)
    before = get_balance(stranger).balance
    assert portal_client.get(freeze_url(theirs, 14)).status_code == 404
    assert portal_client.post(freeze_url(theirs), {"days": "14", "fee": "42.00"}).status_code == 404
    assert portal_client.post(f"/my/services/{theirs.pk}/unfreeze/").status_code == 404
    assert portal_client.get(f"/my/services/{theirs.pk}/turbo/{turbo.pk}/").status_code == 404
    assert portal_client.post(f"/my/services/{theirs.pk}/turbo/{turbo.pk}/", {"price": "50.00"}).status_code == 404
    assert portal_client.post(f"/my/services/{theirs.pk}/turbo/end/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == SubscriptionStatus.ACTIVE and get_balance(stranger).balance == before
    assert not TurboActivation.objects.exists() and not Freeze.objects.exists()
