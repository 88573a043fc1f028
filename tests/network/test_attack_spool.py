"""Attacks on issue 12's accounting spool (radius/spool.py, radius/spoolfile.py): each test is a way found to
poison, stall or lose the spool; each fails on main (f14e0c7)."""

import datetime as dt
import json
import os
import resource
import time

import pytest

from abonent.network import accounting
from abonent.network.accounting import INTERIM, START, AcctRecord
from abonent.network.models import Session
from abonent.network.radius.spool import LEGACY_GRACE_SECONDS, Spool, spool_files
from abonent.network.radius.spoolfile import encode, read_records
from abonent.network.radius.stats import Stats
from abonent.network.radius.writer import AccountingWriter

from .test_spool import left_by_a_process_gone, quarantined, rec
from .test_writer import run_on_postgresql, until

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def written(monkeypatch):
    """What reaches the database, in order."""
    log: list[str] = []
    monkeypatch.setattr(accounting, "write_batch", lambda records: log.extend(r.unique_id for r in records))
    return log


def torn_in_the_middle(directory) -> None:
    """The spool of a process gone holding s0, s1 and s2, with s1 torn: cut 30 bytes into its frame, s2 after it."""
    data = left_by_a_process_gone(directory, [rec("s0"), rec("s1"), rec("s2")])
    [path] = spool_files(directory)
    frame = len(encode([rec("s0")]))
    path.write_bytes(data[: len(data) - 2 * frame + 30] + data[len(data) - frame :])


def _on(nas_id: int, name: str, **fields) -> AcctRecord:
    return AcctRecord(
        status=START, nas_id=nas_id, event_time=T0, unique_id=name, acct_session_id=name, username="ivanov", **fields
    )


