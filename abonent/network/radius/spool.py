"""The accounting spool: records kept on disk while the database is away."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from django.db import close_old_connections

from .. import accounting
from ..accounting import AcctRecord

logger = logging.getLogger("abonent.radius")


class Spool:
    """Accounting records kept on disk while the database is away: JSON lines, fsynced before the NAS is
    answered, replayed in order and then removed."""

    def __init__(self, directory: Path, name: str) -> None:
        self.path = directory / f"{name}.jsonl"
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def has_backlog(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    def append(self, records: list[AcctRecord]) -> None:
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record.to_json()) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def replay(self, chunk: int = 2000) -> int:
        """Write the spool in order, a chunk per transaction. What committed is cut from the file at once,
        so a failure part-way resumes where it stopped; a record the database refuses outright (DataError)
        is set aside in ``<name>.rejected.jsonl`` with a log line instead of blocking the spool forever."""
        if not self.has_backlog():
            return 0
        with self._lock:
            with open(self.path, encoding="utf-8") as fh:
                records = [AcctRecord.from_json(json.loads(line)) for line in fh if line.strip()]
            close_old_connections()
            done = 0
            try:
                for start in range(0, len(records), chunk):
                    part = records[start : start + chunk]
                    accounting.write_batch_isolating(part, self._set_aside)
                    done = start + len(part)
            finally:
                self._keep(records[done:])
        logger.info("accounting: replayed %d spooled records", done)
        return done

    def _keep(self, records: list[AcctRecord]) -> None:
        if not records:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record.to_json()) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def _set_aside(self, record: AcctRecord, exc: Exception) -> None:
        logger.error("accounting: spooled record refused by the database, set aside (%s): %r", exc, record)
        with open(self.path.with_suffix(".rejected.jsonl"), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record.to_json()) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
