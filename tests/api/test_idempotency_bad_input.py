"""The Idempotency-Key header and the request hash never turn bad input into a 500 (issue 11 review)."""

from __future__ import annotations

import hashlib

from django.test import RequestFactory

from abonent.api.idempotency import _request_hash


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