@pytest.mark.django_db(transaction=True)  # the foreign key is checked at commit, as in production
def test_a_record_for_a_nas_deleted_since_is_set_aside_and_does_not_block_the_spool_forever(tmp_path, make_nas):
    """A NAS deleted in the admin (it had no session yet) is still in every process's NAS table for up to 10 s:
    its records are refused by the foreign key (IntegrityError, not DataError), so the writer spools them and
    replay raises on them at every tick; every later record queues behind (the process's own backlog) and the
    spool never clears. Such a record must be set aside like a DataError, the others replayed."""
    kept, gone = make_nas(name="kept"), make_nas(name="gone", ip_address="127.0.0.2")
    gone_id = gone.pk
    gone.delete()
    spool = Spool(tmp_path)
    spool.append([_on(kept.pk, "a"), _on(gone_id, "b"), _on(kept.pk, "c")])
    spool.replay()
    assert not spool.has_backlog()
    assert sorted(Session.objects.values_list("unique_id", flat=True)) == ["a", "c"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("use_async", [True, False], ids=["event-loop", "thread"])
def test_a_live_record_for_a_nas_deleted_since_is_answered_and_counted_not_spooled(tmp_path, make_nas, use_async):
    """The writer's own paths: the foreign-key refusal came back as a ForeignKeyViolation (an IntegrityError),
    which both took for an outage and spooled with the whole batch, where replay then refused it forever."""
    from django.db import connection

    if use_async and connection.vendor != "postgresql":
        pytest.skip("the event-loop connection is PostgreSQL's")
    kept, gone = make_nas(name="kept"), make_nas(name="gone", ip_address="127.0.0.2")
    gone_id = gone.pk
    gone.delete()
    stats = Stats()
    writer = AccountingWriter(Spool(tmp_path), stats, lanes=1, use_async=use_async)

    async def steps(writer, submit):
        answered = submit([_on(kept.pk, "a"), _on(gone_id, "b"), _on(kept.pk, "c")])
        await until(lambda: len(answered) == 3)

    answered = run_on_postgresql(writer, steps)
    assert sorted(r.unique_id for r in answered) == ["a", "b", "c"]  # b too: resent, it would be refused again
    connection.close()
    assert sorted(Session.objects.values_list("unique_id", flat=True)) == ["a", "c"]
    assert stats.total("accounting_rejected_rows") == 1
    assert stats.total("accounting_spooled") == 0
    assert spool_files(tmp_path) == []


@pytest.mark.django_db(transaction=True)  # replay closes a connection left inside a transaction, as in production
def test_a_verified_record_of_another_shape_does_not_block_the_spool(tmp_path, make_nas):
    """A frame that verifies, from_json accepts, and the database would refuse (written by another version:
    session time as a string) raises TypeError in accounting.mergeable when its session has a second record in
    the chunk: not caught as "not a record" nor as a refusal, so the replay raises at every tick, forever."""
    nas = make_nas()
    odd = _on(nas.pk, "x")
    odd.session_time = "60"  # what json.loads gave from another version's payload
    later = _on(nas.pk, "x", session_time=120)
    later.status = INTERIM
    spool = Spool(tmp_path)
    spool.append([_on(nas.pk, "a"), odd, later, _on(nas.pk, "c")])
    spool.replay()
    assert not spool.has_backlog()
    assert {"a", "c"} <= set(Session.objects.values_list("unique_id", flat=True))


def test_a_torn_record_is_quarantined_once_not_at_every_replay_while_the_database_is_away(tmp_path, monkeypatch):
    """Replay quarantines a chunk's damage before writing the chunk; if the database is away the marker does
    not move, and the next tick (every 2 s through an outage) quarantines the same bytes again: the log file
    grows without bound and accounting_spool_corrupt, which the docs say to alert on, counts one torn record
    as thousands."""
    from django.db import OperationalError

    torn_in_the_middle(tmp_path)  # s0 whole, s1 torn, s2 whole

    def away(records):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(accounting, "write_batch", away)
    stats = Stats()
    spool = Spool(tmp_path, stats)
    for _tick in range(5):
        with pytest.raises(OperationalError):
            spool.replay()
    written: list[str] = []
    monkeypatch.setattr(accounting, "write_batch", lambda records: written.extend(r.unique_id for r in records))
    spool.replay()
    assert written == ["s0", "s2"]
    assert len(quarantined(tmp_path)) == 1
    assert stats.total("accounting_spool_corrupt") == 1


def test_a_symlink_named_like_a_spool_file_does_not_stop_the_server_or_the_replay(tmp_path, written):
    """O_NOFOLLOW keeps the spool from writing through a planted symlink (good), but the ELOOP it raises is not
    caught: Spool() (build_server, at every start) and every refresh raise, so `abonent radius` cannot start
    and the spool of a process gone is never replayed. Likewise for any file the process cannot open (a spool
    file left by a run as root: PermissionError)."""
    left_by_a_process_gone(tmp_path, [rec("s0")])
    (tmp_path / f"accounting-{1:020d}-1-0badf00d.spool").symlink_to("/etc/passwd")
    spool = Spool(tmp_path)  # raises OSError(ELOOP) on main
    spool.replay()
    assert written == ["s0"]
    with open("/etc/passwd", "rb") as fh:
        assert fh.read(5) == b"root:"


def test_thousands_of_spool_files_of_processes_gone_do_not_exhaust_file_descriptors(tmp_path, written):
    """A process crash-looping through an outage leaves a spool file per start. refresh() adopts every one at
    once and keeps each open (and locked) until it is replayed: past RLIMIT_NOFILE, os.open raises EMFILE out of
    refresh (Spool() at start, and every Maintenance tick), so nothing is replayed and no socket can be opened."""
    header = left_by_a_process_gone(tmp_path, [rec("s0")])
    count = 600
    for i in range(1, count):
        (tmp_path / f"accounting-{i:020d}-{i}-{i:08x}.spool").write_bytes(header)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 200, hard))
    spool = None
    try:
        spool = Spool(tmp_path)
        spool.replay()
    finally:
        if spool is not None:
            spool.close()  # the files it adopted, and their descriptors
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert len(written) == count
    assert spool_files(tmp_path) == []


def test_a_json_lines_spool_still_being_written_by_an_earlier_version_loses_no_record(tmp_path, written):
    """During an upgrade an earlier-version process (another port on the host) still appends to its JSON-lines
    file: buffered, so a reader can see a line half written. The conversion quarantines that half line as torn,
    unlinks the file, and the old process's rest of the line (and its fsync, after which it answers the NAS)
    lands in the unlinked inode: an answered record is gone."""
    legacy = tmp_path / "accounting-billing2-1813-0.jsonl"
    line = json.dumps(rec("s1").to_json()) + "\n"
    now = [time.time()]
    with open(legacy, "a", encoding="utf-8") as old:  # the earlier version's Spool.append, mid-batch
        old.write(json.dumps(rec("s0").to_json()) + "\n" + line[:50])
        old.flush()  # its 8 KiB buffer filled: half of s1 reached the file
        spool = Spool(tmp_path, clock=lambda: now[0])  # the new version starts and takes the file
        old.write(line[50:])
        old.flush()
        os.fsync(old.fileno())  # the earlier version answers the NAS for s0 and s1
    with open(legacy, "a", encoding="utf-8") as old:  # its next batch opens the path anew
        old.write(json.dumps(rec("s2").to_json()) + "\n")
        old.flush()
        os.fsync(old.fileno())
    spool.replay()
    assert written == []  # nothing converted while an append may still be under way: a backlog meanwhile
    assert spool.has_backlog()
    now[0] += LEGACY_GRACE_SECONDS + 60
    for _tick in range(3):
        spool.replay()
    assert written == ["s0", "s1", "s2"]
    assert quarantined(tmp_path) == []
    assert not any(read_records(p) for p in spool_files(tmp_path))
    assert not spool.has_backlog()


