"""The subscriber list's export (abonent/bulk): the filtered list as CSV/XLSX with the operator's columns and no
passport data, one audit record per export, branch limits and the permission."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from abonent.billing import actions as billing
from abonent.core import clock
from abonent.core.models import AuditEvent
from abonent.dunning.evaluation import evaluate
from abonent.staff.permissions import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(make_subscriber, make_plan, admin, other_branch):
    plan = make_plan("home-100", "650.00", name="Домашний 100")
    with clock.travel_to(dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)):
        ivanov = make_subscriber(last_name="Иванов", passport_series="9988", passport_number="776655")
        billing.do_activate_subscription(ivanov, plan=plan, acting_user=admin)
        evaluate([ivanov.pk])
        petrov = make_subscriber(last_name="Петров", phone="+79160000002")
        billing.do_adjust_balance(petrov, amount=Decimal("100.00"), reason="t", acting_user=admin)
        far = make_subscriber(last_name="Сидоров", phone="+79160000003", branch_obj=other_branch)
    return {"ivanov": ivanov, "petrov": petrov, "far": far}


def rows_of(response):
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")), delimiter=";"))


def test_the_export_is_the_filtered_list_with_the_operators_columns(people, operator, client_of, branch):
    client = client_of(operator)
    response = client.get("/staff/bulk/subscribers/export/", {"format": "csv", "branch": branch.pk, "page": "2"})
    assert response.status_code == 200 and response["Content-Disposition"].endswith('filename="subscribers.csv"')
    rows = rows_of(response)
    assert rows[0] == ["Account", "Name", "Phone", "Address", "Plan", "Balance", "Access"]
    ivanov = people["ivanov"]
    assert rows[1] == [
        ivanov.account_number,
        "Иванов Иван Петрович",
        "'+79161234567",  # a cell starting with + is written as text (core.listing, CWE-1236)
        "Тверь, ул. Ленина, h. 5, apt. 12",  # in English here
        "Домашний 100",
        "-650,00",
        "Restricted",
    ]
    assert rows[2][0] == people["petrov"].account_number and rows[2][4:] == ["", "100,00", "Active"]
    assert len(rows) == 3  # Сидоров is in another branch: filtered out
    text = "\n".join(";".join(r) for r in rows)
    assert "9988" not in text and "776655" not in text  # no passport data

    [event] = AuditEvent.objects.filter(action="subscribers.exported")
    assert event.actor == operator and event.after["rows"] == 2 and event.after["format"] == "csv"
    assert event.after["filter"] == f"branch={branch.pk}"  # the list's filter, without its page


def test_the_xlsx_export_has_numbers_and_a_branch_limited_user_gets_their_branch(
    people, make_staff, client_of, other_branch
):
    limited = client_of(make_staff(Role.OPERATOR, branches=[other_branch]))
    response = limited.get("/staff/bulk/subscribers/export/", {"format": "xlsx"})
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active
    values = list(sheet.iter_rows(values_only=True))
    assert [v[0] for v in values[1:]] == [people["far"].account_number] and values[1][5] == 0
    response = limited.get("/staff/bulk/subscribers/export/", {"format": "xlsx", "q": people["ivanov"].account_number})
    assert len(list(load_workbook(io.BytesIO(b"".join(response.streaming_content))).active.iter_rows())) == 1


def test_only_roles_with_the_export_permission_export(people, make_staff, client_of):
    for role in (Role.CASHIER, Role.SUPPORT, Role.ENGINEER):
        assert client_of(make_staff(role)).get("/staff/bulk/subscribers/export/", {"format": "csv"}).status_code == 403
    assert not AuditEvent.objects.filter(action="subscribers.exported").exists()


def test_the_list_shows_export_buttons_and_the_bulk_bar_by_permission(people, operator, make_staff, client_of):
    html = client_of(operator).get("/staff/subscribers/", {"status": "active"}).content.decode()
    assert 'href="/staff/bulk/subscribers/export/?status=active&amp;format=csv"' in html
    assert 'id="bulk-form"' in html and f'name="ids" value="{people["ivanov"].pk}" form="bulk-form"' in html
    support = client_of(make_staff(Role.SUPPORT)).get("/staff/subscribers/").content.decode()
    assert "/staff/bulk/subscribers/export/" not in support and 'id="bulk-form"' not in support
    assert "data-bulk-row" not in support
