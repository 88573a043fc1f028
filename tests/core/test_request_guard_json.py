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
