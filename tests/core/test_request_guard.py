"""Requests refused before any view: a NUL character, an oversized body. A clear 4xx instead of a 500 (issue 11)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from abonent.core.middleware import _null_character_path
from abonent.subscribers.actions import do_close_subscriber
from abonent.subscribers.models import SubscriberStatus


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"a": "ok", "b": ["x", {"c": "y\x00"}]}, ("b", "1", "c")),
        ({"a\x00": 1}, ("a\\u0000",)),
        ("\x00", ()),
        ({"a": ["ok", 1, None, True, 2.5]}, None),
    ],
)
def test_the_path_to_a_null_character_in_json(data, path):
    assert _null_character_path(data) == path


def test_console_search_with_a_null_character_is_refused_naming_the_field(operator_client, make_subscriber):
    make_subscriber()

    response = operator_client.get("/staff/subscribers/", {"q": "Ив\u0000"})

    assert response.status_code == 422
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == "q: Null characters are not allowed."


def test_a_null_character_in_a_form_field_read_outside_a_form_changes_nothing(admin, client, make_subscriber):
    # subscriber_reopen reads request.POST["reason"] itself: on PostgreSQL the NUL reached the audit row (500).
    subscriber = do_close_subscriber(make_subscriber(), reason="Переезд", acting_user=admin)
    client.force_login(admin)

    response = client.post(f"/staff/subscribers/{subscriber.pk}/reopen/", {"reason": "по\u0000ошибке"})

    assert response.status_code == 422
    assert response.content.decode() == "reason: Null characters are not allowed."
    subscriber.refresh_from_db()
    assert subscriber.status == SubscriberStatus.CLOSED


def test_a_console_form_body_over_the_size_limit_is_413(admin, client, settings, branch):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client.force_login(admin)

    response = client.post(
        "/staff/subscribers/new/",
        urlencode({"branch_id": branch.pk, "last_name": "П" * 1000}),
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 413
    assert response.content.decode() == "The request body is larger than 1000 bytes."
    assert response["Content-Type"] == "text/plain; charset=utf-8"


def test_a_multipart_form_over_the_field_limit_is_413(admin, client, settings, branch):
    # Multipart bodies may carry files beyond the limit; the fields alone over it are refused by Django's parser.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client.force_login(admin)

    response = client.post("/staff/subscribers/new/", {"branch_id": branch.pk, "last_name": "П" * 1000})

    assert response.status_code == 413
    assert response.content.decode() == "The request body is larger than 1000 bytes."
