"""The console's lockout holds when wrong passwords arrive together, not only one after another.

The lockout used to be read before the (deliberately slow) argon2 check and the attempt written after it, with
nothing between the two: twenty wrong passwords sent at once all passed the check, so a limit of 5 let 9 to 12
guesses through. The same held for the per-address limit and for the password asked again before a change to
the second factor.
"""

import threading
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client, RequestFactory

from abonent.staff.actions import LoginLockedOut
from abonent.staff.models import LoginAttempt
from abonent.staff.permissions import Role
from abonent.staff.two_factor import CodeCheck, check_password_and_code

PARALLEL = 20


def _together(calls: list[Callable[[], object]]) -> list[object]:
    """Run every call in its own thread (its own database connection), all released at once; what each returned."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = []

    def run(call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            results.append(call())
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == len(calls)
    return results


def _login(username: str, password: str, address: str) -> Callable[[], int]:
    data = {"username": username, "password": password}
    return lambda: Client().post("/staff/", data, REMOTE_ADDR=address).status_code


@pytest.fixture
def parallel_db():
    if connection.vendor != "postgresql":
        pytest.skip("the SQLite test database is in memory with a shared cache: parallel writers lock its tables")


@pytest.fixture
def argon2(settings):
    # The production hasher: argon2 is slow on purpose, which is the window the guesses raced through.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_passwords_for_one_login_get_no_more_guesses_than_the_limit(
    parallel_db, argon2, make_staff, settings
):
    settings.ABONENT_LOGIN_MAX_FAILURES = 5
    make_staff(Role.ADMIN, username="victim", password="the-right-pass!")

    statuses = _together([_login("victim", f"guess-{n}", f"10.0.{n}.1") for n in range(PARALLEL)])

    # A 401 is a password compared with the hash; every other guess was refused unchecked (429).
    checked = statuses.count(401)
    assert checked + statuses.count(429) == PARALLEL
    assert checked <= 5, f"{checked} passwords tried: {sorted(statuses)}"
    # Only the checked guesses are recorded: the refused ones left no row behind.
    assert LoginAttempt.objects.filter(username="victim", succeeded=False).count() == checked
    assert LoginAttempt.objects.filter(username="victim", succeeded=True).count() == 0


@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_from_one_address_get_no_more_than_the_address_limit(parallel_db, argon2, settings):
    settings.ABONENT_LOGIN_MAX_FAILURES_PER_IP = 5

    # Logins that do not exist: the backend still runs the hasher once, so they take as long as real ones.
    statuses = _together([_login(f"user-{n}", "guess", "203.0.113.7") for n in range(PARALLEL)])

    checked = statuses.count(401)
    assert checked + statuses.count(429) == PARALLEL
    assert checked <= 5, f"{checked} passwords tried: {sorted(statuses)}"
    assert LoginAttempt.objects.filter(ip_address="203.0.113.7", succeeded=False).count() == checked


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_passwords_before_a_second_factor_change_get_no_more_than_the_limit(
    parallel_db, argon2, make_staff, settings
):
    # A borrowed session guessing the password on the "new recovery codes" or "turn off" form.
    settings.ABONENT_LOGIN_MAX_FAILURES = 5
    olga = make_staff(Role.OPERATOR, username="olga", password="the-right-pass!")

    def guess(n: int) -> Callable[[], str]:
        def call() -> str:
            request = RequestFactory().post("/staff/two-factor/recovery-codes/", REMOTE_ADDR=f"10.1.{n}.1")
            try:
                return check_password_and_code(request, user=olga, password=f"guess-{n}", code="123456").check.value
            except LoginLockedOut:
                return "locked_out"

        return call

    outcomes = _together([guess(n) for n in range(PARALLEL)])

    checked = outcomes.count(CodeCheck.WRONG.value)
    assert checked + outcomes.count("locked_out") == PARALLEL
    assert checked <= 5, f"{checked} passwords tried: {sorted(outcomes)}"
    assert LoginAttempt.objects.filter(username="olga", succeeded=False).count() == checked
