"""The dunning API: a subscriber's access and its history, staff changes with idempotent retries, the queue,
exemptions and rules; permission refusals (403), another branch's subscriber (404), bad input (422)."""

from __future__ import annotations

import datetime as dt

import pytest

from abonent.core import clock
from abonent.dunning import actions
from abonent.dunning.models import AccessState, AccessTransition, Exemption
from abonent.staff.permissions import Role
from abonent.subscribers.models import SubscriberGroup

from .console_data import RESTRICTED_AT, bring_to, monthly_plan, paying_subscriber

pytestmark = pytest.mark.django_db
V1 = "/api/v1"


@pytest.fixture
def plan(make_plan):
    return monthly_plan(make_plan)


@pytest.fixture
def customer(make_subscriber, plan, admin, settings):
    settings.ABONENT_QUIET_HOURS = ""
    return paying_subscriber(make_subscriber, plan, admin)


@pytest.fixture
def mid_november():
    with clock.travel_to(dt.datetime(2026, 11, 10, 12, tzinfo=dt.UTC)):
        yield


def test_the_access_of_a_debtor(customer, admin, api_of):
    bring_to(customer, "restricted", admin)
    with clock.travel_to(RESTRICTED_AT):
        response = api_of(Role.CASHIER).get(f"{V1}/subscribers/{customer.pk}/access")
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("state", "owed", "runout_on", "days_left", "exempt", "reason")} == {
        "state": "restricted",
        "owed": "600.00",
        "runout_on": "2026-12-01",
        "days_left": 0,
        "exempt": False,
        "reason": "",
    }
    assert body["since"].startswith("2026-12-01T06:00")


def test_a_subscriber_never_evaluated_is_active(customer, api):
    body = api.get(f"{V1}/subscribers/{customer.pk}/access").json()
    assert (body["state"], body["owed"], body["days_left"]) == ("active", "0.00", None)


