"""The devices the limits on bad authentications know (ratelimit.py, policy_devices.py): a login's router is known
from the database's sessions, open or recent, as a Calling-Station-Id behind one NAS, so a restarted process or
another of ``--processes`` knows it too; and the per-NAS limit still stops a flood from devices nobody knows.
Also: MS-CHAP's hashes are computed ahead of the requests, never on one (credentials.py), by an MD4 checked against
RFC 1320's test suite."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from abonent.core import clock
from abonent.network import actions as network
from abonent.network.accounting import unique_session_id
from abonent.network.models import Login, LoginKind, RejectReason, Session, SessionStatus
from abonent.network.policy import PolicyStore
from abonent.network.policy_devices import DEVICE_DAYS, DEVICES_PER_LOGIN
from abonent.network.radius import auth
from abonent.network.radius.attemptlog import AttemptBudget
from abonent.network.radius.handler import RadiusServer
from abonent.network.radius.nas import NasEntry
from abonent.network.radius.ratelimit import BadAuthLimiter

from .packets import (
    ACCEPT,
    INTRUDER,
    NAS_ADDR,
    OTHER_NAS_ADDR,
    PPP,
    REJECT,
    ROUTER,
    Clock,
    access_request,
    attr,
    microsoft,
    mschap2_attributes,
    pap_request,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_process(customer, nas_a, nas_b):
    """A RADIUS process just started: the policy (and the devices) read from the database, nothing seen yet."""

    def make(per_login: int = 10, per_nas: int = 50) -> RadiusServer:
        store = PolicyStore()
        store.load_all()
        return RadiusServer(
            store=store,
            nas_table={"127.0.0.1": NasEntry.from_model(nas_a), "10.0.0.2": NasEntry.from_model(nas_b)},
            limiter=BadAuthLimiter(per_login, per_nas, clock=Clock()),
            attempt_budget=AttemptBudget(100_000, 100_000),
        )

    return make


def session(customer, nas, *, calling: str, started: dt.timedelta, closed: bool = True, login=None) -> None:
    """A session accounting recorded, ``started`` ago (closed an hour later unless open)."""
    login = login or Login.objects.get(username="ivanov")
    started_at = clock.now() - started
    name = uuid.uuid4().hex
    Session.objects.create(
        nas=nas,
        unique_id=unique_session_id(login.username, name, "127.0.0.1", "", "", ""),
        acct_session_id=name,
        login=login,
        subscriber=login.subscriber,
        username=login.username,
        calling_station_id=calling,
        started_at=started_at,
        updated_at=started_at + dt.timedelta(hours=1),
        **({"status": SessionStatus.CLOSED, "stopped_at": started_at + dt.timedelta(hours=1)} if closed else {}),
    )


def code(server: RadiusServer, data: bytes, addr=NAS_ADDR) -> int:
    return server.handle_auth(data, addr)[0]


def flood(server: RadiusServer, count: int, addr=NAS_ADDR) -> list[int]:
    """``count`` random names with wrong passwords, each from a device of its own."""
    return [
        code(
            server,
            pap_request(i % 256, uuid.uuid4().hex, "guess", calling=f"02:00:00:00:{i // 256:02X}:{i % 256:02X}"),
            addr,
        )
        for i in range(count)
    ]


def test_a_flood_from_unknown_devices_is_still_limited_per_nas(fresh_process, customer, nas_a):
    # given ivanov's router known from the database (a session through NAS A yesterday), and a process just started
    session(customer, nas_a, calling=ROUTER, started=dt.timedelta(days=1))
    server = fresh_process(per_login=10, per_nas=50)
    # when 600 random names flood in from NAS A, each from a device nobody knows
    assert flood(server, 600) == [REJECT] * 600
    # then the NAS's limit stops them: 500 (ten seconds' worth) are checked, the rest rejected unchecked
    assert server.stats.total("rejects_unknown_login") == 500
    assert server.stats.total("rejects_rate_limited") == 100
    # and so is a device not known for ivanov, even with the right password: it waits for the NAS's limit
    assert code(server, pap_request(1, "ivanov", "s3cret-pw", calling=INTRUDER)) == REJECT
    assert server.stats.total("rejects_rate_limited") == 101
    # while his router, known from the database, is exempt and gets in
    assert code(server, pap_request(2, "ivanov", "s3cret-pw", calling=ROUTER)) == ACCEPT
    # the router's exemption is its own: the names flooding on are still refused unchecked
    assert flood(server, 10) == [REJECT] * 10
    assert server.stats.total("rejects_rate_limited") == 111


def test_a_device_known_through_one_nas_is_not_known_through_another(fresh_process, customer, nas_a):
    # given ivanov's router known from a session through NAS A, and both NAS flooded
    session(customer, nas_a, calling=ROUTER, started=dt.timedelta(hours=3))
    server = fresh_process(per_login=10, per_nas=5)
    assert flood(server, 60) + flood(server, 60, OTHER_NAS_ADDR) == [REJECT] * 120
    assert server.stats.total("rejects_rate_limited") == 2 * (60 - 50)
    # when the router's MAC asks through NAS B, with the right password: it is not that NAS's known device (anyone
    # on NAS B can set that MAC), so it waits for NAS B's limit
    assert code(server, pap_request(1, "ivanov", "s3cret-pw", calling=ROUTER), OTHER_NAS_ADDR) == REJECT
    assert server.stats.total("rejects_rate_limited") == 2 * (60 - 50) + 1
    # through NAS A it is, and gets in
    assert code(server, pap_request(2, "ivanov", "s3cret-pw", calling=ROUTER)) == ACCEPT


def test_which_sessions_make_a_device_known(fresh_process, customer, nas_a, admin):
    login = Login.objects.get(username="ivanov")
    petrov = network.do_create_login(
        customer, acting_user=admin, kind=LoginKind.PPPOE, username="petrov", password="petrov-pw-2"
    )
    # an open session however old, a closed one within the month, one closed long ago, and another login's
    session(customer, nas_a, calling="AA:00:00:00:00:01", started=dt.timedelta(days=90), closed=False)
    session(customer, nas_a, calling="AA:00:00:00:00:02", started=dt.timedelta(days=DEVICE_DAYS - 1))
    session(customer, nas_a, calling="AA:00:00:00:00:03", started=dt.timedelta(days=DEVICE_DAYS + 1))
    session(customer, nas_a, calling="AA:00:00:00:00:04", started=dt.timedelta(days=1), login=petrov)
    store = fresh_process().store
    known = [store.device_known(login.pk, nas_a.pk, f"AA:00:00:00:00:0{i}") for i in range(1, 5)]
    assert known == [True, True, False, False]
    assert store.device_known(petrov.pk, nas_a.pk, "AA:00:00:00:00:04")


def test_a_login_keeps_its_newest_few_devices(fresh_process, customer, nas_a):
    login = Login.objects.get(username="ivanov")
    macs = [f"AA:00:00:00:01:{i:02X}" for i in range(DEVICES_PER_LOGIN + 3)]
    for age, mac in enumerate(reversed(macs)):  # the last MAC the newest
        session(customer, nas_a, calling=mac, started=dt.timedelta(days=1, hours=age))
    store = fresh_process().store
    assert [store.device_known(login.pk, nas_a.pk, mac) for mac in macs] == [False] * 3 + [True] * DEVICES_PER_LOGIN
    assert len(store.known_devices) == DEVICES_PER_LOGIN


def test_a_device_accepted_by_another_process_is_known_at_the_next_refresh(fresh_process, customer, nas_a):
    # given a process running, and ivanov's router accepted by another process since (its Start written)
    server = fresh_process()
    login = Login.objects.get(username="ivanov")
    assert not server.store.device_known(login.pk, nas_a.pk, ROUTER)
    session(customer, nas_a, calling=ROUTER, started=dt.timedelta(minutes=1), closed=False)
    # when the maintenance thread's refresh reads the sessions written since (due every 30 s)
    server.store._devices_due = 0.0
    server.store.refresh_sets(force=False)
    # then this process knows the router too: ten guesses from elsewhere do not lock it out
    assert server.store.device_known(login.pk, nas_a.pk, ROUTER)
    assert [code(server, pap_request(i, "ivanov", f"guess{i}", calling=INTRUDER)) for i in range(12)] == [REJECT] * 12
    assert code(server, pap_request(12, "ivanov", "s3cret-pw", calling=ROUTER)) == ACCEPT


def test_without_calling_station_id_the_login_limit_is_shared(fresh_process, customer, nas_a):
    # A NAS that sends no Calling-Station-Id has no known devices (docs/radius.md): whoever guesses spends the
    # limit the subscriber's own router needs as well.
    session(customer, nas_a, calling=ROUTER, started=dt.timedelta(days=1))
    server = fresh_process()
    assert [code(server, pap_request(i, "ivanov", f"guess{i}")) for i in range(10)] == [REJECT] * 10
    assert code(server, pap_request(10, "ivanov", "s3cret-pw")) == REJECT
    assert server.stats.total("rejects_rate_limited") == 1


# --- MS-CHAP's hashes ------------------------------------------------------------------------------------------


# RFC 1320 A.5, the MD4 test suite (the last two over one 64-octet block, as a password over 27 characters is).
MD4_SUITE = [
    (b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
    (b"a", "bde52cb31de33e46245e05fbdbd6fb24"),
    (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
    (b"message digest", "d9130a8164549fe818874806e1c7014b"),
    (b"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"),
    (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "043f8582f241db351ce627e153e7f0e4"),
    (b"1234567890" * 8, "e33b4ddc9c38f2199c3e7b164fcc0536"),
]


@pytest.mark.parametrize(("message", "digest"), MD4_SUITE)
def test_md4_is_rfc_1320s(message, digest):
    assert auth._md4(message).hex() == digest


def mschap1_attributes(username: str, password: str) -> bytes:
    challenge = bytes(range(8))
    nt = auth.nt_response(challenge, auth.nt_password_hash(password))
    return (
        attr(1, username.encode())
        + attr(7, PPP)
        + microsoft(11, challenge)
        + microsoft(1, b"\x01\x01" + bytes(24) + nt)
    )


@pytest.mark.parametrize("length", [9, 64])
def test_ms_chap_computes_no_hash_on_a_request(fresh_process, customer, monkeypatch, length):
    # given ivanov's password (short, or a passphrase over 27 characters), warmed as the maintenance thread does
    password = "s3cret-pw" if length == 9 else ("correct horse battery staple " * 2 + "abcdef")
    login = Login.objects.get(username="ivanov")
    login.set_password(password)
    login.save()
    server = fresh_process(per_login=0, per_nas=0)
    server.store.warm_passwords()
    requests = [
        mschap2_attributes("ivanov", password)[0],
        mschap2_attributes("ivanov", "wrong")[0],
        mschap2_attributes("nosuchuser", "wrong")[0],
        mschap1_attributes("ivanov", password),
        mschap1_attributes("ivanov", "wrong"),
        mschap1_attributes("nosuchuser", "wrong"),
    ]
    packets = [access_request(i, attributes) for i, attributes in enumerate(requests)]

    # when they are answered, MD4 is not run at all: its cost grows with the password's length
    def no_md4(data: bytes) -> bytes:
        raise AssertionError("an NT hash computed on a request")

    monkeypatch.setattr(auth, "_md4", no_md4)
    assert [code(server, data) for data in packets] == [ACCEPT, REJECT, REJECT] * 2
    assert server.stats.total("rejects_bad_password") == 2
    assert server.stats.total("rejects_unknown_login") == 2


def test_the_rate_limited_row_is_written_for_a_login_that_exists_only(fresh_process, customer):
    server = fresh_process(per_login=2, per_nas=0)
    for login in ("ivanov", "nosuchuser"):
        for i in range(5):
            assert code(server, pap_request(i, login, "guess")) == REJECT
    assert server.stats.total("rejects_rate_limited") == 6
    written = [(a.username, a.reason) for a in server.attempts]
    assert (
        written
        == [("ivanov", RejectReason.BAD_PASSWORD)] * 2
        + [("ivanov", RejectReason.RATE_LIMITED)]
        + [("nosuchuser", RejectReason.UNKNOWN_LOGIN)] * 2
    )