# --- beyond the six attacks: the same faults by other roads ------------------------------------------------------


def test_a_torn_record_is_quarantined_once_across_restarts_while_the_database_is_away(tmp_path, monkeypatch):
    """A process restarted through an outage (a crash loop, a deploy) starts with no memory of what it
    quarantined: the damage must not be reached before what precedes it is written, whichever process tries."""
    from django.db import OperationalError

    torn_in_the_middle(tmp_path)  # s0 whole, s1 torn, s2 whole

    def away(records):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(accounting, "write_batch", away)
    for _start in range(4):
        spool = Spool(tmp_path)
        with pytest.raises(OperationalError):
            spool.replay()
        spool.close()
    assert quarantined(tmp_path) == []
    written: list[str] = []
    monkeypatch.setattr(accounting, "write_batch", lambda records: written.extend(r.unique_id for r in records))
    stats = Stats()
    Spool(tmp_path, stats).replay()
    assert written == ["s0", "s2"]
    assert len(quarantined(tmp_path)) == 1
    assert stats.total("accounting_spool_corrupt") == 1


def test_unopenable_files_named_like_spool_files_are_logged_once_and_skipped(tmp_path, written, caplog):
    """A directory (EISDIR), a FIFO (opens, but is no file to replay) and a symlink named like an earlier
    version's JSON-lines file (which would otherwise stay a backlog forever, holding back every replay)."""
    left_by_a_process_gone(tmp_path, [rec("s0")])
    (tmp_path / f"accounting-{1:020d}-1-00000001.orphan").mkdir()
    os.mkfifo(tmp_path / f"accounting-{2:020d}-2-00000002.spool")
    (tmp_path / "accounting-billing1-1812-0.jsonl").symlink_to("/etc/passwd")
    spool = Spool(tmp_path)
    for _tick in range(3):
        spool.replay()
    assert written == ["s0"]
    assert not spool.has_backlog()
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 3, skipped  # once each, not at every refresh
    assert (tmp_path / "accounting-billing1-1812-0.jsonl").is_symlink()  # left where it was
    with open("/etc/passwd", "rb") as fh:
        assert fh.read(5) == b"root:"


def test_files_taken_a_few_at_a_time_by_two_processes_are_still_replayed_in_creation_order(
    tmp_path, written, monkeypatch
):
    from abonent.network.radius import spool as spool_module

    monkeypatch.setattr(spool_module, "ADOPT_AT_ONCE", 2)
    for i in range(5):
        gone = Spool(tmp_path)
        gone.append([rec(f"x{i}")])
        gone.close()
    a = Spool(tmp_path)  # holds x0 and x1
    b = Spool(tmp_path)  # holds x2 and x3
    assert b.replay() == 0  # older files are held by a
    assert a.replay() == 2  # x0, x1; then x4 is taken, but waits for x2 and x3, held by b
    assert b.replay() == 2
    assert a.replay() == 1
    assert written == ["x0", "x1", "x2", "x3", "x4"]
    assert spool_files(tmp_path) == []


@pytest.mark.parametrize("name", ["accounting-quarantine.log", "accounting-rejected.spool"])
def test_a_symlink_planted_at_the_quarantine_or_rejected_file_is_moved_aside_not_written_through(
    tmp_path, monkeypatch, name
):
    """O_NOFOLLOW refused the planted link with ELOOP at every replay, so the spool never drained (and nothing
    may be written through it: /etc/passwd stays as it is)."""
    torn_in_the_middle(tmp_path)  # s0 whole, s1 torn, s2 whole
    target = tmp_path / "victim"
    target.write_bytes(b"root:x:0:0\n")
    (tmp_path / name).symlink_to(target)
    written: list[str] = []

    def write(records):
        if any(r.unique_id == "s2" for r in records):
            raise accounting.DataError("value out of range")  # refused: set aside
        written.extend(r.unique_id for r in records)

    monkeypatch.setattr(accounting, "write_batch", write)
    Spool(tmp_path).replay()
    assert written == ["s0"]
    assert target.read_bytes() == b"root:x:0:0\n"
    assert (tmp_path / name).is_file() and not (tmp_path / name).is_symlink()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(name + ".suspect-")]
