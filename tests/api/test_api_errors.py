"""The error envelope: malformed bodies, schema errors and translated messages with stable codes."""

from __future__ import annotations

from django.test import Client


def test_malformed_json_is_400(admin_api, branch, written):
    before = written()

    response = admin_api.generic(
        "POST", "/api/v1/subscribers", '{"branch_id": 1, "last_name": ', content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "malformed_body", "message": "The request body is not valid JSON.", "fields": []}
    }
    assert written() == before


def test_missing_required_field_is_422_naming_it(admin_api, written):
    before = written()

    response = admin_api.post("/api/v1/subscribers", {"last_name": "Петров", "first_name": "Пётр"})

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "validation_error",
            "message": "The request has invalid fields.",
            "fields": [{"field": "branch_id", "code": "missing", "message": "This field is required."}],
        }
    }
    assert written() == before


def test_wrong_type_is_422_naming_the_field(admin_api, branch, written):
    before = written()

    response = admin_api.post(
        "/api/v1/subscribers",
        {"branch_id": branch.pk, "last_name": "Петров", "first_name": "Пётр", "consent_marketing": "maybe"},
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["fields"] == [
        {"field": "consent_marketing", "code": "bool_parsing", "message": "This value has the wrong type."}
    ]
    assert written() == before


def test_wrong_type_inside_a_list_names_the_item(admin_api, branch, written):
    before = written()

    response = admin_api.post(
        "/api/v1/subscribers",
        {
            "branch_id": branch.pk,
            "last_name": "Петров",
            "first_name": "Пётр",
            "contacts": [{"kind": "phone", "value": "+79161234567"}, {"kind": "fax", "value": "1"}],
        },
    )

    assert response.status_code == 422
    assert [(f["field"], f["code"]) for f in response.json()["error"]["fields"]] == [
        ("contacts.1.kind", "literal_error")
    ]
    assert written() == before


def test_wrong_type_in_the_query_names_the_parameter(admin_api):
    response = admin_api.get("/api/v1/subscribers", {"page": "two"})

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == [
        {"field": "page", "code": "int_parsing", "message": "This value has the wrong type."}
    ]


def test_russian_is_answered_in_russian_with_the_same_codes(admin_api, branch):
    response = admin_api.post(
        "/api/v1/subscribers",
        {
            "branch_id": branch.pk,
            "last_name": "Петров",
            "first_name": "Пётр",
            "contacts": [{"kind": "phone", "value": "12345"}],
        },
        headers={"Accept-Language": "ru"},
    )

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "validation_error",
            "message": "«12345» — некорректный номер телефона.",
            "fields": [
                {
                    "field": "contacts.0.value",
                    "code": "phone_invalid",
                    "message": "«12345» — некорректный номер телефона.",
                }
            ],
        }
    }


def test_authentication_error_in_russian_keeps_its_code(db):
    response = Client().get("/api/v1/subscribers", headers={"Accept-Language": "ru"})

    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "not_authenticated",
            "message": "Передайте действующий API-токен: Authorization: Bearer <token>.",
            "fields": [],
        }
    }


def test_unknown_api_path_answers_json_not_found(api_client):
    response = api_client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_old_idempotency_records_are_pruned(api_client, branch):
    import datetime as dt

    from abonent.api.models import IdempotencyRecord
    from abonent.api.tasks import prune_idempotency_records
    from abonent.core import clock

    payload = {"branch_id": branch.pk, "last_name": "Ключев", "first_name": "Иван"}
    api_client.post("/api/v1/subscribers", payload, content_type="application/json", headers={"Idempotency-Key": "k1"})
    assert IdempotencyRecord.objects.count() == 1
    with clock.travel_to(clock.now() + dt.timedelta(days=8)):
        assert prune_idempotency_records.call() == 1
    assert IdempotencyRecord.objects.count() == 0
