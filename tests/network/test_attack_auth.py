"""Attacks on what issue 12 built for authentication: the bad-authentication limits (ratelimit.py), the equal reject
timing (credentials.py), the bounded attempt log (attemptlog.py), the policy snapshot and its age limit, and the
in-memory simultaneous-use count. Each test here is an attacker, a clumsy NAS or a clumsy operator; each failed on
the code it was written against (main at 24bb880)."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import uuid

import pytest
from django.conf import settings

from abonent.core import clock
from abonent.network import actions as network
from abonent.network.accounting import unique_session_id
from abonent.network.models import Login, RejectReason, Session, SessionStatus
from abonent.network.policy import PolicyStore
from abonent.network.radius import snapshot as snapshots
from abonent.network.radius.attemptlog import AttemptBudget
from abonent.network.radius.handler import RadiusServer
from abonent.network.radius.nas import NasEntry
from abonent.network.radius.ratelimit import BadAuthLimiter

from .packets import ACCEPT, INTRUDER, NAS_ADDR, OTHER_NAS_ADDR, REJECT, ROUTER, Clock, pap_request
from .test_auth_timing import ROUNDS, TOLERANCE, medians

pytestmark = pytest.mark.django_db

HOURS = 3600


@pytest.fixture
def limiter_clock():
    return Clock()


@pytest.fixture
def fresh_process(customer, nas_a, nas_b, limiter_clock):
    """What ``abonent radius`` holds right after it (re)starts, or in another of its ``--processes``: the policy
    loaded, the default limits, no authentication seen yet."""

    def make(**limits) -> RadiusServer:
        store = PolicyStore()
        store.load_all()
        store.refresh_sets()
        return RadiusServer(
            store=store,
            nas_table={"127.0.0.1": NasEntry.from_model(nas_a), "10.0.0.2": NasEntry.from_model(nas_b)},
            limiter=BadAuthLimiter(limits.get("per_login", 10), limits.get("per_nas", 50), clock=limiter_clock),
        )

    return make


def _online(customer, nas, *, calling: str, name: str = "before", login: Login | None = None, closed=False) -> None:
    """A session of ivanov's, as accounting recorded it before the restart: open, or ``closed`` a moment ago (the
    router dropped the link and is reconnecting, so the simultaneous-use limit is not what rejects it)."""
    now = clock.now()
    login = login or Login.objects.get(username="ivanov")
    Session.objects.create(
        nas=nas,
        unique_id=unique_session_id(login.username, name, "127.0.0.1", "", "", ""),
        acct_session_id=name,
        login=login,
        subscriber=customer,
        username=login.username,
        calling_station_id=calling,
        started_at=now - dt.timedelta(hours=1),
        updated_at=now,
        **({"status": SessionStatus.CLOSED, "stopped_at": now} if closed else {}),
    )


def code(server: RadiusServer, data: bytes, addr=NAS_ADDR) -> int:
    return server.handle_auth(data, addr)[0]


# --- the per-login limit: locking a subscriber out ------------------------------------------------------------


def test_after_a_restart_ten_guesses_from_elsewhere_lock_the_subscribers_own_router_out(fresh_process, customer, nas_a):
    # given ivanov's router got in before (an accept, its session open in the database)
    before = fresh_process()
    assert code(before, pap_request(1, "ivanov", "s3cret-pw", calling=ROUTER)) == ACCEPT
    _online(customer, nas_a, calling=ROUTER, closed=True)
    # when abonent radius restarts (or the NAS's next request lands in another of its --processes) and someone
    # else sends ten wrong passwords for ivanov
    after = fresh_process()
    guesses = [code(after, pap_request(i, "ivanov", f"guess{i}", calling=INTRUDER)) for i in range(2, 12)]
    assert guesses == [REJECT] * 10
    # then the subscriber's own router, with the right password, still gets in (ratelimit.py promises that
    # "someone guessing from elsewhere cannot lock the subscriber's own router out"); on 24bb880 the known
    # device lives only in the memory of the process that saw the accept, and the router is rejected unchecked
    assert code(after, pap_request(12, "ivanov", "s3cret-pw", calling=ROUTER)) == ACCEPT, after.stats.counters


def test_guesses_through_another_nas_with_the_routers_mac_lock_the_router_out(fresh_process):
    # given ivanov's router authenticated through NAS A
    server = fresh_process()
    assert code(server, pap_request(1, "ivanov", "s3cret-pw", calling=ROUTER)) == ACCEPT
    # when someone on NAS B (another town) sets their PPPoE client's MAC to the router's and guesses
    guesses = [
        code(server, pap_request(i, "ivanov", f"guess{i}", calling=ROUTER), OTHER_NAS_ADDR) for i in range(2, 14)
    ]
    assert guesses == [REJECT] * 12
    # then the router on NAS A is not locked out: a device is the MAC *behind a NAS*, and NAS B cannot speak for
    # NAS A's port. On 24bb880 the known-device bucket is keyed by the MAC alone and is now empty.
    assert code(server, pap_request(14, "ivanov", "s3cret-pw", calling=ROUTER)) == ACCEPT, server.stats.counters


def test_a_restart_with_stale_password_routers_retrying_locks_the_whole_nas_out(fresh_process, customer, nas_a):
    # given ivanov's router connected through NAS A before the restart (its session ended with the NAS's reboot)
    _online(customer, nas_a, calling=ROUTER, closed=True)
    server = fresh_process()
    # when abonent radius comes back and NAS A's reconnect storm carries 600 routers with stale passwords or
    # deleted logins (distinct logins; each retries a few times a minute: no per-login limit is reached)
    storm = [
        code(
            server,
            pap_request(i % 256, f"stale-{i}", "old-password", calling=f"02:00:00:00:{i // 256:02X}:{i % 256:02X}"),
        )
        for i in range(600)
    ]
    assert storm == [REJECT] * 600
    # then the subscribers with the right password still get in. On 24bb880 the per-NAS limit (500 at once) is
    # spent by the stale ones and every device this process has not itself accepted waits: after a restart
    # that is every subscriber of the NAS.
    assert code(server, pap_request(1, "ivanov", "s3cret-pw", calling=ROUTER)) == ACCEPT, server.stats.counters


# --- equal timing --------------------------------------------------------------------------------------------


@pytest.fixture
def long_password_handler(customer, make_nas):
    """ivanov's password is a 64-character passphrase (the console sets no maximum)."""
    login = Login.objects.get(username="ivanov")
    login.set_password("correct horse battery staple " * 2 + "abcdef")
    login.save()
    store = PolicyStore()
    store.load_all()
    store.warm_passwords()
    return RadiusServer(
        store=store,
        nas_table={"127.0.0.1": NasEntry.from_model(make_nas())},
        limiter=BadAuthLimiter(0, 0),
        attempt_budget=AttemptBudget(per_window=0),
    )


