"""``Idempotency-Key``: a retried write is answered from the first attempt, not done twice."""

from __future__ import annotations

from abonent.api.models import IdempotencyRecord
from abonent.core.models import AuditEvent
from abonent.staff.permissions import Role
from abonent.subscribers.models import Subscriber


def person(branch, **extra) -> dict:
    return {"branch_id": branch.pk, "last_name": "Петров", "first_name": "Пётр", **extra}


def test_same_key_and_body_twice_creates_one_subscriber(admin_api, branch):
    key = {"Idempotency-Key": "create-petrov-1"}
    body = person(branch, contacts=[{"kind": "phone", "value": "8 916 123 45 67"}])

    first = admin_api.post("/api/v1/subscribers", body, headers=key)
    second = admin_api.post("/api/v1/subscribers", body, headers=key)

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert Subscriber.objects.count() == 1
    assert first.json()["id"] == Subscriber.objects.get().pk
    assert AuditEvent.objects.filter(action="subscriber.created").count() == 1
    assert IdempotencyRecord.objects.count() == 1


def test_stored_answer_reads_like_a_fresh_one(admin_api, branch):
    created = admin_api.post("/api/v1/subscribers", person(branch), headers={"Idempotency-Key": "k-1"})

    fresh = admin_api.get(f"/api/v1/subscribers/{created.json()['id']}")

    assert created.status_code == 201
    assert created.json() == fresh.json()


def test_same_key_with_a_different_body_is_409(admin_api, branch, written):
    key = {"Idempotency-Key": "create-petrov-1"}
    assert admin_api.post("/api/v1/subscribers", person(branch), headers=key).status_code == 201
    before = written()

    response = admin_api.post("/api/v1/subscribers", person(branch, last_name="Сидоров"), headers=key)

    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "idempotency_key_reused",
            "message": "This Idempotency-Key was already used with a different request.",
            "fields": [],
        }
    }
    assert written() == before
    assert list(Subscriber.objects.values_list("last_name", flat=True)) == ["Петров"]


def test_same_key_on_another_endpoint_is_409(admin_api, make_subscriber, written):
    subscriber = make_subscriber()
    key = {"Idempotency-Key": "k-1"}
    body = {"reason": "moved away"}
    assert admin_api.post(f"/api/v1/subscribers/{subscriber.pk}/close", body, headers=key).status_code == 200
    other = make_subscriber(last_name="Сидоров", phone="+79031112233")
    before = written()

    response = admin_api.post(f"/api/v1/subscribers/{other.pk}/close", body, headers=key)

    assert response.status_code == 409
    other.refresh_from_db()
    assert other.status == "active"
    assert written() == before


def test_keys_belong_to_their_user(branch, token_client):
    first, second = token_client(Role.OPERATOR), token_client(Role.OPERATOR)
    key = {"Idempotency-Key": "shared-key"}

    one = first.post("/api/v1/subscribers", person(branch), headers=key)
    two = second.post("/api/v1/subscribers", person(branch), headers=key)

    assert (one.status_code, two.status_code) == (201, 201)
    assert one.json()["id"] != two.json()["id"]
    assert Subscriber.objects.count() == 2


def test_a_refused_write_is_not_remembered(admin_api, branch):
    key = {"Idempotency-Key": "create-petrov-1"}
    refused = admin_api.post(
        "/api/v1/subscribers", person(branch, contacts=[{"kind": "phone", "value": "12345"}]), headers=key
    )

    corrected = admin_api.post(
        "/api/v1/subscribers", person(branch, contacts=[{"kind": "phone", "value": "+79161234567"}]), headers=key
    )

    assert (refused.status_code, corrected.status_code) == (422, 201)
    assert Subscriber.objects.count() == 1


def test_retried_close_is_answered_not_refused(admin_api, make_subscriber):
    subscriber = make_subscriber()
    key = {"Idempotency-Key": "close-1"}

    first = admin_api.post(f"/api/v1/subscribers/{subscriber.pk}/close", {"reason": "moved away"}, headers=key)
    retry = admin_api.post(f"/api/v1/subscribers/{subscriber.pk}/close", {"reason": "moved away"}, headers=key)

    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.json() == first.json()
    assert AuditEvent.objects.filter(action="subscriber.closed").count() == 1


