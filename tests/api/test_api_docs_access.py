"""Who reads the API's docs and schema: anyone outside production, staff and token holders in production."""

from __future__ import annotations

import pytest
from django.test import Client

from abonent.staff.actions import do_revoke_api_token

DOCS, SCHEMA = "/api/v1/docs", "/api/v1/openapi.json"


@pytest.fixture
def production_docs(settings):
    settings.ABONENT_API_DOCS_PUBLIC = False


def test_production_sends_an_anonymous_reader_of_the_docs_to_the_login(production_docs, db):
    response = Client().get(DOCS)

    assert response.status_code == 302
    assert response["Location"] == "/staff/?next=/api/v1/docs"


def test_production_refuses_the_schema_without_a_token(production_docs, db):
    response = Client().get(SCHEMA)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="abonent"'
    assert response.json()["error"]["code"] == "not_authenticated"
    assert "paths" not in response.json()


def test_production_refuses_a_wrong_or_revoked_token(production_docs, admin, api_token):
    from abonent.staff.models import ApiToken

    assert Client(headers={"Authorization": "Bearer abn_not-a-token"}).get(SCHEMA).status_code == 401
    do_revoke_api_token(token=ApiToken.objects.get(), acting_user=admin)
    assert Client(headers={"Authorization": f"Bearer {api_token}"}).get(SCHEMA).status_code == 401


def test_production_serves_the_schema_to_a_token_holder(production_docs, api_client):
    response = api_client.get(SCHEMA)

    assert response.status_code == 200
    assert "/api/v1/subscribers" in response.json()["paths"]


def test_production_serves_the_docs_and_schema_to_signed_in_staff(production_docs, operator_client):
    assert operator_client.get(DOCS).status_code == 200
    assert operator_client.get(SCHEMA).status_code == 200


def test_a_session_still_owing_its_second_factor_is_not_signed_in(production_docs, operator, client):
    operator.two_factor_enabled = True
    operator.save(update_fields=["two_factor_enabled"])
    client.force_login(operator)  # a password-only session: django-otp has not verified it

    assert client.get(SCHEMA).status_code == 401


def test_outside_production_the_docs_are_open(db):
    assert Client().get(DOCS).status_code == 200
    assert Client().get(SCHEMA).status_code == 200
