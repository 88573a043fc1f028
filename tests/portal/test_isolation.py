"""No subscriber reaches another's data: every portal page and every ``/api/v1/my/`` route, generated from the
URL conf and the API router, is walked with another subscriber's ids in its path, its query and its JSON body.

Each answer must be a 404 for an id in the path (never 200, never 403: the id's existence is not revealed), a 4xx
for an id in a query or body, and nothing may be written: no row anywhere, no audit event. The stranger's name and
account number never appear in an answer. A route with a parameter this test does not know fails it: a new route
cannot be forgotten, only classified.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import typing
import uuid
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection
from django.urls import reverse
from pydantic import BaseModel

from abonent.billing import actions as billing
from abonent.catalog.models import Turbo
from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.documents.models import Document
from abonent.helpdesk.actions import do_comment_ticket, do_open_ticket
from abonent.helpdesk.attachments import Upload
from abonent.helpdesk.models import Ticket
from abonent.helpdesk.validation import TicketData
from abonent.notifications.models import TelegramChat
from abonent.payments import actions as payments
from abonent.payments.models import Checkout, PaymentMethod, SavedMethod
from abonent.portal import urls as portal_urls
from abonent.portal.api import router
from abonent.portal.models import PortalSession, SessionKind
from abonent.portal.sessions import open_session

from .conftest import api_of, signed_in

pytestmark = pytest.mark.usefixtures("now")

# Path parameters: the kind of object each names. ``pk`` depends on the route (its url name's start).
PARAMETERS = {
    "checkout_id": "checkout",
    "method_id": "method",
    "payment_id": "payment",
    "sid": "subscription",
    "subscription_id": "subscription",
    "plan_id": "plan",
    "turbo_id": "turbo",
    "request_id": "ticket",
    "ticket_id": "ticket",
    "chat_id": "chat",
    "session_id": "session",
    "ref": "ref",
    "document_id": "document",
    "attachment_pk": "attachment",
}
PK_BY_ROUTE = {"request": "ticket", "profile_telegram": "chat", "end_session": "session", "pay_document": "document"}
# Fields of a JSON body or a query that name an object of the subscriber's.
ID_FIELDS = {
    "subscription": "subscription",
    "subscription_id": "subscription",
    "method_id": "method",
    "checkout_id": "checkout",
    "payment_id": "payment",
    "ticket": "ticket",
    "ticket_id": "ticket",
    "session_id": "session",
    "chat_id": "chat",
    "document_id": "document",
}
# Fields that name a catalogue object (a plan, a turbo): not the subscriber's, but offered per subscription.
CATALOGUE_FIELDS = {"plan": "plan", "plan_id": "plan", "turbo": "turbo", "turbo_id": "turbo"}
# Values for the other fields of a body, so that only the stranger's id can be what is refused.
PLAUSIBLE = {
    "amount": "100.00",
    "days": 7,
    "expected_net": "0.00",
    "expected_fee": "0.00",
    "expected_price": "0.00",
    "expected_days": 3,
    "expected_hours": 3,
    "expected_download_kbps": 500_000,
    "expected_upload_kbps": 250_000,
    "debit_day": 5,
    "consent_text": "Согласен",
    "text": "Не работает интернет",
    "subject": "Нет связи",
    "category": "no_connection",
}
NOT_WRITTEN_TABLES = {"portal_loginattempt"}


@pytest.fixture
def theirs(stranger, portal_plans, admin, settings, tmp_path):
    """One object of every kind the portal takes by id, all the stranger's."""
    settings.ABONENT_HELPDESK_ATTACHMENTS_DIR = tmp_path / "attachments"
    turbo = Turbo.objects.create(
        code="t2", name="Турбо", download_kbps=200_000, upload_kbps=200_000, hours=24, price="50"
    )
    portal_plans["gamer"].turbos.add(turbo)
    subscription = stranger.subscriptions.get()
    checkout = Checkout.objects.create(
        subscriber=stranger, provider="yookassa", key=f"portal:{stranger.pk}:{uuid.uuid4().hex}",
        amount=Decimal("900.00"), created_at=clock.now(),
    )  # fmt: skip
    method = payments.do_link_method(
        stranger, provider="yookassa", method_id="pm-stranger", method_type="bank_card", title="Card *1111",
        consent_text="Согласен", consented_at=clock.now(), consent_source="app",
    )  # fmt: skip
    payment = payments.do_receive_payment(
        channel="cash", external_id="iso-1", amount="900.00", method=PaymentMethod.CASH, subscriber=stranger
    )
    ticket = do_open_ticket(
        stranger, TicketData(category="no_connection", subject="Нет связи", text="Не работает"), source="portal",
        acting_user=None,
    )  # fmt: skip
    attachment = do_comment_ticket(
        ticket, text="Фото", acting_user=None, uploads=[Upload("photo.pdf", io.BytesIO(b"%PDF-1.7\n%%EOF\n"))]
    ).attachments.get()
    chat = TelegramChat.objects.create(subscriber=stranger, chat_id=777, linked_at=clock.now())
    session, _secret = open_session(stranger, kind=SessionKind.WEB)
    billing.do_take_promised_payment(stranger, acting_user=None, amount="100.00")
    # Closing documents are issued to organisations; the stranger is a person, so their document is written here.
    document = Document.objects.create(
        kind="act", series="act", year=2026, number=1, date=dt.date(2026, 10, 31), subscriber=stranger,
        period_start=dt.date(2026, 10, 1), period_end=dt.date(2026, 11, 1), status="final", total=Decimal("650.00"),
        buyer={"name": stranger.display_name}, created_at=clock.now(),
    )  # fmt: skip
    return {
        "subscription": subscription.pk,
        "plan": portal_plans["home"].pk,  # offered to the stranger's subscription
        "turbo": turbo.pk,
        "checkout": checkout.pk,
        "ref": "a" * 64,
        "method": method.pk,
        "payment": payment.payment.pk,
        "ticket": ticket.pk,
        "chat": chat.pk,
        "session": session.pk,
        "document": document.pk,
        "attachment": attachment.pk,
    }


