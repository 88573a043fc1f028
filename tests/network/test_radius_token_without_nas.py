"""A RADIUS token stays one when it loses its last NAS (issue 11 review).

The NAS binding was the only thing keeping FreeRADIUS's token on the RADIUS endpoints: once its last NAS was
unbound, or the NAS deleted (the bindings cascade), the token kept in FreeRADIUS's config read every subscriber,
balance and ledger with its account's cashier role. Now the token is marked a RADIUS token
(``api.RadiusToken``) when it is bound, and a marked token with no NAS opens nothing.
"""

from __future__ import annotations

import importlib
import io
import json

import pytest
from django.apps import apps
from django.core.management import call_command
from django.test import Client

from abonent.api.actions import do_bind_api_token_to_nas, do_unbind_api_token_from_nas
from abonent.api.models import ApiTokenNas, RadiusToken
from abonent.network.models import AuthAttempt
from abonent.staff.actions import do_create_api_token, do_create_staff_user
from abonent.staff.models import ApiToken, StaffUser
from abonent.staff.permissions import Role

PASSWORD = "s3cret-pw"


def _client(plaintext: str, **kwargs) -> Client:
    return Client(headers={"Authorization": f"Bearer {plaintext}"}, **kwargs)


def _authorize(plaintext: str):
    body = {
        "User-Name": {"type": "string", "value": ["ivanov"]},
        "FreeRADIUS-Client-IP-Address": {"type": "ipaddr", "value": ["127.0.0.1"]},
    }
    return _client(plaintext).post("/api/v1/radius/authorize", json.dumps(body), content_type="application/json")


@pytest.fixture
def nas_a(make_nas):
    return make_nas("mikrotik", name="bras-a", ip_address="127.0.0.1")


@pytest.fixture
def unbound_token(radius_token, nas_a) -> str:
    """FreeRADIUS's token, bound to NAS A and then unbound from it."""
    do_bind_api_token_to_nas(radius_token[0], nas=nas_a)
    do_unbind_api_token_from_nas(ApiTokenNas.objects.get())
    return radius_token[1]


def test_an_unbound_radius_token_does_not_read_subscribers(make_subscriber, unbound_token):
    make_subscriber()

    response = _client(unbound_token).get("/api/v1/subscribers")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "radius_token_unbound"


def test_an_unbound_radius_token_does_not_read_a_balance(customer, unbound_token):
    """The account's cashier role reads balances and ledgers; the token may not."""
    response = _client(unbound_token).get(f"/api/v1/subscribers/{customer.pk}/balance")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "radius_token_unbound"
    assert "1000" not in response.content.decode()


def test_an_unbound_radius_token_does_not_authorize(customer, unbound_token):
    response = _authorize(unbound_token)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "radius_token_unbound"
    assert PASSWORD not in response.content.decode()
    assert not AuthAttempt.objects.exists()


def test_a_deleted_nas_leaves_its_radius_token_opening_nothing(make_subscriber, radius_token, nas_a):
    make_subscriber()
    do_bind_api_token_to_nas(radius_token[0], nas=nas_a)

    nas_a.delete()

    response = _client(radius_token[1]).get("/api/v1/subscribers")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "radius_token_unbound"


def test_an_unbound_radius_token_does_not_read_the_api_schema(unbound_token, settings):
    """/api/v1/openapi.json checks the token outside ninja: its refusal of a RADIUS token was a 500."""
    settings.ABONENT_API_DOCS_PUBLIC = False

    response = _client(unbound_token, raise_request_exception=False).get("/api/v1/openapi.json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "radius_token_unbound"


def test_a_bound_radius_token_does_not_read_the_api_schema(radius_token, nas_a, settings):
    settings.ABONENT_API_DOCS_PUBLIC = False
    do_bind_api_token_to_nas(radius_token[0], nas=nas_a)

    response = _client(radius_token[1], raise_request_exception=False).get("/api/v1/openapi.json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "radius_token_only"


def test_a_radius_token_bound_again_authorizes_and_still_opens_nothing_else(customer, radius_token, nas_a):
    do_bind_api_token_to_nas(radius_token[0], nas=nas_a)
    do_unbind_api_token_from_nas(ApiTokenNas.objects.get())

    do_bind_api_token_to_nas(radius_token[0], nas=nas_a)

    assert _authorize(radius_token[1]).status_code == 200
    assert _client(radius_token[1]).get("/api/v1/subscribers").status_code == 403


def test_the_command_marks_its_token(nas_a):
    out = io.StringIO()

    call_command("create_radius_token", "--nas", "bras-a", stdout=out, stderr=io.StringIO())

    token = ApiToken.objects.get(user__username="freeradius")
    assert RadiusToken.objects.filter(token=token).exists()


def test_a_service_accounts_token_never_bound_still_opens_the_api(make_subscriber):
    """A CRM integration's token is no RADIUS token."""
    make_subscriber()
    account = do_create_staff_user(username="crm", password=None, role=Role.OPERATOR, is_service_account=True)
    _token, plaintext = do_create_api_token(user=account, name="CRM")

    response = _client(plaintext).get("/api/v1/subscribers")

    assert response.status_code == 200
    assert len(response.json()["items"]) == 1


def test_the_migration_marks_tokens_bound_now_and_bound_before(radius_token, nas_a, make_nas):
    """Tokens bound before the mark existed: those bound now, and those whose binding the audit log remembers."""
    bound_now, bound_before = radius_token[0], do_create_api_token(user=radius_token[0].user, name="old")[0]
    never_bound = do_create_api_token(user=radius_token[0].user, name="spare")[0]
    do_bind_api_token_to_nas(bound_now, nas=nas_a)
    do_bind_api_token_to_nas(bound_before, nas=make_nas(name="bras-b", ip_address="127.0.0.2"))
    ApiTokenNas.objects.filter(token=bound_before).delete()
    RadiusToken.objects.all().delete()
    migration = importlib.import_module("abonent.api.migrations.0004_radius_token")

    migration.mark_radius_tokens(apps, None)

    marked = set(RadiusToken.objects.values_list("token_id", flat=True))
    assert marked == {bound_now.pk, bound_before.pk}
    assert never_bound.pk not in marked


def test_the_admin_keeps_an_account_holding_a_radius_token_a_service_account(admin, radius_token, nas_a):
    """Unticking "service account" would take its tokens out of TokenAuth's RADIUS check."""
    do_bind_api_token_to_nas(radius_token[0], nas=nas_a)
    account = radius_token[0].user
    client = Client()
    client.force_login(admin)

    response = client.post(
        f"/staff/admin/staff/staffuser/{account.pk}/change/",
        {"username": account.username, "full_name": "", "email": "", "role": Role.CASHIER, "is_active": "on"},
    )

    assert response.status_code == 200
    assert "holds a RADIUS token" in response.content.decode()
    assert StaffUser.objects.get(pk=account.pk).is_service_account is True


def test_the_admin_lists_radius_tokens_and_cannot_remove_the_mark(admin, unbound_token):
    client = Client()
    client.force_login(admin)
    mark = RadiusToken.objects.get()

    listing = client.get("/staff/admin/api/radiustoken/")
    deleted = client.post(f"/staff/admin/api/radiustoken/{mark.pk}/delete/", {"post": "yes"})

    assert listing.status_code == 200 and "FreeRADIUS" in listing.content.decode()
    assert deleted.status_code == 403
    assert RadiusToken.objects.filter(pk=mark.pk).exists()
