"""The Idempotency-Key header and the request hash never turn bad input into a 500 (issue 11 review)."""

from __future__ import annotations

import hashlib

import pytest
from django.test import Client, RequestFactory

from abonent.api.idempotency import _request_hash
from abonent.api.models import IdempotencyRecord
from abonent.billing.models import LedgerTransaction


@pytest.mark.parametrize("key", ["a\x00b", "a\x1fb", "a\x7fb", "a\x85b"])
def test_a_control_character_in_the_idempotency_key_is_400(api_token, make_subscriber, key):
    """A NUL in the key reached PostgreSQL (IdempotencyRecord.key): psycopg raised, a 500."""
    subscriber = make_subscriber()
    client = Client(headers={"Authorization": f"Bearer {api_token}"}, raise_request_exception=False)

    response = client.post(
        f"/api/v1/subscribers/{subscriber.pk}/adjustments",
        b'{"amount": "10.00", "reason": "x"}',
        content_type="application/json",
        headers={"Idempotency-Key": key},
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "idempotency_key_invalid",
            "message": "The Idempotency-Key header may hold only printable characters.",
            "fields": [],
        }
    }
    assert not LedgerTransaction.objects.filter(subscriber_id=subscriber.pk).exists()
    assert not IdempotencyRecord.objects.exists()


def test_the_request_hash_of_a_lone_surrogate_is_no_error():
    """json.dumps(ensure_ascii=False) of a lone surrogate cannot be encoded to UTF-8: UnicodeEncodeError."""
    request = RequestFactory().post("/api/v1/x", b'{"note": "\\ud800"}', content_type="application/json")
    other = RequestFactory().post("/api/v1/x", b'{"note": "\\ud801"}', content_type="application/json")

    assert _request_hash(request) != _request_hash(other)


def test_the_request_hash_of_cyrillic_is_the_one_stored_before():
    """Answers stored before this change keep matching their retries (not a 409 across the upgrade)."""
    request = RequestFactory().post(
        "/api/v1/x", '{"reason": "возврат",  "amount": "1"}'.encode(), content_type="application/json"
    )

    expected = b"POST/api/v1/x\0" + '{"amount":"1","reason":"возврат"}'.encode()
    assert _request_hash(request) == hashlib.sha256(expected).hexdigest()
