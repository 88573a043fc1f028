"""The accounting writer's ordering and failure handling, without sockets or a database."""

import asyncio
import datetime as dt
import threading
import time

import psycopg
import pytest

from abonent.network import accounting
from abonent.network.accounting import ACCOUNTING_ON, START, AcctRecord
from abonent.network.radius.spool import REJECTED, Spool, spool_files
from abonent.network.radius.spoolfile import read_records
from abonent.network.radius.stats import Stats
from abonent.network.radius.writer import AccountingWriter

T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


def spooled(directory) -> list[str]:
    return [r.unique_id for path in spool_files(directory) for r in read_records(path)]


def rec(status, unique=""):
    return AcctRecord(status=status, nas_id=1, event_time=T0, unique_id=unique, acct_session_id=unique)


class Recorder:
    def __init__(self, slow_barrier: float = 0.0):
        self.log: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.slow_barrier = slow_barrier

    def write(self, records):
        for r in records:
            name = "ON" if r.status == ACCOUNTING_ON else r.unique_id
            with self.lock:
                self.log.append(("begin", name))
            if r.status == ACCOUNTING_ON:
                time.sleep(self.slow_barrier)
            with self.lock:
                self.log.append(("end", name))


def run(writer, feed):
    answered = []

    async def main():
        writer.start()
        for record in feed:
            writer.submit(record, lambda r=record: answered.append(r))
            # After an Accounting-On, let its write begin: what follows arrives while it is in flight.
            await asyncio.sleep(0.05 if record.status == ACCOUNTING_ON else 0)
        for _ in range(300):
            if len(answered) == len(feed):
                break
            await asyncio.sleep(0.01)
        for task in writer._tasks:
            task.cancel()

    # In a thread of its own: a session-wide Playwright (browser tests on the same xdist worker) keeps an event
    # loop running in the main thread, where asyncio.run() refuses to start another.
    thread = threading.Thread(target=asyncio.run, args=(main(),))
    thread.start()
    thread.join(30)
    for lane in writer.lanes:
        lane.executor.shutdown(wait=True)
    return answered


def test_records_after_an_accounting_on_wait_for_it_on_every_lane(tmp_path, monkeypatch):
    recorder = Recorder(slow_barrier=0.2)
    monkeypatch.setattr(accounting, "write_batch", recorder.write)
    writer = AccountingWriter(Spool(tmp_path), Stats(), lanes=2, use_async=False)
    before = [rec(START, f"before-{i}") for i in range(6)]
    after = [rec(START, f"after-{i}") for i in range(6)]
    answered = run(writer, [*before, rec(ACCOUNTING_ON), *after])
    assert len(answered) == 13
    position = {entry: i for i, entry in enumerate(recorder.log)}
    for r in before:
        assert position[("end", r.unique_id)] < position[("begin", "ON")]
    for r in after:
        # Not merely submitted later: written only once the Accounting-On has committed.
        assert position[("begin", r.unique_id)] > position[("end", "ON")]


def test_a_psycopg_error_spools_the_batch_and_the_lane_goes_on(tmp_path, monkeypatch):
    calls = []

    def failing(records):
        calls.append(len(records))
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(accounting, "write_batch", failing)
    spool = Spool(tmp_path)
    stats = Stats()
    writer = AccountingWriter(spool, stats, lanes=2, use_async=False)
    answered = run(writer, [rec(START, f"s{i}") for i in range(5)])
    assert len(answered) == 5  # answered after the fsync of the spool
    assert len(spooled(tmp_path)) == 5
    assert stats.total("accounting_spooled") == 5


@pytest.mark.django_db
def test_accounting_on_leaves_sessions_started_after_it(make_nas, customer):
    from abonent.network.accounting import close_nas_sessions, write_batch
    from abonent.network.models import Session, SessionStatus

    nas = make_nas()
    early = AcctRecord(status=START, nas_id=nas.pk, event_time=T0, unique_id="early", acct_session_id="e")
    late = AcctRecord(
        status=START, nas_id=nas.pk, event_time=T0 + dt.timedelta(seconds=30), unique_id="late", acct_session_id="l"
    )
    write_batch([early, late])
    assert close_nas_sessions(nas.pk, T0 + dt.timedelta(seconds=10), "NAS-Reboot") == 1
    assert Session.objects.get(unique_id="late").status == SessionStatus.OPEN


