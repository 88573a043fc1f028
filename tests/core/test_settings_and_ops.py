import os
import subprocess
import sys

import pytest


def _import_settings(env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ABONENT_")}
    return subprocess.run(
        [sys.executable, "-c", "import abonent.settings"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_the_demo_secret_and_debug():
    result = _import_settings({"ABONENT_ENV": "production"})
    assert result.returncode != 0
    assert "ABONENT_SECRET_KEY must be set" in result.stderr
    assert "ABONENT_ALLOWED_HOSTS" in result.stderr


def test_production_starts_when_configured():
    result = _import_settings(
        {"ABONENT_ENV": "production", "ABONENT_SECRET_KEY": "x" * 50, "ABONENT_ALLOWED_HOSTS": "billing.example.ru"}
    )
    assert result.returncode == 0, result.stderr


def test_production_hashes_passwords_with_argon2():
    from django.conf import settings as django_settings

    # The test suite swaps in a fast hasher; the configured one is what production uses.
    from abonent import settings as abonent_settings

    assert abonent_settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert django_settings.AUTH_USER_MODEL == "staff.StaffUser"


@pytest.mark.django_db
def test_metrics_count_requests_by_route(client):
    client.get("/healthz")
    body = client.get("/metrics").content.decode()
    assert 'abonent_http_requests_total{method="GET",route="healthz",status="200"}' in body


@pytest.mark.django_db
def test_every_response_carries_a_request_id(client):
    response = client.get("/healthz", headers={"X-Request-ID": "abc123"})
    assert response["X-Request-ID"] == "abc123"
    assert len(client.get("/healthz")["X-Request-ID"]) == 32


def test_json_log_lines_are_one_object_each():
    import json
    import logging

    from abonent.core.logging import JsonFormatter

    record = logging.makeLogRecord({"msg": "hello %s", "args": ("мир",), "levelname": "INFO", "name": "x"})
    record.subscriber_id = 7
    line = JsonFormatter().format(record)
    assert json.loads(line) | {"ts": None} == {
        "ts": None,
        "level": "INFO",
        "logger": "x",
        "msg": "hello мир",
        "request_id": "-",
        "subscriber_id": 7,
    }
