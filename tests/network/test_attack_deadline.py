"""Attacks on the database deadlines and the bounded accounting queue of ``abonent radius`` (issue 12)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time

import psycopg
import pytest
from django.db import connection

from abonent.network.accounting import ACCOUNTING_ON, START, AcctRecord
from abonent.network.models import Session
from abonent.network.radius.spool import Spool
from abonent.network.radius.stats import Stats
from abonent.network.radius.writer import AccountingWriter

from . import test_db_faults
from .test_writer import run_on_postgresql, until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("radius")]


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the database deadlines are PostgreSQL's")


@pytest.fixture
def proxy():
    database = settings_module().DATABASES["default"]
    running = test_db_faults.PostgresProxy((database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432)))
    yield running
    running.close()


def record(nas, name: str, status: int = START) -> AcctRecord:
    return AcctRecord(
        status=status, nas_id=nas.pk, event_time=dt.datetime.now(dt.UTC), unique_id=name, acct_session_id=name
    )


def test_live_accounting_is_answered_while_a_large_spool_is_replayed(tmp_path, make_nas, settings):
    settings.ABONENT_RADIUS_DB_TIMEOUT = 1.0
    nas = make_nas()
    spool = Spool(tmp_path, Stats())
    for start in range(0, 100_000, 2000):
        spool.append([record(nas, f"spooled-{i}") for i in range(start, start + 2000)])
    writer = AccountingWriter(spool, Stats(), lanes=1)
    waited, replay_took = [], []

    async def steps(writer, submit):
        def replay():
            started = time.monotonic()
            writer.replay()
            replay_took.append(time.monotonic() - started)

        thread = threading.Thread(target=replay, daemon=True)
        thread.start()
        await asyncio.sleep(0.3)
        started = time.monotonic()
        answered = submit([record(nas, "live")])
        await until(lambda: len(answered) == 1, seconds=60)
        waited.append(time.monotonic() - started)
        await until(lambda: not thread.is_alive(), seconds=60)

    run_on_postgresql(writer, steps)
    print("waited", waited, "replay", replay_took)
    assert waited[0] < 2.0


def own_connection() -> None:
    """This thread's Django connection as abonent radius has it (deadlines.process_database): no pool, so the
    session deadlines (statement_timeout...) are SET on it as in production."""
    from django.db import connections
    from django.db.backends.postgresql.base import DatabaseWrapper

    from abonent.network.radius import deadlines

    database = deadlines.process_database(dict(settings_module().DATABASES["default"]))
    connections["default"] = DatabaseWrapper(database, "default")


def settings_module():
    from django.conf import settings

    return settings


@pytest.fixture
def slow_rows():
    """Each row written to network_session costs the server 1 ms more (a slow disk, a cold index): one session
    is written in a millisecond, 2,000 of them in over 2 s."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION att_slow_row() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(0.001); RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER att_slow BEFORE INSERT OR UPDATE ON network_session "
            "FOR EACH ROW EXECUTE FUNCTION att_slow_row()"
        )
    yield
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS att_slow ON network_session")
        cursor.execute("DROP FUNCTION IF EXISTS att_slow_row()")


def test_a_spool_chunk_longer_than_the_deadline_is_not_retried_unchanged_forever(
    tmp_path, make_nas, settings, slow_rows
):
    settings.ABONENT_RADIUS_DB_TIMEOUT = 1.0
    nas = make_nas()
    spool = Spool(tmp_path, Stats())
    spool.append([record(nas, f"spooled-{i}") for i in range(2000)])
    writer = AccountingWriter(spool, Stats(), lanes=1, use_async=False)
    writer.executor.submit(own_connection).result(10)
    errors = []
    try:
        for _tick in range(4):  # the maintenance thread's ticks, two seconds apart
            try:
                writer.replay()
            except Exception as exc:
                errors.append(str(exc).splitlines()[0])
            if not spool.has_backlog():
                break
        backlog = spool.has_backlog()
    finally:
        writer.close()
    # Each tick sends the same 2,000-record chunk, which the server cancels at statement_timeout: the backlog
    # never clears, and every live record behind it is spooled for as long as the database stays this slow,
    # though it writes each live record in a millisecond.
    assert not backlog, f"the spool never drains: {errors}"