@pytest.mark.django_db
def test_spool_replay_sets_a_refused_record_aside_and_resumes_after_a_failure(tmp_path, monkeypatch):
    from django.db import DataError, OperationalError

    spool = Spool(tmp_path)
    spool.append([rec(START, f"s{i}") for i in range(5)])
    written: list[str] = []
    state = {"down_at": "s3"}

    def write(records):
        names = [r.unique_id for r in records]
        if "s1" in names and len(names) == 1:
            raise DataError("value out of range")
        if "s1" in names:
            raise DataError("a row in this batch")
        if state["down_at"] in names:
            raise OperationalError("connection lost")
        written.extend(names)

    monkeypatch.setattr(accounting, "write_batch", write)
    with pytest.raises(OperationalError):
        spool.replay(chunk=1)
    # s0 committed, s1 set aside, s2 committed; the spool keeps s3 and s4 for the next attempt.
    assert written == ["s0", "s2"]
    assert [r.unique_id for r in read_records(tmp_path / REJECTED)] == ["s1"]
    assert spooled(tmp_path) == ["s3", "s4"]  # what was written is no longer in the file
    state["down_at"] = "none"
    assert spool.replay(chunk=1) == 2
    assert written == ["s0", "s2", "s3", "s4"]
    assert not spool.has_backlog()


# --- the PostgreSQL connection driven from the event loop (radius/dbpipe.py) ------------------------------------


def run_on_postgresql(writer, steps):
    """Run ``steps(writer, submit)`` (a coroutine function) on a fresh loop with the writer started, then close
    its connections. ``submit`` returns the list its records' answers are appended to."""
    answered = []

    def submit(records):
        for record in records:
            writer.submit(record, lambda r=record: answered.append(r))
        return answered

    failures = []

    async def main():
        writer.start()
        try:
            await steps(writer, submit)
        except BaseException as exc:  # re-raised in the test's thread, where pytest sees it
            failures.append(exc)
        finally:
            for task in writer._tasks:
                task.cancel()
            await writer.aclose()

    thread = threading.Thread(target=asyncio.run, args=(main(),))
    thread.start()
    thread.join(60)
    writer.close()
    if failures:
        raise failures[0]
    return answered


async def until(predicate, seconds=10.0):
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


@pytest.fixture
def postgresql_only():
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the event-loop connection is PostgreSQL's")


