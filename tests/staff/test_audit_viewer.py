"""The audit viewer: who changed what and when, filtered by person, subscriber, action and date, limited to the
reader's branches, paged by keyset, and exported as CSV/XLSX with the same filters and labels."""

import csv
import datetime as dt
import io
import re

import pytest
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook

from abonent.core import audit, clock
from abonent.core.models import AuditEvent
from abonent.staff.permissions import Role
from abonent.subscribers.actions import do_add_note, do_update_subscriber

pytestmark = pytest.mark.django_db


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def scene(make_subscriber, make_staff, admin, branch, other_branch, make_plan):
    """Two subscribers in two branches; an operator of the first branch edits its subscriber on 3 December, the
    administrator renames the other's on 5 December and makes a plan (no subscriber) on 6 December."""
    with clock.travel_to(timezone.make_aware(dt.datetime(2026, 12, 1, 10, 0))):
        tver = make_subscriber(last_name="Тверской")
        klin = make_subscriber(last_name="Клинский", branch_obj=other_branch, phone="+79161234568")
    local = make_staff(Role.OPERATOR, username="local", branches=[branch])
    with clock.travel_to(timezone.make_aware(dt.datetime(2026, 12, 3, 23, 30))):
        do_add_note(tver, text="Звонил, просил перезвонить", acting_user=local)
    with clock.travel_to(timezone.make_aware(dt.datetime(2026, 12, 5, 9, 0))):
        do_update_subscriber(klin, changes={"last_name": "Клинов"}, acting_user=admin, reason="Опечатка в фамилии")
    with clock.travel_to(timezone.make_aware(dt.datetime(2026, 12, 6, 9, 0))):
        make_plan("internet-100", "650.00", name="Интернет-100")
    return {"tver": tver, "klin": klin, "local": local}


def rows(response) -> list[str]:
    return re.findall(r'<tr data-event="\d+" data-action="([a-z_.]+)"', response.content.decode())


def test_the_administrator_sees_every_change_with_labels_and_the_diff(scene, admin):
    response = client_of(admin).get("/staff/audit/")

    assert response.status_code == 200
    # Staff users and the internet service are made by the fixtures at today's date: left out here.
    assert [a for a in rows(response) if a not in ("staff.user_created", "catalog.service_created")] == [
        "catalog.price_added",
        "catalog.plan_created",
        "subscriber.updated",
        "subscriber.note_added",
        "subscriber.created",
        "subscriber.created",
    ]
    page = response.content.decode()
    assert "Plan created" in page and "Subscriber changed" in page and "Note added" in page
    update = page.split('data-action="subscriber.updated"')[1].split("</tr>")[0]
    # The edit shows the field's label, the old and new values and the reason; not the code or raw JSON.
    assert re.search(r"last name:</dt>\s*<dd[^>]*><del[^>]*>Клинский</del> → <ins[^>]*>Клинов</ins>", update)
    assert "Reason: Опечатка в фамилии" in update
    assert scene["klin"].account_number in update


def test_filter_by_person(scene, admin):
    response = client_of(admin).get("/staff/audit/", {"who": scene["local"].pk})

    assert rows(response) == ["subscriber.note_added"]


def test_filter_by_subscriber_account_or_name(scene, admin):
    client = client_of(admin)

    by_account = rows(client.get("/staff/audit/", {"subscriber": scene["klin"].account_number}))
    assert by_account == ["subscriber.updated", "subscriber.created"]
    by_name = rows(client.get("/staff/audit/", {"subscriber": "Тверс"}))
    assert by_name == ["subscriber.note_added", "subscriber.created"]

    unknown = client.get("/staff/audit/", {"subscriber": "000000000"})
    assert unknown.status_code == 422
    assert "No subscriber you can see has this account number or name." in unknown.content.decode()
    assert rows(unknown) == []


def test_filter_by_action_and_dates_in_local_time(scene, admin, settings):
    client = client_of(admin)

    assert rows(client.get("/staff/audit/", {"action": "subscriber.note_added"})) == ["subscriber.note_added"]
    # 23:30 Moscow on 3 December is 20:30 UTC: it belongs to the 3rd, not to the 4th.
    assert rows(client.get("/staff/audit/", {"date_from": "2026-12-03", "date_to": "2026-12-03"})) == [
        "subscriber.note_added"
    ]
    assert rows(client.get("/staff/audit/", {"date_from": "2026-12-04", "date_to": "2026-12-05"})) == [
        "subscriber.updated"
    ]
    reversed_dates = client.get("/staff/audit/", {"date_from": "2026-12-05", "date_to": "2026-12-04"})
    assert reversed_dates.status_code == 422 and "The end is before the start." in reversed_dates.content.decode()


