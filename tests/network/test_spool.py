"""The accounting spool on disk (radius/spool.py, radius/spoolfile.py): framed records, quarantine, trimming,
names that outlive the host name and ``--processes``, locks between processes, modes and directory fsyncs."""

import datetime as dt
import json
import os
import re
import stat
import time

import pytest

from abonent.network import accounting
from abonent.network.accounting import START, AcctRecord
from abonent.network.radius.runner import build_server
from abonent.network.radius.spool import QUARANTINE, REJECTED, Spool, spool_files
from abonent.network.radius.spoolfile import HEADER_SIZE, encode, read_records
from abonent.network.radius.stats import Stats

# Replay asks Django to close a stale connection before writing (on SQLite the test's connection is open).
pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


def rec(name: str) -> AcctRecord:
    return AcctRecord(status=START, nas_id=1, event_time=T0, unique_id=name, acct_session_id=name, username="ivanov")


@pytest.fixture
def written(monkeypatch):
    """What reaches the database, in order (the database itself is not needed here)."""
    log: list[str] = []
    monkeypatch.setattr(accounting, "write_batch", lambda records: log.extend(r.unique_id for r in records))
    return log


def quarantined(directory) -> list[bytes]:
    """The byte strings in the quarantine file: each after a line ending in its length."""
    path = directory / QUARANTINE
    if not path.exists():
        return []
    data, entries, pos = path.read_bytes(), [], 0
    while pos < len(data):
        newline = data.index(b"\n", pos)
        length = int(re.search(rb" length=(\d+) ", data[pos:newline])[1])
        entries.append(data[newline + 1 : newline + 1 + length])
        assert data[newline + 1 + length : newline + 2 + length] == b"\n"
        pos = newline + 2 + length
    return entries


def left_by_a_process_gone(directory, records) -> bytes:
    """A spool file as a process that appended ``records`` one by one and then died leaves it; its bytes."""
    gone = Spool(directory)
    for record in records:
        gone.append([record])
    gone.close()
    [path] = spool_files(directory)
    return path.read_bytes()


RECORDS = [rec(f"s{i}") for i in range(5)]
FRAMES = [encode([r]) for r in RECORDS]
S2 = HEADER_SIZE + len(FRAMES[0]) + len(FRAMES[1])  # where the third record's frame starts


def replay_after_damage(directory, damage, written) -> Stats:
    """Replay, by another process, the spool a process gone left in ``directory`` with ``damage`` done to it."""
    [path] = spool_files(directory)
    path.write_bytes(damage(path.read_bytes()))
    stats = Stats()
    written.clear()
    spool = Spool(directory, stats)
    assert spool.has_backlog()
    spool.replay()
    assert not spool.has_backlog()
    assert spool_files(directory) == []
    return stats


def test_a_record_torn_at_any_byte_costs_that_record_and_nothing_before_or_after_it(tmp_path, written):
    frame = FRAMES[2]
    for cut in range(1, len(frame)):
        # The append of s2 tore after `cut` bytes (disk full, EIO); s3 and s4 were appended after it.
        directory = tmp_path / f"{cut}-then-more"
        assert left_by_a_process_gone(directory, RECORDS)[S2 : S2 + len(frame)] == frame
        stats = replay_after_damage(
            directory, lambda data, cut=cut: data[: S2 + cut] + data[S2 + len(frame) :], written
        )
        assert written == ["s0", "s1", "s3", "s4"], cut
        assert quarantined(directory) == [frame[:cut]], cut
        assert stats.total("accounting_spool_corrupt") == 1
        # SIGKILL mid-append: the torn record is the last thing in the file.
        directory = tmp_path / f"{cut}-last"
        left_by_a_process_gone(directory, RECORDS[:3])
        stats = replay_after_damage(directory, lambda data, cut=cut: data[: S2 + cut], written)
        assert written == ["s0", "s1"], cut
        assert quarantined(directory) == [frame[:cut]], cut
        assert stats.total("accounting_spool_corrupt") == 1


