"""How old the policy the RADIUS server answers from is (issue 12, "Snapshot staleness"): stated in the logs and on
/metrics, and past ABONENT_RADIUS_SNAPSHOT_MAX_AGE only logins that had a session open get in."""

import datetime as dt
import logging
import socket
import time

import pytest
from django.db import OperationalError

from abonent.core import clock
from abonent.network import actions as network
from abonent.network.accounting import unique_session_id
from abonent.network.models import AuthAttempt, Login, LoginKind, RadiusNode, RejectReason, Session
from abonent.network.policy import PolicyStore
from abonent.network.radius import snapshot as snapshots
from abonent.network.radius.nas import load_nas_table

from .conftest import SECRET

HOURS = 3600
NODE = f"{socket.gethostname()}:0:0"  # the test server's (auth port 0: a free one)
PAP = 'User-Name = "{name}"\nUser-Password = "{password}"\nMessage-Authenticator = 0x00\n'


@pytest.fixture
def newcomer(make_subscriber, admin, plan):
    """A second subscriber, paid up, with no session open anywhere."""
    from abonent.billing import actions as billing

    subscriber = make_subscriber(last_name="Петров", phone="+79161234568")
    billing.do_post_payment(subscriber, amount="1000.00", channel="cash", external_id="p-1", acting_user=admin)
    billing.do_activate_subscription(subscriber, plan=plan, acting_user=admin)
    network.do_create_login(
        subscriber, acting_user=admin, kind=LoginKind.PPPOE, username="petrov", password="pw-petrov"
    )
    return subscriber


def _open_session(customer, nas) -> None:
    now = clock.now()
    Session.objects.create(
        nas=nas,
        unique_id=unique_session_id("ivanov", "before", "127.0.0.1", "", "", ""),
        acct_session_id="before",
        login=Login.objects.get(username="ivanov"),
        subscriber=customer,
        username="ivanov",
        started_at=now,
        updated_at=now,
    )


def _write_snapshot(path, *, age_seconds: float) -> None:
    """The snapshot a server wrote, its policy read from the database ``age_seconds`` ago."""
    store = PolicyStore()
    store.load_all()
    store.mark_fresh(time.time() - age_seconds)
    snapshots.save(path, store, load_nas_table())


def _database_down(monkeypatch):
    def refused(self):
        raise OperationalError("connection refused (simulated outage)")

    monkeypatch.setattr(PolicyStore, "load_all", refused)


def _auth(radclient, running, name, password):
    return radclient(running.auth_port, SECRET, "auth", PAP.format(name=name, password=password)).stdout


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("radius")
def test_an_old_snapshot_lets_back_in_only_who_was_online(
    customer, newcomer, make_nas, server, radclient, monkeypatch, tmp_path, settings, caplog
):
    # given a snapshot five hours old, written while ivanov had a session open and petrov had none
    settings.ABONENT_RADIUS_SNAPSHOT_MAX_AGE = 4 * HOURS
    nas = make_nas()
    _open_session(customer, nas)
    spool = tmp_path / "radius"
    spool.mkdir()
    _write_snapshot(snapshots.snapshot_path(spool, NODE), age_seconds=5 * HOURS)
    Session.objects.all().delete()  # the session itself is gone by now (the NAS crashed): only the snapshot knows
    # when the server starts with the database away
    _database_down(monkeypatch)
    with caplog.at_level(logging.WARNING, "abonent.radius"), server() as running:
        reconnecting = _auth(radclient, running, "ivanov", "s3cret-pw")
        new = _auth(radclient, running, "petrov", "pw-petrov")
        rejects = running.server.stats.total("rejects_policy_too_old")
        # and once the database is back, the policy is read again and the limit no longer applies
        monkeypatch.undo()
        deadline = time.monotonic() + 15
        while running.server.store.restored and time.monotonic() < deadline:
            time.sleep(0.05)
        after = _auth(radclient, running, "petrov", "pw-petrov")
    # then the subscriber who was online is let back in, the new one is refused with a reason of its own
    assert "Received Access-Accept" in reconnecting, reconnecting
    assert "Received Access-Reject" in new, new
    assert rejects == 1
    assert "Received Access-Accept" in after, after
    assert AuthAttempt.objects.filter(reason=RejectReason.POLICY_TOO_OLD, username="petrov").count() == 1
    # and the log said how old the snapshot was
    [restored] = [r.getMessage() for r in caplog.records if "policy restored from" in r.getMessage()]
    age = int(restored.split("read from the database ")[1].split(" s ago")[0])
    assert 5 * HOURS <= age < 5 * HOURS + 120


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("radius")
def test_a_snapshot_younger_than_the_limit_lets_new_logins_in(
    customer, newcomer, make_nas, server, radclient, monkeypatch, tmp_path, settings
):
    settings.ABONENT_RADIUS_SNAPSHOT_MAX_AGE = 4 * HOURS
    make_nas()
    spool = tmp_path / "radius"
    spool.mkdir()
    _write_snapshot(snapshots.snapshot_path(spool, NODE), age_seconds=3 * HOURS)
    _database_down(monkeypatch)
    with server() as running:
        new = _auth(radclient, running, "petrov", "pw-petrov")
    assert "Received Access-Accept" in new, new