def test_transitions_page_newest_first(customer, admin, api, mid_november):
    actions.do_block_access(customer, acting_user=admin, reason="Первый")
    actions.do_unblock_access(customer, acting_user=admin, reason="Снят")
    actions.do_terminate_access(customer, acting_user=admin, reason="Расторгнут")
    first = api.get(f"{V1}/subscribers/{customer.pk}/access/transitions", {"limit": 2}).json()
    assert [(t["from_state"], t["to_state"]) for t in first["items"]] == [
        ("active", "terminated"),
        ("blocked", "active"),
    ]
    assert first["items"][0]["actor_id"] == admin.pk and first["items"][0]["reason"] == "Расторгнут"
    rest = api.get(f"{V1}/subscribers/{customer.pk}/access/transitions", {"limit": 2, "cursor": first["next_cursor"]})
    assert [(t["from_state"], t["to_state"]) for t in rest.json()["items"]] == [("active", "blocked")]
    assert rest.json()["next_cursor"] is None
    bad = api.get(f"{V1}/subscribers/{customer.pk}/access/transitions", {"cursor": "abc"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["code"] == "cursor_invalid"


def test_block_retried_with_the_same_key_blocks_once(customer, api, mid_november):
    url = f"{V1}/subscribers/{customer.pk}/access/block"
    first = api.post(url, {"reason": "Порча"}, key="block-1")
    again = api.post(url, {"reason": "Порча"}, key="block-1")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and first.json()["state"] == "blocked"
    assert AccessTransition.objects.filter(subscriber=customer).count() == 1
    other = api.post(url, {"reason": "Другое"}, key="block-1")
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    fresh = api.post(url, {"reason": "Порча"})
    assert fresh.status_code == 422
    assert fresh.json()["error"]["fields"] == [
        {"field": None, "code": "already_blocked", "message": "Access is already blocked."}
    ]


def test_unblock_terminate_reinstate(customer, api, mid_november):
    base = f"{V1}/subscribers/{customer.pk}/access"
    assert api.post(f"{base}/block", {"reason": "Порча"}).json()["state"] == "blocked"
    assert api.post(f"{base}/unblock", {"reason": "Снят"}).json()["state"] == "active"
    assert api.post(f"{base}/terminate", {"reason": "Расторгнут"}).json()["reason"] == "Расторгнут"
    assert api.post(f"{base}/reinstate", {"reason": "Ошибка"}).json()["state"] == "active"


def test_a_block_without_a_reason_is_a_field_error(customer, api):
    empty = api.post(f"{V1}/subscribers/{customer.pk}/access/block", {"reason": " "})
    missing = api.post(f"{V1}/subscribers/{customer.pk}/access/block", {})
    assert empty.status_code == missing.status_code == 422
    assert empty.json()["error"]["fields"][0]["field"] == "reason"
    assert missing.json()["error"]["fields"][0] == {
        "field": "reason",
        "code": "missing",
        "message": "This field is required.",
    }
    assert not AccessState.objects.exists()


def test_refusals_write_nothing(customer, api_of, make_staff, other_branch, api_as):
    base = f"{V1}/subscribers/{customer.pk}/access"
    cashier, operator = api_of(Role.CASHIER), api_of(Role.OPERATOR)
    assert cashier.post(f"{base}/block", {"reason": "Долг"}).status_code == 403
    assert operator.post(f"{base}/terminate", {"reason": "Долг"}).status_code == 403
    assert api_of(Role.ENGINEER).get(base).status_code == 403
    outsider = api_as(make_staff(Role.OPERATOR, branches=[other_branch]))
    for response in (outsider.get(base), outsider.post(f"{base}/block", {"reason": "Долг"})):
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert outsider.get(f"{V1}/subscribers/{customer.pk}/access/transitions").status_code == 404
    assert api_as(None).get(base).status_code == 401
    assert not AccessState.objects.exists()


def test_a_replay_checks_access_again(customer, make_staff, api_as, mid_november, branch, other_branch):
    operator = make_staff(Role.OPERATOR, branches=[branch])
    client = api_as(operator)
    url = f"{V1}/subscribers/{customer.pk}/access/block"
    assert client.post(url, {"reason": "Порча"}, key="k").status_code == 200
    operator.branches.set([other_branch])
    operator._branch_ids_cache = None
    assert client.post(url, {"reason": "Порча"}, key="k").status_code == 404


def test_the_queue_by_state_and_branch_with_pages(make_subscriber, plan, admin, api_of, other_branch, settings):
    settings.ABONENT_QUIET_HOURS = ""
    here = [paying_subscriber(make_subscriber, plan, admin, last_name=f"Должник{i}") for i in range(3)]
    there = paying_subscriber(make_subscriber, plan, admin, branch_obj=other_branch, last_name="Чужой")
    bring_to(here[0], "restricted", admin)  # the sweep restricts all four
    with clock.travel_to(RESTRICTED_AT):
        actions.do_block_access(here[2], acting_user=admin, reason="Порча")
    client = api_of(Role.OPERATOR)
    first = client.get(f"{V1}/access-states", {"state": "restricted", "limit": 2}).json()
    rest = client.get(f"{V1}/access-states", {"state": "restricted", "limit": 2, "cursor": first["next_cursor"]}).json()
    ids = [i["subscriber_id"] for i in first["items"] + rest["items"]]
    assert ids == sorted([here[0].pk, here[1].pk, there.pk]) and rest["next_cursor"] is None
    assert {i["owed"] for i in first["items"]} == {"600.00"}
    local = api_of(Role.OPERATOR, branches=[here[0].branch]).get(f"{V1}/access-states").json()
    assert sorted(i["subscriber_id"] for i in local["items"]) == [s.pk for s in here]
    by_branch = client.get(f"{V1}/access-states", {"branch_id": other_branch.pk}).json()
    assert [i["account_number"] for i in by_branch["items"]] == [there.account_number]
    assert client.get(f"{V1}/access-states", {"state": "happy"}).status_code == 422


def test_exemptions_created_listed_and_revoked(customer, api, mid_november):
    hospitals = SubscriberGroup.objects.create(name="Больницы")
    created = api.post(
        f"{V1}/exemptions", {"subscriber_id": customer.pk, "reason": "Школа", "expires_on": "2026-12-31"}, key="ex-1"
    )
    retried = api.post(
        f"{V1}/exemptions", {"subscriber_id": customer.pk, "reason": "Школа", "expires_on": "2026-12-31"}, key="ex-1"
    )
    assert created.status_code == retried.status_code == 201 and created.json() == retried.json()
    assert Exemption.objects.count() == 1
    group = api.post(f"{V1}/exemptions", {"group_id": hospitals.pk, "reason": "ЦРБ", "expires_on": "2027-01-31"})
    assert group.json()["status"] == "active" and group.json()["group_id"] == hospitals.pk
    revoked = api.post(f"{V1}/exemptions/{created.json()['id']}/revoke", {"reason": "Закончилось"})
    assert revoked.json()["status"] == "revoked"
    assert [e["reason"] for e in api.get(f"{V1}/exemptions", {"status": "active"}).json()["items"]] == ["ЦРБ"]
    assert [e["reason"] for e in api.get(f"{V1}/exemptions", {"status": "revoked"}).json()["items"]] == ["Школа"]
    again = api.post(f"{V1}/exemptions/{created.json()['id']}/revoke", {})
    assert again.status_code == 422 and again.json()["error"]["fields"][0]["code"] == "already_revoked"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"reason": "Школа", "expires_on": "2026-12-31"}, "subscriber_id", "scope"),
        ({"subscriber_id": 0, "reason": "Школа", "expires_on": "2026-12-31"}, "subscriber_id", "greater_than_equal"),
        ({"subscriber_id": "SUB", "reason": "Школа", "expires_on": "2026-01-01"}, "expires_on", "dates"),
        (
            {"subscriber_id": "SUB", "reason": "Школа", "expires_on": "31.12.2026"},
            "expires_on",
            "date_from_datetime_parsing",
        ),
        ({"subscriber_id": "SUB", "reason": "", "expires_on": "2026-12-31"}, "reason", "required"),
        ({"group_id": 999999, "reason": "Школа", "expires_on": "2026-12-31"}, "group_id", "not_found"),
    ],
)
def test_bad_exemptions_are_field_errors(body, field, code, customer, api, mid_november):
    if body.get("subscriber_id") == "SUB":
        body = {**body, "subscriber_id": customer.pk}
    response = api.post(f"{V1}/exemptions", body)
    assert response.status_code == 422
    assert (response.json()["error"]["fields"][0]["field"], response.json()["error"]["fields"][0]["code"]) == (
        field,
        code,
    )
    assert not Exemption.objects.exists()