@pytest.mark.django_db(transaction=True)
def test_the_writer_reconnects_after_its_connection_is_killed(postgresql_only, tmp_path, make_nas):
    from django.db import connection

    from abonent.network.models import Session

    nas = make_nas()
    stats = Stats()
    writer = AccountingWriter(Spool(tmp_path), stats, lanes=1)
    assert writer.conninfo is not None

    def record(name):
        return AcctRecord(status=START, nas_id=nas.pk, event_time=T0, unique_id=name, acct_session_id=name)

    async def steps(writer, submit):
        answered = submit([record("a1"), record("a2")])
        await until(lambda: len(answered) == 2)
        pid = writer.lanes[0].pipe.pgconn.backend_pid
        with psycopg.connect(writer.conninfo, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        await until(lambda: not writer.lanes[0].pipe.usable)  # the reader callback saw it go
        submit([record("b1"), record("b2")])
        await until(lambda: len(answered) == 4)
        assert writer.lanes[0].pipe.pgconn.backend_pid != pid

    answered = run_on_postgresql(writer, steps)
    assert len(answered) == 4
    connection.close()
    assert set(Session.objects.values_list("unique_id", flat=True)) == {"a1", "a2", "b1", "b2"}
    assert stats.total("accounting_spooled") == 0
    assert not writer.spool.has_backlog()


@pytest.mark.django_db(transaction=True)
def test_a_record_the_database_refuses_is_counted_and_the_rest_of_its_batch_written(
    postgresql_only, tmp_path, make_nas
):
    from abonent.network.models import Session

    nas = make_nas()
    stats = Stats()
    writer = AccountingWriter(Spool(tmp_path), stats, lanes=1)
    good = [
        AcctRecord(status=START, nas_id=nas.pk, event_time=T0, unique_id=f"g{i}", acct_session_id="g") for i in (1, 2)
    ]
    # Not an IPv4 address: PostgreSQL's inet input refuses it (a DataError), which fails the whole statement.
    bad = AcctRecord(
        status=START, nas_id=nas.pk, event_time=T0, unique_id="bad", acct_session_id="b", framed_ip="300.1.1.1"
    )

    async def steps(writer, submit):
        answered = submit([good[0], bad, good[1]])
        await until(lambda: len(answered) == 3)

    answered = run_on_postgresql(writer, steps)
    assert len(answered) == 3  # answered: the NAS must not resend a record that can never be stored
    assert set(Session.objects.values_list("unique_id", flat=True)) == {"g1", "g2"}
    assert stats.total("accounting_rejected_rows") == 1
    assert stats.total("accounting_spooled") == 0


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_fails_while_in_flight_is_spooled_not_lost(postgresql_only, tmp_path, make_nas):
    nas = make_nas()
    stats = Stats()
    spool = Spool(tmp_path)
    writer = AccountingWriter(spool, stats, lanes=1)

    async def steps(writer, submit):
        answered = submit([AcctRecord(status=START, nas_id=nas.pk, event_time=T0, unique_id="x", acct_session_id="x")])
        await until(lambda: len(answered) == 1)
        pipe = writer.lanes[0].pipe
        # The connection breaks with a batch in flight: its callback gets the error.
        real_send = pipe.send

        def send_then_break(document, time_zone, callback):
            real_send(document, time_zone, callback)
            pipe._fail(psycopg.OperationalError("server closed the connection unexpectedly"))

        pipe.send = send_then_break
        submit(
            [
                AcctRecord(status=START, nas_id=nas.pk, event_time=T0, unique_id=f"y{i}", acct_session_id="y")
                for i in range(3)
            ]
        )
        await until(lambda: len(answered) == 4)

    answered = run_on_postgresql(writer, steps)
    assert len(answered) == 4
    assert stats.total("accounting_spooled") == 3
    assert spooled(tmp_path) == ["y0", "y1", "y2"]


@pytest.mark.django_db(transaction=True)
def test_an_accounting_on_waits_for_a_batch_being_spooled_because_the_database_is_down(
    postgresql_only, tmp_path, make_nas, monkeypatch
):
    """The connection cannot be opened: the batch goes to the spool, and the Accounting-On behind it must not
    be written (nor spooled) before it."""
    nas = make_nas()
    spool = Spool(tmp_path)
    writer = AccountingWriter(spool, Stats(), lanes=2)
    writer.conninfo = "host=127.0.0.1 port=1 dbname=nowhere connect_timeout=1"
    order = []
    real_spool_now = writer._spool_now

    def slow_spool_now(records):
        time.sleep(0.3)  # the Accounting-On arrives while this batch is still being spooled
        order.extend(r.unique_id or "ON" for r in records)
        return real_spool_now(records)

    def write(records):  # the barrier's write, on a thread (the database is down: it spools too)
        order.extend("ON" if r.status == ACCOUNTING_ON else r.unique_id for r in records)
        spool.append(records)
        return True

    monkeypatch.setattr(writer, "_spool_now", slow_spool_now)
    monkeypatch.setattr(writer, "_write", write)
    # All on the second lane: the barrier is written on the first lane's thread, free to run at once.
    names = [f"s{i}" for i in range(64) if hash((nas.pk, f"s{i}")) % 2 == 1][:4]
    starts = [AcctRecord(status=START, nas_id=nas.pk, event_time=T0, unique_id=n, acct_session_id="s") for n in names]

    async def steps(writer, submit):
        answered = submit(starts)
        await asyncio.sleep(0.05)
        submit([AcctRecord(status=ACCOUNTING_ON, nas_id=nas.pk, event_time=T0)])
        await until(lambda: len(answered) == 5)

    answered = run_on_postgresql(writer, steps)
    assert len(answered) == 5
    assert order.index("ON") == len(order) - 1, order


@pytest.mark.django_db(transaction=True)
def test_poll_takes_an_answered_batch_without_a_turn_of_the_loop(postgresql_only, tmp_path, make_nas):
    """Between datagrams the server polls the connection: an answer already on the socket is taken, and the
    NAS answered, at once rather than when the loop next gets round to its reader callback."""
    nas = make_nas()
    writer = AccountingWriter(Spool(tmp_path), Stats(), lanes=1)

    def record(name):
        return AcctRecord(status=START, nas_id=nas.pk, event_time=T0, unique_id=name, acct_session_id=name)

    async def steps(writer, submit):
        answered = submit([record("warm")])  # opens the connection
        await until(lambda: len(answered) == 1)
        submit([record("p1"), record("p2")])
        for _ in range(100):  # a few bare turns: the lane's task sends; the answer needs PostgreSQL's time
            await asyncio.sleep(0)
            if writer.lanes[0].busy:
                break
        assert writer.lanes[0].busy
        time.sleep(0.5)  # the loop is held, as by a long drain of datagrams; PostgreSQL answers meanwhile
        assert len(answered) == 1
        writer.poll()
        assert len(answered) == 3

    assert len(run_on_postgresql(writer, steps)) == 3


# --- bounds on isolating a refused record, and on the replay's chunks (issue 12) ---------------------------------


def refusing(bad: set[str], log: list[list[str]], seconds: float = 0.0):
    """A write_batch that refuses (DataError) any batch holding one of ``bad``, as PostgreSQL fails a whole
    statement for one row, taking ``seconds`` per statement; ``log`` gets each batch it wrote."""
    from django.db import DataError

    def write(records):
        time.sleep(seconds)
        names = [r.unique_id for r in records]
        if bad & set(names):
            raise DataError("value out of range for type bigint")
        log.append(names)

    return write


def test_one_refused_record_of_2000_is_found_in_a_few_statements(monkeypatch):
    written: list[list[str]] = []
    statements = []
    write = refusing({"r-1234"}, written)
    monkeypatch.setattr(accounting, "write_batch", lambda records: (statements.append(1), write(records)))
    refused = []
    records = [rec(START, f"r-{i}") for i in range(2000)]
    left = accounting.write_batch_isolating(records, lambda record, exc: refused.append(record.unique_id))
    assert refused == ["r-1234"]
    # the whole batch, then two halves per level of the bisection (log2 2000 < 11): one by one was 2,001
    assert len(statements) <= 1 + 2 * 11
    # in order, every record but the refused one, each once
    assert [name for batch in written for name in batch] == [f"r-{i}" for i in range(2000) if i != 1234]
    assert not left  # nothing left unwritten without a deadline


def test_a_refused_record_isolated_past_the_deadline_leaves_the_rest_to_the_spool(tmp_path, monkeypatch):
    # given a database that takes 0.1 s a statement and refuses one record of the batch (the bisection alone
    # would take 15 statements, 1.5 s)
    written: list[list[str]] = []
    monkeypatch.setattr(accounting, "write_batch", refusing({"r-70"}, written, seconds=0.1))
    stats = Stats()
    writer = AccountingWriter(Spool(tmp_path), stats, lanes=1, use_async=False, timeout=0.3)
    records = [rec(START, f"r-{i}") for i in range(100)]
    started = time.monotonic()
    # when the batch is written
    answered = run(writer, records)
    took = time.monotonic() - started
    # then every record is answered within the deadline and a statement: what was not written by then is spooled
    assert len(answered) == 100
    assert took < 1.0  # 0.3 s, a statement begun before it, and the test's own polling
    done = [name for batch in written for name in batch]
    assert done == [f"r-{i}" for i in range(len(done))]  # the start of the batch, in order
    assert spooled(tmp_path) == [f"r-{i}" for i in range(len(done), 100)]  # the rest, with the bad one
    assert stats.total("accounting_spooled") == 100 - len(done) > 0


@pytest.mark.django_db  # the replay closes the thread's obsolete connections
def test_a_replay_chunk_the_database_cancels_is_halved_and_grows_back(tmp_path, monkeypatch):
    # given a spool of 40 records and a database that cancels any statement of more than 3 at its deadline
    spool = Spool(tmp_path)
    spool.append([rec(START, f"s{i}") for i in range(40)])
    sizes: list[int] = []
    limit = {"records": 3}

    def write(records):
        if len(records) > limit["records"]:
            raise psycopg.errors.QueryCanceled("canceling statement due to statement timeout")
        sizes.append(len(records))

    monkeypatch.setattr(accounting, "write_batch", write)
    # when it is replayed in chunks of at most 16
    assert spool.replay(chunk=16) == 40
    # then the chunks were halved to what the database takes (16, 8, 4 cancelled), never sent unchanged again
    assert not spool.has_backlog()
    assert sizes[0] == 2 and max(sizes) <= 3 and sum(sizes) == 40
    # and once the database is fast again, they grow back to the largest
    limit["records"] = 1000
    spool.append([rec(START, f"t{i}") for i in range(64)])
    sizes.clear()
    assert spool.replay(chunk=16) == 64
    assert sizes[0] < 16 and sizes.count(16) >= 2 and sum(sizes) == 64


@pytest.mark.django_db  # the replay closes the thread's obsolete connections
def test_closing_the_spool_stops_a_replay_after_its_chunk(tmp_path, monkeypatch):
    # given the file of a process gone (40 records) being replayed four at a time, 0.1 s a chunk
    gone = Spool(tmp_path)
    gone.append([rec(START, f"s{i}") for i in range(40)])
    gone.close()
    written: list[str] = []

    def write(records):
        time.sleep(0.1)
        written.extend(r.unique_id for r in records)

    monkeypatch.setattr(accounting, "write_batch", write)
    spool = Spool(tmp_path)
    replay = threading.Thread(target=spool.replay, kwargs={"chunk": 4})
    replay.start()
    time.sleep(0.25)
    # when the process stops (the spool is closed) in the middle of it
    started = time.monotonic()
    spool.close()
    took = time.monotonic() - started
    replay.join(5)
    # then the close waited for the chunk being written, not for the whole file (1 s)
    assert took < 0.5
    before = len(written)
    assert 0 < before < 40
    # and the next process resumes after the last chunk written
    assert Spool(tmp_path).replay() == 40 - before
    assert written == [f"s{i}" for i in range(40)]