def test_an_mschap2_reject_of_a_long_password_login_costs_what_an_unknown_login_costs(long_password_handler):
    # The NT hash of a password over 27 characters takes a second MD4 block (pure Python, ~15 µs each), the
    # dummy (12 characters) one: a known login with a long password answers measurably slower than a login
    # that does not exist. 64 characters: three blocks against one.
    known, unknown = medians(long_password_handler, "mschap2")
    print(f"mschap2, 64-character password: wrong password {known:.1f} µs, unknown login {unknown:.1f} µs")
    assert long_password_handler.stats.total("rejects_bad_password") == ROUNDS
    assert abs(known - unknown) <= TOLERANCE * max(known, unknown), (known, unknown)


# --- the attempt log -------------------------------------------------------------------------------------------


def test_a_flood_of_random_names_cannot_hide_a_subscribers_own_rejects(fresh_process, customer, admin, limiter_clock):
    # given ivanov's login disabled (he will call support: "why can't I connect?")
    login = Login.objects.get(username="ivanov")
    network.do_update_login(login, acting_user=admin, is_active=False)
    # (the per-NAS limit off here: at 50 a second per NAS the flood below takes 10 s from one NAS, 1 s from ten)
    server = fresh_process(per_nas=0)
    server.attempt_budget = AttemptBudget(1000, clock=limiter_clock)
    # when someone sends 1,000 random names within the minute
    for i in range(1000):
        assert code(server, pap_request(i % 256, uuid.uuid4().hex, "guess")) == REJECT
    # then ivanov's own attempt in that minute is still written: the log exists to answer for real logins, and
    # names that do not exist must not spend its whole budget. On 24bb880 the cap is one pool for everything.
    assert code(server, pap_request(1, "ivanov", "s3cret-pw", calling=ROUTER)) == REJECT
    assert server.stats.total("rejects_login_disabled") == 1
    written = [a for a in server.attempts if a.username == "ivanov"]
    assert [a.reason for a in written] == [RejectReason.LOGIN_DISABLED]


