"""``/api/v1/subscribers``: create, read, search, change and close subscribers over the REST API."""

from __future__ import annotations

import pytest

from abonent.core.models import AuditEvent
from abonent.staff.permissions import Role
from abonent.subscribers.models import Subscriber

# Account numbers have 9 digits, the last a Luhn check digit; the first allocated one is 100000009.
FREE_ACCOUNT_NUMBER = "123456782"
VALID_ORGANIZATION_INN = "7707083893"


def person(branch, **extra) -> dict:
    return {"branch_id": branch.pk, "last_name": "Петров", "first_name": "Пётр", "middle_name": "Ильич", **extra}


def field_codes(response) -> list[tuple[str | None, str]]:
    return [(f["field"], f["code"]) for f in response.json()["error"]["fields"]]


# --- create ---------------------------------------------------------------------------------------


def test_create_returns_201_with_account_number_and_e164_contacts(admin_api, branch):
    response = admin_api.post(
        "/api/v1/subscribers",
        person(
            branch,
            contacts=[
                {"kind": "phone", "value": "8 (916) 123-45-67"},
                {"kind": "email", "value": " Petrov@Example.RU "},
            ],
            addresses=[{"city": "Тверь", "street": "ул. Ленина", "house": "5", "apartment": "12"}],
        ),
    )

    assert response.status_code == 201
    body = response.json()
    subscriber = Subscriber.objects.get()
    assert body["id"] == subscriber.pk
    assert body["account_number"] == "100000009" == subscriber.account_number
    assert body["display_name"] == "Петров Пётр Ильич"
    assert body["status"] == "active"
    assert body["contract_numbers"] == ["100000009"]
    assert [(c["kind"], c["value"], c["is_primary"]) for c in body["contacts"]] == [
        ("email", "petrov@example.ru", False),
        ("phone", "+79161234567", True),
    ]
    assert [a["text"] for a in body["addresses"]] == [subscriber.addresses.get().as_text()]
    assert list(AuditEvent.objects.filter(action="subscriber.created").values_list("subscriber_id", flat=True)) == [
        subscriber.pk
    ]


def test_create_with_a_chosen_account_number(admin_api, branch):
    response = admin_api.post("/api/v1/subscribers", person(branch, account_number=FREE_ACCOUNT_NUMBER))

    assert response.status_code == 201
    assert response.json()["account_number"] == FREE_ACCOUNT_NUMBER
    assert response.json()["contract_numbers"] == [FREE_ACCOUNT_NUMBER]


def test_create_an_organization(admin_api, branch):
    response = admin_api.post(
        "/api/v1/subscribers",
        {"branch_id": branch.pk, "kind": "organization", "organization_name": "ООО Ромашка", "inn": "7707083893"},
    )

    assert response.status_code == 201
    assert (response.json()["kind"], response.json()["display_name"], response.json()["inn"]) == (
        "organization",
        "ООО Ромашка",
        VALID_ORGANIZATION_INN,
    )


def test_invalid_phone_is_422_and_writes_nothing(admin_api, branch, written):
    before = written()

    response = admin_api.post("/api/v1/subscribers", person(branch, contacts=[{"kind": "phone", "value": "12345"}]))

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "validation_error",
            "message": "“12345” is not a valid phone number.",
            "fields": [
                {
                    "field": "contacts.0.value",
                    "code": "phone_invalid",
                    "message": "“12345” is not a valid phone number.",
                }
            ],
        }
    }
    assert written() == before


def test_duplicate_account_number_is_422_and_writes_nothing(admin_api, branch, make_subscriber, written):
    make_subscriber(account_number=FREE_ACCOUNT_NUMBER)
    before = written()

    response = admin_api.post("/api/v1/subscribers", person(branch, account_number=FREE_ACCOUNT_NUMBER))

    assert response.status_code == 422
    assert field_codes(response) == [("account_number", "account_number_taken")]
    assert written() == before