def test_an_operator_of_a_branch_sees_its_subscribers_and_their_own_changes_only(scene):
    client = client_of(scene["local"])

    seen = rows(client.get("/staff/audit/"))

    assert seen == ["subscriber.note_added", "subscriber.created"]  # not Клинский's, not the catalog's
    hidden = client.get("/staff/audit/", {"subscriber": scene["klin"].account_number})
    assert hidden.status_code == 422 and rows(hidden) == []


def test_a_cashier_has_no_audit_log(scene, make_staff):
    assert client_of(make_staff(Role.CASHIER)).get("/staff/audit/").status_code == 403


def test_keyset_pages_walk_the_whole_log_once(admin, branch):
    with clock.travel_to(timezone.make_aware(dt.datetime(2026, 12, 1, 12, 0))):
        for _ in range(60):  # the same instant: the id breaks the tie
            audit.record(actor=admin, action="core.branch_created", obj=branch)
    client = client_of(admin)

    first = client.get("/staff/audit/", {"action": "core.branch_created"})
    cursor = re.search(r'rel="next" href="\?([^"]+)"', first.content.decode()).group(1).replace("&amp;", "&")
    second = client.get(f"/staff/audit/?{cursor}")

    ids = [int(i) for r in (first, second) for i in re.findall(r'data-event="(\d+)"', r.content.decode())]
    assert len(ids) == 60 and len(set(ids)) == 60
    assert ids == sorted(
        AuditEvent.objects.filter(action="core.branch_created").values_list("pk", flat=True), reverse=True
    )


def test_the_csv_export_has_the_filtered_rows_with_labels_and_is_audited(scene, admin):
    response = client_of(admin).get(
        "/staff/audit/export/", {"subscriber": scene["klin"].account_number, "format": "csv"}
    )

    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert table[0][:7] == ["Time", "Who", "Action", "Object", "Account", "Subscriber", "Changes"]
    assert [line[2] for line in table[1:]] == ["Subscriber changed", "Subscriber created"]
    update = table[1]
    assert update[1] == "Test admin" and update[4] == scene["klin"].account_number
    assert "last name: Клинский → Клинов" in update[6] and update[7] == "Опечатка в фамилии"
    assert update[0] == "05.12.2026 09:00:00"
    exported = AuditEvent.objects.get(action="staff.audit_exported")
    assert exported.actor == admin and exported.after["filters"] == {"subscriber": scene["klin"].account_number}


def test_the_xlsx_export_keeps_the_branch_limit(scene):
    response = client_of(scene["local"]).get("/staff/audit/export/", {"format": "xlsx"})

    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    values = list(sheet.values)
    assert [row[2] for row in values[1:]] == ["Note added", "Subscriber created"]
    assert isinstance(values[1][0], dt.datetime)  # a date Excel can sort, not text


def test_an_unknown_export_format_is_refused_and_not_audited(scene, admin):
    response = client_of(admin).get("/staff/audit/export/", {"format": "pdf"})

    assert response.status_code == 400
    assert not AuditEvent.objects.filter(action="staff.audit_exported").exists()


@pytest.mark.parametrize("language", ["ru", "en"])
def test_an_event_numbered_past_999_keeps_a_plain_id(admin, branch, language):
    """Ids print plain: with thousand separators on, ``data-event`` read "1 234 567" and every row id, tick box
    and hidden plan id past the 999th row stopped parsing (the full suite's sequences got there first)."""
    AuditEvent.objects.create(
        pk=1_234_567,
        created_at=clock.now(),
        actor=admin,
        actor_label="admin",
        action="core.branch_created",
        object_type="core.branch",
        object_id=str(branch.pk),
    )
    client = client_of(admin)
    client.cookies["django_language"] = language

    html = client.get("/staff/audit/", {"action": "core.branch_created"}).content.decode()

    assert 'data-event="1234567"' in html
