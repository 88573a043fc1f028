import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from abonent.core.models import AuditEvent
from abonent.staff.permissions import Role
from abonent.subscribers.models import Subscriber


def test_pages_need_a_login(client, db):
    response = client.get("/staff/subscribers/")
    assert response.status_code == 302 and response["Location"].startswith("/staff/?next=")


def test_list_searches_and_htmx_gets_only_the_results(operator_client, make_subscriber):
    make_subscriber(last_name="Семёнов")
    page = operator_client.get("/staff/subscribers/", {"q": "семенов"})
    assert page.status_code == 200 and "Семёнов" in page.content.decode()
    assert "<nav" in page.content.decode()
    partial = operator_client.get(
        "/staff/subscribers/", {"q": "семенов"}, headers={"HX-Request": "true", "HX-Target": "results"}
    )
    assert "Семёнов" in partial.content.decode() and "<nav" not in partial.content.decode().split("<table")[0]


def test_list_query_count_does_not_grow_with_rows(operator_client, make_subscriber):
    for i in range(3):
        make_subscriber(last_name=f"Абонент{i}", phone=f"+7916123450{i}")
    with CaptureQueriesContext(connection) as few:
        operator_client.get("/staff/subscribers/")
    for i in range(3, 10):
        make_subscriber(last_name=f"Абонент{i}", phone=f"+7916123451{i}")
    with CaptureQueriesContext(connection) as many:
        operator_client.get("/staff/subscribers/")
    assert len(many) == len(few) <= 12


def test_create_through_the_form(operator_client, branch):
    response = operator_client.post(
        "/staff/subscribers/new/",
        {
            "kind": "individual",
            "branch_id": branch.pk,
            "last_name": "Смирнова",
            "first_name": "Ольга",
            "phone": "8 903 111-22-33",
            "city": "Тверь",
            "street": "ул. Мира",
            "house": "3",
            "consent_personal_data": "on",
        },
    )
    subscriber = Subscriber.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/staff/subscribers/{subscriber.pk}/"
    assert subscriber.contacts.get().value == "+79031112233"
    assert subscriber.consent_personal_data


def test_invalid_phone_in_the_form_shows_the_error_and_writes_nothing(operator_client, branch):
    response = operator_client.post(
        "/staff/subscribers/new/",
        {
            "kind": "individual",
            "branch_id": branch.pk,
            "last_name": "Смирнова",
            "first_name": "Ольга",
            "phone": "12345",
        },
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 422
    assert "“12345” is not a valid phone number." in response.content.decode()
    assert Subscriber.objects.count() == 0
    assert not AuditEvent.objects.filter(action__startswith="subscriber.").exists()


def test_card_shows_the_subscriber_and_its_panels(operator_client, make_subscriber):
    subscriber = make_subscriber()
    body = operator_client.get(f"/staff/subscribers/{subscriber.pk}/").content.decode()
    assert subscriber.account_number in body and "Иванов Иван Петрович" in body
    assert "+7 916 123-45-67" in body
    for panel in ("contacts", "addresses", "equipment", "connection", "notes", "history"):
        assert f'id="panel-{panel}"' in body


def test_support_does_not_see_passport_data(make_staff, make_subscriber):
    subscriber = make_subscriber(passport_series="2804", passport_number="987650")
    client = Client()
    client.force_login(make_staff(Role.SUPPORT))
    body = client.get(f"/staff/subscribers/{subscriber.pk}/").content.decode()
    assert "987650" not in body
    assert 'id="panel-history"' not in body


def test_subscriber_of_another_branch_is_not_found(make_staff, make_subscriber, branch, other_branch):
    subscriber = make_subscriber(branch_obj=other_branch)
    client = Client()
    client.force_login(make_staff(Role.OPERATOR, branches=[branch]))
    assert client.get(f"/staff/subscribers/{subscriber.pk}/").status_code == 404


def test_cashier_cannot_open_the_create_form(make_staff):
    client = Client()
    client.force_login(make_staff(Role.CASHIER))
    assert client.get("/staff/subscribers/new/").status_code == 403


def test_htmx_panel_post_adds_a_contact_and_rerenders_the_panel(operator_client, make_subscriber):
    subscriber = make_subscriber()
    response = operator_client.post(
        f"/staff/subscribers/{subscriber.pk}/contacts/",
        {"kind": "phone", "value": "+7 903 555 66 77"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<section class="card mb-3 panel-card" id="panel-contacts"')
    assert "+7 903 555-66-77" in response.content.decode()
    bad = operator_client.post(
        f"/staff/subscribers/{subscriber.pk}/contacts/",
        {"kind": "phone", "value": "abc"},
        headers={"HX-Request": "true"},
    )
    assert bad.status_code == 422 and "is not a valid phone number" in bad.content.decode()
    assert subscriber.contacts.count() == 2


def test_close_and_reopen_from_the_card(operator_client, make_subscriber):
    subscriber = make_subscriber()
    operator_client.post(f"/staff/subscribers/{subscriber.pk}/close/", {"reason": "переезд"})
    subscriber.refresh_from_db()
    assert subscriber.is_closed and subscriber.close_reason == "переезд"
    operator_client.post(f"/staff/subscribers/{subscriber.pk}/reopen/")
    subscriber.refresh_from_db()
    assert not subscriber.is_closed


def test_install_a_new_device_from_the_card(operator_client, make_subscriber):
    subscriber = make_subscriber()
    response = operator_client.post(
        f"/staff/subscribers/{subscriber.pk}/equipment/",
        {"serial_or_mac": "ZTEGC0000001", "ownership": "rent", "kind": "ont", "vendor": "ZTE", "model": "F660"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and "ZTEGC0000001" in response.content.decode()
    assert subscriber.equipment_assignments.get().equipment.vendor == "ZTE"


@pytest.mark.parametrize("path", ["note", "connection"])
def test_notes_and_history_events(operator_client, make_subscriber, path):
    subscriber = make_subscriber()
    url = {"note": "notes", "connection": "connection"}[path]
    data = (
        {"text": "Звонил, просил перезвонить"}
        if path == "note"
        else {"kind": "visit", "happened_on": "2026-11-20", "comment": "замена ONT"}
    )
    response = operator_client.post(f"/staff/subscribers/{subscriber.pk}/{url}/", data, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert (data.get("text") or data["comment"]) in response.content.decode()


def test_change_history_shows_labels_not_codes(make_subscriber, operator_client, operator, other_branch):
    from abonent.subscribers import actions

    subscriber = make_subscriber()
    actions.do_update_subscriber(subscriber, changes={"branch_id": other_branch.pk}, acting_user=operator)
    actions.do_close_subscriber(subscriber, reason="переезд", acting_user=operator)
    body = operator_client.get(f"/staff/subscribers/{subscriber.pk}/").content.decode()
    panel = body.split('id="panel-history"')[1]
    assert "Account closed" in panel and "Subscriber changed" in panel and "Клин" in panel
    assert "Closed" in panel  # the status choice label, not the code "closed"
    assert "subscriber.updated" not in panel