def through(port: int) -> None:
    """This thread's Django connection as abonent radius has it, to the database behind 127.0.0.1:``port``."""
    from django.db import connections
    from django.db.backends.postgresql.base import DatabaseWrapper

    from abonent.network.radius import deadlines

    database = {**settings_module().DATABASES["default"], "HOST": "127.0.0.1", "PORT": port}
    connections["default"] = DatabaseWrapper(deadlines.process_database(database), "default")


def test_an_accounting_on_is_answered_within_2_s_by_a_database_that_never_finishes_connecting(
    tmp_path, make_nas, proxy, settings
):
    """The accounting lane's connect is cut at ABONENT_RADIUS_DB_TIMEOUT; the Accounting-On is written on the lane
    thread's Django connection, whose connect waits libpq's connect_timeout (2 s, its least) and nothing else."""
    settings.ABONENT_RADIUS_DB_TIMEOUT = 1.0
    nas = make_nas()
    stats = Stats()
    spool = Spool(tmp_path, stats)
    writer = AccountingWriter(spool, stats, lanes=1)
    writer.conninfo = psycopg.conninfo.make_conninfo(writer.conninfo, host="127.0.0.1", port=proxy.port)
    writer.lanes[0].executor.submit(through, proxy.port).result(10)  # the thread that writes Accounting-On/Off
    waited = []

    async def steps(writer, submit):
        answered = submit([record(nas, "before")])
        await until(lambda: len(answered) == 1)
        proxy.silence()  # connections are accepted, and nothing is ever answered: not even the startup
        started = time.monotonic()
        submit([record(nas, "", status=ACCOUNTING_ON)])
        await until(lambda: len(answered) == 2, seconds=20)
        waited.append(time.monotonic() - started)
        proxy.restart(refuse_seconds=0)

    run_on_postgresql(writer, steps)
    assert stats.total("accounting_spooled") == 1
    assert waited[0] < 2.0, f"the Accounting-On was answered after {waited[0]:.2f} s"


def test_shutdown_answers_a_batch_still_being_settled(tmp_path, make_nas, settings, slow_rows, monkeypatch):
    """SIGTERM (the stop event) waits while records are queued or a lane is busy; a batch the database refused a row
    of is neither (taken off the queue, the lane not busy) while the lane's thread writes it row by row, so the
    server stops and the NAS never gets the answers, though the records are written."""
    from abonent.network.testing import radius_server

    settings.ABONENT_RADIUS_DB_TIMEOUT = 5.0
    monkeypatch.setenv("ABONENT_RADIUS_DB_LANES", "2")
    nas = make_nas()
    answered = []
    # All on the second lane (the first lane's thread also runs the shutdown's last flush, which would wait for it).
    names = (f"row-{i}" for i in range(10_000))
    records = [record(nas, name) for name in names if hash((nas.pk, name)) % 2 == 1][:300]
    records[150].input_octets = 2**63  # bigint out of range: a DataError, one bad row
    with radius_server(tmp_path / "radius") as running:
        writer = running.server.writer

        def submit():
            for each in records:
                writer.submit(each, lambda: answered.append(1))

        running.loop.call_soon_threadsafe(submit)
        test_db_faults.wait_for(lambda: writer.lanes[1].settling is not None, 10, "the bad row to come back")
        running.loop.call_soon_threadsafe(running.stop.set)  # as SIGTERM does
    connection.close()
    written = Session.objects.filter(unique_id__startswith="row-").count()
    assert written == 299  # written all the same
    assert len(answered) == 300, f"{len(answered)} of 300 answered before exit, {written} written"


def test_one_refused_row_does_not_hold_its_batch_unanswered_past_2_s(tmp_path, make_nas, settings):
    """A batch the database refuses a row of is written again row by row, each its own transaction, with the
    deadline restarting at every statement: 2,000 records (a batch under load) then wait for 2,000 commits."""
    # The settings promise an answer within about twice ABONENT_RADIUS_DB_TIMEOUT whatever the database does; a
    # short deadline keeps that far from the time 2,000 commits take on a fast disk (2 to 3.5 s measured here).
    settings.ABONENT_RADIUS_DB_TIMEOUT = 0.5
    nas = make_nas()
    stats = Stats()
    writer = AccountingWriter(Spool(tmp_path, stats), stats, lanes=1)
    records = [record(nas, f"row-{i}") for i in range(2000)]
    records[1000].input_octets = 2**63  # bigint out of range: a DataError
    waited = []

    async def steps(writer, submit):
        started = time.monotonic()
        answered = submit(records)
        await until(lambda: len(answered) == len(records), seconds=120)
        waited.append(time.monotonic() - started)

    run_on_postgresql(writer, steps)
    assert stats.total("accounting_rejected_rows") == 1
    assert waited[0] < 2 * 0.5, f"answered after {waited[0]:.2f} s"


