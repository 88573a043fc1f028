"""The error envelope: malformed bodies, schema errors and translated messages with stable codes."""

from __future__ import annotations

import json

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


NUL_REFUSED = {"field": None, "code": "null_character", "message": "Null characters are not allowed."}


def test_a_null_character_in_a_body_string_is_422_naming_the_field(admin_api, branch, written):
    # PostgreSQL cannot store U+0000 in text: before the guard this was a 500 from psycopg.
    before = written()

    response = admin_api.post(
        "/api/v1/subscribers", {"branch_id": branch.pk, "last_name": "Пет\u0000ров", "first_name": "Пётр"}
    )

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "validation_error",
            "message": "Null characters are not allowed.",
            "fields": [NUL_REFUSED | {"field": "last_name"}],
        }
    }
    assert written() == before


def test_a_null_character_deep_in_the_body_names_its_path(admin_api, branch, written):
    before = written()

    response = admin_api.post(
        "/api/v1/subscribers",
        {
            "branch_id": branch.pk,
            "last_name": "Петров",
            "contacts": [{"kind": "phone", "value": "+79161234567"}, {"kind": "email", "value": "a\u0000@b.ru"}],
        },
    )

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == [NUL_REFUSED | {"field": "contacts.1.value"}]
    assert written() == before


def test_a_null_character_in_a_key_is_refused_too(admin_api, branch, written):
    before = written()

    response = admin_api.post("/api/v1/subscribers", {"branch_id": branch.pk, "last_name": "Петров", "x\u0000": 1})

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == [NUL_REFUSED | {"field": "x\\u0000"}]
    assert written() == before


def test_a_null_character_in_the_query_is_422_naming_the_parameter(admin_api):
    response = admin_api.get("/api/v1/subscribers", {"q": "Иван\u0000ов"})

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == [NUL_REFUSED | {"field": "q"}]


def test_an_escaped_backslash_u0000_is_text_not_a_null_character(admin_api, branch):
    # "\\u0000" in JSON is the six characters \u0000, which PostgreSQL stores like any other text.
    response = admin_api.generic(
        "POST",
        "/api/v1/subscribers",
        f'{{"branch_id": {branch.pk}, "last_name": "Петров \\\\u0000", "first_name": "Пётр"}}',
        content_type="application/json",
    )

    assert response.status_code == 201
    assert response.json()["last_name"] == "Петров \\u0000"


def test_a_null_character_is_refused_in_russian_with_the_same_code(admin_api):
    response = admin_api.get("/api/v1/subscribers", {"q": "\u0000"}, headers={"Accept-Language": "ru"})

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == [
        {"field": "q", "code": "null_character", "message": "Данные содержат запрещённый символ: ноль-байт"}
    ]


def test_a_body_over_the_size_limit_is_413(admin_api, branch, written, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    before = written()

    response = admin_api.post("/api/v1/subscribers", {"branch_id": branch.pk, "last_name": "П" * 1000})

    assert response.status_code == 413
    assert response.json() == {
        "error": {"code": "body_too_large", "message": "The request body is larger than 1000 bytes.", "fields": []}
    }
    assert written() == before


def test_a_body_at_the_size_limit_is_read(admin_api, branch, settings):
    body = json.dumps({"branch_id": branch.pk, "last_name": "x" * 100, "first_name": "Пётр"})
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body.encode())

    response = admin_api.generic("POST", "/api/v1/subscribers", body, content_type="application/json")

    assert response.status_code == 201


def test_too_many_query_parameters_is_400_not_500(admin_api, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10

    response = admin_api.get("/api/v1/subscribers?" + "&".join(f"x{i}=1" for i in range(11)))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_many_fields"


def test_money_in_other_scripts_digits_is_refused_naming_the_field(admin_api, make_subscriber):
    # Pydantic's \d and Decimal() both read "５" (full width) and "٥" (Arabic-Indic) as 5: booked as 5.00 before.
    from abonent.billing.models import LedgerTransaction

    subscriber = make_subscriber()

    for amount in ("５", "٥٠", "1٥.00"):
        response = admin_api.post(
            f"/api/v1/subscribers/{subscriber.pk}/adjustments",
            {"amount": amount, "reason": "Кабель"},
            headers={"Idempotency-Key": f"digits-{amount}"},
        )
        assert response.status_code == 422, amount
        assert [(f["field"], f["code"]) for f in response.json()["error"]["fields"]] == [
            ("amount", "string_pattern_mismatch")
        ]
    assert not LedgerTransaction.objects.filter(kind="adjustment").exists()