def table_counts() -> dict[str, int]:
    tables = sorted(
        {m._meta.db_table for m in apps.get_models() if m._meta.managed and not m._meta.proxy} - NOT_WRITTEN_TABLES
    )
    existing = set(connection.introspection.table_names())
    tables = [t for t in tables if t in existing]
    sql = " UNION ALL ".join(f"SELECT '{t}', COUNT(*) FROM {connection.ops.quote_name(t)}" for t in tables)
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return dict(cursor.fetchall())


def kind_of(name: str, route: str) -> str:
    if name == "pk":
        for prefix, kind in PK_BY_ROUTE.items():
            if route.startswith(prefix):
                return kind
    if name not in PARAMETERS:
        pytest.fail(f"route {route!r}: unknown parameter {name!r}; add it to PARAMETERS (or PK_BY_ROUTE)")
    return PARAMETERS[name]


def portal_pages():
    for pattern in portal_urls.urlpatterns:
        names = re.findall(r"<(?:\w+:)?(\w+)>", str(pattern.pattern))
        if names:
            yield pattern.name, names


def api_routes():
    for path, path_view in router.path_operations.items():
        for operation in path_view.operations:
            for method in operation.methods:
                yield method, path, operation


def api_url(path: str, theirs: dict) -> str:
    return "/api/v1/my" + re.sub(r"{(\w+)}", lambda m: str(theirs[kind_of(m.group(1), path)]), path)


def leaf_fields(operation) -> dict[str, type]:
    fields: dict[str, type] = {}

    def walk(model):
        for name, field in model.model_fields.items():
            nested = [a for a in (field.annotation, *typing.get_args(field.annotation)) if isinstance(a, type)]
            inner = next((a for a in nested if issubclass(a, BaseModel)), None)
            if inner is not None:
                walk(inner)
            else:
                fields[name] = field.annotation

    for model in operation.models:
        walk(model)
    return fields


def assert_untouched(response, before, stranger, what):
    assert table_counts() == before, f"{what} wrote something"
    body = response.content.decode(errors="replace")
    assert stranger.account_number not in body, f"{what} shows the stranger's account"
    assert stranger.last_name not in body, f"{what} shows the stranger's name"


