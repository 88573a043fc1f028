"""API tokens per integration: the scopes are enforced before any endpoint runs, and only ever narrow the role."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import RequestFactory

from abonent.api.errors import ApiError
from abonent.core.models import AuditEvent
from abonent.integrations.webhooks import actions, scopes
from abonent.integrations.webhooks.models import EventType, Scope
from abonent.payments.models import Payment
from abonent.subscribers.models import Subscriber
from conftest import JsonApi


@pytest.fixture
def integration(admin):
    endpoint, _secret = actions.do_create_endpoint(
        actions.EndpointData(name="CRM", url="https://crm.example.net/hook", event_types=[EventType.PAYMENT_RECEIVED]),
        acting_user=admin,
    )
    return endpoint


@pytest.fixture
def token_client(integration, admin):
    def make(*scope_names) -> JsonApi:
        _row, plaintext = actions.do_create_integration_token(
            integration, name="sync", scopes=list(scope_names), acting_user=admin
        )
        return JsonApi(headers={"Authorization": f"Bearer {plaintext}"})

    return make


def _code(response) -> str:
    return response.json()["error"]["code"]


def test_a_read_only_token_reads_and_is_refused_any_write(token_client, make_subscriber):
    subscriber = make_subscriber()
    api = token_client(Scope.READ_ONLY, Scope.SUBSCRIBERS)
    listed = api.get("/api/v1/subscribers")
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()["items"]] == [subscriber.pk]
    created = api.post("/api/v1/subscribers", {"branch_id": subscriber.branch_id, "last_name": "Петров"})
    assert (created.status_code, _code(created)) == (403, "scope_read_only")
    changed = api.patch(
        f"/api/v1/subscribers/{subscriber.pk}", '{"last_name": "Сидоров"}', content_type="application/json"
    )
    assert (changed.status_code, _code(changed)) == (403, "scope_read_only")
    assert Subscriber.objects.count() == 1
    assert Subscriber.objects.get().last_name == "Иванов"


def test_a_token_without_the_payments_scope_is_refused_payment_endpoints(token_client, make_subscriber):
    subscriber = make_subscriber()
    api = token_client(Scope.SUBSCRIBERS)
    assert api.get(f"/api/v1/subscribers/{subscriber.pk}").status_code == 200
    for response in (
        api.get("/api/v1/payments"),
        api.post("/api/v1/payments", {"channel": "manual", "subscriber_id": subscriber.pk, "amount": "650.00"}),
        api.get(f"/api/v1/subscribers/{subscriber.pk}/balance"),
        api.post(f"/api/v1/subscribers/{subscriber.pk}/adjustments", {"amount": "100.00", "reason": "x"}),
    ):
        assert (response.status_code, _code(response)) == (403, "scope_missing")
    assert Payment.objects.count() == 0


def test_a_payments_token_takes_a_payment_but_not_subscribers(token_client, make_subscriber):
    subscriber = make_subscriber()
    api = token_client(Scope.PAYMENTS)
    taken = api.post("/api/v1/payments", {"channel": "manual", "subscriber_id": subscriber.pk, "amount": "650.00"})
    assert taken.status_code == 201, taken.json()
    assert Payment.objects.get().amount == Decimal("650.00")
    assert taken.json()["balance"]["balance"] == "650.00"
    refused = api.get(f"/api/v1/subscribers/{subscriber.pk}")
    assert (refused.status_code, _code(refused)) == (403, "scope_missing")


def test_a_token_that_takes_payments_cannot_also_change_subscribers(integration, admin):
    with pytest.raises(ValidationError) as refused:
        actions.do_create_integration_token(
            integration, name="all", scopes=[Scope.PAYMENTS, Scope.SUBSCRIBERS], acting_user=admin
        )
    assert refused.value.error_dict["scopes"][0].code == "scopes_conflict"
    # Reading both is fine, as an operator
    row, _plaintext = actions.do_create_integration_token(
        integration, name="read", scopes=[Scope.PAYMENTS, Scope.SUBSCRIBERS, Scope.READ_ONLY], acting_user=admin
    )
    assert row.token.user.role == "operator"


def test_endpoints_of_no_area_are_outside_every_token(token_client):
    api = token_client(Scope.SUBSCRIBERS, Scope.PAYMENTS, Scope.TICKETS, Scope.READ_ONLY)
    for path in ("/api/v1/documents", "/api/v1/exemptions", "/api/v1/dunning-rules"):
        response = api.get(path)
        assert (response.status_code, _code(response)) == (403, "scope_outside")


@pytest.mark.parametrize(
    ("method", "path", "held", "code"),
    [
        ("GET", "/api/v1/tickets", {Scope.SUBSCRIBERS}, "scope_missing"),
        ("GET", "/api/v1/tickets/5", {Scope.TICKETS}, None),
        ("POST", "/api/v1/tickets/5/comments", {Scope.TICKETS, Scope.READ_ONLY}, "scope_read_only"),
        ("GET", "/api/v1/subscribers/5/ledger", {Scope.SUBSCRIBERS}, "scope_missing"),
        ("GET", "/api/v1/subscribers/5/ledger", {Scope.PAYMENTS}, None),
        ("GET", "/api/v1/subscribersX", {Scope.SUBSCRIBERS}, "scope_outside"),
        ("GET", "/api/v1/radius/authorize", {Scope.SUBSCRIBERS, Scope.PAYMENTS, Scope.READ_ONLY}, "scope_outside"),
    ],
)
def test_the_area_of_each_path(integration, admin, method, path, held, code):
    row, _plaintext = actions.do_create_integration_token(integration, name="t", scopes=list(held), acting_user=admin)
    request = RequestFactory().generic(method, path)
    if code is None:
        scopes.check_scopes(request, row.token)
    else:
        with pytest.raises(ApiError) as refused:
            scopes.check_scopes(request, row.token)
        assert (refused.value.status, refused.value.code) == (403, code)


def test_a_revoked_token_opens_nothing_and_both_are_audited(integration, admin, make_subscriber):
    make_subscriber()
    row, plaintext = actions.do_create_integration_token(
        integration, name="sync", scopes=[Scope.SUBSCRIBERS], acting_user=admin
    )
    api = JsonApi(headers={"Authorization": f"Bearer {plaintext}"})
    assert api.get("/api/v1/subscribers").status_code == 200
    actions.do_revoke_integration_token(row, acting_user=admin)
    assert api.get("/api/v1/subscribers").status_code == 401
    created = AuditEvent.objects.get(action="webhooks.token_created")
    assert created.after["scopes"] == ["subscribers"]
    assert plaintext not in str(created.after)
    assert AuditEvent.objects.filter(action="webhooks.token_revoked", actor=admin).count() == 1


def test_scopes_are_validated(integration, admin):
    with pytest.raises(Exception) as refused:
        actions.do_create_integration_token(integration, name="", scopes=[Scope.READ_ONLY, "root"], acting_user=admin)
    assert {name: [e.code for e in errors] for name, errors in refused.value.error_dict.items()} == {
        "name": ["required"],
        "scopes": ["invalid_choice"],
    }
    with pytest.raises(Exception) as only_read:
        actions.do_create_integration_token(integration, name="x", scopes=[Scope.READ_ONLY], acting_user=admin)
    assert only_read.value.error_dict["scopes"][0].code == "required"
    with pytest.raises(Exception) as past:
        actions.do_create_integration_token(
            integration,
            name="x",
            scopes=[Scope.SUBSCRIBERS],
            expires_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
            acting_user=admin,
        )
    assert past.value.error_dict["expires_at"][0].code == "in_past"


def test_a_persons_token_is_not_narrowed(api):
    assert api.get("/api/v1/documents").status_code == 200