def test_too_long_key_is_400(admin_api, branch, written):
    before = written()

    response = admin_api.post("/api/v1/subscribers", person(branch), headers={"Idempotency-Key": "k" * 201})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_invalid"
    assert written() == before


def test_retried_add_contact_adds_one_contact(admin_api, make_subscriber):
    subscriber = make_subscriber()
    key = {"Idempotency-Key": "contact-1"}
    body = {"kind": "email", "value": "Ivanov@Example.ru"}

    first = admin_api.post(f"/api/v1/subscribers/{subscriber.pk}/contacts", body, headers=key)
    retry = admin_api.post(f"/api/v1/subscribers/{subscriber.pk}/contacts", body, headers=key)

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert first.json()["value"] == "ivanov@example.ru"
    assert list(subscriber.contacts.filter(kind="email").values_list("value", flat=True)) == ["ivanov@example.ru"]


def test_same_key_with_the_same_json_spelt_another_way_gets_the_first_answer(admin_api, branch):
    key = {"Idempotency-Key": "create-petrov-1"}
    first = admin_api.post(
        "/api/v1/subscribers",
        f'{{"branch_id": {branch.pk}, "last_name": "Петров", "first_name": "Пётр", '
        '"contacts": [{"kind": "phone", "value": "+79161234567"}]}',
        headers=key,
    )
    retry = admin_api.post(
        "/api/v1/subscribers",
        '{"contacts":[{"value":"+79161234567","kind":"phone"}],'
        f'"first_name":"\\u041f\\u0451\\u0442\\u0440","last_name":"Петров","branch_id":{branch.pk}}}',
        headers=key,
    )

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert Subscriber.objects.count() == 1


def test_replay_after_the_role_lost_the_right_is_403_not_the_stored_answer(token_client, branch, written):
    client = token_client(Role.OPERATOR)
    key = {"Idempotency-Key": "create-petrov-1"}
    assert client.post("/api/v1/subscribers", person(branch), headers=key).status_code == 201
    client.user.role = Role.SUPPORT
    client.user.save(update_fields=["role"])
    before = written()

    retry = client.post("/api/v1/subscribers", person(branch), headers=key)

    assert retry.status_code == 403
    assert retry.json()["error"]["code"] == "permission_denied"
    assert written() == before


def test_replay_after_the_branch_was_taken_away_is_404_not_the_stored_answer(
    token_client, make_subscriber, branch, other_branch
):
    client = token_client(Role.OPERATOR, branches=[branch])
    subscriber = make_subscriber()
    key = {"Idempotency-Key": "contact-1"}
    body = {"kind": "email", "value": "ivanov@example.ru"}
    path = f"/api/v1/subscribers/{subscriber.pk}/contacts"
    assert client.post(path, body, headers=key).status_code == 201
    client.user.branches.set([other_branch])

    retry = client.post(path, body, headers=key)

    assert retry.status_code == 404
    assert retry.json()["error"]["code"] == "not_found"


def test_the_schema_shows_where_the_key_is_required(api_client):
    paths = api_client.get("/api/v1/openapi.json").json()["paths"]

    def key_parameter(path: str, method: str = "post") -> dict:
        (parameter,) = [p for p in paths[path][method]["parameters"] if p["name"] == "Idempotency-Key"]
        return {k: parameter[k] for k in ("in", "required", "schema")}

    assert key_parameter("/api/v1/subscribers/{subscriber_id}/adjustments") == {
        "in": "header",
        "required": True,
        "schema": {"type": "string", "maxLength": 200},
    }
    assert key_parameter("/api/v1/subscriptions/{subscription_id}/turbo/end")["required"] is True
    assert key_parameter("/api/v1/subscribers")["required"] is False
    assert "400" in paths["/api/v1/subscribers/{subscriber_id}/one-off-charges"]["post"]["responses"]
