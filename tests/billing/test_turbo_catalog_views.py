"""The catalog's turbo pages: the list, creating and editing an option in Mbit/s, and the plan pages' turbos."""

from decimal import Decimal

import pytest
from django.test import Client

from abonent.catalog import actions as catalog
from abonent.catalog.models import Plan, Turbo
from abonent.core.models import AuditEvent
from abonent.staff.permissions import Role

D = Decimal
NBSP = "\xa0"


def rub(amount: str) -> str:
    return f"{amount}{NBSP}₽"


@pytest.fixture
def admin_client(admin) -> Client:
    client = Client()
    client.force_login(admin)
    return client


@pytest.fixture
def plans(make_plan):
    return (
        make_plan("home-100", "650.00", name="Домашний 100", download_kbps=100_000, upload_kbps=50_000),
        make_plan("game-300", "900.00", name="Игровой 300", download_kbps=300_000, upload_kbps=100_000),
    )


@pytest.fixture
def turbo(admin, plans):
    return catalog.do_create_turbo(
        code="turbo-500", name="Турбо 500", download_kbps=512_000, upload_kbps=256_000, hours=3, price="50.00",
        plans=list(plans), acting_user=admin,
    )  # fmt: skip


def row_of(body: str, code: str) -> str:
    return body.split(f'data-turbo="{code}"')[1].split("</tr>")[0]


def test_list_shows_speeds_in_mbits_hours_price_and_the_plans(operator_client, turbo, plans, admin):
    catalog.do_create_turbo(
        code="old", name="Старый", download_kbps=200_500, upload_kbps=100_000, hours=24, price="1200",
        is_active=False, acting_user=admin,
    )  # fmt: skip
    body = operator_client.get("/staff/catalog/turbos/").content.decode()
    row = row_of(body, "turbo-500")
    assert "Турбо 500" in row and "turbo-500" in row
    assert "512 / 256" in row and '<td class="text-end">3</td>' in row and rub("50.00") in row
    assert f'<a href="/staff/catalog/plans/{plans[1].pk}/">Игровой 300</a>' in row
    assert f'<a href="/staff/catalog/plans/{plans[0].pk}/">Домашний 100</a>' in row
    assert "offered" in row and "not offered" not in row
    old = row_of(body, "old")
    assert "200.5 / 100" in old and rub("1,200.00") in old and "not offered" in old and "—" in old
    assert body.index('data-turbo="turbo-500"') < body.index('data-turbo="old"')  # offered ones first
    assert 'aria-current="page" href="/staff/catalog/turbos/">Turbo</a>' in body  # the tab
    # An operator reads; only a catalog manager gets the links to change.
    assert "/staff/catalog/turbos/new/" not in body and f"/staff/catalog/turbos/{turbo.pk}/edit/" not in body


def test_the_plan_pages_have_the_turbo_tab(operator_client, plans):
    body = operator_client.get("/staff/catalog/plans/").content.decode()
    assert 'href="/staff/catalog/turbos/">Turbo</a>' in body


def test_admin_creates_a_turbo_in_mbits_typed_the_russian_way(admin_client, plans):
    response = admin_client.post(
        "/staff/catalog/turbos/new/",
        {
            "name": "Ночной гигабит",
            "code": "night-1g",
            "download_mbps": "1 000",
            "upload_mbps": "0,512",
            "hours": "8",
            "price": "99,90",
            "is_active": "on",
            "plans": [plans[0].pk],
        },
        headers={"Accept-Language": "ru"},
    )
    assert response.status_code == 302 and response["Location"] == "/staff/catalog/turbos/"
    turbo = Turbo.objects.get(code="night-1g")
    assert (turbo.name, turbo.download_kbps, turbo.upload_kbps, turbo.hours, turbo.price, turbo.is_active) == (
        "Ночной гигабит",
        1_000_000,
        512,
        8,
        D("99.90"),
        True,
    )
    assert list(turbo.plans.all()) == [plans[0]]
    created = AuditEvent.objects.get(action="catalog.turbo_created")
    assert (created.actor.username, created.after["plans"]) == ("admin", [plans[0].pk])


