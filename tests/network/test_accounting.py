"""The accounting writer on both engines, without sockets: idempotent upserts, deltas, NAS reboots, sweeper."""

import datetime as dt

import pytest

from abonent.core import clock
from abonent.network.accounting import (
    ACCOUNTING_ON,
    INTERIM,
    START,
    STOP,
    AcctRecord,
    close_nas_sessions,
    sweep_stale_sessions,
    write_batch,
)
from abonent.network.models import Session, SessionStatus, UsageDay

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


def rec(nas, status, *, t=0, unique="u1", i=0, o=0, sub=None, cause=""):
    return AcctRecord(
        status=status,
        nas_id=nas.pk,
        event_time=T0 + dt.timedelta(seconds=t),
        unique_id=unique,
        acct_session_id="s-" + unique,
        username="ivanov",
        subscriber_id=sub,
        session_time=t,
        input_octets=i,
        output_octets=o,
        terminate_cause=cause,
    )


def test_a_batch_with_repeats_and_reordering_counts_each_byte_once(make_nas, customer):
    nas = make_nas()
    sub = customer.pk
    write_batch([rec(nas, START, sub=sub), rec(nas, INTERIM, t=300, i=1000, o=10, sub=sub)])
    # The same interim again, an older one arriving late, then the Stop twice in one batch.
    write_batch(
        [
            rec(nas, INTERIM, t=300, i=1000, o=10, sub=sub),
            rec(nas, INTERIM, t=200, i=700, o=5, sub=sub),
            rec(nas, STOP, t=600, i=5000, o=50, sub=sub, cause="User-Request"),
            rec(nas, STOP, t=600, i=5000, o=50, sub=sub, cause="User-Request"),
        ]
    )
    write_batch([rec(nas, INTERIM, t=900, i=5000, o=50, sub=sub)])  # interim after stop
    session = Session.objects.get()
    assert (session.status, session.input_octets, session.output_octets) == (SessionStatus.CLOSED, 5000, 50)
    assert session.started_at == T0
    usage = UsageDay.objects.get()
    assert (usage.input_octets, usage.output_octets) == (5000, 50)


def test_accounting_on_in_the_middle_of_a_batch_closes_what_came_before(make_nas, customer):
    nas = make_nas()
    write_batch(
        [
            rec(nas, START, unique="a"),
            AcctRecord(status=ACCOUNTING_ON, nas_id=nas.pk, event_time=T0 + dt.timedelta(seconds=5)),
            rec(nas, START, t=10, unique="b"),
        ]
    )
    states = dict(Session.objects.values_list("unique_id", "status"))
    assert states == {"a": SessionStatus.CLOSED, "b": SessionStatus.OPEN}


def test_sweeper_closes_sessions_silent_for_three_intervals(make_nas, customer):
    nas = make_nas(interim_interval=300)
    write_batch([rec(nas, START, unique="old"), rec(nas, START, t=1000, unique="fresh")])
    with clock.travel_to(T0 + dt.timedelta(seconds=1000 + 60)):
        assert sweep_stale_sessions() == 1
    old = Session.objects.get(unique_id="old")
    assert (old.status, old.terminate_cause, old.stopped_at) == (SessionStatus.CLOSED, "Stale", T0)


def test_close_nas_sessions_only_touches_that_nas(make_nas, customer):
    nas = make_nas()
    other = make_nas(name="other", ip_address="10.0.0.2")
    write_batch([rec(nas, START, unique="a"), rec(other, START, unique="b")])
    assert close_nas_sessions(nas.pk, T0, "NAS-Reboot") == 1
    assert Session.objects.get(unique_id="b").status == SessionStatus.OPEN


def test_a_session_swept_as_stale_reopens_on_a_later_record_and_closes_on_its_stop(make_nas, customer):
    nas = make_nas(interim_interval=300)
    write_batch([rec(nas, START, unique="slow")])
    with clock.travel_to(T0 + dt.timedelta(seconds=1000)):
        assert sweep_stale_sessions() == 1
    # Its interim was delayed (spooled through an outage): the session was alive after all.
    write_batch([rec(nas, INTERIM, t=1200, unique="slow", i=10, o=20)])
    session = Session.objects.get(unique_id="slow")
    assert (session.status, session.stopped_at, session.terminate_cause) == (SessionStatus.OPEN, None, "")
    write_batch([rec(nas, STOP, t=1500, unique="slow", i=30, o=40, cause="User-Request")])
    session.refresh_from_db()
    assert (session.status, session.terminate_cause, session.input_octets) == (SessionStatus.CLOSED, "User-Request", 30)
    # A session closed for any other reason never reopens.
    write_batch([rec(nas, INTERIM, t=1800, unique="slow", i=50, o=60)])
    session.refresh_from_db()
    assert session.status == SessionStatus.CLOSED
