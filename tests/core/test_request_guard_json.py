"""The request guard reads a JSON body as json.loads reads it, outside the JSON API too (issue 11 review)."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from abonent.core.middleware import Refusal, check_request

NUL_REFUSED = Refusal(422, "null_character", "Null characters are not allowed.", "reason")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32-le"])
def test_an_escaped_nul_is_found_in_every_encoding_json_loads_reads(encoding):
    """A view outside /api/ (a provider's webhook) parsing the body with json.loads reads UTF-16 and UTF-32 too."""
    body = '{"reason": "a\\u0000b"}'.encode(encoding)

    refusal = check_request(RequestFactory().post("/hooks/x", body, content_type="application/json"))

    assert refusal == NUL_REFUSED


def test_json_in_utf16_without_a_nul_passes_outside_the_json_api():
    body = '{"reason": "ab"}'.encode("utf-16")

    assert check_request(RequestFactory().post("/hooks/x", body, content_type="application/json")) is None


def test_a_body_that_is_no_text_passes_to_its_view():
    body = bytes(range(256))

    assert check_request(RequestFactory().post("/hooks/x", body, content_type="application/octet-stream")) is None


@pytest.mark.parametrize("body", [b'{"reason": "a\\ud800"}', b'{"reason": "a\xed\xa0\x80"}'])
def test_a_lone_surrogate_escaped_or_in_bytes_json_loads_reads_is_refused(body):
    """json.loads decodes bytes with "surrogatepass": the UTF-8 bytes of a surrogate read as one too."""
    refusal = check_request(RequestFactory().post("/hooks/x", body, content_type="application/json"))

    assert refusal == Refusal(422, "surrogate_character", "Unpaired surrogate characters are not allowed.", "reason")


def test_a_key_with_a_lone_surrogate_is_named_escaped_in_the_plain_text_answer(client, db):
    """Outside /api/ the refusal is plain text in UTF-8: the key is escaped, or encoding the answer raised."""
    surrogate = client.post("/hooks/x", b'{"x\\ud800": 1}', content_type="application/json")
    nul_under_it = client.post("/hooks/x", b'{"x\\ud800": {"y": "\\u0000"}}', content_type="application/json")

    assert (surrogate.status_code, nul_under_it.status_code) == (422, 422)
    assert surrogate.content.decode() == "x\\ud800: Unpaired surrogate characters are not allowed."
    assert nul_under_it.content.decode() == "x\\ud800.y: Null characters are not allowed."
