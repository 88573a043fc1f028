"""The incidents API: the compensation needs an Idempotency-Key, credits once (a replay of the key, another key),
refuses absurd days with a field code and the wrong people with 403; reads are scoped by permission."""

import datetime as dt
from decimal import Decimal

import pytest

from abonent.billing.selectors import get_balance
from abonent.core import clock
from abonent.helpdesk.incidents import actions
from abonent.helpdesk.incidents.models import Compensation, CompensationLine
from abonent.staff.permissions import Role

from .conftest import LENINA_1_12, START

pytestmark = pytest.mark.django_db


@pytest.fixture
def resolved(customer, open_incident, admin):
    a = customer("5")
    incident = open_incident(areas=[LENINA_1_12])
    with clock.travel_to(START + dt.timedelta(hours=4)):
        actions.do_resolve_incident(incident, acting_user=admin)
    return incident, a


def _post(api, incident, body, **kwargs):
    with clock.travel_to(START + dt.timedelta(days=1)):
        return api.post(f"/api/v1/incidents/{incident.pk}/compensation", body, **kwargs)


def test_compensation_without_a_key_is_refused(api, resolved):
    incident, a = resolved
    response = _post(api, incident, {"days": 3}, key=None)
    assert response.status_code == 400 and response.json()["error"]["code"] == "idempotency_key_required"
    assert Compensation.objects.count() == 0 and get_balance(a).balance == Decimal("400.00")


def test_compensation_credits_once_by_key_and_by_incident(api, resolved):
    incident, a = resolved
    first = _post(api, incident, {"days": 3}, key="comp-1")
    replay = _post(api, incident, {"days": 3}, key="comp-1")
    other_key = _post(api, incident, {"days": 3}, key="comp-2")
    assert first.status_code == 201
    assert first.json() | {"created_at": None} == {
        "incident_id": incident.pk,
        "days": 3,
        "total": "60.00",
        "subscriptions": 1,
        "created_at": None,
        "created": True,
    }
    assert replay.json() == first.json()
    assert other_key.status_code == 201 and other_key.json()["created"] is False
    assert get_balance(a).balance == Decimal("460.00")
    assert CompensationLine.objects.count() == 1


@pytest.mark.parametrize(
    ("days", "code"), [(0, "days_out_of_range"), (-5, "days_out_of_range"), (10**6, "days_out_of_range")]
)
def test_absurd_days_are_a_422_with_the_field(api, resolved, days, code):
    incident, a = resolved
    response = _post(api, incident, {"days": days})
    assert response.status_code == 422
    assert [(f["field"], f["code"]) for f in response.json()["error"]["fields"]] == [("days", code)]
    assert Compensation.objects.count() == 0 and get_balance(a).balance == Decimal("400.00")


def test_a_torn_body_is_a_422_not_a_500(api, resolved):
    incident, _a = resolved
    assert _post(api, incident, '{"days": ').status_code in (400, 422)
    assert _post(api, incident, {"days": "many"}).status_code == 422
    assert Compensation.objects.count() == 0


def test_an_operator_and_a_branch_admin_get_403(api_of, resolved, branch):
    incident, a = resolved
    for client in (api_of(Role.OPERATOR), api_of(Role.ADMIN, branches=[branch])):
        assert _post(client, incident, {"days": 3}).status_code == 403
    assert Compensation.objects.count() == 0 and get_balance(a).balance == Decimal("400.00")


def test_an_unknown_incident_is_404(api):
    assert _post(api, type("I", (), {"pk": 999_999})(), {"days": 3}).status_code == 404


def test_reading_incidents(api, api_of, resolved):
    incident, _a = resolved
    listed = api.get("/api/v1/incidents?status=resolved").json()
    assert [(i["id"], i["affected_count"], i["compensation"]) for i in listed] == [(incident.pk, 1, None)]
    assert api.get(f"/api/v1/incidents/{incident.pk}").json()["status"] == "resolved"
    assert api.get("/api/v1/incidents").json() == []
    assert api_of(Role.CASHIER).get("/api/v1/incidents").status_code == 200
