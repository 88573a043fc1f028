"""Bodies the JSON API refuses before any handler, with a stable code instead of a 500 (issue 11 review)."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from abonent.billing.models import LedgerTransaction


def _client(token: str) -> Client:
    # raise_request_exception=False: see the 500 a real client would get, not the exception.
    return Client(headers={"Authorization": f"Bearer {token}"}, raise_request_exception=False)


def _adjust(token: str, subscriber, body: bytes, content_type="application/json"):
    return _client(token).post(
        f"/api/v1/subscribers/{subscriber.pk}/adjustments",
        body,
        content_type=content_type,
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )


def _booked(subscriber) -> bool:
    return LedgerTransaction.objects.filter(subscriber_id=subscriber.pk).exists()


# --- not JSON (F10) ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "text/plain", "application/xml"],
)
def test_a_body_that_is_not_json_is_415(api_token, make_subscriber, content_type):
    """A multipart body was read as a form by the guard (to look for NULs), which consumed the stream; ninja then
    read request.body for the JSON: RawPostDataException, a 500."""
    subscriber = make_subscriber()

    response = _adjust(api_token, subscriber, b'{"amount": "10.00", "reason": "x"}', content_type=content_type)

    assert response.status_code == 415
    assert response.json() == {
        "error": {
            "code": "unsupported_media_type",
            "message": "Send the request body as JSON (Content-Type: application/json).",
            "fields": [],
        }
    }
    assert not _booked(subscriber)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge-patch+json", ""])
def test_a_json_body_is_read_whatever_its_json_media_type(api_token, make_subscriber, content_type):
    """No Content-Type at all is read as JSON, as ninja reads it."""
    subscriber = make_subscriber()

    response = _adjust(api_token, subscriber, b'{"amount": "10.00", "reason": "x"}', content_type=content_type)

    assert response.status_code == 201, response.content
    assert _booked(subscriber)


def test_a_post_without_a_body_needs_no_content_type(api_token, make_subscriber):
    subscriber = make_subscriber()

    response = _client(api_token).generic(
        "POST", f"/api/v1/subscribers/{subscriber.pk}/close", b"", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 422  # the handler's answer (no reason): the guard let it through
    assert response.json()["error"]["code"] == "validation_error"
