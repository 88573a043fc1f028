"""The subscriber card as a whole (issue 17): its cost does not grow with the subscriber's history, it answers in
well under 200 ms of server time for three years of it, and the console's own pages say what went wrong."""

import datetime as dt
import os
import statistics
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.template.base import Template
from django.test.utils import CaptureQueriesContext, _TestState

from abonent.billing import actions as billing
from abonent.billing.testing import run_on
from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.network import actions as network
from abonent.network.accounting import START, STOP, AcctRecord, write_batch
from abonent.network.models import LoginKind, Session
from abonent.subscribers import actions as subscribers

pytestmark = pytest.mark.django_db

FIRST_MONTH = dt.date(2024, 1, 1)
NOW = dt.datetime(2026, 12, 16, 12, 0, tzinfo=dt.UTC)
# Pinned: the card of a subscriber with a plan, payments, sessions, notes and audit rows (the panels, the header,
# the session and the staff user). It does not depend on how long the history is. 51 = 47 + the open incidents of the
# subscriber in the header (helpdesk.incidents: one indexed lookup) + field work's "Visits" panel (its jobs, one
# query) + the "Calls" panel (telephony: one query) + the "Payments in the old system" panel (imports: one query).
CARD_QUERIES = 51


def month_start(months: int) -> dt.date:
    year, month = divmod(FIRST_MONTH.month - 1 + months, 12)
    return dt.date(FIRST_MONTH.year + year, month + 1, 1)


def seed_history(subscriber, plan, nas, admin, *, months: int, tag: str) -> None:
    """``months`` of a subscriber's life ending in December 2026, through the actions: a payment and the billing
    run's fee each month, two sessions online, a note, a contact added (audited) and a connection event."""
    first = month_start(36 - months)
    with clock.travel_to(first):
        login = network.do_create_login(
            subscriber, acting_user=admin, kind=LoginKind.PPPOE, username=f"login-{tag}", password="s3cret-pw"
        )
        billing.do_post_payment(subscriber, amount=Decimal("700.00"), channel="cash", external_id=f"{tag}-opening")
        billing.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    for m in range(36 - months, 36):
        day = month_start(m)
        run_on(day)
        moment = dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC)
        with clock.travel_to(moment + dt.timedelta(days=2)):
            billing.do_post_payment(subscriber, amount=Decimal("650.00"), channel="cash", external_id=f"{tag}-{m}")
            subscribers.do_add_note(subscriber, text=f"Звонок {m}", acting_user=admin)
        records = []
        for n in range(2):
            started = moment + dt.timedelta(days=5 + n)
            common = {
                "nas_id": nas.pk,
                "unique_id": f"{tag}-{m}-{n}",
                "acct_session_id": f"{tag}-{m}-{n}",
                "username": login.username,
                "login_id": login.pk,
                "subscriber_id": subscriber.pk,
                "framed_ip": "100.64.0.7",
            }
            records += [
                AcctRecord(status=START, event_time=started, **common),
                AcctRecord(
                    status=STOP,
                    event_time=started + dt.timedelta(hours=3),
                    session_time=3 * 3600,
                    input_octets=10**8,
                    output_octets=10**9,
                    terminate_cause="User-Request",
                    **common,
                ),
            ]
        write_batch(records)
    run_on(NOW.date())


@pytest.fixture
def world(make_subscriber, make_plan, make_staff, admin):
    from abonent.network.actions import do_create_nas

    plan = make_plan("home-100", "650.00", name="Домашний 100", download_kbps=100_000, upload_kbps=50_000)
    nas = do_create_nas(
        acting_user=admin,
        name="bras-1",
        ip_address="10.0.0.1",
        secret="a-long-shared-secret-for-tests",
        vendor="mikrotik",
    )
    young = make_subscriber(last_name="Новиков", phone="+79161110001")
    old = make_subscriber(last_name="Старожилов", phone="+79161110002")
    seed_history(young, plan, nas, admin, months=1, tag="young")
    seed_history(old, plan, nas, admin, months=36, tag="old")
    return young, old


