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


# --- JSON in UTF-8 only (F7) -------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_an_escaped_nul_in_json_of_another_encoding_is_400(api_token, make_subscriber, encoding):
    """The guard looked for the bytes ``\\u0000``; json.loads (ninja's parser) also reads UTF-16 and UTF-32, where
    those characters are spelt with zero bytes between them, so the NUL reached the database."""
    subscriber = make_subscriber()
    body = '{"amount": "10.00", "reason": "a\\u0000b"}'.encode(encoding)

    response = _adjust(api_token, subscriber, body)

    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "body_not_utf8", "message": "The request body must be JSON encoded in UTF-8.", "fields": []}
    }
    assert not _booked(subscriber)


def test_json_in_utf16_is_400_even_without_a_nul(api_token, make_subscriber):
    subscriber = make_subscriber()

    response = _adjust(api_token, subscriber, '{"amount": "10.00", "reason": "возврат"}'.encode("utf-16"))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "body_not_utf8"
    assert not _booked(subscriber)


def test_bytes_that_are_not_utf8_are_400(api_token, make_subscriber):
    subscriber = make_subscriber()

    response = _adjust(api_token, subscriber, '{"amount": "10.00", "reason": "é"}'.encode("latin-1"))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "body_not_utf8"
    assert not _booked(subscriber)


def test_json_in_utf8_with_a_byte_order_mark_is_read(api_token, make_subscriber):
    """RFC 8259 §8.1: a parser may ignore the mark; json.loads does."""
    subscriber = make_subscriber()

    response = _adjust(api_token, subscriber, '{"amount": "10.00", "reason": "возврат"}'.encode("utf-8-sig"))

    assert response.status_code == 201, response.content
    assert LedgerTransaction.objects.get(subscriber_id=subscriber.pk).memo == "возврат"


def test_an_escaped_nul_after_a_byte_order_mark_is_still_found(api_token, make_subscriber):
    subscriber = make_subscriber()

    response = _adjust(api_token, subscriber, '{"amount": "10.00", "reason": "a\\u0000b"}'.encode("utf-8-sig"))

    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "reason"
    assert not _booked(subscriber)


# --- nesting (F8) ------------------------------------------------------------------------------------------

TOO_DEEP = {
    "error": {"code": "body_too_deep", "message": "The JSON body is nested deeper than 64 levels.", "fields": []}
}


@pytest.mark.parametrize("with_nul", [True, False])
@pytest.mark.parametrize("depth", [100_000, 900])
def test_a_deeply_nested_body_is_400(api_token, make_subscriber, depth, with_nul):
    """The guard's json.loads (on a body with a NUL) raised RecursionError, a 500; without a NUL ninja's parser
    answered 400 malformed_body for 100,000 levels and read 900."""
    subscriber = make_subscriber()
    nul = ', "note": "\\u0000"' if with_nul else ""
    body = '{"amount": "10.00", "reason": "x"' + nul + ', "x": ' + "[" * depth + "]" * depth + "}"

    response = _adjust(api_token, subscriber, body.encode())

    assert response.status_code == 400
    assert response.json() == TOO_DEEP
    assert not _booked(subscriber)


def test_a_body_nested_65_levels_is_400_and_64_is_read(api_token, make_subscriber):
    subscriber = make_subscriber()

    def nested(depth: int) -> bytes:  # the object itself is the first level
        return ('{"amount": "10.00", "reason": "x", "x": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}").encode()

    refused = _adjust(api_token, subscriber, nested(65))
    read = _adjust(api_token, subscriber, nested(64))

    assert (refused.status_code, refused.json()) == (400, TOO_DEEP)
    assert read.status_code == 201, read.content


def test_many_brackets_side_by_side_are_no_nesting(api_token, make_subscriber):
    subscriber = make_subscriber()
    body = '{"amount": "10.00", "reason": "x", "x": [' + ",".join(["[]"] * 1000) + "]}"

    response = _adjust(api_token, subscriber, body.encode())

    assert response.status_code == 201, response.content


# --- lone surrogates (F6, F9) --------------------------------------------------------------------------------

SURROGATE_REFUSED = {"code": "surrogate_character", "message": "Unpaired surrogate characters are not allowed."}


@pytest.mark.parametrize("escape", ["\\ud800", "\\uDFFF", "\\udc00x"])
def test_a_lone_surrogate_in_an_idempotent_write_is_422_naming_the_field(api_token, make_subscriber, escape):
    """The request hash re-encoded the parsed JSON as UTF-8: a lone surrogate (a valid JSON escape) raised
    UnicodeEncodeError before the handler ran, a 500, whether or not the field is in the schema."""
    subscriber = make_subscriber()
    body = '{"amount": "10.00", "reason": "ok", "note": "' + escape + '"}'

    response = _adjust(api_token, subscriber, body.encode())

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "validation_error",
            "message": "Unpaired surrogate characters are not allowed.",
            "fields": [SURROGATE_REFUSED | {"field": "note"}],
        }
    }
    assert not _booked(subscriber)


def test_a_lone_surrogate_in_a_stored_field_is_422(api_token, make_subscriber):
    """Neither psycopg nor sqlite3 can encode it: a 500 when the handler wrote it."""
    subscriber = make_subscriber()

    response = _client(api_token).post(
        f"/api/v1/subscribers/{subscriber.pk}/contacts",
        b'{"kind": "email", "value": "a\\ud800@b.ru"}',
        content_type="application/json",
    )

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == [SURROGATE_REFUSED | {"field": "value"}]
    assert subscriber.contacts.count() == 1


def test_a_lone_surrogate_in_a_key_is_named_escaped(api_token, make_subscriber):
    subscriber = make_subscriber()

    response = _adjust(api_token, subscriber, b'{"amount": "10.00", "reason": "ok", "x\\ud800": 1}')

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == [SURROGATE_REFUSED | {"field": "x\\ud800"}]


def test_a_surrogate_pair_is_one_character_and_is_read(api_token, make_subscriber):
    """An emoji spelt as an escaped pair, as json.dumps writes it."""
    subscriber = make_subscriber()

    response = _adjust(api_token, subscriber, b'{"amount": "10.00", "reason": "ok \\ud83d\\ude00"}')

    assert response.status_code == 201, response.content
    assert LedgerTransaction.objects.get(subscriber_id=subscriber.pk).memo == "ok \U0001f600"
