"""Fixtures of the REST API tests: a JSON client per role, and counters of what a request wrote."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from abonent.core.models import AuditEvent
from abonent.staff.actions import do_create_api_token
from abonent.subscribers.models import Subscriber


class JsonClient(Client):
    """A test client that sends JSON bodies and an API token, as an integration would. A string body is sent
    as it is (the same JSON spelt another way)."""

    def post(self, path, data=None, **extra):
        body = data if isinstance(data, str) else json.dumps(data)
        return super().post(path, body, content_type="application/json", **extra)

    def patch(self, path, data=None, **extra):
        return super().patch(path, json.dumps(data), content_type="application/json", **extra)


@pytest.fixture
def token_client(make_staff):
    """``token_client(role, branches=[...])``: a client holding the API token of a new staff user, who is
    ``client.user`` (to take a right away between two requests)."""

    def make(role: str, *, branches=()) -> JsonClient:
        user = make_staff(role, branches=branches)
        _token, plaintext = do_create_api_token(user=user, name="tests")
        client = JsonClient(headers={"Authorization": f"Bearer {plaintext}"})
        client.user = user
        return client

    return make


@pytest.fixture
def admin_api(api_token) -> JsonClient:
    return JsonClient(headers={"Authorization": f"Bearer {api_token}"})


@pytest.fixture
def written():
    """``written()``: how many subscribers and audit rows exist, to show a denied request wrote nothing."""

    def count() -> tuple[int, int]:
        return Subscriber.objects.count(), AuditEvent.objects.count()

    return count
