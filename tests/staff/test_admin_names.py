"""The admin speaks the operator's language (issue 17): the task queue's section and the audit list's actions are
named, not shown as "TASKS DATABASE BACKEND" and "staff.login"."""

import pytest
from django.test import Client

from abonent.core.audit import action_label

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(admin) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def test_the_task_queue_has_a_name(admin_client):
    body = admin_client.get("/staff/admin/").content.decode()
    assert "Background tasks" in body and "Tasks Database Backend" not in body


def test_the_audit_list_names_its_actions(admin_client, make_staff):
    make_staff(username="kassir", password="s3cret-pass!")
    assert Client().post("/staff/", {"username": "kassir", "password": "s3cret-pass!"}).status_code == 302
    body = admin_client.get("/staff/admin/core/auditevent/").content.decode()
    assert "Signed in" in body and "Staff user created" in body
    assert ">staff.login<" not in body
    assert "?action=staff.login" in body  # the filter, by name
    filtered = admin_client.get("/staff/admin/core/auditevent/", {"action": "staff.login"}).content.decode()
    rows = filtered.split('id="result_list"')[1].split("</table>")[0]
    assert "Signed in" in rows and "Staff user created" not in rows


def test_the_admins_own_writes_are_named_after_the_model():
    assert action_label("admin.branch_changed") == "Changed in the administration: branch"
    assert action_label("something.unknown") == "something.unknown"
