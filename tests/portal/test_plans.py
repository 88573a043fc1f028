"""/my/plan/: the plans offered (switchable_to, public, nothing else), the preview's exact amounts, and a change
that charges what the preview showed or nothing at all."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.test import Client

from abonent.billing import actions as billing
from abonent.billing.models import Charge, ChargeKind, Subscription, SubscriptionEvent, SubscriptionEventKind
from abonent.billing.selectors import get_balance
from abonent.catalog import actions as catalog
from abonent.core import clock
from abonent.core.models import AuditEvent

from .conftest import TODAY, signed_in

# --- helpers shared with the services' tests --------------------------------------------------------------


class _Forms(HTMLParser):
    """The fields of each POST form of a page, by its action, as a browser would send them."""

    def __init__(self):
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self._current: dict[str, str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("method") == "post":
            self._current = self.forms.setdefault(attrs["action"], {})
        elif tag == "input" and self._current is not None and attrs.get("name"):
            self._current[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def posted_form(response, action: str) -> dict[str, str]:
    """What submitting the page's form to ``action`` sends (its hidden fields with their values)."""
    parser = _Forms()
    parser.feed(response.content.decode())
    assert action in parser.forms, f"no form posting to {action}: {sorted(parser.forms)}"
    return parser.forms[action]


def amount(response, name: str) -> str:
    """The text of the element marked ``data-amount="name"``."""
    match = re.search(rf'data-amount="{name}"[^>]*>([^<]*)<', response.content.decode())
    assert match, f"no amount {name}"
    return match.group(1).replace("\u00a0", " ").strip()


def charges_of(subscription, *kinds):
    return list(Charge.objects.filter(subscription=subscription, kind__in=kinds).values_list("kind", "amount"))


def events_of(subscription, kind):
    return SubscriptionEvent.objects.filter(subscription=subscription, kind=kind).count()


@pytest.fixture
def subscription(subscriber):
    return Subscription.objects.get(subscriber=subscriber)


def change_url(subscription, plan) -> str:
    return f"/my/plan/{subscription.pk}/change/{plan.pk}/"


# --- the page ---------------------------------------------------------------------------------------------


def test_the_page_shows_the_plan_and_the_public_plans_offered(portal_client, portal_plans, now):
    page = portal_client.get("/my/plan/").content.decode()
    assert "Интернет-100" in page and "100 Mbit/s" in page and "650.00\u00a0₽ a month" in page
    assert "Игровой" in page and "500 Mbit/s" in page and "900.00\u00a0₽ a month" in page
    assert "Домашний" in page and "400.00\u00a0₽ a month" in page
    assert "Корпоративный" not in page


def test_a_hidden_archived_or_other_service_plan_is_never_offered(
    portal_client, subscription, portal_plans, make_plan, admin, now
):
    # Given plans ticked in switchable_to that the portal must not offer: not public, archived, another service.
    tv = catalog.do_create_service(code="tv", name="ТВ", kind="iptv", acting_user=admin)
    archived = make_plan("old", "700.00", name="Архивный", is_archived=True)
    other_service = make_plan("tv-basic", "300.00", name="ТВ базовый", service=tv)
    portal_plans["home"].switchable_to.add(portal_plans["hidden"], archived, other_service)
    page = portal_client.get("/my/plan/").content.decode()
    for plan in (portal_plans["hidden"], archived, other_service):
        assert plan.name not in page
        # When the subscriber goes for them by id anyway
        assert portal_client.get(change_url(subscription, plan)).status_code == 404
        response = portal_client.post(change_url(subscription, plan), {"immediate": "1"})
        # Then: not found, and nothing written
        assert response.status_code == 404
    assert portal_client.get(f"/my/plan/{subscription.pk}/change/999999/").status_code == 404
    subscription.refresh_from_db()
    assert subscription.plan == portal_plans["home"] and subscription.pending_plan is None
    assert charges_of(subscription, ChargeKind.PRORATION_CHARGE, ChargeKind.PRORATION_CREDIT) == []


# --- an upgrade -------------------------------------------------------------------------------------------


