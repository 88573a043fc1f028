"""The plan form and the catalog API carry the traffic terms rating uses: policy, direction, rounding."""

import datetime as dt

import pytest
from django.test import Client

from abonent.catalog.models import Plan
from abonent.core import clock
from abonent.staff.permissions import Role

BASE = {
    "service": None,
    "is_public": "on",
    "charge_mode": "monthly",
    "period_anchor": "calendar",
    "daily_pricing": "split",
    "proration_unit": "days",
    "monthly_fee": "700",
    "download_mbps": "500",
    "upload_mbps": "100",
}


@pytest.fixture
def client_of(make_staff):
    def make(role) -> Client:
        client = Client()
        client.force_login(make_staff(role))
        return client

    return make


def post_plan(client, internet, **fields):
    with clock.travel_to(dt.date(2026, 11, 16)):
        return client.post("/staff/catalog/plans/new/", {**BASE, "service": internet.pk, **fields})


def test_plan_form_saves_the_traffic_terms(client_of, internet, api):
    response = post_plan(
        client_of(Role.ADMIN),
        internet,
        code="metered-500",
        name="500 ГБ",
        included_gb="500",
        overage_price_per_gb="2",
        overage_rounding="per_mb",
        traffic_policy="both",
        traffic_direction="download",
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    plan = Plan.objects.get(code="metered-500")
    assert (plan.traffic_policy, plan.traffic_direction, plan.overage_rounding, plan.included_bytes) == (
        "both",
        "download",
        "per_mb",
        500 * 10**9,
    )
    body = api.get(f"/api/v1/plans/{plan.pk}").json()
    assert (body["traffic_policy"], body["traffic_direction"], body["overage_rounding"]) == (
        "both",
        "download",
        "per_mb",
    )


def test_a_charging_plan_needs_a_price_and_a_volume(client_of, internet):
    response = post_plan(
        client_of(Role.ADMIN),
        internet,
        code="broken",
        name="Broken",
        traffic_policy="overage",
        overage_rounding="per_gb",
    )
    assert response.status_code == 422
    assert not Plan.objects.filter(code="broken").exists()


def test_without_the_new_fields_the_model_defaults_apply(client_of, internet):
    response = post_plan(client_of(Role.ADMIN), internet, code="old-form", name="Old", overage_rounding="per_gb")
    assert response.status_code == 302
    plan = Plan.objects.get(code="old-form")
    assert (plan.traffic_policy, plan.traffic_direction) == ("fup", "both")
