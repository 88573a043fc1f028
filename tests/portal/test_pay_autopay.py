"""Autopay in the portal: saved cards, turning it on only with consent (stored), off, unlinking a card, the history
of debits; another subscriber's card is out of reach."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.payments import actions
from abonent.payments.models import AttemptStatus, AutopayAttempt, AutopayPlan, SavedMethod
from abonent.payments.testing import fake_gateway
from abonent.portal import pay_data

from .conftest import signed_in

D = Decimal
pytestmark = pytest.mark.usefixtures("now")


def link(subscriber, method_id="pm-1", title="Bank card *4444", provider="fakepay"):
    """A card the gateway saved after a payment the subscriber agreed to save (as the checkout links it)."""
    return actions.do_link_method(
        subscriber,
        provider=provider,
        method_id=method_id,
        method_type="bank_card",
        title=title,
        consent_text=pay_data.save_consent_text(subscriber),
        consented_at=clock.now(),
        consent_source="portal",
    )


@pytest.fixture
def fakepay():
    with fake_gateway() as fake:
        yield fake


@pytest.fixture
def card(subscriber):
    return link(subscriber)


def settings_form(method, **changes):
    return {
        "method": method.pk,
        "mode": "day",
        "debit_day": "25",
        "amount_mode": "cover",
        "fixed_amount": "",
        "max_amount": "",
        "consent": "on",
        **changes,
    }


def test_the_page_lists_the_saved_card_masked_and_the_consent_wording(portal_client, card, subscriber):
    page = portal_client.get("/my/pay/autopay/").content.decode()

    assert "Bank card *4444" in page and card.method_id not in page
    assert pay_data.autopay_consent_text(subscriber).split(":")[0] in page
    assert "Autopay is off" in page


def test_autopay_is_not_turned_on_without_consent(portal_client, card):
    response = portal_client.post("/my/pay/autopay/", settings_form(card, consent=""))

    assert response.status_code == 422
    assert "Autopay is turned on only with your consent." in response.content.decode()
    assert AutopayPlan.objects.count() == 0
    assert not AuditEvent.objects.filter(action__startswith="payments.autopay").exists()


def test_autopay_turned_on_with_consent_stores_the_wording_and_the_settings(portal_client, card, subscriber):
    response = portal_client.post("/my/pay/autopay/", settings_form(card, max_amount="1000"))

    assert response.status_code == 302 and response["Location"] == "/my/pay/autopay/"
    plan = AutopayPlan.objects.get(subscriber=subscriber)
    assert (plan.enabled, plan.method_id, plan.mode, plan.debit_day, plan.amount_mode, plan.max_amount) == (
        True, card.pk, "day", 25, "cover", D("1000.00")
    )  # fmt: skip
    consent = AuditEvent.objects.get(action="portal.autopay_consent")
    assert consent.after["consent_text"] == pay_data.autopay_consent_text(subscriber)
    assert consent.after["consent_source"] == "portal" and consent.after["debit_day"] == 25
    assert consent.actor_label == f"subscriber:{subscriber.account_number}" and consent.subscriber_id == subscriber.pk
    page = portal_client.get("/my/pay/autopay/").content.decode()
    assert "Autopay is on" in page and "day 25" in page


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"debit_day": "32"}, "Ensure this value is less than or equal to 31."),
        ({"debit_day": ""}, "Give a day of the month from 1 to 31."),
        ({"amount_mode": "fixed", "fixed_amount": ""}, "Give an amount."),
        ({"amount_mode": "fixed", "fixed_amount": "20000"}, "more than the most autopay may debit at once"),
        ({"mode": "weekly"}, "Select a valid choice."),
    ],
)
def test_bad_settings_are_refused_with_a_message(portal_client, card, changes, message):
    response = portal_client.post("/my/pay/autopay/", settings_form(card, **changes))

    assert response.status_code == 422 and message in response.content.decode()
    assert AutopayPlan.objects.count() == 0


def test_another_subscribers_card_can_be_neither_used_nor_unlinked(portal_client, card, stranger):
    theirs = link(stranger, method_id="pm-theirs", title="Bank card *1111")

    used = portal_client.post("/my/pay/autopay/", settings_form(theirs))
    unlinked = portal_client.post(f"/my/pay/autopay/methods/{theirs.pk}/unlink/")
    looked = portal_client.get(f"/my/pay/autopay/methods/{theirs.pk}/unlink/")

    assert used.status_code == 422 and AutopayPlan.objects.count() == 0
    assert unlinked.status_code == 404 and looked.status_code == 404
    theirs.refresh_from_db()
    assert theirs.active and "Bank card *1111" not in portal_client.get("/my/pay/autopay/").content.decode()


def test_unlinking_the_card_turns_autopay_off(portal_client, card, subscriber):
    portal_client.post("/my/pay/autopay/", settings_form(card))

    assert portal_client.get(f"/my/pay/autopay/methods/{card.pk}/unlink/").status_code == 405
    response = portal_client.post(f"/my/pay/autopay/methods/{card.pk}/unlink/")

    assert response.status_code == 302
    card.refresh_from_db()
    assert not card.active and card.unlink_reason == "unlinked by the subscriber"
    assert not AutopayPlan.objects.get(subscriber=subscriber).enabled
    assert "No saved cards" in portal_client.get("/my/pay/autopay/").content.decode()


def test_turning_autopay_off(portal_client, card, subscriber):
    portal_client.post("/my/pay/autopay/", settings_form(card))

    assert portal_client.get("/my/pay/autopay/off/").status_code == 405
    response = portal_client.post("/my/pay/autopay/off/")

    assert response.status_code == 302
    plan = AutopayPlan.objects.get(subscriber=subscriber)
    assert not plan.enabled and plan.stop_reason == "turned off by the subscriber"
    assert SavedMethod.objects.get(pk=card.pk).active


def test_the_history_shows_each_debit_with_its_amount_and_result(fakepay, subscriber):
    # Given autopay on the 25th, covering the fees: 350 ₽ on the account, December's 650 ₽ due on 1 December.
    client = signed_in(subscriber)
    card = link(subscriber)
    client.post("/my/pay/autopay/", settings_form(card))

    # When the card is short of money on the 25th and the retry next day goes through.
    fakepay.script.append(("declined", "insufficient_funds", True))
    for day in (25, 26):
        with clock.travel_to(dt.datetime(2026, 11, day, 10, tzinfo=dt.UTC)):
            actions.do_run_autopay()
    page = signed_in(subscriber).get("/my/pay/autopay/").content.decode()

    attempts = AutopayAttempt.objects.filter(subscriber_id=subscriber.pk).order_by("number")
    assert [(a.status, a.amount) for a in attempts] == [
        (AttemptStatus.DECLINED, D("300.00")),
        (AttemptStatus.SUCCEEDED, D("300.00")),
    ]
    assert get_balance(subscriber).balance == D("650.00")
    assert page.count('data-testid="autopay-attempt"') == 2 and "Succeeded" in page
    assert "Declined: There was not enough money on the card or account." in page
