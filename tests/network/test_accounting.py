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


def rec(nas, status, *, t=0, unique="u1", i=0, o=0, sub=None, cause="", c32=False):
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
        counters_32bit=c32,
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


GIB4 = 2**32


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "one-batch"])
def test_32_bit_counters_that_wrap_go_on_counting(make_nas, customer, batched):
    """A NAS without Gigawords: 4.0e9 → 1.0e9 → 3.0e9 bytes is one wrap, 2^32 + 3.0e9 in all."""
    nas = make_nas()
    sub = customer.pk
    records = [
        rec(nas, START, sub=sub),
        rec(nas, INTERIM, t=300, i=4_000_000_000, o=4_200_000_000, sub=sub, c32=True),
        rec(nas, INTERIM, t=600, i=1_000_000_000, o=100, sub=sub, c32=True),
        # An older interim arriving late is not a wrap: its session time is behind.
        rec(nas, INTERIM, t=450, i=4_100_000_000, o=50, sub=sub, c32=True),
        rec(nas, INTERIM, t=900, i=3_000_000_000, o=200, sub=sub, c32=True),
        rec(nas, INTERIM, t=900, i=3_000_000_000, o=200, sub=sub, c32=True),  # the same one again
    ]
    if batched:
        write_batch(records)
    else:
        for record in records:
            write_batch([record])
    session = Session.objects.get()
    assert (session.input_octets, session.output_octets) == (GIB4 + 3_000_000_000, GIB4 + 200)
    assert session.counters_32bit
    usage = UsageDay.objects.get()
    assert (usage.input_octets, usage.output_octets) == (GIB4 + 3_000_000_000, GIB4 + 200)


def test_a_wrap_inside_one_batch_on_a_row_past_4_gib_counts_each_byte_once(make_nas, customer):
    """A spool replayed after an outage brings several interims of a session in one batch."""
    nas = make_nas()
    sub = customer.pk
    write_batch([rec(nas, START, sub=sub)])
    write_batch([rec(nas, INTERIM, t=300, i=3_900_000_000, o=1, sub=sub, c32=True)])
    write_batch([rec(nas, INTERIM, t=600, i=1_000, o=2, sub=sub, c32=True)])  # wrapped: 2^32 + 1,000
    write_batch([rec(nas, INTERIM, t=900, i=3_900_000_000, o=3, sub=sub, c32=True)])
    assert Session.objects.get().input_octets == GIB4 + 3_900_000_000
    write_batch(
        [
            rec(nas, INTERIM, t=1000, i=4_200_000_000, o=4, sub=sub, c32=True),
            rec(nas, INTERIM, t=1200, i=100_000_000, o=5, sub=sub, c32=True),  # the second wrap
            rec(nas, INTERIM, t=1100, i=4_250_000_000, o=4, sub=sub, c32=True),  # older, arriving late
        ]
    )
    session = Session.objects.get()
    assert (session.input_octets, session.output_octets) == (2 * GIB4 + 100_000_000, 5)
    assert UsageDay.objects.get().input_octets == 2 * GIB4 + 100_000_000


def test_mergeable_stops_at_the_record_that_wraps():
    from abonent.network.accounting import mergeable

    class N:
        pk = 1

    batch = [
        rec(N, INTERIM, t=300, i=4_000_000_000, c32=True),
        rec(N, INTERIM, t=300, unique="u2", i=5, c32=True),
        rec(N, INTERIM, t=200, i=3_000_000_000, c32=True),  # older: merged, not a wrap
        rec(N, INTERIM, t=600, i=1_000, c32=True),  # wraps against the first
        rec(N, INTERIM, t=900, i=2_000, c32=True),
    ]
    assert mergeable(batch) == 3
    assert mergeable(batch[3:]) == 2
    assert mergeable([rec(N, INTERIM, t=300, i=4_000_000_000), rec(N, INTERIM, t=600, i=1_000)]) == 2