def test_account_number_with_a_wrong_check_digit_is_422_and_writes_nothing(admin_api, branch, written):
    before = written()

    response = admin_api.post("/api/v1/subscribers", person(branch, account_number="123456789"))

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == [
        {
            "field": "account_number",
            "code": "account_number_check_digit",
            "message": "Account number 123456789 has a wrong check digit: check it for a typo.",
        }
    ]
    assert written() == before


def test_organization_without_inn_is_422_and_writes_nothing(admin_api, branch, written):
    before = written()

    response = admin_api.post(
        "/api/v1/subscribers", {"branch_id": branch.pk, "kind": "organization", "organization_name": "ООО Ромашка"}
    )

    assert response.status_code == 422
    assert field_codes(response) == [("inn", "required")]
    assert written() == before


def test_invalid_inn_is_422_and_writes_nothing(admin_api, branch, written):
    before = written()

    response = admin_api.post(
        "/api/v1/subscribers",
        {"branch_id": branch.pk, "kind": "organization", "organization_name": "ООО Ромашка", "inn": "7707083890"},
    )

    assert response.status_code == 422
    assert field_codes(response) == [("inn", "inn_invalid")]
    assert written() == before


def test_every_bad_field_is_reported_at_once(admin_api, branch, written):
    before = written()

    response = admin_api.post(
        "/api/v1/subscribers",
        {
            "branch_id": branch.pk,
            "last_name": "Петров",
            "account_number": "123456789",
            "contacts": [{"kind": "phone", "value": "12345"}],
        },
    )

    assert response.status_code == 422
    assert response.json()["error"]["message"] == "The request has invalid fields."
    assert sorted(field_codes(response)) == [
        ("account_number", "account_number_check_digit"),
        ("contacts.0.value", "phone_invalid"),
        ("first_name", "required"),
    ]
    assert written() == before


# --- read -----------------------------------------------------------------------------------------


def test_get_by_account_number(admin_api, make_subscriber):
    subscriber = make_subscriber()
    make_subscriber(last_name="Сидоров", phone="+79161230000")

    response = admin_api.get(f"/api/v1/subscribers/by-account/{subscriber.account_number}")

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["account_number"]) == (subscriber.pk, subscriber.account_number)


def test_get_by_unknown_account_number_is_404(admin_api, make_subscriber):
    make_subscriber()

    response = admin_api.get("/api/v1/subscribers/by-account/999999999")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_support_does_not_see_personal_data(make_subscriber, token_client):
    subscriber = make_subscriber(passport_series="4510", passport_number="123456", inn="500100732259")
    support = token_client(Role.SUPPORT)

    response = support.get(f"/api/v1/subscribers/{subscriber.pk}")

    assert response.status_code == 200
    assert response.json()["personal"] is None
    assert response.json()["inn"] == ""
    assert "4510" not in response.content.decode()


def test_operator_sees_personal_data(make_subscriber, token_client):
    subscriber = make_subscriber(passport_series="4510", passport_number="123456", inn="500100732259")
    operator = token_client(Role.OPERATOR)

    response = operator.get(f"/api/v1/subscribers/{subscriber.pk}")

    assert response.status_code == 200
    assert response.json()["personal"] == {
        "birth_date": None,
        "passport_series": "4510",
        "passport_number": "123456",
        "passport_issued_by": "",
        "passport_issued_on": None,
    }
    assert response.json()["inn"] == "500100732259"


# --- search ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["8 (916) 123-45-67", "+79161234567"])
def test_search_by_phone_in_any_format(admin_api, make_subscriber, query):
    subscriber = make_subscriber(phone="+79161234567")
    make_subscriber(last_name="Сидоров", phone="+79031112233")

    response = admin_api.get("/api/v1/subscribers", {"q": query})

    assert response.status_code == 200
    assert response.json() == {
        "items": [
            {
                "id": subscriber.pk,
                "account_number": subscriber.account_number,
                "legacy_account": None,
                "kind": "individual",
                "status": "active",
                "display_name": "Иванов Иван Петрович",
                "branch_id": subscriber.branch_id,
                "phone": "+79161234567",
            }
        ],
        "page": 1,
        "has_next": False,
    }


