"""The accounting spool: records kept on disk while the database is away (format: spoolfile.py).

Every ``abonent radius`` process appends to a file of its own, named when it is first needed:
``accounting-<nanoseconds since 1970, 20 digits>-<pid>-<random>.spool``, so the names sort in creation order and
depend on neither the host name nor ``--processes``. The process holds an exclusive ``flock`` on it from before
the name exists (it is created as ``….new`` and renamed) until it exits. Any process on the spool directory
replays every file no live process holds: the file of a process that died (or stopped with a backlog) is taken
by the first to lock it, renamed ``….orphan`` so that the others know it is being replayed rather than appended
to, replayed, and removed. The lock ends with its holder, so a process that dies while replaying leaves the file
to the next. At most ``ADOPT_AT_ONCE`` such files are held (open and locked) at a time, the oldest first; the
others wait their turn. A file named like a spool file that cannot be opened (a symlink, another user's file, a
directory) is logged once and skipped. The JSON-lines files of earlier versions
(``accounting-<host>-<port>-<index>.jsonl``) are renamed out of their writers' way and, once unwritten for
``LEGACY_GRACE_SECONDS``, converted into such a file.

A record that cannot be read (a torn or corrupt frame, a frame that is not a valid record, a torn JSON line) is
quarantined: its bytes are appended to ``accounting-quarantine.log`` after a line saying where they came from and
why, with a log line and the counter ``accounting_spool_corrupt``; once, not at every attempt of a replay the
database keeps failing. A record the database refuses (``accounting.is_refusal``: a DataError, an IntegrityError
such as a NAS deleted since) is set aside in ``accounting-rejected.spool`` (framed like the spool). Every file is
created with mode 0600, and the directory is fsynced after a file is created, renamed or removed, so that neither
a new file nor a removal is lost in a crash.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext, suppress
from pathlib import Path

import psycopg
from django.db import close_old_connections

from .. import accounting
from ..accounting import AcctRecord
from . import spoolfile
from .spool_io import _FLAGS, _File, _lock, _open_regular, _write_all, fsync_dir
from .spool_legacy import LEGACY_GRACE_SECONDS, LegacyConversion

__all__ = ["LEGACY_GRACE_SECONDS", "QUARANTINE", "REJECTED", "Spool", "spool_files"]
from .spoolfile import Damage
from .stats import Stats

logger = logging.getLogger("abonent.radius")

QUARANTINE = "accounting-quarantine.log"
REJECTED = "accounting-rejected.spool"
_SPOOL_NAME = re.compile(r"accounting-\d{20}-\d+-[0-9a-f]{8}\.(spool|orphan)")
_LEGACY_NAME = re.compile(r"accounting-.+\.jsonl")
_LEGACY_SKIP = (".rejected.jsonl",)
# An earlier version's file renamed out of its writers' way, to be converted (``Spool._take_legacy``).
_TAKEN_NAME = re.compile(r"accounting-.+\.jsonl\.\d{20}\.taken")
# Files of processes gone held open (and locked) at once; the others wait their turn. A process crash-looping
# through an outage leaves a file per start: held all at once, hundreds would exhaust RLIMIT_NOFILE (EMFILE
# from the next open: no replay, no socket).
ADOPT_AT_ONCE = 16


def spool_files(directory: Path) -> list[Path]:
    """The spool files in ``directory``, oldest first (for inspection and tests)."""
    return sorted(p for p in directory.iterdir() if _SPOOL_NAME.fullmatch(p.name))


class Spool(LegacyConversion):
    """The spool directory as one process sees it: its own file, appended to and fsynced before the NAS is
    answered, and the files of processes gone, replayed before it."""

    def __init__(self, directory: Path, stats: Stats | None = None, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self._clock = clock  # wall time, against file modification times (an earlier version's grace)
        directory.mkdir(parents=True, exist_ok=True)
        self.stats = stats if stats is not None else Stats()
        self._lock = threading.Lock()  # the own file: appends (lane threads) against replay
        self._dir_lock = threading.Lock()  # refresh and replay of the files of others
        self._own: _File | None = None
        self._own_pending = False
        self._adopted: dict[str, _File] = {}  # files of processes gone, locked by this one, by name
        self._foreign: set[str] = set()  # such files that another process is replaying (or unconverted ones)
        self._waiting = False  # more files of processes gone than ADOPT_AT_ONCE: taken once those held are done
        self._unopenable: set[str] = set()  # names logged as not openable (once each; tried again every refresh)
        # Damage this process has quarantined, (file, offset): while a replay keeps failing on what precedes
        # the damage, the marker cannot move past it (see _replay_file), and it must not be quarantined again.
        self._quarantined: set[tuple[str, int]] = set()
        # Earlier versions' renamed files seen still within their grace: name -> ((size, mtime_ns), monotonic).
        self._taken_seen: dict[str, tuple[tuple[int, int], float]] = {}
        # Records a replay transaction takes now (``_replay_file``): halved when the database cancels one at its
        # statement deadline, grown back after chunks written well within it. None: the caller's largest.
        self._chunk: int | None = None
        self._stopping = threading.Event()  # the process is stopping: a replay ends after its chunk
        self.refresh()

    def has_backlog(self) -> bool:
        """Whether records reaching this process must queue behind the spool (``AccountingWriter``).

        Behind its own file, so a session's records reach the database in order. Behind the file of a process
        gone as well, whoever replays it: that process's NAS (SO_REUSEPORT picks a process by the NAS's address
        and port) now reach the processes left or its successor, and their sessions' earlier records are in that
        file. Not behind the file of another live process: while both live, a NAS's records go to one of them,
        and waiting for each other's backlog would keep them all spooling as long as traffic flows. (A process
        that dies is noticed at the next ``refresh``, every 2 s: a record of its sessions arriving before that
        may be written ahead of the dead one's spool; accounting writes keep the largest counters, so a record
        written out of order never counts twice: ``accounting.grown_counter``.) Cheap: the event loop asks it
        for every batch."""
        return self._own_pending or bool(self._adopted) or bool(self._foreign) or self._waiting

    # --- appending ---------------------------------------------------------------------------------------------

    def append(self, records: list[AcctRecord]) -> None:
        """Append and fsync (the NAS is answered after). On failure nothing is left half-written, as far as
        the disk allows: the file is cut back to where the append began, and the records stay unanswered."""
        data = spoolfile.encode(records)
        with self._lock:
            if self._own is None:
                self._own = self._create()
            own = self._own
            try:
                _write_all(own.fd, data, own.size)
                os.fdatasync(own.fd)
            except OSError:
                # If this fails too, the next append overwrites from own.size; a torn rest is quarantined at replay.
                with suppress(OSError):
                    os.ftruncate(own.fd, own.size)
                raise
            own.size += len(data)
            self._own_pending = True

    def _create(self) -> _File:
        name = f"accounting-{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}.spool"
        path = self.directory / name
        new = path.with_name(name + ".new")
        # Locked before it has its name, so no other process takes a live file for the spool of a dead one.
        fd = os.open(new, os.O_RDWR | os.O_CREAT | os.O_EXCL | _FLAGS, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _write_all(fd, spoolfile.new_header(), 0)
            os.fdatasync(fd)
            os.rename(new, path)
            fsync_dir(self.directory)
        except BaseException:
            os.close(fd)
            new.unlink(missing_ok=True)
            raise
        return _File(path, fd, spoolfile.HEADER_SIZE)

    # --- finding the files of processes gone -----------------------------------------------------------------

    def refresh(self) -> bool:
        """Look for files no live process holds (and convert old JSON-lines files); ``has_backlog()`` after."""
        with self._dir_lock:
            foreign: set[str] = set()
            own = self._own.path.name if self._own is not None else None
            entries = sorted(os.scandir(self.directory), key=lambda e: e.name)
            present = {entry.name for entry in entries}
            self._unopenable &= present
            self._taken_seen = {name: seen for name, seen in self._taken_seen.items() if name in present}
            for entry in entries:
                name, path = entry.name, Path(entry.path)
                if _LEGACY_NAME.fullmatch(name) and not name.endswith(_LEGACY_SKIP):
                    try:
                        path = self._take_legacy(entry)
                    except OSError:
                        # Kept, and tried again at the next refresh; meanwhile it is a backlog to queue behind.
                        logger.exception("accounting: cannot take the spool %s of an earlier version", name)
                        foreign.add(name)
                        continue
                    if path is None:
                        continue
                if _TAKEN_NAME.fullmatch(path.name):
                    if not self._convert(path):
                        foreign.add(path.name)  # still being written, or being converted: a backlog (sorts first)
                elif name.endswith(".spool.new") and _SPOOL_NAME.fullmatch(name[:-4]):
                    # A creation that died before the rename: it never held a record.
                    fd = self._open_locked(path)
                    if fd is not None:
                        try:
                            os.unlink(path)
                            fsync_dir(self.directory)
                        except OSError:
                            logger.exception("accounting: cannot remove %s", name)
                        finally:
                            os.close(fd)
            waiting = False
            for entry in sorted(os.scandir(self.directory), key=lambda e: e.name):
                name = entry.name
                if not _SPOOL_NAME.fullmatch(name) or name == own or name in self._adopted:
                    continue
                if len(self._adopted) < ADOPT_AT_ONCE:
                    taken = self._adopt(Path(entry.path))
                else:
                    # Held enough: is this one a file of a process gone too (its turn comes), or a live one's?
                    fd = self._open_locked(Path(entry.path))
                    if fd is not None:
                        os.close(fd)
                        waiting = True
                        break  # newer than every file held: what follows cannot hold their replay back
                    taken = False
                if not taken and name.endswith(".orphan") and name not in self._unopenable:
                    foreign.add(name)  # another process is replaying it
            self._foreign, self._waiting = foreign, waiting
        return self.has_backlog()

    def _open_locked(self, path: Path) -> int | None:
        """``_lock``, with a file that cannot be opened logged (once) and skipped, as if it were not there: a
        symlink or another user's file named like a spool file must stop neither the start nor the replay of
        the others. It is tried again at every refresh (it may be fixed; EMFILE passes)."""
        try:
            fd = _lock(path)
        except OSError as exc:
            if path.name not in self._unopenable:
                self._unopenable.add(path.name)
                logger.error("accounting: cannot open %s in the spool directory (%s); skipped", path.name, exc)
            return None
        self._unopenable.discard(path.name)
        return fd

    def _adopt(self, path: Path) -> bool:
        """Take the file if no live process holds it (renamed ``.orphan``, kept locked until replayed)."""
        fd = self._open_locked(path)
        if fd is None:
            return False  # a live process's own file, or one that another process is replaying
        try:
            if path.suffix == ".spool":
                os.rename(path, path.with_suffix(".orphan"))
                fsync_dir(self.directory)
                logger.info("accounting: replaying %s, left by a process gone", path.name)
                path = path.with_suffix(".orphan")
        except OSError:
            os.close(fd)  # let go, or no one could ever take it
            logger.exception("accounting: cannot take over the spool %s", path.name)
            return False
        self._adopted[path.name] = _File(path, fd)
        return True

    # --- replay ------------------------------------------------------------------------------------------------

    def replay(self, chunk: int = 2000, statement_seconds: float | None = None) -> int:
        """Write the spool to the database in order, a chunk per transaction: first the files of processes gone,
        in the order they were created (``ADOPT_AT_ONCE`` at a time), then this process's own, only once no such
        file is left (its sessions may have come here from them). After each chunk the file's marker moves past
        it (fsynced), so a failure or a crash resumes after the last chunk written. A record the database refuses
        (``accounting.is_refusal``) is set aside in ``accounting-rejected.spool`` with a log line instead of
        blocking the spool forever. Anything else (the database is away) is raised, and the next call resumes.

        ``chunk`` is the largest chunk. One the database cancels at its statement deadline (``statement_seconds``,
        the replay thread's; a slow disk, a cold index) is not sent again as it was, which would fail forever:
        it is halved, down to one record, and written again at once; chunks written in under a quarter of the
        deadline grow back, doubling, to ``chunk``. A replay stops after its chunk once ``stop_replay`` is
        called (the process is stopping); the next process resumes where it stopped."""
        self.refresh()
        done = 0
        close_old_connections()
        try:
            while True:
                with self._dir_lock:
                    for name in sorted(self._adopted):
                        # (An earlier version's file not yet converted is older than any: its name sorts as "".)
                        if any((other if _SPOOL_NAME.fullmatch(other) else "") < name for other in self._foreign):
                            break  # an older file is being replayed elsewhere: its records come first
                        done += self._replay_file(self._adopted[name], chunk, False, statement_seconds)
                        self._adopted.pop(name).close()
                    more = self._waiting and not self._adopted
                if not more:
                    break
                self.refresh()  # the next files waiting their turn
            if not self._adopted and not self._foreign and not self._waiting and self._own_pending:
                done += self._replay_file(self._own, chunk, True, statement_seconds)
        except _Stopping:
            logger.info("accounting: spool replay stopped: the process is stopping")
        finally:
            if done:
                logger.info("accounting: replayed %d spooled records", done)
        return done

    def stop_replay(self) -> None:
        """The process is stopping: a replay under way ends after the chunk it is writing (``close`` would
        otherwise wait for it to finish a whole file)."""
        self._stopping.set()

    def _replay_file(self, file: _File, chunk: int, own: bool, statement_seconds: float | None) -> int:
        done = 0
        position = spoolfile.read_marker(file.fd)
        while True:
            if self._stopping.is_set():
                raise _Stopping
            size = min(self._chunk or chunk, chunk)
            with self._lock if own else nullcontext():
                # The own file's appends hold the lock (only while a chunk is read, never while it is written, so
                # an append waits one read at most): its size then is where whole frames end.
                end = file.size if own else os.fstat(file.fd).st_size
                items, after = spoolfile.read(file.fd, position, end, size)
                if not items:
                    os.unlink(file.path)
                    fsync_dir(self.directory)
                    self._quarantined = {q for q in self._quarantined if q[0] != file.path.name}
                    if own:
                        file.close()
                        self._own, self._own_pending = None, False
                    return done
            started = time.monotonic()
            records: list[AcctRecord] = []
            try:
                for item in items:
                    if isinstance(item, Damage) or item.record is None:
                        # The records before the damage are written first and the marker moved past it right
                        # after it is quarantined: while the database is away, the damage is not reached, and once
                        # passed it is never read again. (A crash between the two quarantines it again, once.)
                        done += self._write(records)
                        records = []
                        self._quarantine_range(file, Damage(item.start, item.end, item.reason))
                        spoolfile.write_marker(file.fd, item.end)
                        position = item.end
                    else:
                        records.append(item.record)
                if records:  # (otherwise the last item was damage, and the marker is past it already)
                    done += self._write(records)
                    spoolfile.write_marker(file.fd, after)
            except Exception as exc:
                if not _cancelled(exc) or size == 1:
                    raise
                self._chunk = size // 2
                logger.warning(
                    "accounting: the database cancelled a replay chunk of %d records at its deadline; now %d at a time",
                    size,
                    self._chunk,
                )
                continue  # the same records again, from the marker, in smaller chunks
            position = after
            took = time.monotonic() - started
            if size < chunk and (statement_seconds is None or took < statement_seconds / 4):
                self._chunk = min(chunk, size * 2)

    def _write(self, records: list[AcctRecord]) -> int:
        if records:
            accounting.write_batch_isolating(records, self._set_aside)
        return len(records)

    # --- what cannot be replayed ------------------------------------------------------------------------------

    def _quarantine_range(self, file: _File, damage: Damage) -> None:
        # Once per process even where the marker cannot be moved past it (a file whose header is not ours).
        key = (file.path.name, damage.start)
        if key in self._quarantined:
            return
        self._quarantined.add(key)
        size = damage.end - damage.start
        data = spoolfile.pread_all(file.fd, size, damage.start)
        self._quarantine(file.path, damage.start, data, damage.reason)

    def _quarantine(self, source: Path, offset: int, data: bytes, reason: str) -> None:
        """Keep unreadable bytes for a person to look at: a line saying where from and why, the bytes, a newline."""
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        head = f"{now} file={source.name} offset={offset} length={len(data)} reason={reason}\n".encode()
        self._append_locked(self.directory / QUARANTINE, head + data + b"\n", header=b"")
        self.stats.inc("all", "accounting_spool_corrupt")
        logger.error(
            "accounting: spool %s has an unreadable record at byte %d (%d bytes, %s); quarantined in %s",
            source.name,
            offset,
            len(data),
            reason,
            QUARANTINE,
        )

    def _set_aside(self, record: AcctRecord, exc: Exception) -> None:
        logger.error("accounting: spooled record refused by the database, set aside (%s): %r", exc, record)
        self.stats.inc("all", "accounting_rejected_rows")
        self._append_locked(self.directory / REJECTED, spoolfile.encode([record]), header=spoolfile.new_header())

    def _append_locked(self, path: Path, data: bytes, header: bytes) -> None:
        """Append to a file several processes may write (under its lock), fsynced; created with ``header``."""
        fd = _open_regular(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size == 0:
                data = header + data
            _write_all(fd, data, size)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        if size == 0:
            fsync_dir(self.directory)

    def close(self) -> None:
        """Let go of the files (and their locks): another process, or the next start, replays what is left. A
        replay under way ends after its chunk rather than being waited for; a later ``replay`` takes the files
        again."""
        self.stop_replay()
        try:
            with self._lock, self._dir_lock:
                for file in [self._own, *self._adopted.values()]:
                    if file is not None:
                        file.close()
                self._own, self._own_pending = None, False
                self._adopted.clear()
        finally:
            self._stopping.clear()


class _Stopping(Exception):
    """``stop_replay`` was called: the replay ends between two chunks."""


def _cancelled(exc: BaseException) -> bool:
    """Whether the server cancelled the statement (SQLSTATE 57014: statement_timeout), as psycopg raises it or as
    Django wraps it: the statement took too long, and a smaller one may not."""
    return isinstance(exc, psycopg.errors.QueryCanceled) or isinstance(exc.__cause__, psycopg.errors.QueryCanceled)