def test_card_cost_is_the_same_for_a_month_and_for_three_years_of_history(world, operator_client, monkeypatch):
    young, old = world
    assert Session.objects.filter(subscriber=old).count() == 72
    assert AuditEvent.objects.filter(subscriber_id=old.pk).count() > 70
    # Server time as a server spends it: without the test client's per-template instrumentation.
    monkeypatch.setattr(Template, "_render", _TestState.saved_data.template_render)
    counts, timings = {}, {}
    with clock.travel_to(NOW):
        for subscriber in (young, old):
            path = f"/staff/subscribers/{subscriber.pk}/"
            operator_client.get(path)  # warm the template cache
            with CaptureQueriesContext(connection) as queries:
                response = operator_client.get(path)
            assert response.status_code == 200
            counts[subscriber.last_name] = len(queries)
            wall, cpu = [], []
            for _ in range(7):
                started, started_cpu = time.perf_counter(), time.process_time()
                operator_client.get(path)
                wall.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
            timings[subscriber.last_name] = {
                "wall_best": min(wall),
                "wall_median": statistics.median(wall),
                "cpu_best": min(cpu),
            }
    print(f"\ncard server time, ms: {timings}; queries: {counts}; load average: {os.getloadavg()}")
    assert counts["Новиков"] == counts["Старожилов"] == CARD_QUERIES
    # Issue 17: three years of history within 200 ms of server time. Measured on a machine shared with other work,
    # the wall clock waits for the CPU; the web process's own CPU time is what the card costs it.
    assert timings["Старожилов"]["cpu_best"] <= 200


def test_three_years_card_shows_the_newest_history_and_money(world, operator_client):
    _young, old = world
    with clock.travel_to(NOW):
        body = operator_client.get(f"/staff/subscribers/{old.pk}/").content.decode()
    header = body[body.index('id="card-header"') : body.index("</header>")]
    assert "Домашний 100" in header and "100/50 Mbit/s" in header and 'id="header-online"' in header
    assert "last seen" in header  # the newest session ended
    history = body[body.index('id="panel-history"') :]
    assert "Test admin" in history  # the staff user's name, not the login "admin"
    assert f"650.00{chr(160)}₽" in history and "cash desk" in history


# --- bad input in the card's other forms: a message next to the field, nothing written -------------------------

HTMX = {"HX-Request": "true"}


def _written(subscriber) -> tuple:
    from abonent.network.models import Login

    return (
        subscriber.contacts.count(),
        subscriber.addresses.count(),
        Login.objects.filter(subscriber=subscriber).count(),
        AuditEvent.objects.count(),
    )


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"kind": "phone", "value": "12345"}, "value", "phone"),
        ({"kind": "phone", "value": ""}, "value", "This field is required."),
        ({"kind": "email", "value": "not-an-email"}, "value", "email"),
        ({"kind": "fax", "value": "+79161234567"}, "kind", "Select a valid choice."),
        ({"kind": "phone", "value": "+7916" + "1" * 300}, "value", "at most 254 characters"),
    ],
)
def test_a_bad_contact_is_422_next_to_the_field(operator_client, make_subscriber, data, field, message):
    subscriber = make_subscriber()
    before = _written(subscriber)
    response = operator_client.post(f"/staff/subscribers/{subscriber.pk}/contacts/", data, headers=HTMX)
    assert response.status_code == 422
    after_field = response.content.decode().split(f'name="{field}"')[1][:900]
    assert message.lower() in after_field.lower()
    assert _written(subscriber) == before


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"kind": "service", "city": "", "house": "5"}, "city", "This field is required."),
        ({"kind": "service", "city": "Тверь", "house": ""}, "house", "This field is required."),
        ({"kind": "moon", "city": "Тверь", "house": "5"}, "kind", "Select a valid choice."),
        ({"kind": "service", "city": "Тверь", "house": "5" * 21}, "house", "at most 20 characters"),
    ],
)
def test_a_bad_address_is_422_next_to_the_field(operator_client, make_subscriber, data, field, message):
    subscriber = make_subscriber()
    before = _written(subscriber)
    response = operator_client.post(f"/staff/subscribers/{subscriber.pk}/addresses/", data, headers=HTMX)
    assert response.status_code == 422
    assert message in response.content.decode().split(f'name="{field}"')[1][:900]
    assert _written(subscriber) == before


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"kind": "ipoe_mac", "username": "not-a-mac"}, "username", "Not a MAC address"),
        ({"kind": "pppoe", "username": "", "password": "pppoe-pass-1"}, "username", "This field is required."),
        ({"kind": "pppoe", "username": "petrov", "password": ""}, "password", "needs a password"),
        (
            {"kind": "pppoe", "username": "petrov", "password": "pppoe-pass-1", "static_ip": "300.1.1.1"},
            "static_ip",
            "Enter a valid IPv4 or IPv6 address.",
        ),
    ],
)
def test_a_bad_login_is_422_next_to_the_field(make_staff, make_subscriber, data, field, message):
    from django.test import Client

    from abonent.staff.permissions import Role

    engineer = Client()
    engineer.force_login(make_staff(Role.ENGINEER))
    subscriber = make_subscriber()
    before = _written(subscriber)
    response = engineer.post(f"/staff/network/subscribers/{subscriber.pk}/logins/", data, headers=HTMX)
    assert response.status_code == 422
    assert message in response.content.decode().split(f'name="{field}"')[1][:1200]
    assert _written(subscriber) == before
