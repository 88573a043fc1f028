"""Who may call the API: bearer tokens, roles and branch limits."""

from __future__ import annotations

import datetime as dt

import time_machine
from django.test import Client

from abonent.core import clock
from abonent.staff.actions import do_create_api_token, do_create_staff_user, do_revoke_api_token
from abonent.staff.permissions import Role

NOT_AUTHENTICATED = {
    "error": {
        "code": "not_authenticated",
        "message": "Send a valid API token: Authorization: Bearer <token>.",
        "fields": [],
    }
}


def test_no_token_is_401_with_a_bearer_challenge(db, branch, written):
    before = written()

    response = Client().post(
        "/api/v1/subscribers",
        {"branch_id": branch.pk, "last_name": "Петров", "first_name": "Пётр"},
        content_type="application/json",
    )

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert response["WWW-Authenticate"] == 'Bearer realm="abonent"'
    assert written() == before


def test_wrong_token_is_401(db, make_subscriber):
    make_subscriber()
    client = Client(headers={"Authorization": "Bearer abn_00000000_not-a-real-token"})

    response = client.get("/api/v1/subscribers")

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert response["WWW-Authenticate"] == 'Bearer realm="abonent"'


def test_another_auth_scheme_is_401(db, api_token):
    client = Client(headers={"Authorization": f"Token {api_token}"})

    response = client.get("/api/v1/subscribers")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_revoked_token_is_401(admin, branch, written):
    token, plaintext = do_create_api_token(user=admin, name="integration")
    client = Client(headers={"Authorization": f"Bearer {plaintext}"})
    assert client.get("/api/v1/subscribers").status_code == 200
    do_revoke_api_token(token=token, acting_user=admin, reason="leaked")
    before = written()

    response = client.post(
        "/api/v1/subscribers",
        {"branch_id": branch.pk, "last_name": "Петров", "first_name": "Пётр"},
        content_type="application/json",
    )

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert written() == before


def test_expired_token_is_401(admin, branch, written):
    _token, plaintext = do_create_api_token(
        user=admin, name="integration", expires_at=clock.now() + dt.timedelta(hours=1)
    )
    client = Client(headers={"Authorization": f"Bearer {plaintext}"})
    assert client.get("/api/v1/subscribers").status_code == 200
    before = written()

    with time_machine.travel(clock.now() + dt.timedelta(hours=1, seconds=1), tick=False):
        response = client.post(
            "/api/v1/subscribers",
            {"branch_id": branch.pk, "last_name": "Петров", "first_name": "Пётр"},
            content_type="application/json",
        )

    assert response.status_code == 401
    assert response.json() == NOT_AUTHENTICATED
    assert written() == before


def test_token_of_a_deactivated_user_is_401(admin, api_client):
    admin.is_active = False
    admin.save(update_fields=["is_active"])

    response = api_client.get("/api/v1/subscribers")

    assert response.status_code == 401


def test_cashier_cannot_create_a_subscriber(branch, token_client, written):
    cashier = token_client(Role.CASHIER)
    before = written()

    response = cashier.post(
        "/api/v1/subscribers", {"branch_id": branch.pk, "last_name": "Петров", "first_name": "Пётр"}
    )

    assert response.status_code == 403
    assert response.json() == {
        "error": {"code": "permission_denied", "message": "You do not have permission to do this.", "fields": []}
    }
    assert written() == before


def test_cashier_can_search(make_subscriber, token_client):
    subscriber = make_subscriber()
    cashier = token_client(Role.CASHIER)

    response = cashier.get("/api/v1/subscribers", {"q": "Иванов"})

    assert response.status_code == 200
    assert [item["account_number"] for item in response.json()["items"]] == [subscriber.account_number]


def test_cashier_cannot_close_a_subscriber(make_subscriber, token_client, written):
    subscriber = make_subscriber()
    cashier = token_client(Role.CASHIER)
    before = written()

    response = cashier.post(f"/api/v1/subscribers/{subscriber.pk}/close", {"reason": "moved away"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    subscriber.refresh_from_db()
    assert subscriber.status == "active"
    assert written() == before


def test_staff_limited_to_another_branch_gets_404_for_the_subscriber(make_subscriber, other_branch, token_client):
    subscriber = make_subscriber()
    elsewhere = token_client(Role.OPERATOR, branches=[other_branch])

    by_id = elsewhere.get(f"/api/v1/subscribers/{subscriber.pk}")
    by_account = elsewhere.get(f"/api/v1/subscribers/by-account/{subscriber.account_number}")

    assert by_id.status_code == 404
    assert by_id.json() == {"error": {"code": "not_found", "message": "Not found.", "fields": []}}
    assert by_account.status_code == 404
    assert by_account.json()["error"]["code"] == "not_found"


def test_staff_limited_to_another_branch_does_not_find_the_subscriber(make_subscriber, other_branch, token_client):
    make_subscriber(last_name="Иванов")
    own = make_subscriber(last_name="Иванова", first_name="Мария", phone="+79161230000", branch_obj=other_branch)
    elsewhere = token_client(Role.OPERATOR, branches=[other_branch])

    response = elsewhere.get("/api/v1/subscribers", {"q": "Иванов"})

    assert response.status_code == 200
    assert [item["account_number"] for item in response.json()["items"]] == [own.account_number]


def test_staff_limited_to_another_branch_cannot_change_the_subscriber(
    make_subscriber, other_branch, token_client, written
):
    subscriber = make_subscriber()
    elsewhere = token_client(Role.OPERATOR, branches=[other_branch])
    before = written()

    patched = elsewhere.patch(f"/api/v1/subscribers/{subscriber.pk}", {"first_name": "Пётр"})
    closed = elsewhere.post(f"/api/v1/subscribers/{subscriber.pk}/close", {"reason": "moved away"})

    assert patched.status_code == 404
    assert closed.status_code == 404
    subscriber.refresh_from_db()
    assert (subscriber.first_name, subscriber.status) == ("Иван", "active")
    assert written() == before


def test_staff_limited_to_another_branch_cannot_create_in_this_branch(branch, other_branch, token_client, written):
    elsewhere = token_client(Role.OPERATOR, branches=[other_branch])
    before = written()

    response = elsewhere.post(
        "/api/v1/subscribers", {"branch_id": branch.pk, "last_name": "Петров", "first_name": "Пётр"}
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert written() == before


def test_a_service_accounts_token_bound_to_no_nas_is_an_ordinary_token(make_subscriber):
    """A CRM integration's service account: the RADIUS rule (a token bound to NAS opens only the RADIUS
    endpoints) leaves its token as it was, with its role's permissions."""
    subscriber = make_subscriber()
    crm = do_create_staff_user(username="crm", password=None, role=Role.OPERATOR, is_service_account=True)
    _token, plaintext = do_create_api_token(user=crm, name="CRM")
    client = Client(headers={"Authorization": f"Bearer {plaintext}"})

    listed = client.get("/api/v1/subscribers")
    radius = client.post(
        "/api/v1/radius/authorize",
        {"User-Name": {"type": "string", "value": ["ivanov"]}},
        content_type="application/json",
    )

    assert listed.status_code == 200
    assert [item["account_number"] for item in listed.json()["items"]] == [subscriber.account_number]
    assert radius.status_code == 403
    assert radius.json()["error"]["code"] == "radius_service_required"
