"""Bad authentications are limited per login and per NAS (ratelimit.py): over a limit a request is rejected
unchecked, with the answer a wrong password gets, counted as ``rejects_rate_limited`` and exported on
``/metrics``. Good logins take nothing from a limit, the subscriber's own device keeps getting in while someone
else guesses, and a flood of random names cannot grow the tables without end."""

from __future__ import annotations

import time
import uuid

import pytest

from abonent.network import actions as network
from abonent.network.models import AuthAttempt, LoginKind, RadiusNode, RejectReason
from abonent.network.policy import PolicyStore
from abonent.network.radius.attemptlog import AttemptBudget
from abonent.network.radius.codec import parse_packet
from abonent.network.radius.handler import RadiusServer
from abonent.network.radius.nas import NasEntry
from abonent.network.radius.ratelimit import BadAuthLimiter, Buckets

from .conftest import SECRET
from .packets import (
    ACCEPT,
    INTRUDER,
    NAS_ADDR,
    REJECT,
    ROUTER,
    Clock,
    access_request,
    mschap2_attributes,
    pap_request,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def make_handler(customer, make_nas, clock):
    store = PolicyStore()
    store.load_all()
    nas = NasEntry.from_model(make_nas())

    def make(per_login: int = 10, per_nas: int = 0) -> RadiusServer:
        return RadiusServer(
            store=store,
            nas_table={"127.0.0.1": nas},
            limiter=BadAuthLimiter(per_login, per_nas, clock=clock),
            attempt_budget=AttemptBudget(per_window=100_000, per_key=100_000),
        )

    return make


def code(server: RadiusServer, data: bytes) -> int:
    return server.handle_auth(data, NAS_ADDR)[0]


def test_over_ten_bad_passwords_a_minute_the_login_is_rejected_unchecked(make_handler, clock):
    server = make_handler(per_login=10)
    # given ten wrong passwords for ivanov within a minute
    assert [code(server, pap_request(i, "ivanov", "guess")) for i in range(10)] == [REJECT] * 10
    # when the right one comes next (twice), it is rejected without a check, and written as an attempt once a
    # minute: the log says why the subscriber's right password was refused
    assert code(server, pap_request(10, "ivanov", "s3cret-pw")) == REJECT
    assert code(server, pap_request(10, "ivanov", "s3cret-pw")) == REJECT
    assert server.stats.total("rejects_bad_password") == 10
    assert server.stats.total("rejects_rate_limited") == 2
    assert [a.reason for a in server.attempts] == [RejectReason.BAD_PASSWORD] * 10 + [RejectReason.RATE_LIMITED]
    # then six seconds later one bad authentication's worth is back (ten a minute): the right password gets in
    clock.now += 6.1
    assert code(server, pap_request(11, "ivanov", "s3cret-pw")) == ACCEPT
    assert server.stats.total("accepts") == 1


def test_a_login_that_does_not_exist_is_limited_alike(make_handler):
    server = make_handler(per_login=10)
    assert [code(server, pap_request(i, "nosuchuser", "guess")) for i in range(12)] == [REJECT] * 12
    assert server.stats.total("rejects_unknown_login") == 10
    assert server.stats.total("rejects_rate_limited") == 2
    # and other logins are not affected
    assert code(server, pap_request(12, "ivanov", "s3cret-pw")) == ACCEPT


def test_a_rate_limited_reject_is_the_reject_a_wrong_password_gets(make_handler):
    server = make_handler(per_login=1)
    challenge = bytes(range(16))
    wrong, _ = mschap2_attributes("ivanov", "guess", challenge=challenge)
    right, _ = mschap2_attributes("ivanov", "s3cret-pw", challenge=challenge)
    checked = server.handle_auth(access_request(1, wrong), NAS_ADDR)
    unchecked = server.handle_auth(access_request(2, right), NAS_ADDR)
    assert server.stats.total("rejects_rate_limited") == 1
    # the same code and the same attributes (MS-CHAP-Error E=691 with the request's ident and challenge),
    # only the authenticators differ
    assert checked[0] == unchecked[0] == REJECT
    answers = [dict(parse_packet(reply).attributes) for reply in (checked, unchecked)]
    for attributes in answers:
        attributes.pop(80)
    assert answers[0] == answers[1]
    assert answers[0][(311, 2)][0].startswith(b"\x07E=691 R=0 C=000102030405060708090A0B0C0D0E0F V=3")


def test_the_subscribers_own_router_still_gets_in_while_someone_else_guesses(make_handler, clock):
    server = make_handler(per_login=10)
    # given ivanov's router authenticated once
    assert code(server, pap_request(1, "ivanov", "s3cret-pw", calling=ROUTER)) == ACCEPT
    # when another device guesses until it is limited
    guesses = [code(server, pap_request(i, "ivanov", f"guess{i}", calling=INTRUDER)) for i in range(2, 14)]
    assert guesses == [REJECT] * 12
    assert server.stats.total("rejects_rate_limited") == 2
    assert code(server, pap_request(14, "ivanov", "s3cret-pw", calling=INTRUDER)) == REJECT
    # then the router reconnects all the same
    assert code(server, pap_request(15, "ivanov", "s3cret-pw", calling=ROUTER)) == ACCEPT
    # and a router retrying an old password is limited too, in its own bucket
    old = [code(server, pap_request(i, "ivanov", "old-password", calling=ROUTER)) for i in range(16, 28)]
    assert old == [REJECT] * 12
    assert server.stats.total("rejects_rate_limited") == 3 + 2


def test_a_flood_from_one_nas_throttles_new_devices_but_not_subscribers_already_seen(
    make_handler, clock, customer, admin
):
    network.do_create_login(
        customer, acting_user=admin, kind=LoginKind.PPPOE, username="petrov", password="petrov-pw-2"
    )
    server = make_handler(per_login=10, per_nas=5)  # five a second, fifty at once
    server.store.load_all()
    # given petrov's router authenticated before the flood, and a reconnect storm of good logins
    assert code(server, pap_request(0, "petrov", "petrov-pw-2", calling=ROUTER)) == ACCEPT
    storm = [code(server, pap_request(i % 256, "ivanov", "s3cret-pw")) for i in range(300)]
    assert storm == [ACCEPT] * 300  # good logins take nothing from the limit
    # when random names flood in from the NAS
    flood = [code(server, pap_request(i % 256, uuid.uuid4().hex, "guess")) for i in range(200)]
    assert flood == [REJECT] * 200
    assert server.stats.total("rejects_unknown_login") == 50
    assert server.stats.total("rejects_rate_limited") == 150
    # then a device not seen before waits (even with the right password), the one seen before gets in
    assert code(server, pap_request(1, "ivanov", "s3cret-pw", calling=INTRUDER)) == REJECT
    assert code(server, pap_request(2, "petrov", "petrov-pw-2", calling=ROUTER)) == ACCEPT
    # and a second later the NAS has five checks again
    clock.now += 1.0
    assert code(server, pap_request(3, "ivanov", "s3cret-pw", calling=INTRUDER)) == ACCEPT


def test_requests_without_a_password_are_never_limited(make_handler):
    server = make_handler(per_login=1, per_nas=1)
    # an IPoE NAS asking about devices it does not know (no password to guess): never throttled
    for i in range(30):
        data = access_request(i, bytes((31, 19)) + f"AA:BB:CC:00:01:{i:02X}".encode())
        assert code(server, data) == REJECT
    assert server.stats.total("rejects_unknown_login") == 30
    assert server.stats.total("rejects_rate_limited") == 0


def test_a_flood_of_random_names_does_not_grow_the_tables_without_end(clock):
    limiter = BadAuthLimiter(10, 0, clock=clock, max_keys=1000)
    for _ in range(50_000):
        name = uuid.uuid4().hex
        assert not limiter.throttled("nas", name, "")
        limiter.failed("nas", name, "")
    assert len(limiter.logins.levels) <= 1000
    assert limiter.devices == {}
    # a bucket that has filled up again is forgotten first
    buckets = Buckets(rate=1.0, burst=2.0, max_keys=10)
    for key in range(10):
        buckets.take(key, now=0.0)
    buckets.take("late", now=5.0)  # the others are full again by now
    assert list(buckets.levels) == ["late"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("radius")
def test_rate_limited_rejects_are_counted_on_metrics(customer, make_nas, server, radclient, client):
    nas = make_nas()
    wrong = 'User-Name = "ivanov"\nUser-Password = "guess"\nMessage-Authenticator = 0x00\n'
    with server() as running:
        # twelve wrong passwords in one go: ten are checked, two are over the limit (ten a minute)
        result = radclient(running.auth_port, SECRET, "auth", "\n".join([wrong] * 12))
        assert result.stdout.count("Received Access-Reject") == 12, result.stdout + result.stderr
        assert running.counter("rejects_rate_limited") == 2
        assert running.counter("rejects_bad_password") == 10
        assert running.counter("auth_attempts_dropped") == 7  # three rows per login and reason a minute
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the maintenance thread publishes the counters
            published = RadiusNode.objects.values_list("counters", flat=True).first() or {}
            if published.get(nas.name, {}).get("rejects_rate_limited") == 2:
                break
            time.sleep(0.1)
    metrics = client.get("/metrics").content.decode().splitlines()
    assert f'abonent_radius_events_total{{event="rejects_rate_limited",nas="{nas.name}"}} 2.0' in metrics
    # three rows of the checked ones, one of those rejected unchecked (one a minute per login)
    assert sorted(AuthAttempt.objects.values_list("reason", flat=True)) == [RejectReason.BAD_PASSWORD] * 3 + [
        RejectReason.RATE_LIMITED
    ]