def test_a_corrupt_byte_anywhere_in_a_record_costs_that_record_alone(tmp_path, written):
    frame = FRAMES[2]
    for index in range(len(frame)):
        directory = tmp_path / f"byte-{index}"
        left_by_a_process_gone(directory, RECORDS)

        def flip(data, index=index):
            return data[: S2 + index] + bytes([data[S2 + index] ^ 0xFF]) + data[S2 + index + 1 :]

        stats = replay_after_damage(directory, flip, written)
        assert written == ["s0", "s1", "s3", "s4"], index
        damaged = flip(HEADER_SIZE * b"-" + FRAMES[0] + FRAMES[1] + frame)[S2:]
        assert quarantined(directory) == [damaged], index
        assert stats.total("accounting_spool_corrupt") == 1


def test_a_refused_record_is_set_aside_framed_and_the_rest_replayed(tmp_path, monkeypatch):
    from django.db import DataError

    written: list[str] = []

    def write(records):
        if any(r.unique_id == "s1" for r in records):
            raise DataError("value out of range")
        written.extend(r.unique_id for r in records)

    monkeypatch.setattr(accounting, "write_batch", write)
    stats = Stats()
    spool = Spool(tmp_path, stats)
    spool.append(RECORDS[:3])
    assert spool.replay() == 3
    assert written == ["s0", "s2"]
    assert [r.unique_id for r in read_records(tmp_path / REJECTED)] == ["s1"]
    assert stats.total("accounting_rejected_rows") == 1
    assert not spool.has_backlog()


def test_each_chunk_written_is_trimmed_so_a_replay_killed_midway_does_not_write_it_again(tmp_path, monkeypatch):
    log = tmp_path / "written.txt"

    def write(records):
        names = [r.unique_id for r in records]
        if "r6" in names:
            os._exit(9)  # killed while writing the fourth chunk: no finally, no clean-up
        with open(log, "a") as fh:
            fh.write(" ".join(names) + "\n")

    monkeypatch.setattr(accounting, "write_batch", write)
    directory = tmp_path / "radius"
    gone = Spool(directory)
    gone.append([rec(f"r{i}") for i in range(10)])
    gone.close()  # its process is gone
    pid = os.fork()
    if pid == 0:  # the process that replays it, and is killed midway
        try:
            Spool(directory).replay(chunk=2)
        finally:
            os._exit(1)
    assert os.waitpid(pid, 0)[1] >> 8 == 9
    assert log.read_text().split() == ["r0", "r1", "r2", "r3", "r4", "r5"]
    [path] = spool_files(directory)
    assert [r.unique_id for r in read_records(path)] == ["r6", "r7", "r8", "r9"]  # the file no longer holds 0–5
    log.unlink()
    monkeypatch.setattr(accounting, "write_batch", lambda records: write([r for r in records if r.unique_id != "r6"]))
    assert Spool(directory).replay(chunk=2) == 4
    assert log.read_text().split() == ["r7", "r8", "r9"]


def test_an_earlier_versions_json_lines_spool_with_a_torn_last_line_is_replayed(tmp_path, written):
    lines = [json.dumps(rec(f"s{i}").to_json()) + "\n" for i in range(3)]
    torn = json.dumps(rec("s3").to_json())[:40]  # the process died writing it
    (tmp_path / "accounting-billing1-1812-0.jsonl").write_text("".join(lines) + torn)
    a_minute_ago = time.time() - 60  # when its process was stopped, for the upgrade (LEGACY_GRACE_SECONDS)
    os.utime(tmp_path / "accounting-billing1-1812-0.jsonl", (a_minute_ago, a_minute_ago))
    (tmp_path / "accounting-billing1-1812-0.rejected.jsonl").write_text(lines[0])  # set aside back then: stays
    stats = Stats()
    spool = Spool(tmp_path, stats)
    assert spool.has_backlog()
    assert spool.replay() == 3
    assert written == ["s0", "s1", "s2"]
    assert quarantined(tmp_path) == [torn.encode()]
    assert stats.total("accounting_spool_corrupt") == 1
    assert not spool.has_backlog()
    assert spool.replay() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accounting-billing1-1812-0.rejected.jsonl", QUARANTINE]


