"""The login lockout's settings are refused at start when they would break the console or turn the lockout off.

ABONENT_LOGIN_MAX_FAILURES=0 (or ..._PER_IP=0, perhaps meant as "no limit") used to be accepted, and then every
console login was a 500: the lockout took the oldest of the last 0 failures of an empty list.
"""

import pytest

SETTINGS = ["ABONENT_LOGIN_MAX_FAILURES", "ABONENT_LOGIN_MAX_FAILURES_PER_IP", "ABONENT_LOGIN_LOCKOUT_SECONDS"]


@pytest.mark.parametrize("name", SETTINGS)
@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_limit_below_one_stops_the_start(name, value, import_settings):
    result = import_settings({name: value})

    assert result.returncode != 0
    assert f"{name} must be a whole number of at least 1, not {value!r}" in result.stderr


@pytest.mark.parametrize("name", SETTINGS)
def test_a_limit_that_is_not_a_number_stops_the_start_with_its_name(name, import_settings):
    result = import_settings({name: "five"})

    assert result.returncode != 0
    assert f"{name} must be a whole number of at least 1, not 'five'" in result.stderr


def test_limits_of_one_are_accepted(import_settings):
    result = import_settings(dict.fromkeys(SETTINGS, "1"))

    assert result.returncode == 0, result.stderr