def test_counters_with_gigawords_never_go_back(make_nas, customer):
    """With Gigawords the counters are 64-bit: a smaller value, even a newer one, is no wrap."""
    nas = make_nas()
    sub = customer.pk
    write_batch([rec(nas, INTERIM, t=300, i=4_000_000_000, o=10, sub=sub)])
    write_batch([rec(nas, INTERIM, t=600, i=1_000_000_000, o=5, sub=sub)])
    session = Session.objects.get()
    assert (session.input_octets, session.output_octets) == (4_000_000_000, 10)
    assert not session.counters_32bit
    assert UsageDay.objects.get().input_octets == 4_000_000_000


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


def _new_start(nas, at: int, unique: str, sub: int) -> AcctRecord:
    """A Start at ``T0 + at`` seconds, the session beginning then."""
    return AcctRecord(
        status=START,
        nas_id=nas.pk,
        event_time=T0 + dt.timedelta(seconds=at),
        unique_id=unique,
        acct_session_id="s-" + unique,
        username="ivanov",
        subscriber_id=sub,
    )


@pytest.mark.parametrize("closed_by", ["reboot", "sweeper"])
def test_a_session_id_used_again_after_a_reboot_is_a_new_session_with_its_own_traffic(make_nas, customer, closed_by):
    nas = make_nas(interim_interval=300)
    sub = customer.pk
    write_batch([rec(nas, START, unique="r", sub=sub), rec(nas, INTERIM, t=300, unique="r", i=9000, o=900, sub=sub)])
    if closed_by == "reboot":
        write_batch([AcctRecord(status=ACCOUNTING_ON, nas_id=nas.pk, event_time=T0 + dt.timedelta(seconds=400))])
    else:
        with clock.travel_to(T0 + dt.timedelta(seconds=1300)):
            assert sweep_stale_sessions() == 1
    # The NAS's session counter restarted: the same id (and so the same unique id) for a new session.
    write_batch([_new_start(nas, 2000, "r", sub)])
    write_batch([
        AcctRecord(
            status=INTERIM, nas_id=nas.pk, event_time=T0 + dt.timedelta(seconds=2300), unique_id="r",
            acct_session_id="s-r", username="ivanov", subscriber_id=sub, session_time=300, input_octets=100,
            output_octets=10,
        )
    ])  # fmt: skip
    old, new = Session.objects.order_by("id")
    assert (old.status, old.input_octets, old.unique_id) == (SessionStatus.CLOSED, 9000, f"r:{old.pk}")
    assert (new.status, new.unique_id, new.started_at, new.input_octets) == (
        SessionStatus.OPEN,
        "r",
        T0 + dt.timedelta(seconds=2000),
        100,
    )
    # Both sessions' traffic is counted: the new one's did not vanish under the old totals.
    usage = UsageDay.objects.get()
    assert (usage.input_octets, usage.output_octets) == (9100, 910)
    # The same Start again (a retransmission) changes nothing.
    write_batch([_new_start(nas, 2000, "r", sub)])
    assert Session.objects.count() == 2


def test_a_late_start_after_its_own_stop_is_still_the_same_session(make_nas, customer):
    nas = make_nas()
    write_batch([rec(nas, STOP, t=600, unique="late", i=50, o=5, cause="User-Request")])
    write_batch([_new_start(nas, 700, "late", customer.pk)])  # received after the Stop, without a delay
    session = Session.objects.get()
    assert (session.status, session.unique_id, session.input_octets) == (SessionStatus.CLOSED, "late", 50)