def test_the_seed_upgrade_charges_exactly_the_preview(portal_client, subscriber, subscription, portal_plans, now):
    # Given "Интернет-100" 650 ₽ paid for November and 350 ₽ left, on 20 November
    preview = portal_client.get(change_url(subscription, portal_plans["gamer"]))
    assert preview.status_code == 200
    # 11 days of 30 unused: 650 × 11/30 = 238.33 back; 900 × 11/30 = 330.00 for "Игровой" to 30 November.
    assert amount(preview, "credit") == "+238.33 ₽"
    assert amount(preview, "charge") == "−330.00 ₽"
    assert amount(preview, "net") == "−91.67 ₽"
    assert amount(preview, "balance-before") == "350.00 ₽"
    assert amount(preview, "balance-after") == "258.33 ₽"
    assert "Nov. 30, 2026" in preview.content.decode()
    # When the subscriber confirms the form the page showed
    action = change_url(subscription, portal_plans["gamer"])
    response = portal_client.post(action, posted_form(preview, action))
    # Then the plan is "Игровой" and the ledger moved by exactly the net
    assert response.status_code == 302 and response["Location"] == "/my/plan/"
    subscription.refresh_from_db()
    assert subscription.plan == portal_plans["gamer"]
    assert sorted(charges_of(subscription, ChargeKind.PRORATION_CHARGE, ChargeKind.PRORATION_CREDIT)) == [
        (ChargeKind.PRORATION_CHARGE, Decimal("330.00")),
        (ChargeKind.PRORATION_CREDIT, Decimal("-238.33")),
    ]
    assert get_balance(subscriber).balance == Decimal("258.33")
    audit = AuditEvent.objects.get(action="billing.plan_changed", subscriber_id=subscriber.pk)
    assert audit.actor_label == f"subscriber:{subscriber.account_number}" and audit.actor is None


def test_a_double_confirm_changes_the_plan_once(portal_client, subscriber, subscription, portal_plans, now):
    action = change_url(subscription, portal_plans["gamer"])
    form = posted_form(portal_client.get(action), action)
    assert portal_client.post(action, form).status_code == 302
    second = portal_client.post(action, form, follow=True)
    assert second.status_code == 200
    assert "You are on Игровой now." in second.content.decode()
    assert events_of(subscription, SubscriptionEventKind.PLAN_CHANGED) == 1
    assert len(charges_of(subscription, ChargeKind.PRORATION_CHARGE)) == 1
    assert get_balance(subscriber).balance == Decimal("258.33")


def test_a_day_later_the_old_amounts_are_refused_and_the_new_ones_shown(
    portal_client, subscriber, subscription, portal_plans, now
):
    action = change_url(subscription, portal_plans["gamer"])
    form = posted_form(portal_client.get(action), action)
    # When the subscriber confirms the next day (one day fewer to credit and to charge)
    with clock.travel_to(TODAY + dt.timedelta(days=1)):
        refused = portal_client.post(action, form)
        # Then nothing is charged and the page shows the amounts of today: 10 days of 30
        assert refused.status_code == 409
        assert "The amounts have changed" in refused.content.decode()
        subscription.refresh_from_db()
        assert subscription.plan == portal_plans["home"]
        assert charges_of(subscription, ChargeKind.PRORATION_CHARGE, ChargeKind.PRORATION_CREDIT) == []
        assert get_balance(subscriber).balance == Decimal("350.00")
        assert AuditEvent.objects.filter(action="billing.plan_changed").count() == 0
        assert amount(refused, "credit") == "+216.67 ₽" and amount(refused, "charge") == "−300.00 ₽"
        # And confirming what is shown now charges exactly that
        assert portal_client.post(action, posted_form(refused, action)).status_code == 302
    assert get_balance(subscriber).balance == Decimal("350.00") + Decimal("216.67") - Decimal("300.00")


def test_a_payment_between_preview_and_confirm_shows_the_new_balance_first(
    portal_client, subscriber, subscription, portal_plans, now
):
    action = change_url(subscription, portal_plans["gamer"])
    form = posted_form(portal_client.get(action), action)
    billing.do_post_payment(subscriber, amount="100.00", channel="test", external_id="between")
    refused = portal_client.post(action, form)
    assert refused.status_code == 409
    assert amount(refused, "balance-after") == "358.33 ₽"
    assert get_balance(subscriber).balance == Decimal("450.00")
    assert Subscription.objects.get(pk=subscription.pk).plan == portal_plans["home"]


