import os
import subprocess
import sys

import pytest


def test_production_refuses_the_demo_secret_and_debug(import_settings):
    result = import_settings({"ABONENT_ENV": "production"})
    assert result.returncode != 0
    assert "ABONENT_SECRET_KEY must be set" in result.stderr
    assert "ABONENT_ALLOWED_HOSTS" in result.stderr


# Like what `python3 -c 'import secrets; print(secrets.token_urlsafe(50))'` prints (the command the docs give).
GOOD_KEY = "q7Zc1Xo3mD9vKf2LwTa8Rj5NbYh0GpUe4SiCxVr6EkHn_Ml-Ot7QzWy1Pd3Fs8Bg2Aj9"
PRODUCTION = {
    "ABONENT_ENV": "production",
    "ABONENT_SECRET_KEY": GOOD_KEY,
    "ABONENT_ALLOWED_HOSTS": "billing.example.ru",
}


def test_production_starts_when_configured(import_settings):
    result = import_settings(PRODUCTION)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("env", ["Production", "prod", "production ", "PRODUCTION", "staging", ""])
def test_an_unknown_environment_refuses_to_start_instead_of_running_as_development(env, import_settings):
    # Before, anything but exactly "production" ran with DEBUG on and no production checks.
    result = import_settings({**PRODUCTION, "ABONENT_ENV": env})

    assert result.returncode != 0
    assert f"ABONENT_ENV must be one of production, development, not {env!r}" in result.stderr


@pytest.mark.parametrize(
    "key",
    [
        "x" * 50,  # long enough, one character
        "abcd" * 20,  # four different characters
        GOOD_KEY[:49],  # one short of Django's minimum
        "django-insecure-" + GOOD_KEY,  # what startproject generates for development
    ],
)
def test_production_refuses_a_low_entropy_secret_key(key, import_settings):
    result = import_settings({**PRODUCTION, "ABONENT_SECRET_KEY": key})

    assert result.returncode != 0
    assert "ABONENT_SECRET_KEY must be set to a random string of at least 50 characters" in result.stderr


def test_production_refuses_any_host(import_settings):
    result = import_settings({**PRODUCTION, "ABONENT_ALLOWED_HOSTS": "billing.example.ru,*"})

    assert result.returncode != 0
    assert "ABONENT_ALLOWED_HOSTS must list the host names, not *" in result.stderr


def test_development_is_still_the_default(import_settings):
    result = import_settings({})
    assert result.returncode == 0, result.stderr


def test_the_secret_key_rule_is_djangos():
    from django.core.checks.security.base import _check_secret_key

    from abonent.settings import weak_secret_key

    for key in ("x" * 50, "abcd" * 20, GOOD_KEY[:49], "django-insecure-" + GOOD_KEY, GOOD_KEY):
        assert weak_secret_key(key) is not _check_secret_key(key), key


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


def test_production_closes_the_api_docs():
    result = subprocess.run(
        [sys.executable, "-c", "import abonent.settings as s; print(s.ABONENT_API_DOCS_PUBLIC)"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("ABONENT_")}, **PRODUCTION},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.stdout.strip() == "False", result.stderr
