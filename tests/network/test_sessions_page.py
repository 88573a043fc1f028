"""The sessions online page: filters, keyset pages, export, and the Disconnect and CoA buttons that queue a request
and say so, then show how it ended."""

import csv
import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest
from django.test import Client

from abonent.billing import actions as billing
from abonent.catalog import actions as catalog
from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.network import actions as network
from abonent.network.accounting import START, AcctRecord, write_batch
from abonent.network.models import CoaError, CoaKind, CoaReason, CoaRequest, CoaStatus, LoginKind, Session
from abonent.staff.permissions import Role

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def client_for(make_staff, role, **kwargs) -> Client:
    client = Client()
    client.force_login(make_staff(role, **kwargs))
    return client


@pytest.fixture
def engineer(make_staff):
    return client_for(make_staff, Role.ENGINEER)


@pytest.fixture
def support(make_staff):
    return client_for(make_staff, Role.SUPPORT)


def start(nas, subscriber, *, unique, username, ip=None) -> Session:
    write_batch(
        [
            AcctRecord(
                status=START,
                nas_id=nas.pk,
                event_time=clock.now(),
                unique_id=unique,
                acct_session_id=f"s-{unique}",
                username=username,
                subscriber_id=subscriber.pk if subscriber else None,
                framed_ip=ip,
                input_octets=1_000,
                output_octets=2_000_000,
            )
        ]
    )
    return Session.objects.get(nas=nas, unique_id=unique)


@pytest.fixture
def online(customer, make_subscriber, make_nas, admin, internet, plan):
    """Иванов on "Домашний 100" online on the first NAS; Петров on "Игровой" on the second."""
    gamer = catalog.do_create_plan(
        code="gamer",
        name="Игровой",
        service=internet,
        monthly_fee=Decimal("900.00"),
        valid_from=dt.date(2020, 1, 1),
        acting_user=admin,
    )
    petrov = make_subscriber(last_name="Петров", phone="+79160000031")
    billing.do_post_payment(petrov, amount="2000.00", channel="cash", external_id="c-p", acting_user=admin)
    billing.do_activate_subscription(petrov, plan=gamer, acting_user=admin)
    network.do_create_login(petrov, acting_user=admin, kind=LoginKind.PPPOE, username="petrov", password="pw-pw-pw-1")
    first, second = make_nas(), make_nas(name="second", ip_address="10.2.2.2")
    return {
        "ivanov": start(first, customer, unique="a", username="ivanov", ip="100.64.0.7"),
        "petrov": start(second, petrov, unique="b", username="petrov", ip="100.64.0.8"),
        "first": first,
        "second": second,
        "gamer": gamer,
        "home": plan,
    }


def logins_on(page: str) -> list[str]:
    return sorted(name for name in ("ivanov", "petrov") if f'<td class="font-monospace">{name}</td>' in page)


# --- filters, pages, export ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["ivanov", "petrov"]),
        ("nas={second}", ["petrov"]),
        ("login=ivanov", ["ivanov"]),
        ("ip=100.64.0.8", ["petrov"]),
        ("plan={gamer}", ["petrov"]),
        ("plan={home}&nas={first}", ["ivanov"]),
        ("login=nobody", []),
    ],
)
def test_the_filters(engineer, online, query, expected):
    query = query.format(**{k: getattr(v, "pk", v) for k, v in online.items()})

    page = engineer.get(f"/staff/network/sessions/?{query}").content.decode()

    assert logins_on(page) == expected


def test_a_bad_address_in_the_filter_is_a_field_error(engineer, online):
    response = engineer.get("/staff/network/sessions/?ip=999.1.1.1")

    assert response.status_code == 422
    assert "Enter a valid IPv4 or IPv6 address." in response.content.decode()
    assert logins_on(response.content.decode()) == []


