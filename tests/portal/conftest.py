"""The portal's tests: a subscriber on "Интернет-100" with money, signed in through a browser cookie or an app
token, and a second subscriber whose ids the first must never reach."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from django.test import Client

from abonent.billing import actions as billing
from abonent.catalog.models import FreezePolicy, PromisedPaymentPolicy
from abonent.core import clock
from abonent.portal.models import SessionKind
from abonent.portal.sessions import COOKIE, open_session

# The portal tests' day: 650 ₽ plan taken on 1 November, 1,000 ₽ paid then; December not charged yet.
TODAY = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)


@pytest.fixture
def now():
    """The clock stands on ``TODAY`` for the test (``clock.travel_to`` moves it further)."""
    with clock.travel_to(TODAY):
        yield TODAY


@pytest.fixture
def portal_plans(make_plan):
    """"Домашний" 500 ₽ and "Игровой" 900 ₽, switchable both ways, with freezes and promised payments."""
    freeze = FreezePolicy.objects.create(
        name="Каникулы", min_days=7, max_days=90, yearly_quota_days=90, fee_per_day=Decimal("3.00")
    )
    promised = PromisedPaymentPolicy.objects.create(name="3 дня", max_amount=Decimal("500.00"), days=3)
    home = make_plan(
        "home", "650.00", name="Интернет-100", download_kbps=100_000, upload_kbps=100_000,
        is_public=True, freeze_policy=freeze, promised_payment_policy=promised,
    )  # fmt: skip
    gamer = make_plan(
        "gamer", "900.00", name="Игровой", download_kbps=500_000, upload_kbps=500_000,
        is_public=True, freeze_policy=freeze, promised_payment_policy=promised,
    )  # fmt: skip
    cheap = make_plan(
        "cheap", "400.00", name="Домашний", download_kbps=50_000, upload_kbps=50_000,
        is_public=True, freeze_policy=freeze, promised_payment_policy=promised,
    )  # fmt: skip
    hidden = make_plan("corp", "5000.00", name="Корпоративный", download_kbps=1_000_000, is_public=False)
    for plan in (home, gamer, cheap):
        plan.switchable_to.set([p for p in (home, gamer, cheap) if p != plan])
    return {"home": home, "gamer": gamer, "cheap": cheap, "hidden": hidden}


def _customer(make_subscriber, plan, admin, **fields):
    customer = make_subscriber(**fields)
    with clock.travel_to(dt.date(2026, 11, 1)):
        billing.do_post_payment(customer, amount="1000.00", channel="test", external_id=f"opening-{customer.pk}")
        billing.do_activate_subscription(customer, plan=plan, acting_user=admin)
    return customer


@pytest.fixture
def subscriber(make_subscriber, portal_plans, admin):
    """Иванов on "Интернет-100": 1,000 ₽ paid, November's 650 ₽ charged, 350 ₽ left."""
    return _customer(make_subscriber, portal_plans["home"], admin)


@pytest.fixture
def stranger(make_subscriber, portal_plans, admin):
    """Another subscriber of the same branch: nothing of theirs may be reached by ``subscriber``."""
    return _customer(
        make_subscriber, portal_plans["gamer"], admin, last_name="Петров", first_name="Пётр", phone="+79161110000"
    )


def signed_in(subscriber) -> Client:
    """A browser signed in to the portal as ``subscriber`` (a real session, as the login view opens it)."""
    _session, secret = open_session(subscriber, kind=SessionKind.WEB)
    client = Client()
    client.cookies[COOKIE] = secret
    return client


@pytest.fixture
def portal_client(subscriber) -> Client:
    return signed_in(subscriber)


class PortalApi(Client):
    """JSON in and out with a subscriber's app token; a POST carries a fresh Idempotency-Key unless
    ``key=None`` (none) or ``key="…"`` (that one)."""

    FRESH = object()

    def post(self, path, data=None, *, key=FRESH, **extra):
        if key is PortalApi.FRESH:
            key = uuid.uuid4().hex
        if key is not None:
            extra["headers"] = {"Idempotency-Key": key, **extra.get("headers", {})}
        body = data if isinstance(data, str) else json.dumps(data or {})
        return super().post(path, body, content_type="application/json", **extra)

    def put(self, path, data=None, **extra):
        return super().put(path, json.dumps(data or {}), content_type="application/json", **extra)

    def patch(self, path, data=None, **extra):
        return super().patch(path, json.dumps(data or {}), content_type="application/json", **extra)

    def delete(self, path, data=None, **extra):
        return super().delete(path, json.dumps(data or {}), content_type="application/json", **extra)


def api_of(subscriber) -> PortalApi:
    _session, token = open_session(subscriber, kind=SessionKind.API)
    return PortalApi(headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def portal_api(subscriber) -> PortalApi:
    return api_of(subscriber)