def test_create_form_lists_active_plans_as_checkboxes(admin_client, plans, make_plan):
    make_plan("old", "400.00", name="Архивный", is_archived=True)
    body = admin_client.get("/staff/catalog/turbos/new/").content.decode()
    assert f'type="checkbox" name="plans" value="{plans[0].pk}"' in body
    assert "Архивный" not in body


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"hours": "169"}, "hours", "Ensure this value is less than or equal to 168."),
        ({"download_mbps": "0"}, "download_mbps", "Ensure this value is greater than or equal to 0.001."),
        ({"price": "-1"}, "price", "A price cannot be negative."),
        ({"code": "turbo-500"}, "code", "Turbo option with this Code already exists."),
    ],
)
def test_a_turbo_the_form_or_the_action_refuses_is_422_with_the_reason(admin_client, turbo, changes, field, message):
    data = {"name": "X", "code": "x", "download_mbps": "100", "upload_mbps": "100", "hours": "1", "price": "10"}
    response = admin_client.post("/staff/catalog/turbos/new/", {**data, **changes})
    assert response.status_code == 422
    body = response.content.decode()
    field_html = body.split(f'data-field="{field}"')[1].split('<div class="mb-2')[0]
    assert f'<div class="invalid-feedback d-block">{message}</div>' in field_html
    assert Turbo.objects.count() == 1


def test_edit_shows_the_option_in_mbits_and_saves_the_change(admin_client, turbo, plans, make_plan, admin):
    archived = make_plan("old", "400.00", name="Архивный", is_archived=True)
    catalog.do_update_turbo(turbo, acting_user=admin, plans=[*plans, archived])
    page = admin_client.get(f"/staff/catalog/turbos/{turbo.pk}/edit/").content.decode()
    assert 'name="download_mbps" value="512"' in page and 'name="upload_mbps" value="256"' in page
    assert 'name="price" value="50.00"' in page and 'name="hours" value="3"' in page
    # The archived plan offering it is listed (and checked), so saving keeps it.
    assert f'name="plans" value="{archived.pk}"' in page and "Архивный" in page
    response = admin_client.post(
        f"/staff/catalog/turbos/{turbo.pk}/edit/",
        {
            "name": "Турбо 600",
            "code": "turbo-500",
            "download_mbps": "600",
            "upload_mbps": "300",
            "hours": "4",
            "price": "60",
            "plans": [plans[1].pk, archived.pk],
        },
    )
    assert response.status_code == 302 and response["Location"] == "/staff/catalog/turbos/"
    turbo.refresh_from_db()
    assert (turbo.name, turbo.download_kbps, turbo.upload_kbps, turbo.hours, turbo.price, turbo.is_active) == (
        "Турбо 600",
        600_000,
        300_000,
        4,
        D("60.00"),
        False,  # the box left unticked: no longer offered
    )
    assert set(turbo.plans.all()) == {plans[1], archived}
    updated = AuditEvent.objects.filter(action="catalog.turbo_updated").latest("pk")
    assert updated.actor.username == "admin"


def test_edit_refused_by_the_action_is_422_and_changes_nothing(admin_client, turbo):
    response = admin_client.post(
        f"/staff/catalog/turbos/{turbo.pk}/edit/",
        {"name": "Турбо 500", "code": "turbo-500", "download_mbps": "512", "upload_mbps": "256", "hours": "3",
         "price": "-5", "is_active": "on"},
    )  # fmt: skip
    assert response.status_code == 422
    assert "A price cannot be negative." in response.content.decode()
    turbo.refresh_from_db()
    assert turbo.price == D("50.00")


