"""Bonuses through the pages and the API: the portal's page, ``/api/v1/my/bonuses`` and its spend, the console's
rules and the card panel."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from django.test import Client
from django.urls import reverse

from abonent.bonuses import selectors
from abonent.bonuses.models import BonusEntry, EntryKind
from abonent.portal.models import SessionKind
from abonent.portal.sessions import COOKIE, open_session
from abonent.staff.permissions import Role
from abonent.vouchers.testing import balance

NOV_1_NOON = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)


def signed_in(subscriber) -> Client:
    _session, secret = open_session(subscriber, kind=SessionKind.WEB)
    client = Client()
    client.cookies[COOKIE] = secret
    return client


def app_of(subscriber) -> Client:
    _session, token = open_session(subscriber, kind=SessionKind.API)
    return Client(headers={"Authorization": f"Bearer {token}"})


def _with_points(rules, pay, make_subscriber, amount="40.00"):
    rules(on_time_enabled=True, on_time_points=Decimal(amount), referral_enabled=True, referral_percent=Decimal("5"))
    subscriber = make_subscriber()
    pay(subscriber, "100.00", on=NOV_1_NOON.date(), ref="seed")
    return subscriber


def test_the_portal_page_shows_points_and_spends_them_once(rules, pay, make_subscriber):
    subscriber = _with_points(rules, pay, make_subscriber)
    client = signed_in(subscriber)
    page = client.get(reverse("portal:bonuses"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="bonus-points">40.00<' in html
    assert selectors.referral_code_of(subscriber.pk) in html
    for _ in range(2):  # the same form sent twice
        client.post(reverse("portal:bonuses"), {"points": "15", "key": "a" * 24})
    assert selectors.balance_of(subscriber.pk) == Decimal("25.00")
    assert balance(subscriber) == Decimal("115.00")
    too_much = client.post(reverse("portal:bonuses"), {"points": "26", "key": "b" * 24})
    assert too_much.status_code == 422
    assert selectors.balance_of(subscriber.pk) == Decimal("25.00")


def test_the_api_spends_once_per_key_and_requires_one(rules, pay, make_subscriber):
    subscriber = _with_points(rules, pay, make_subscriber)
    app = app_of(subscriber)
    state = app.get("/api/v1/my/bonuses").json()
    assert state["points"] == "40.00" and state["history"][0]["kind"] == "on_time"

    def spend(points, key):
        headers = {"Idempotency-Key": key} if key else {}
        return app.post("/api/v1/my/bonuses/spend", json.dumps({"points": points}), content_type="application/json",
                        headers=headers)  # fmt: skip

    assert spend("10.00", None).status_code == 400
    first = spend("10.00", "key-1")
    again = spend("10.00", "key-1")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"points": "30.00", "balance": "110.00"}
    assert spend("20.00", "key-1").status_code == 409
    refused = spend("31.00", "key-2")
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["code"] == "bonus_insufficient"
    assert spend("-1", "key-3").status_code == 422
    assert BonusEntry.objects.filter(kind=EntryKind.SPEND).count() == 1
    assert balance(subscriber) == Decimal("110.00")


def test_rules_are_edited_by_bonus_managers_only(admin, make_staff, client):
    cashier = make_staff(Role.CASHIER)
    client.force_login(cashier)
    assert client.get(reverse("bonuses:rules")).status_code == 403
    client.force_login(admin)
    form = {
        "on_time_enabled": "on", "on_time_points": "10", "on_time_percent": "1.5", "tenure_unit": "year",
        "tenure_points": "0", "referral_percent": "5", "referral_months": "3", "expiry_months": "6",
    }  # fmt: skip
    assert client.post(reverse("bonuses:rules"), form).status_code == 302
    current = selectors.rules()
    assert (current.on_time_enabled, current.on_time_percent, current.expiry_months) == (True, Decimal("1.50"), 6)
    bad = client.post(reverse("bonuses:rules"), {**form, "on_time_percent": "150"})
    assert bad.status_code == 422
    assert selectors.rules().on_time_percent == Decimal("1.50")


def test_the_card_panel_spends_points_and_records_the_referrer(rules, pay, make_subscriber, operator, client):
    subscriber = _with_points(rules, pay, make_subscriber)
    referrer = make_subscriber(phone="+79160000077", last_name="Друг")
    client.force_login(operator)
    card = client.get(reverse("subscribers:card", args=[subscriber.pk]))
    assert card.status_code == 200 and "panel-bonuses" in card.content.decode()
    spent = client.post(
        reverse("bonuses:spend", args=[subscriber.pk]), {"points": "5", "key": "x1"}, HTTP_HX_REQUEST="true"
    )
    assert spent.status_code == 200
    assert selectors.balance_of(subscriber.pk) == Decimal("35.00")
    done = client.post(
        reverse("bonuses:referrer", args=[subscriber.pk]), {"referrer": referrer.account_number}, HTTP_HX_REQUEST="true"
    )
    assert done.status_code == 200 and referrer.account_number in done.content.decode()
