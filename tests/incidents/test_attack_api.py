"""Attack review of the incidents API: a JSON ``days`` that is no integer ("1_0", which pydantic reads as 10, or
``true``, read as 1) credits nothing; a key reused with other days, or by another user, is no second credit; a
cashier's and a portal's tokens cannot compensate."""

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
    return _resolved(customer, open_incident, admin)


def _resolved(customer, open_incident, admin):
    a = customer("5")
    incident = open_incident(areas=[LENINA_1_12])
    with clock.travel_to(START + dt.timedelta(hours=4)):
        actions.do_resolve_incident(incident, acting_user=admin)
    return incident, a


def _post(api, incident, body, **kwargs):
    with clock.travel_to(START + dt.timedelta(days=1)):
        return api.post(f"/api/v1/incidents/{incident.pk}/compensation", body, **kwargs)


@pytest.mark.parametrize("days", ["1_0", True, " 1_5 "])
def test_days_that_are_no_json_integer_are_a_422_and_credit_nothing(api, resolved, days):
    incident, a = resolved
    response = _post(api, incident, {"days": days})
    assert response.status_code == 422, response.content
    assert [f["field"] for f in response.json()["error"]["fields"]] == ["days"]
    assert Compensation.objects.count() == 0 and get_balance(a).balance == Decimal("400.00")


def test_defence_a_key_reused_with_other_days_or_by_another_admin(api, api_of, resolved):
    # Defence that holds: the same key with other days is a 409; another administrator's same key is their own
    # request, answered "compensated before" without a credit.
    incident, a = resolved
    assert _post(api, incident, {"days": 3}, key="k").status_code == 201
    assert _post(api, incident, {"days": 5}, key="k").status_code == 409
    other = _post(api_of(Role.ADMIN), incident, {"days": 3}, key="k")
    assert other.status_code == 201 and other.json()["created"] is False
    assert get_balance(a).balance == Decimal("460.00") and CompensationLine.objects.count() == 1


def test_defence_a_cashier_and_a_branch_admin_cannot_compensate(api_of, resolved, branch):
    incident, a = resolved
    for client in (api_of(Role.CASHIER), api_of(Role.ADMIN, branches=[branch])):
        response = _post(client, incident, {"days": 3})
        assert response.status_code == 403
    assert Compensation.objects.count() == 0 and get_balance(a).balance == Decimal("400.00")


@pytest.mark.django_db(transaction=True)
def test_a_compensation_waiting_past_its_lock_deadline_is_a_503_and_the_retry_credits_once(
    api, customer, open_incident, admin, monkeypatch
):
    # A long compensation holds the incident's row; a second request waits its lock deadline: nothing was done and a
    # retry with the same key may succeed, so 503 "busy" (the API's promise for a deadline), not a 500.
    import threading

    from django.db import connection, connections, transaction

    from abonent.core import deadlines
    from abonent.helpdesk.incidents import compensation
    from abonent.helpdesk.incidents.models import Incident

    if connection.vendor != "postgresql":  # before any row is written: SQLite's flush refuses the ledger's rows
        pytest.skip("PostgreSQL: a row lock held by another connection")
    incident, a = _resolved(customer, open_incident, admin)
    monkeypatch.setattr(compensation, "db_deadline", lambda **kw: deadlines.db_deadline(lock=0.5, statement=10))
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                Incident.objects.select_for_update().get(pk=incident.pk)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        busy = _post(api, incident, {"days": 3}, key="busy-1")
    finally:
        release.set()
        holder.join(10)
    assert busy.status_code == 503, busy.content
    assert busy.json()["error"]["code"] == "busy"
    assert Compensation.objects.count() == 0
    retry = _post(api, incident, {"days": 3}, key="busy-1")
    assert retry.status_code == 201 and retry.json()["created"] is True
    assert get_balance(a).balance == Decimal("460.00")
