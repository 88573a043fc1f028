"""The cloud PBXs' signed webhook: a good event is acted on once, a forged or replayed one is refused with a log
line and writes nothing, bad input is a 400 naming the field."""

from __future__ import annotations

import json
import logging
import time

import pytest
from django.test import Client

from abonent.integrations.telephony.models import Call, CallStatus, ScreenPop, WebhookEvent
from abonent.integrations.telephony.webhook import sign

SECRET = "hook-secret-0123456789"
URL = "/hooks/telephony/"


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.ABONENT_TELEPHONY_WEBHOOK_SECRET = SECRET


def post(body, *, secret=SECRET, timestamp=None, signature=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "HTTP_X_ABONENT_TIMESTAMP": stamp,
        "HTTP_X_ABONENT_SIGNATURE": signature if signature is not None else sign(secret, stamp, raw),
    }
    return Client().post(URL, raw, content_type="application/json", **headers)


def ringing(**extra):
    return {
        "provider": "mango",
        "call_id": "mg-1001",
        "event": "ringing",
        "at": "2026-12-07T10:00:00+03:00",
        "from": "+79161234567",
        "to": "+74950000000",
        "extension": "101",
        **extra,
    }


@pytest.mark.django_db
def test_ringing_then_end_records_the_call_and_pops_once_even_when_retried(operator, give_extension, make_subscriber):
    give_extension(operator, "101")
    subscriber = make_subscriber(phone="+79161234567")

    first = post(ringing())
    retried = post(ringing())
    ended = post(
        {
            "provider": "mango",
            "call_id": "mg-1001",
            "event": "ended",
            "status": "answered",
            "duration": 65,
            "recording_file": "mango/mg-1001.mp3",
        }
    )

    assert (first.status_code, first.json()["status"]) == (200, "ok")
    assert (retried.status_code, retried.json()) == (200, {"status": "duplicate"})
    assert ended.status_code == 200
    call = Call.objects.get(source="mango", pbx_call_id="mg-1001")
    assert (call.status, call.duration_seconds, call.recording_file) == (CallStatus.ANSWERED, 65, "mango/mg-1001.mp3")
    assert call.operator == operator
    assert list(call.subscribers.all()) == [subscriber]
    assert [p.payload["pbx_call_id"] for p in ScreenPop.objects.filter(extension="101")] == ["mg-1001"]
    assert WebhookEvent.objects.count() == 2


@pytest.mark.django_db
def test_wrong_signature_is_refused_with_a_log_line_and_nothing_written(caplog):
    with caplog.at_level(logging.WARNING, logger="abonent.integrations.telephony.webhook"):
        forged = post(ringing(), secret="guessed")
        tampered = post(ringing(), signature=sign(SECRET, str(int(time.time())), b"{}"))
        missing = post(ringing(), signature="")

    assert [r.status_code for r in (forged, tampered, missing)] == [403, 403, 403]
    assert forged.json()["code"] == "bad_signature"
    assert "wrong signature" in caplog.text
    assert (Call.objects.count(), WebhookEvent.objects.count(), ScreenPop.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
def test_old_or_future_timestamp_is_refused_even_with_a_valid_signature(caplog):
    with caplog.at_level(logging.WARNING, logger="abonent.integrations.telephony.webhook"):
        replayed = post(ringing(), timestamp=int(time.time()) - 301)
        future = post(ringing(), timestamp=int(time.time()) + 301)
        garbage = post(ringing(), timestamp="yesterday")

    assert [r.status_code for r in (replayed, future, garbage)] == [403, 403, 403]
    assert replayed.json()["code"] == "stale_timestamp"
    assert "timestamp" in caplog.text
    assert Call.objects.count() == 0 and WebhookEvent.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (ringing(event="exploded"), "event"),
        (ringing(call_id=""), "call_id"),
        (ringing(call_id="x" * 101), "call_id"),
        (ringing(call_id="a b"), "call_id"),
        (ringing(extension=""), "extension"),
        (ringing(at="yesterday"), "at"),
        (ringing(at="2026-12-07T10:00:00"), "at"),
        (ringing(event="ended", duration=-5), "duration"),
        (ringing(event="ended", duration="65"), "duration"),
        (ringing(event="ended", status="exploded"), "status"),
        ([1, 2], "body"),
    ],
)
def test_bad_fields_are_a_400_naming_the_field_and_write_nothing(body, field):
    response = post(body)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert Call.objects.count() == 0 and WebhookEvent.objects.count() == 0


@pytest.mark.django_db
def test_torn_json_a_nul_and_an_oversized_body_are_refused():
    assert post(b'{"provider": "mango", "call_').json()["code"] == "malformed_body"
    assert post(ringing(**{"from": "\x00"})).status_code == 422  # the house's request guard, before the view
    assert post(b"{" + b" " * 20_000 + b"}").status_code == 413
    assert Call.objects.count() == 0


@pytest.mark.django_db
def test_without_a_configured_secret_every_event_is_refused(settings):
    settings.ABONENT_TELEPHONY_WEBHOOK_SECRET = ""
    assert post(ringing(), secret="").status_code == 503
    assert Call.objects.count() == 0


@pytest.mark.django_db
def test_a_recording_outside_the_recordings_directory_is_not_kept(recordings):
    post(ringing())
    post({"provider": "mango", "call_id": "mg-1001", "event": "recording", "recording_file": "../../etc/passwd"})
    post(
        {
            "provider": "mango",
            "call_id": "mg-1001",
            "event": "ended",
            "recording_file": "/etc/shadow",
            "status": "missed",
        }
    )
    call = Call.objects.get()
    assert call.recording_file == ""
    assert call.status == CallStatus.MISSED