# --- the snapshot ----------------------------------------------------------------------------------------------


def test_a_fifo_planted_at_the_snapshot_path_does_not_hang_the_start(customer, make_nas, tmp_path):
    # given a spool directory someone else could write (the threat), and a FIFO where the snapshot is
    path = snapshots.snapshot_path(tmp_path, "host:1812:0")
    os.mkfifo(path)
    # when the server starts with the database away and reads the snapshot
    outcome: list = []
    reader = threading.Thread(target=lambda: outcome.append(snapshots.restore(path, PolicyStore())), daemon=True)
    reader.start()
    reader.join(timeout=5)
    hung = reader.is_alive()
    if hung:  # let the thread go: open the FIFO's other end and close it
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        reader.join(timeout=5)
    # then it is refused at once (not a regular file), never waited on forever
    assert not hung, "restore() blocked on a FIFO at the snapshot path"
    assert outcome == [None]


# --- the policy age limit and simultaneous use -----------------------------------------------------------------


def test_past_the_age_limit_a_nas_reboot_does_not_turn_its_online_subscribers_into_new_logins(customer, nas_a):
    # given ivanov online through NAS A, and the database away since
    _online(customer, nas_a, calling=ROUTER)
    store = PolicyStore(max_age=4 * HOURS)
    store.load_all()
    ivanov = store.find("ivanov")
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    # when NAS A reboots (Accounting-On) an hour into the outage, and ivanov reconnects after the age limit
    store.nas_restarted(nas_a.pk, clock.now())
    store.mark_fresh(time.time() - 4 * HOURS - 1)
    # then he is let back in: he was online when the policy was read, which is what the limit asks. On 24bb880
    # the Accounting-On drops NAS A's logins from the "had a session" set, and every subscriber of the rebooted
    # NAS is refused as a new login (policy_too_old) until the database is back.
    decision = store.decide(ivanov, now)
    assert decision.accept, decision.reason


def test_an_accounting_on_sent_again_does_not_free_the_sessions_started_since(customer, nas_a):
    # given NAS A rebooted (Accounting-On) and ivanov (one session allowed) connected again through it
    store = PolicyStore()
    store.load_all()
    store.refresh_sets()
    login_id = store.find("ivanov").login_id
    rebooted_at = clock.now()
    store.nas_restarted(nas_a.pk, rebooted_at)
    store.session_started(login_id, "after-reboot", nas_a.pk)
    assert login_id in store.at_limit
    # when the NAS sends its Accounting-On again (a retransmission with a new Acct-Delay-Time is a new packet to
    # the dedup cache; some NAS send two), for the same reboot
    store.nas_restarted(nas_a.pk, rebooted_at)
    # then the session started after that reboot still counts: a second login must not get in. On 24bb880 every
    # session seen starting on the NAS is freed, whenever it started.
    assert login_id in store.at_limit


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
    reason="a transactional test: SQLite's test database cannot flush past the ledger's append-only triggers",
)
@pytest.mark.django_db(transaction=True)
def test_a_snapshot_that_cannot_be_written_does_not_stop_the_node_publishing(customer, nas_a, tmp_path, monkeypatch):
    # given the spool disk full: every snapshot save fails (ENOSPC)
    from types import SimpleNamespace

    from abonent.network.models import RadiusNode
    from abonent.network.radius import runner

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runner.snapshots, "save", disk_full)
    store = PolicyStore()
    store.load_all()
    server = RadiusServer(store=store, nas_table={"127.0.0.1": NasEntry.from_model(nas_a)})
    writer = SimpleNamespace(depth=0, lanes=[], spool=SimpleNamespace(has_backlog=lambda: False, refresh=lambda: False))
    maintenance = runner.Maintenance(server, writer, tmp_path / "policy.json", "host:1812:0", every=0.05)
    # when the maintenance thread runs for a while
    maintenance.start()
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not RadiusNode.objects.filter(node="host:1812:0").exists():
            time.sleep(0.05)
    finally:
        maintenance.stop_event.set()
        maintenance.join(timeout=5)
    # then the node still publishes its counters and policy age (/metrics, monitoring): a failed save is logged
    # and retried, not a reason to skip the rest of every tick. On 24bb880 the save raises before _publish on
    # every tick (last_snapshot is never advanced), so the node looks dead while the disk is full.
    assert RadiusNode.objects.filter(node="host:1812:0").exists()