def test_search_by_account_number(admin_api, make_subscriber):
    make_subscriber(phone="+79161234567")
    wanted = make_subscriber(last_name="Сидоров", phone="+79031112233")

    response = admin_api.get("/api/v1/subscribers", {"q": wanted.account_number})

    assert [item["id"] for item in response.json()["items"]] == [wanted.pk]


def test_search_by_surname(admin_api, make_subscriber):
    wanted = make_subscriber(last_name="Сидоров", phone="+79031112233")
    make_subscriber(phone="+79161234567")

    response = admin_api.get("/api/v1/subscribers", {"q": "сидоров"})

    assert [item["id"] for item in response.json()["items"]] == [wanted.pk]


@pytest.mark.parametrize("query", ["И", "Ив"])
def test_search_with_one_or_two_characters_is_422(admin_api, make_subscriber, query):
    make_subscriber()

    response = admin_api.get("/api/v1/subscribers", {"q": query})

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "query_too_short",
            "message": "Type at least 3 characters to search.",
            "fields": [{"field": "q", "code": "query_too_short", "message": "Type at least 3 characters to search."}],
        }
    }


# --- change ---------------------------------------------------------------------------------------


def test_patch_changes_only_the_sent_fields_and_audits_them(admin_api, admin, make_subscriber):
    subscriber = make_subscriber(passport_series="4510", passport_number="123456")
    audit_rows = AuditEvent.objects.count()

    response = admin_api.patch(
        f"/api/v1/subscribers/{subscriber.pk}", {"first_name": "Пётр", "reason": "typo in the contract"}
    )

    assert response.status_code == 200
    assert response.json()["display_name"] == "Иванов Пётр Петрович"
    subscriber.refresh_from_db()
    assert (subscriber.last_name, subscriber.first_name, subscriber.middle_name) == ("Иванов", "Пётр", "Петрович")
    assert (subscriber.passport_series, subscriber.passport_number) == ("4510", "123456")
    assert list(subscriber.contacts.values_list("value", flat=True)) == ["+79161234567"]
    assert AuditEvent.objects.count() == audit_rows + 1
    event = AuditEvent.objects.get(action="subscriber.updated")
    assert (event.actor, event.subscriber_id, event.reason) == (admin, subscriber.pk, "typo in the contract")
    assert (event.before, event.after) == ({"first_name": "Иван"}, {"first_name": "Пётр"})


def test_patch_with_an_explicit_null_is_422_and_changes_nothing(admin_api, make_subscriber, written):
    subscriber = make_subscriber()
    before = written()

    response = admin_api.patch(f"/api/v1/subscribers/{subscriber.pk}", {"last_name": None, "group_ids": None})

    assert response.status_code == 422
    assert sorted(field_codes(response)) == [("group_ids", "list_type"), ("last_name", "string_type")]
    subscriber.refresh_from_db()
    assert subscriber.last_name == "Иванов"
    assert written() == before


def test_patch_with_a_domain_error_is_422_and_changes_nothing(admin_api, make_subscriber, written):
    subscriber = make_subscriber()
    before = written()

    response = admin_api.patch(f"/api/v1/subscribers/{subscriber.pk}", {"inn": "7707083890"})

    assert response.status_code == 422
    assert field_codes(response) == [("inn", "inn_invalid")]
    subscriber.refresh_from_db()
    assert subscriber.inn == ""
    assert written() == before


# --- close ----------------------------------------------------------------------------------------


def test_close_with_a_reason(admin_api, make_subscriber):
    subscriber = make_subscriber()

    response = admin_api.post(f"/api/v1/subscribers/{subscriber.pk}/close", {"reason": "moved away"})

    assert response.status_code == 200
    assert response.json()["status"] == "closed"
    assert response.json()["closed_at"] is not None
    subscriber.refresh_from_db()
    assert (subscriber.status, subscriber.close_reason) == ("closed", "moved away")
    event = AuditEvent.objects.get(action="subscriber.closed")
    assert (event.subscriber_id, event.reason) == (subscriber.pk, "moved away")


