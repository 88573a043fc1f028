"""A reject takes as long for a login that does not exist as for one with a wrong password, for every method
(credentials.py): timing the answers must not tell an attacker which logins exist. Before, an MS-CHAPv2 reject
of an unknown login skipped the NT hash and the DES (58 µs against 137 µs).

Measured on the handler itself, without sockets: the two kinds of request interleaved (so a loaded machine
slows both alike), each timed alone, and the medians compared."""

from __future__ import annotations

import gc
import hashlib
import os
import statistics
import time

import pytest

from abonent.network.policy import PolicyStore
from abonent.network.radius.attemptlog import AttemptBudget
from abonent.network.radius.handler import RadiusServer
from abonent.network.radius.nas import NasEntry
from abonent.network.radius.ratelimit import BadAuthLimiter

from .packets import KEY, NAS_ADDR, PPP, access_request, attr, microsoft, mschap2_attributes

pytestmark = pytest.mark.django_db

ROUNDS = 1500
# The medians may differ by this much (a share of the larger): far under the 3 times of the fault, far over
# what scheduling noise does to medians of interleaved runs.
TOLERANCE = 0.25


def credentials_of(method: str, username: str, password: str) -> bytes:
    """The attributes of a login over PPP with ``method`` (the password is always wrong here)."""
    name = attr(1, username.encode()) + attr(7, PPP)
    if method == "pap":
        return name + attr(2, os.urandom(16))  # hidden; whatever it un-hides to, it is wrong
    if method == "chap":
        return name + attr(3, os.urandom(17)) + attr(60, os.urandom(16))
    if method == "mschap":
        return name + microsoft(11, os.urandom(8)) + microsoft(1, b"\x01\x01" + os.urandom(48))
    return mschap2_attributes(username, password)[0]


@pytest.fixture
def handler(customer, make_nas):
    store = PolicyStore()
    store.load_all()
    store.warm_passwords()
    nas = NasEntry.from_model(make_nas())
    # Without the limits (they would reject most of these unchecked) and with a log that keeps nothing new.
    return RadiusServer(
        store=store,
        nas_table={"127.0.0.1": nas},
        limiter=BadAuthLimiter(0, 0),
        attempt_budget=AttemptBudget(per_window=0),
    )


def medians(server: RadiusServer, method: str) -> tuple[float, float]:
    """Median µs of a reject for the known login ``ivanov`` (wrong password) and for a login that does not exist."""
    requests = {
        login: [access_request(i % 256, credentials_of(method, login, "not-the-password")) for i in range(ROUNDS)]
        for login in ("ivanov", "nosuchuser")
    }
    for login in requests:  # warm up: first calls fill caches
        for data in requests[login][:50]:
            assert server.handle_auth(data, NAS_ADDR)[0] == 3
    times: dict[str, list[int]] = {"ivanov": [], "nosuchuser": []}
    handle, clock = server.handle_auth, time.perf_counter_ns
    gc.disable()
    try:
        for i in range(50, ROUNDS):
            order = ("ivanov", "nosuchuser") if i % 2 else ("nosuchuser", "ivanov")
            for login in order:
                data = requests[login][i]
                started = clock()
                reply = handle(data, NAS_ADDR)
                times[login].append(clock() - started)
                assert reply[0] == 3  # Access-Reject
    finally:
        gc.enable()
    return statistics.median(times["ivanov"]) / 1000, statistics.median(times["nosuchuser"]) / 1000


@pytest.mark.parametrize("method", ["mschap2", "mschap", "chap", "pap"])
def test_a_reject_costs_the_same_for_an_unknown_login_as_for_a_wrong_password(handler, method):
    known, unknown = medians(handler, method)
    print(f"{method}: wrong password {known:.1f} µs, unknown login {unknown:.1f} µs")
    assert abs(known - unknown) <= TOLERANCE * max(known, unknown), (known, unknown)
    assert handler.stats.total("rejects_bad_password") == ROUNDS
    assert handler.stats.total("rejects_unknown_login") == ROUNDS


def test_the_dummy_check_never_accepts_an_unknown_login(handler):
    # given a request whose MS-CHAPv2 response is right for the dummy password itself
    from abonent.network.radius.credentials import DUMMY_PASSWORD

    data = access_request(1, credentials_of("mschap2", "nosuchuser", DUMMY_PASSWORD))
    reply = handler.handle_auth(data, NAS_ADDR)
    assert reply[0] == 3
    assert handler.stats.total("rejects_unknown_login") == 1
    assert hashlib.md5(reply[:4] + data[4:20] + reply[20:] + KEY).digest() == reply[4:20]