def test_a_read_only_role_cannot_create_or_edit(client_of, turbo):
    for role in (Role.OPERATOR, Role.CASHIER):
        client = client_of(role)
        assert client.get("/staff/catalog/turbos/").status_code == 200
        assert client.get("/staff/catalog/turbos/new/").status_code == 403
        assert client.get(f"/staff/catalog/turbos/{turbo.pk}/edit/").status_code == 403
        created = client.post(
            "/staff/catalog/turbos/new/",
            {"name": "X", "code": "x", "download_mbps": "1", "upload_mbps": "1", "hours": "1", "price": "1"},
        )
        edited = client.post(
            f"/staff/catalog/turbos/{turbo.pk}/edit/",
            {"name": "X", "code": "x", "download_mbps": "1", "upload_mbps": "1", "hours": "1", "price": "1"},
        )
        assert (created.status_code, edited.status_code) == (403, 403)
    turbo.refresh_from_db()
    assert (Turbo.objects.count(), turbo.name) == (1, "Турбо 500")


def test_an_unknown_turbo_is_404(admin_client, db):
    assert admin_client.get("/staff/catalog/turbos/999999/edit/").status_code == 404


@pytest.fixture
def client_of(make_staff):
    def make(role) -> Client:
        client = Client()
        client.force_login(make_staff(role))
        return client

    return make


# --- plans ----------------------------------------------------------------------------------------------------


def test_plan_form_offers_active_turbos_and_creates_the_plan_with_them(admin_client, internet, admin):
    offered = catalog.do_create_turbo(
        code="turbo-500", name="Турбо 500", download_kbps=512_000, upload_kbps=256_000, hours=3, price="50.00",
        acting_user=admin,
    )  # fmt: skip
    catalog.do_create_turbo(
        code="old", name="Старый", download_kbps=1000, upload_kbps=1000, hours=1, price="1", is_active=False,
        acting_user=admin,
    )  # fmt: skip
    page = admin_client.get("/staff/catalog/plans/new/").content.decode()
    assert f'type="checkbox" name="turbos" value="{offered.pk}"' in page
    assert f"Турбо 500: 512/256 Mbit/s for 3 hours, {rub('50.00')}" in page
    assert "Старый" not in page
    response = admin_client.post(
        "/staff/catalog/plans/new/",
        {
            "name": "Домашний 100",
            "code": "home-100",
            "service": internet.pk,
            "charge_mode": "monthly",
            "period_anchor": "calendar",
            "daily_pricing": "split",
            "proration_unit": "days",
            "monthly_fee": "650",
            "download_mbps": "100",
            "upload_mbps": "50",
            "overage_rounding": "per_gb",
            "turbos": [offered.pk],
        },
    )
    plan = Plan.objects.get(code="home-100")
    assert response.status_code == 302 and response["Location"] == f"/staff/catalog/plans/{plan.pk}/"
    assert list(plan.turbos.all()) == [offered]


def test_plan_detail_lists_its_turbo_options(operator_client, turbo, plans, make_plan, admin):
    catalog.do_create_turbo(
        code="old", name="Старый", download_kbps=1000, upload_kbps=500, hours=1, price="1", is_active=False,
        plans=[plans[0]], acting_user=admin,
    )  # fmt: skip
    body = operator_client.get(f"/staff/catalog/plans/{plans[0].pk}/").content.decode()
    turbos = body.split('id="plan-turbos"')[1].split("</dd>")[0]
    assert f"Турбо 500: 512 / 256 Mbit/s, 3 hours, {rub('50.00')}" in turbos
    assert f"Старый: 1 / 0.5 Mbit/s, 1 hour, {rub('1.00')}" in turbos and "not offered" in turbos
    assert turbos.index("Турбо 500") < turbos.index("Старый")
    plain = make_plan("plain", "300.00", name="Простой")
    none = operator_client.get(f"/staff/catalog/plans/{plain.pk}/").content.decode()
    assert 'id="plan-turbos">—</dd>' in none