@pytest.mark.django_db
def test_a_running_server_cut_off_from_the_database_too_long_refuses_new_logins(customer, newcomer, make_nas):
    # given a policy read from the database with ivanov online, and the database away since
    nas = make_nas()
    _open_session(customer, nas)
    store = PolicyStore(max_age=4 * HOURS)
    store.load_all()
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
    ivanov, petrov = store.find("ivanov"), store.find("petrov")
    store.at_limit.clear()  # (its own limit aside: the NAS crashed, it reconnects)
    assert store.decide(petrov, now).accept
    # when the last successful read is more than the limit ago
    store.mark_fresh(time.time() - 4 * HOURS - 1)
    # then only who had a session is let in
    assert store.decide(ivanov, now).accept
    assert store.decide(petrov, now).reason == RejectReason.POLICY_TOO_OLD
    # and a successful refresh lifts it
    store.refresh()
    assert store.decide(petrov, now).accept


@pytest.mark.django_db
def test_metrics_show_how_old_each_process_policy_is(client):
    now = clock.now()
    for node, age in (("host:1812:0", 2), ("host:1812:1", 5 * HOURS)):
        RadiusNode.objects.create(
            node=node, started_at=now, updated_at=now, policy_as_of=now - dt.timedelta(seconds=age)
        )
    lines = client.get("/metrics").content.decode().splitlines()
    ages = {
        line.split('node="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("abonent_radius_policy_age_seconds{")
    }
    assert set(ages) == {"host:1812:0", "host:1812:1"}
    assert 2 <= ages["host:1812:0"] < 60
    assert 5 * HOURS <= ages["host:1812:1"] < 5 * HOURS + 60


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("radius")
def test_the_server_publishes_when_its_policy_was_read(customer, make_nas, server):
    make_nas()
    before = clock.now()
    with server() as running:
        deadline = time.monotonic() + 10
        while not RadiusNode.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        store = running.server.store
        assert store.as_of >= before.timestamp() - 1
    node = RadiusNode.objects.get()
    assert before - dt.timedelta(seconds=1) <= node.policy_as_of <= clock.now()


# --- who counts as reconnecting: the logins online when the policy was read, or since ---------------------------


def _stale(store: PolicyStore) -> None:
    store.mark_fresh(time.time() - store.max_age - 1)


@pytest.mark.django_db
def test_a_stop_does_not_turn_a_subscriber_into_a_new_login(customer, make_nas):
    # given a policy read with nobody online, and ivanov's session started and stopped since (his router
    # reconnecting)
    make_nas()
    store = PolicyStore(max_age=4 * HOURS)
    store.load_all()
    ivanov = store.find("ivanov")
    store.session_started(ivanov.login_id, "s1")
    store.session_stopped(ivanov.login_id, "s1")
    # when the database has been away past the limit, then he is let back in: he was online since the policy
    # was read. On main (f14e0c7) the Stop took him out of the "had a session" set.
    _stale(store)
    decision = store.decide(ivanov, clock.now())
    assert decision.accept, decision.reason


@pytest.mark.django_db
def test_the_snapshot_written_after_a_nas_reboot_still_lists_its_subscribers_as_online(customer, make_nas, tmp_path):
    # given ivanov online through a NAS, and the database away since
    nas = make_nas()
    _open_session(customer, nas)
    store = PolicyStore(max_age=4 * HOURS)
    store.load_all()
    # when the NAS reboots (Accounting-On) and the server saves its snapshot (every minute) and later restarts
    store.nas_restarted(nas.pk, clock.now())
    path = tmp_path / "policy.json"
    snapshots.save(path, store, load_nas_table())
    restored = PolicyStore(max_age=4 * HOURS)
    assert snapshots.restore(path, restored) is not None
    # then, past the age limit, ivanov reconnecting is let in. On main the snapshot listed nobody online.
    _stale(restored)
    decision = restored.decide(restored.find("ivanov"), clock.now())
    assert decision.accept, decision.reason
