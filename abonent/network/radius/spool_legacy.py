"""Earlier versions' JSON-lines spool files (``accounting-<host>-<port>-<index>.jsonl``): taken out of their
writers' way, converted into spool files of a process gone once unwritten for a while, and replayed as those."""

from __future__ import annotations

import json
import logging
import os
import time
import zlib
from pathlib import Path

from ..accounting import AcctRecord
from . import spoolfile
from .spool_io import _FLAGS, _write_all, _write_joined, fsync_dir

logger = logging.getLogger("abonent.radius")

# How long an earlier version's file, once renamed, must go unwritten before it is converted. That version
# appends unlocked, opening the path anew for each batch (buffered writes, then fsync, then the NAS is
# answered): a process that opened it before the rename writes on into the renamed file. An append takes
# milliseconds; a process stopped (SIGSTOP) mid-append for longer than this would lose the rest of it.
LEGACY_GRACE_SECONDS = 10.0


class LegacyConversion:
    """Part of ``Spool``: taking and converting an earlier version's files (see the module's docstring)."""

    def _take_legacy(self, entry: os.DirEntry) -> Path | None:
        """Rename an earlier version's file out of its writers' way; its new name, or None if there is nothing
        to take. An append that had it open goes on into the renamed file (converted once it has gone unwritten
        for ``LEGACY_GRACE_SECONDS``); the next creates a new file under the old name, taken at a later refresh.
        Converting it in place instead would unlink it under an append still writing, answered after its fsync:
        a record lost."""
        if not entry.is_file(follow_symlinks=False):
            if entry.name not in self._unopenable:
                self._unopenable.add(entry.name)
                logger.error("accounting: %s in the spool directory is not a regular file; skipped", entry.name)
            return None
        taken = Path(entry.path).with_name(f"{entry.name}.{time.time_ns():020d}.taken")
        try:
            os.rename(entry.path, taken)
        except FileNotFoundError:
            return None  # another process took it
        fsync_dir(self.directory)
        return taken

    def _settled(self, name: str, st: os.stat_result) -> bool:
        """Whether a renamed file of an earlier version has gone unwritten for ``LEGACY_GRACE_SECONDS``: by its
        modification time, or, should the clock have been set back, as this process has watched it."""
        if self._clock() - st.st_mtime >= LEGACY_GRACE_SECONDS:
            return True
        state, now = (st.st_size, st.st_mtime_ns), time.monotonic()
        seen = self._taken_seen.get(name)
        if seen is None or seen[0] != state:
            self._taken_seen[name] = (state, now)
            return False
        return now - seen[1] >= LEGACY_GRACE_SECONDS

    def _convert(self, taken: Path) -> bool:
        """An earlier version's JSON-lines spool (renamed by ``_take_legacy``), once settled, rewritten as a spool
        file of a process gone, then removed. A line that is not a record (the torn last line of a crash, or of an
        append stopped for longer than the grace) is quarantined. False while it must be waited for: within its
        grace, being converted by another process, or failing (tried again at the next refresh)."""
        fd = self._open_locked(taken)
        if fd is None:
            # Being converted by another process; or gone (converted), or not openable (logged): not waited for.
            return taken.name in self._unopenable or not os.path.lexists(taken)
        try:
            st = os.fstat(fd)
            if not self._settled(taken.name, st):
                return False
            # Named by its last write (before any file of this version), then when it was taken (the files an
            # earlier-version process went on to write under the same name, written within one tick of the
            # file system's clock, keep their order), and its name: a conversion that died after the rename is
            # recognised, not done twice.
            taken_ns, crc = taken.name.rsplit(".", 2)[1], zlib.crc32(taken.name.encode())
            path = self.directory / f"accounting-{st.st_mtime_ns:020d}-{taken_ns}-{crc:08x}.orphan"
            if not path.exists():
                new = path.with_name(path.name + ".new")
                out = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _FLAGS, 0o600)
                try:
                    offset = spoolfile.HEADER_SIZE
                    _write_all(out, spoolfile.new_header(), 0)
                    with os.fdopen(os.dup(fd), "rb") as fh:
                        position, pending = 0, []
                        for line in fh:
                            pending.append(self._legacy_record(taken, position, line))
                            position += len(line)
                            if len(pending) >= 1000:
                                offset += _write_joined(out, pending, offset)
                        offset += _write_joined(out, pending, offset)
                    os.fdatasync(out)
                finally:
                    os.close(out)
                os.rename(new, path)
                fsync_dir(self.directory)
            os.unlink(taken)
            fsync_dir(self.directory)
            self._taken_seen.pop(taken.name, None)
            logger.info("accounting: spool %s converted to %s", taken.name, path.name)
            return True
        except OSError:
            logger.exception("accounting: cannot convert the spool %s", taken.name)
            return False
        finally:
            os.close(fd)

    def _legacy_record(self, legacy: Path, position: int, line: bytes) -> bytes:
        if not line.strip():
            return b""
        try:
            if not line.endswith(b"\n"):
                raise ValueError("torn last line")
            return spoolfile.encode([AcctRecord.from_json(json.loads(line))])
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            self._quarantine(legacy, position, line, str(exc))
            return b""