def test_close_without_a_reason_is_422(admin_api, make_subscriber, written):
    subscriber = make_subscriber()
    before = written()

    response = admin_api.post(f"/api/v1/subscribers/{subscriber.pk}/close", {"reason": "   "})

    assert response.status_code == 422
    assert field_codes(response) == [("reason", "required")]
    subscriber.refresh_from_db()
    assert subscriber.status == "active"
    assert written() == before


def test_closing_twice_is_422(admin_api, make_subscriber, written):
    subscriber = make_subscriber()
    assert admin_api.post(f"/api/v1/subscribers/{subscriber.pk}/close", {"reason": "moved away"}).status_code == 200
    subscriber.refresh_from_db()
    closed_at = subscriber.closed_at
    before = written()

    response = admin_api.post(f"/api/v1/subscribers/{subscriber.pk}/close", {"reason": "again"})

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "validation_error",
            "message": "The account is already closed.",
            "fields": [{"field": None, "code": "already_closed", "message": "The account is already closed."}],
        }
    }
    subscriber.refresh_from_db()
    assert (subscriber.closed_at, subscriber.close_reason) == (closed_at, "moved away")
    assert written() == before


def test_close_an_unknown_subscriber_is_404(admin_api, db):
    response = admin_api.post("/api/v1/subscribers/999999/close", {"reason": "moved away"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_search_query_count_does_not_grow_with_the_page(admin_api, make_subscriber, django_assert_num_queries):
    make_subscriber(last_name="Сидоров", phone="+79031112233")
    admin_api.get("/api/v1/subscribers")  # the token's last use is recorded at most once a minute
    for index in range(3):
        make_subscriber(last_name=f"Кузнецов{index}", phone=f"+7903111220{index}")

    # Token and user, the user's branches, one page of subscribers, their phones, their addresses.
    with django_assert_num_queries(5):
        response = admin_api.get("/api/v1/subscribers")

    assert len(response.json()["items"]) == 4


# --- contacts and addresses -----------------------------------------------------------------------


def test_add_an_address(admin_api, make_subscriber):
    subscriber = make_subscriber(addresses=[])

    response = admin_api.post(
        f"/api/v1/subscribers/{subscriber.pk}/addresses", {"city": "Тверь", "street": "ул. Советская", "house": "7"}
    )

    assert response.status_code == 201
    address = subscriber.addresses.get()
    assert (response.json()["id"], response.json()["text"]) == (address.pk, address.as_text())
    assert AuditEvent.objects.filter(action="subscriber.address_added", subscriber_id=subscriber.pk).count() == 1


def test_add_an_invalid_phone_is_422_and_writes_nothing(admin_api, make_subscriber, written):
    subscriber = make_subscriber()
    before = written()

    response = admin_api.post(f"/api/v1/subscribers/{subscriber.pk}/contacts", {"kind": "phone", "value": "12345"})

    assert response.status_code == 422
    assert field_codes(response) == [("value", "phone_invalid")]
    assert subscriber.contacts.count() == 1
    assert written() == before


def test_remove_a_contact(admin_api, make_subscriber):
    subscriber = make_subscriber()
    contact = subscriber.contacts.get()

    response = admin_api.delete(f"/api/v1/subscribers/{subscriber.pk}/contacts/{contact.pk}")

    assert response.status_code == 204
    assert response.content == b""
    assert subscriber.contacts.count() == 0
    assert AuditEvent.objects.filter(action="subscriber.contact_removed", subscriber_id=subscriber.pk).count() == 1


def test_remove_a_contact_of_another_subscriber_is_404(admin_api, make_subscriber, written):
    subscriber = make_subscriber()
    other = make_subscriber(last_name="Сидоров", phone="+79031112233")
    before = written()

    response = admin_api.delete(f"/api/v1/subscribers/{subscriber.pk}/contacts/{other.contacts.get().pk}")

    assert response.status_code == 404
    assert other.contacts.count() == 1
    assert written() == before