def test_two_processes_replay_each_others_spool_once_and_never_a_live_one(tmp_path, written):
    a, b = Spool(tmp_path), Spool(tmp_path)
    a.append([rec("a0"), rec("a1")])
    b.append([rec("b0")])
    # Both alive: each replays its own file only, and the other's is no backlog to it.
    assert a.replay() == 2
    assert written == ["a0", "a1"]
    assert not a.refresh()
    b.append([rec("b1")])
    b.close()  # b's process is gone, its spool left behind
    c = Spool(tmp_path)  # b's successor: the file of a process gone is backlog to it at once (and it takes it)
    assert c.has_backlog()
    c.append([rec("c0")])  # queued behind b's file by the writer, as has_backlog() says
    c.close()  # gone too, before replaying anything
    assert a.refresh()  # a takes both files
    c = Spool(tmp_path)
    # c sees them being replayed: it neither replays them too nor writes its own records before them.
    assert c.has_backlog()
    c.append([rec("c1")])
    assert c.replay() == 0
    assert written == ["a0", "a1"]
    assert a.replay() == 3  # b's file, then c's first file, in the order they were created
    assert written == ["a0", "a1", "b0", "b1", "c0"]
    assert c.replay() == 1  # now its own
    assert written[-1] == "c1"
    assert not c.refresh()
    assert not a.has_backlog()
    a.append([rec("a2")])
    a.close()
    assert c.refresh()
    assert c.replay() == 1
    assert written[-1] == "a2"
    assert spool_files(tmp_path) == []


def test_the_spool_of_a_process_gone_waits_for_an_older_one_being_replayed_elsewhere(tmp_path, written):
    first = Spool(tmp_path)
    first.append([rec("x0"), rec("x1")])
    first.close()
    x = Spool(tmp_path)  # takes the first file
    successor = Spool(tmp_path)  # the first process's successor: the same NAS, the same sessions
    successor.append([rec("x2")])
    successor.close()
    y = Spool(tmp_path)  # takes the successor's file
    assert y.replay() == 0  # its records follow those of the first file, still with x
    assert x.replay() == 2
    assert y.replay() == 1
    assert written == ["x0", "x1", "x2"]


def test_a_spool_left_under_another_host_name_and_process_index_is_replayed(tmp_path, written):
    _server, writer, _snapshot = build_server(tmp_path, "old-host:1812:3")
    writer.spool.append([rec("s0"), rec("s1")])
    writer.close()  # that process stops with the database still away
    _server, writer, _snapshot = build_server(tmp_path, "new-host:1812:0")  # renamed host, one process now
    assert writer.spool.has_backlog()
    assert writer.spool.replay() == 2
    assert written == ["s0", "s1"]
    writer.close()


def test_spool_files_are_0600_from_creation_whatever_the_umask(tmp_path, monkeypatch):
    from django.db import DataError

    def refuse(records):
        raise DataError("value out of range")

    monkeypatch.setattr(accounting, "write_batch", refuse)
    created = []
    real_open = os.open

    def watch(path, flags, mode=0o777, **kw):
        fd = real_open(path, flags, mode, **kw)
        if flags & os.O_CREAT:
            created.append((os.path.basename(path), stat.S_IMODE(os.fstat(fd).st_mode)))
        return fd

    monkeypatch.setattr(os, "open", watch)
    old = os.umask(0)
    try:
        spool = Spool(tmp_path)
        spool.append([rec("s0")])
        [path] = spool_files(tmp_path)
        with open(path, "ab") as fh:
            fh.write(b"torn")
        spool.close()
        Spool(tmp_path).replay()  # s0 refused (set aside), "torn" quarantined
    finally:
        os.umask(old)
    assert {stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == {0o600}
    names = {name.rsplit(".", 1)[-1] if name.startswith("accounting-0") else name for name, _mode in created}
    assert names == {"new", QUARANTINE, REJECTED}
    # The mode at the moment the file came to be, not after a chmod.
    assert {mode for _name, mode in created} == {0o600}


def test_the_directory_is_fsynced_after_a_spool_file_is_created_renamed_or_removed(tmp_path, written, monkeypatch):
    synced: list[list[str]] = []
    real_fsync = os.fsync

    def fsync(fd):
        real_fsync(fd)
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            synced.append(sorted(name.rsplit(".", 1)[-1] for name in os.listdir(f"/proc/self/fd/{fd}")))

    monkeypatch.setattr(os, "fsync", fsync)
    spool = Spool(tmp_path)
    spool.append([rec("s0")])
    assert synced == [["spool"]]  # created (as .new, renamed once its header is on disk)
    spool.close()
    Spool(tmp_path).replay()
    assert synced == [["spool"], ["orphan"], []]  # taken over, then removed once replayed