def test_exemption_refusals(customer, api_of, make_staff, other_branch, api_as, admin, branch, mid_november):
    hospitals = SubscriberGroup.objects.create(name="Больницы")
    body = {"subscriber_id": customer.pk, "reason": "Школа", "expires_on": "2026-12-31"}
    assert api_of(Role.CASHIER).post(f"{V1}/exemptions", body).status_code == 403
    outsider = api_as(make_staff(Role.OPERATOR, branches=[other_branch]))
    assert outsider.post(f"{V1}/exemptions", body).status_code == 404
    local = api_as(make_staff(Role.OPERATOR, branches=[branch]))
    group_body = {"group_id": hospitals.pk, "reason": "ЦРБ", "expires_on": "2026-12-31"}
    assert local.post(f"{V1}/exemptions", group_body).status_code == 403
    assert not Exemption.objects.exists()
    mine = actions.do_create_exemption(
        subscriber=customer, reason="Школа", expires_on=dt.date(2026, 12, 31), acting_user=admin
    )
    assert outsider.post(f"{V1}/exemptions/{mine.pk}/revoke", {}).status_code == 404
    assert outsider.get(f"{V1}/exemptions").json()["items"] == []
    mine.refresh_from_db()
    assert mine.revoked_at is None


def test_rules(api, admin, api_of):
    actions.do_save_rule(None, acting_user=admin, name="Все", warn_days=3, suspend_after_days=None)
    body = api_of(Role.SUPPORT).get(f"{V1}/dunning-rules").json()
    assert [(r["name"], r["is_default"], r["warn_days"], r["suspend_after_days"]) for r in body] == [
        ("Все", True, 3, None)
    ]
    assert api_of(Role.ENGINEER).get(f"{V1}/dunning-rules").status_code == 403