def test_keyset_pages_walk_every_session_once(engineer, customer, make_nas):
    nas = make_nas()
    for n in range(57):
        start(nas, customer, unique=f"k{n}", username=f"login-{n:02d}")

    first = engineer.get("/staff/network/sessions/").content.decode()
    cursor = first.split('rel="next" href="?cursor=', 1)[1].split('"', 1)[0]
    second = engineer.get(f"/staff/network/sessions/?cursor={cursor}").content.decode()

    seen = [f"login-{n:02d}" for n in range(57) if f">login-{n:02d}<" in first]
    rest = [f"login-{n:02d}" for n in range(57) if f">login-{n:02d}<" in second]
    assert len(seen) == 50 and len(rest) == 7 and not set(seen) & set(rest)
    assert "login-56" in seen  # newest first
    assert "57 sessions online" in first
    assert 'rel="next"' not in second and 'rel="prev"' in second


def test_the_export_carries_the_filtered_sessions(engineer, online):
    response = engineer.get(f"/staff/network/sessions/export/?nas={online['second'].pk}&format=csv")

    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")), delimiter=";"))
    # An engineer may not export subscribers: logins and addresses, no names (personal data, 152-FZ).
    assert rows[0][:4] == ["Login", "Account", "IP address", "MAC / caller"]
    assert len(rows) == 2 and rows[1][0] == "petrov" and rows[1][2] == "100.64.0.8" and rows[1][4] == "second"
    assert rows[1][8] == "2000000"  # download in bytes, a number
    assert "Петров" not in "".join(rows[1])


def test_the_export_names_subscribers_for_those_who_may_export_them(make_staff, online):
    operator = client_for(make_staff, Role.OPERATOR)

    response = operator.get(f"/staff/network/sessions/export/?nas={online['second'].pk}&format=csv")

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:4] == ["Login", "Account", "Subscriber", "IP address"]
    assert rows[1][2].startswith("Петров")


def test_the_xlsx_export_keeps_numbers_numbers(engineer, online):
    response = engineer.get("/staff/network/sessions/export/?format=xlsx")

    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    rows = list(sheet.iter_rows(values_only=True))
    assert sorted(r[0] for r in rows[1:]) == ["ivanov", "petrov"]
    assert all(r[8] == 2_000_000 for r in rows[1:])


def test_the_nas_list_exports_too(engineer, online):
    response = engineer.get("/staff/network/nas/export/?format=csv")

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")), delimiter=";"))
    assert [r[0] for r in rows[1:]] == ["nas-mikrotik", "second"]
    assert [r[4] for r in rows[1:]] == ["1", "1"]  # online


# --- Disconnect and CoA ---------------------------------------------------------------------------------------


def test_disconnect_queues_a_request_and_says_queued_not_sent(engineer, online):
    session = online["ivanov"]

    response = engineer.post(f"/staff/network/sessions/{session.pk}/disconnect/", headers=HTMX)

    assert response.status_code == 200
    request = CoaRequest.objects.get()
    assert (request.kind, request.reason, request.session_id, request.status) == (
        CoaKind.DISCONNECT,
        CoaReason.STAFF,
        session.pk,
        CoaStatus.PENDING,
    )
    html = response.content.decode()
    assert "Disconnect of ivanov queued for nas-mikrotik: it is sent within a minute, the result shows here." in html
    assert "queued, not sent yet" in html
    assert f'hx-get="/staff/network/coa/{request.pk}/" hx-trigger="every 5s"' in html  # follows it
    assert AuditEvent.objects.filter(action="network.session_disconnect", object_id=str(session.pk)).count() == 1


def test_coa_resends_the_policy_to_that_session_only(engineer, customer, online):
    other = start(online["second"], customer, unique="c", username="ivanov-2")

    response = engineer.post(f"/staff/network/sessions/{online['ivanov'].pk}/coa/", headers=HTMX)

    assert response.status_code == 200
    request = CoaRequest.objects.get()
    assert (request.kind, request.reason, request.session_id) == (CoaKind.COA, CoaReason.STAFF_COA, online["ivanov"].pk)
    assert request.attributes  # the speed of the plan, rendered for the NAS
    assert not CoaRequest.objects.filter(session=other).exists()
    assert "CoA for ivanov queued for nas-mikrotik" in response.content.decode()
    assert AuditEvent.objects.filter(action="network.session_policy_resent").count() == 1


