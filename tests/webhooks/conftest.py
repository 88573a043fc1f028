"""An integration pointing at a local receiver (pytest-httpserver), and the documented signature check."""

import hashlib
import hmac
import json

import pytest

from abonent.integrations.webhooks import actions
from abonent.integrations.webhooks.models import EventType


def verify(secret: str, headers, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """The receiver's check as docs/webhooks.md writes it (kept in step by hand: it is what integrators copy)."""
    timestamp = headers["Abonent-Timestamp"]
    if abs(now - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    given = headers["Abonent-Signature"].removeprefix("v1=")
    return hmac.compare_digest(expected, given)


@pytest.fixture(autouse=True)
def _local_receivers(settings):
    """The test receivers listen on loopback, which a real install refuses (``ABONENT_WEBHOOK_ALLOW_LOCAL``)."""
    settings.ABONENT_WEBHOOK_ALLOW_LOCAL = True


@pytest.fixture
def hook(admin, httpserver):
    """``hook(types=…, path=…)``: an active endpoint at the local receiver; returns (endpoint, secret)."""

    def make(*, types=tuple(EventType.values), path="/crm/hook", name="CRM"):
        return actions.do_create_endpoint(
            actions.EndpointData(name=name, url=httpserver.url_for(path), event_types=list(types)), acting_user=admin
        )

    return make


@pytest.fixture
def received(httpserver):
    """The requests the receiver got, as (headers, body bytes, parsed JSON)."""

    def read():
        return [(request.headers, request.get_data(), json.loads(request.get_data())) for request, _ in httpserver.log]

    return read