def test_shutdown_spools_what_the_database_still_holds_past_its_deadline(tmp_path, make_nas, settings):
    """SIGTERM while a batch waits behind a lock longer than the shutdown allows: what is left is spooled and
    answered, the Accounting-On waiting behind it too, instead of the process leaving the NAS unanswered."""
    nas = make_nas()
    stats = Stats()
    spool = Spool(tmp_path, stats)
    writer = AccountingWriter(spool, stats, lanes=1, timeout=30)  # the lock outlasts the shutdown, not the deadline
    took = []

    async def steps(writer, submit):
        with psycopg.connect(test_db_faults.proxy_free_conninfo()) as locker:
            locker.execute("LOCK TABLE network_session IN ACCESS EXCLUSIVE MODE")
            answered = submit([record(nas, "held-1"), record(nas, "held-2")])
            await until(lambda: writer.lanes[0].busy)
            submit([record(nas, "", status=ACCOUNTING_ON), record(nas, "after")])
            started = time.monotonic()
            await writer.drain(0.5)
            took.append(time.monotonic() - started)
            assert len(answered) == 4
            await writer.aclose()  # the statement held by the lock ends with its connection
            locker.rollback()

    run_on_postgresql(writer, steps)
    assert 0.5 <= took[0] < 1.5
    assert stats.total("accounting_spooled") == 4
    assert [r.unique_id for r in spool_records(tmp_path)] == ["held-1", "held-2", "", "after"]


def spool_records(directory):
    from abonent.network.radius.spool import spool_files
    from abonent.network.radius.spoolfile import read_records

    return [r for path in spool_files(directory) for r in read_records(path)]


def test_submit_says_true_for_an_accounting_on_it_took(tmp_path, make_nas):
    nas = make_nas()
    writer = AccountingWriter(Spool(tmp_path), Stats(), lanes=1, use_async=False)
    results = []

    async def steps(writer, submit):
        for status in (START, ACCOUNTING_ON):
            results.append(writer.submit(record(nas, "x", status=status), lambda: None))
        await until(lambda: writer.depth == 0)

    run_on_postgresql(writer, steps)
    assert results == [True, True]


def test_a_psycopg_error_of_the_replay_marks_the_database_down_once(tmp_path, make_nas, caplog):
    """The replay's upsert runs on psycopg's own cursor, whose errors are psycopg's, not Django's: the maintenance
    thread takes them as the database being away (logged once), not as a bug logged with a traceback every tick."""
    from types import SimpleNamespace

    from abonent.network.policy import PolicyStore
    from abonent.network.radius import runner
    from abonent.network.radius.handler import RadiusServer

    make_nas()
    store = PolicyStore()
    store.load_all()
    server = RadiusServer(store=store, nas_table={})
    replays = []

    def replay():
        replays.append(1)
        raise psycopg.OperationalError("consuming input failed: server closed the connection unexpectedly")

    spool = SimpleNamespace(refresh=lambda: True, has_backlog=lambda: True)
    writer = SimpleNamespace(depth=0, lanes=[], spool=spool, replay=replay)
    maintenance = runner.Maintenance(server, writer, tmp_path / "policy.json", "host:1812:0", every=0.05)
    maintenance.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(replays) < 3:
            time.sleep(0.05)
    finally:
        maintenance.stop_event.set()
        maintenance.join(timeout=5)
    assert len(replays) >= 3
    assert not maintenance.database_up
    messages = [r.getMessage() for r in caplog.records if r.name == "abonent.radius"]
    assert sum("database unavailable" in m for m in messages) == 1, messages
    assert not any("maintenance:" in m for m in messages), messages  # not a step's own failure (a bug)