def test_the_followed_request_shows_how_it_ended(engineer, online):
    engineer.post(f"/staff/network/sessions/{online['ivanov'].pk}/disconnect/", headers=HTMX)
    request = CoaRequest.objects.get()

    CoaRequest.objects.filter(pk=request.pk).update(attempts=1, last_error=CoaError.NO_ANSWER, error_detail="3")
    retrying = engineer.get(f"/staff/network/coa/{request.pk}/").content.decode()
    CoaRequest.objects.filter(pk=request.pk).update(status=CoaStatus.FAILED, finished_at=clock.now())
    failed = engineer.get(f"/staff/network/coa/{request.pk}/").content.decode()
    CoaRequest.objects.filter(pk=request.pk).update(status=CoaStatus.ACKED, last_error="")
    done = engineer.get(f"/staff/network/coa/{request.pk}/").content.decode()

    assert "1 attempt failed, retrying" in retrying and "No answer from the NAS within 3 s." in retrying
    assert "No answer" in failed and "hx-trigger" not in failed  # ended: no more polling
    assert "done: the NAS confirmed it" in done and "hx-trigger" not in done


def test_the_list_shows_the_last_request_of_each_session(engineer, online, admin):
    network.do_disconnect_session(online["petrov"], acting_user=admin)
    CoaRequest.objects.update(status=CoaStatus.NAKED, error_cause=503, last_error=CoaError.NAK, finished_at=clock.now())

    page = engineer.get("/staff/network/sessions/").content.decode()

    row = page.split(f'data-session="{online["petrov"].pk}"', 1)[1].split("</tr>", 1)[0]
    assert "Refused by the NAS" in row and "Error-Cause 503 (Session-Context-Not-Found)" in row


def test_without_htmx_the_button_comes_back_to_the_list_with_the_message(engineer, online):
    response = engineer.post(
        f"/staff/network/sessions/{online['ivanov'].pk}/disconnect/",
        {"next": "/staff/network/sessions/?login=ivanov"},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == "/staff/network/sessions/?login=ivanov"
    assert "Disconnect of ivanov queued for nas-mikrotik" in response.content.decode()


def test_the_button_never_redirects_off_site(engineer, online):
    response = engineer.post(
        f"/staff/network/sessions/{online['ivanov'].pk}/disconnect/", {"next": "https://evil.example/"}
    )

    assert response["Location"] == "/staff/network/sessions/"


def test_a_closed_session_is_refused_in_place_and_nothing_queued(engineer, online):
    Session.objects.filter(pk=online["ivanov"].pk).update(status="closed", stopped_at=clock.now())

    response = engineer.post(f"/staff/network/sessions/{online['ivanov'].pk}/coa/", headers=HTMX)

    assert response.status_code == 422
    assert "The session is already closed." in response.content.decode()
    assert CoaRequest.objects.count() == 0


def test_support_sees_no_buttons_and_cannot_disconnect(support, online):
    page = support.get("/staff/network/sessions/").content.decode()
    disconnect = support.post(f"/staff/network/sessions/{online['ivanov'].pk}/disconnect/", headers=HTMX)
    coa = support.post(f"/staff/network/sessions/{online['ivanov'].pk}/coa/", headers=HTMX)

    assert "session-disconnect" not in page and "session-coa" not in page
    assert (disconnect.status_code, coa.status_code) == (403, 403)
    assert CoaRequest.objects.count() == 0
    assert not AuditEvent.objects.filter(action__startswith="network.session_").exists()


def test_a_branch_limited_engineer_cannot_touch_another_branchs_session(make_staff, online, other_branch):
    client = client_for(make_staff, Role.ENGINEER, branches=[other_branch])

    response = client.post(f"/staff/network/sessions/{online['ivanov'].pk}/disconnect/", headers=HTMX)
    status = client.get("/staff/network/coa/999999/")

    assert response.status_code == 404
    assert status.status_code == 404
    assert CoaRequest.objects.count() == 0


def test_disconnect_is_a_post_only(engineer, online):
    assert engineer.get(f"/staff/network/sessions/{online['ivanov'].pk}/disconnect/").status_code == 405