@pytest.mark.django_db
def test_every_portal_page_with_another_subscribers_ids_is_404_and_writes_nothing(subscriber, stranger, theirs):
    client = signed_in(subscriber)
    walked = 0
    for route, names in portal_pages():
        kwargs = {name: theirs[kind_of(name, route)] for name in names}
        url = reverse(f"portal:{route}", kwargs=kwargs)
        before, audit = table_counts(), AuditEvent.objects.count()
        for method in ("get", "post"):
            response = getattr(client, method)(url, {"amount": "100", "days": "7", "text": "x"})
            owned_by_path = any(kind_of(n, route) not in ("plan", "turbo") for n in names)
            if owned_by_path:
                # A GET of a POST-only view is a 405 whatever the id: that reveals nothing either.
                allowed = (404, 405) if method == "get" else (404,)
                assert response.status_code in allowed, f"{method.upper()} {url}: {response.status_code}"
            else:
                assert response.status_code in (404, 405, 422), f"{method.upper()} {url}: {response.status_code}"
            assert_untouched(response, before, stranger, f"{method.upper()} {url}")
        assert AuditEvent.objects.count() == audit
        walked += 1
    assert walked >= 10


@pytest.mark.django_db
def test_every_api_route_with_another_subscribers_ids_refuses_and_writes_nothing(subscriber, stranger, theirs):
    api = api_of(subscriber)
    walked = 0
    for method, path, operation in api_routes():
        names = re.findall(r"{(\w+)}", path)
        fields = leaf_fields(operation)
        unknown = [
            n for n, t in fields.items()
            if t in (int, int | None) and n not in ID_FIELDS and n not in CATALOGUE_FIELDS and n not in PLAUSIBLE
            and n not in names and n not in ("limit", "before", "cursor", "year", "month", "page")
        ]  # fmt: skip
        assert not unknown, f"{method} {path}: classify the integer fields {unknown} in ID_FIELDS or CATALOGUE_FIELDS"
        own_ids = [f for f in fields if f in ID_FIELDS and f not in names]
        if not names and not own_ids:
            continue
        url = api_url(path, theirs)
        data = {f: theirs[ID_FIELDS[f]] for f in own_ids}
        data |= {f: theirs[CATALOGUE_FIELDS[f]] for f in fields if f in CATALOGUE_FIELDS}
        data |= {f: v for f, v in PLAUSIBLE.items() if f in fields}
        before, audit = table_counts(), AuditEvent.objects.count()
        response = api.get(url, data) if method == "GET" else getattr(api, method.lower())(url, data)
        if names:
            assert response.status_code == 404, f"{method} {url}: {response.status_code} {response.content[:300]}"
        else:
            assert response.status_code in (404, 422, 409), f"{method} {url} {data}: {response.status_code}"
        assert_untouched(response, before, stranger, f"{method} {url}")
        assert AuditEvent.objects.count() == audit
        walked += 1
    assert walked >= 10


@pytest.mark.django_db
def test_the_strangers_session_stays_and_nothing_of_theirs_changed(subscriber, stranger, theirs):
    """After the walk of both, the stranger's objects are as they were (updates a row count cannot see)."""
    client, api = signed_in(subscriber), api_of(subscriber)
    for route, names in portal_pages():
        kwargs = {name: theirs[kind_of(name, route)] for name in names}
        client.post(reverse(f"portal:{route}", kwargs=kwargs), {})
    for method, path, _operation in api_routes():
        if "{" in path and method != "GET":
            url = api_url(path, theirs)
            getattr(api, method.lower())(url, {})
    session = PortalSession.objects.get(pk=theirs["session"])
    assert session.revoked_at is None
    assert TelegramChat.objects.filter(pk=theirs["chat"], subscriber=stranger).exists()
    assert SavedMethod.objects.get(pk=theirs["method"]).active
    assert Ticket.objects.get(pk=theirs["ticket"]).status == "new"
    assert stranger.subscriptions.get().plan.code == "gamer"
