"""ABONENT_REQUIRE_2FA_ROLES cannot be emptied by accident in production.

A value of only spaces or commas (" ", ",") used to parse as no roles at all, so production silently ran with no
second factor for anyone; so did a line left blank. Turning the requirement off now takes the word "none".
"""

import os
import secrets
import subprocess
import sys

import pytest

PRODUCTION = {
    "ABONENT_ENV": "production",
    "ABONENT_SECRET_KEY": secrets.token_urlsafe(50),
    "ABONENT_ALLOWED_HOSTS": "billing.example.ru",
}


def _roles(env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ABONENT_")}
    return subprocess.run(
        [sys.executable, "-c", "import abonent.settings as s; print(s.ABONENT_REQUIRE_2FA_ROLES)"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("value", [" ", ",", " , ,", "\t"])
@pytest.mark.parametrize("environment", ["production", "development"])
def test_a_value_of_only_spaces_and_commas_stops_the_start(value, environment):
    result = _roles({**PRODUCTION, "ABONENT_ENV": environment, "ABONENT_REQUIRE_2FA_ROLES": value})

    assert result.returncode != 0, result.stdout
    assert f"ABONENT_REQUIRE_2FA_ROLES names no role ({value!r})" in result.stderr
    assert 'write "none" to require it of nobody' in result.stderr


def test_an_empty_value_stops_production():
    result = _roles({**PRODUCTION, "ABONENT_REQUIRE_2FA_ROLES": ""})

    assert result.returncode != 0, result.stdout
    assert "ABONENT_REQUIRE_2FA_ROLES names no role ('')" in result.stderr


@pytest.mark.parametrize("value", ["none", "None", " NONE "])
def test_none_turns_the_requirement_off_in_production(value):
    result = _roles({**PRODUCTION, "ABONENT_REQUIRE_2FA_ROLES": value})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_none_beside_a_role_stops_the_start():
    result = _roles({**PRODUCTION, "ABONENT_REQUIRE_2FA_ROLES": "none,admin"})

    assert result.returncode != 0, result.stdout
    assert '"none" must stand alone' in result.stderr


@pytest.mark.parametrize(
    ("value", "roles"), [("admin, cashier,", "['admin', 'cashier']"), (None, "['admin', 'cashier', 'lawful']")]
)
def test_production_keeps_a_list_of_roles_and_its_default(value, roles):
    env = {**PRODUCTION, "ABONENT_REQUIRE_2FA_ROLES": value} if value is not None else PRODUCTION

    result = _roles(env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == roles


def test_an_empty_value_still_means_nobody_outside_production():
    result = _roles({"ABONENT_REQUIRE_2FA_ROLES": ""})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