def test_a_tampered_form_charges_nothing(portal_client, subscriber, subscription, portal_plans, now):
    action = change_url(subscription, portal_plans["gamer"])
    form = posted_form(portal_client.get(action), action)
    for field, value in (("charge", "1.00"), ("credit", "900.00"), ("charge", "abc"), ("immediate", "maybe")):
        response = portal_client.post(action, {**form, field: value})
        assert response.status_code == 409
    assert Subscription.objects.get(pk=subscription.pk).plan == portal_plans["home"]
    assert get_balance(subscriber).balance == Decimal("350.00")
    assert charges_of(subscription, ChargeKind.PRORATION_CHARGE, ChargeKind.PRORATION_CREDIT) == []


# --- a downgrade ------------------------------------------------------------------------------------------


def test_a_downgrade_is_scheduled_without_a_charge_and_cancelled(
    portal_client, subscriber, subscription, portal_plans, now
):
    action = change_url(subscription, portal_plans["cheap"])
    preview = portal_client.get(action)
    assert "From Dec. 1, 2026, no charge now." in preview.content.decode()
    # When confirmed twice (a double submit)
    form = posted_form(preview, action)
    assert portal_client.post(action, form).status_code == 302
    assert portal_client.post(action, form).status_code == 302
    # Then it is scheduled once, nothing charged
    subscription.refresh_from_db()
    assert (subscription.plan, subscription.pending_plan) == (portal_plans["home"], portal_plans["cheap"])
    assert subscription.pending_plan_from == dt.date(2026, 12, 1)
    assert events_of(subscription, SubscriptionEventKind.DOWNGRADE_SCHEDULED) == 1
    assert get_balance(subscriber).balance == Decimal("350.00")
    page = portal_client.get("/my/plan/")
    assert "From Dec. 1, 2026: Домашний." in page.content.decode()
    # When the subscriber cancels it (twice)
    cancel = f"/my/plan/{subscription.pk}/cancel-pending/"
    assert cancel in posted_form_actions(page)
    assert portal_client.post(cancel).status_code == 302
    again = portal_client.post(cancel, follow=True)
    assert "No plan change is scheduled." in again.content.decode()
    subscription.refresh_from_db()
    assert subscription.pending_plan is None and subscription.plan == portal_plans["home"]
    assert AuditEvent.objects.filter(action="billing.plan_change_cancelled").count() == 1


def posted_form_actions(response) -> list[str]:
    parser = _Forms()
    parser.feed(response.content.decode())
    return list(parser.forms)


# --- the attacker and the clumsy ------------------------------------------------------------------------


def test_the_strangers_subscription_is_not_found_and_untouched(
    portal_client, stranger, portal_plans, subscription, now
):
    theirs = Subscription.objects.get(subscriber=stranger)
    billing.do_change_plan(theirs, plan=portal_plans["cheap"], acting_user=None, channel="portal")  # a downgrade
    for plan in ("home", "cheap"):
        assert portal_client.get(change_url(theirs, portal_plans[plan])).status_code == 404
        assert portal_client.post(change_url(theirs, portal_plans[plan]), {"immediate": "1"}).status_code == 404
    assert portal_client.post(f"/my/plan/{theirs.pk}/cancel-pending/").status_code == 404
    theirs.refresh_from_db()
    assert (theirs.plan, theirs.pending_plan) == (portal_plans["gamer"], portal_plans["cheap"])
    assert get_balance(stranger).balance == Decimal("100.00")


def test_a_frozen_subscription_is_told_to_unfreeze_first(portal_client, subscriber, subscription, portal_plans, now):
    billing.do_freeze_subscription(subscription, days=7, acting_user=None)
    page = portal_client.get("/my/plan/").content.decode()
    assert "Frozen: the plan cannot be changed until the freeze ends." in page
    assert change_url(subscription, portal_plans["gamer"]) not in page
    response = portal_client.get(change_url(subscription, portal_plans["gamer"]))
    assert response.status_code == 422
    assert "Only an active subscription can change its plan." in response.content.decode()


def test_an_expired_session_changes_nothing(subscriber, subscription, portal_plans, settings):
    settings.ABONENT_PORTAL_SESSION_IDLE_SECONDS = 600
    with clock.travel_to(TODAY):
        client = signed_in(subscriber)
        action = change_url(subscription, portal_plans["gamer"])
        form = posted_form(client.get(action), action)
    with clock.travel_to(TODAY + dt.timedelta(minutes=11)):
        response = client.post(action, form)
    assert response.status_code == 302 and response["Location"].startswith("/my/login/")
    assert Subscription.objects.get(pk=subscription.pk).plan == portal_plans["home"]
    assert Client().get("/my/plan/").status_code == 302