def test_every_field_reaches_the_session_and_empty_ones_are_stored_empty(make_nas, customer):
    """The batch goes to PostgreSQL as a document that carries the event time once and leaves empty values
    out: each field must still land in its column, and a left-out one read as empty, not as NULL or junk."""
    nas = make_nas()
    login = customer.network_logins.get()
    full = AcctRecord(
        status=STOP,
        nas_id=nas.pk,
        event_time=T0 + dt.timedelta(seconds=754, microseconds=123456),
        unique_id="full",
        acct_session_id="s-full",
        username="ivanov",
        login_id=login.pk,
        subscriber_id=customer.pk,
        framed_ip="100.64.1.2",
        calling_station_id="aa:bb:cc:dd:ee:ff",
        nas_port_id="ether1/вход 7",
        session_time=754,
        input_octets=5 * 2**32 + 7,
        output_octets=9,
        terminate_cause="Lost-Carrier",
    )
    bare = AcctRecord(status=START, nas_id=nas.pk, event_time=T0, unique_id="bare", acct_session_id="s-bare")
    write_batch([full, bare])

    session = Session.objects.get(unique_id="full")
    assert (session.login_id, session.subscriber_id, session.username) == (login.pk, customer.pk, "ivanov")
    assert (str(session.framed_ip), session.calling_station_id, session.nas_port_id) == (
        "100.64.1.2",
        "aa:bb:cc:dd:ee:ff",
        "ether1/вход 7",
    )
    assert session.started_at == T0 + dt.timedelta(microseconds=123456)  # the event time less the session time
    assert session.updated_at == session.stopped_at == full.event_time
    assert (session.status, session.terminate_cause, session.session_time) == (
        SessionStatus.CLOSED,
        "Lost-Carrier",
        754,
    )
    assert (session.input_octets, session.output_octets) == (5 * 2**32 + 7, 9)

    session = Session.objects.get(unique_id="bare")
    assert (session.login_id, session.subscriber_id, session.framed_ip) == (None, None, None)
    assert (session.username, session.calling_station_id, session.nas_port_id, session.terminate_cause) == (
        "",
        "",
        "",
        "",
    )
    assert (session.status, session.stopped_at, session.started_at, session.updated_at) == (
        SessionStatus.OPEN,
        None,
        T0,
        T0,
    )


def test_each_local_day_with_a_record_is_an_online_day_once(make_nas, customer):
    from abonent.billing.models import OnlineDay

    nas = make_nas()
    sub = customer.pk
    # 13:00 Moscow, then 01:00 the next day: one session across midnight, online on both days.
    write_batch([rec(nas, START, sub=sub)])
    write_batch([rec(nas, INTERIM, t=12 * 3600, i=10, o=1, sub=sub)])
    write_batch([rec(nas, INTERIM, t=12 * 3600 + 300, i=20, o=2, sub=sub)])  # the same day again
    days = sorted(OnlineDay.objects.filter(subscriber=customer).values_list("day", flat=True))
    assert days == [dt.date(2026, 11, 20), dt.date(2026, 11, 21)]


@pytest.mark.parametrize("told", ["redirect", "denied"])
def test_a_day_on_the_payment_page_is_not_a_day_online(make_nas, customer, told):
    """A daily plan may charge only for days online: a debtor's router connected to the redirect is not, nor is a
    session of a subscriber denied access that the Disconnect has not ended yet."""
    from abonent.billing.models import OnlineDay
    from abonent.network.models import AccessMark

    nas = make_nas()
    sub = customer.pk
    AccessMark.objects.create(subscriber=customer, told=told, since=T0)
    write_batch([rec(nas, START, sub=sub), rec(nas, INTERIM, t=300, i=10, o=1, sub=sub)])
    assert not OnlineDay.objects.filter(subscriber=customer).exists()
    assert UsageDay.objects.get().input_octets == 10  # the traffic is still counted
    AccessMark.objects.filter(subscriber=customer).delete()  # paid: the redirect is off
    write_batch([rec(nas, INTERIM, t=600, i=20, o=2, sub=sub)])
    assert list(OnlineDay.objects.filter(subscriber=customer).values_list("day", flat=True)) == [dt.date(2026, 11, 20)]
