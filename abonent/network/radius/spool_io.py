"""The spool's file operations: appends at an offset, locks, the directory fsync, files opened only if they
are regular files of ours (never through a planted symlink)."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("abonent.radius")

_FLAGS = os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


def fsync_dir(directory: Path) -> None:
    """Make a file's creation, rename or removal in ``directory`` durable (fsyncing the file does not)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _write_joined(fd: int, parts: list[bytes], offset: int) -> int:
    data = b"".join(parts)
    parts.clear()
    _write_all(fd, data, offset)
    return len(data)


def _lock(path: Path) -> int | None:
    """The file at ``path`` opened and locked, or None if another process holds it or it is gone. OSError if it
    cannot be opened as a regular file: a symlink (O_NOFOLLOW: ELOOP), another user's (EACCES), a directory."""
    try:
        fd = os.open(path, os.O_RDWR | _FLAGS)
    except FileNotFoundError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Still the file of that name? It may have been replayed and removed, or renamed, before the lock.
        if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
            return fd
    except (BlockingIOError, FileNotFoundError):
        pass
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None


@dataclass
class _File:
    path: Path
    fd: int
    size: int = 0  # of the own file: where the next append goes

    def close(self) -> None:
        os.close(self.fd)  # and with it the lock


def _open_regular(path: Path) -> int:
    """``path`` opened for appending, created 0600 if missing. Something planted in its place (a symlink, which
    O_NOFOLLOW refuses with ELOOP; a directory; a FIFO or a device) would otherwise make every replay raise, and
    the spool would never drain: it is renamed aside (rename moves the link, not its target) with a log line,
    and a file of our own is created."""
    for _attempt in range(2):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | _FLAGS, 0o600)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
                raise
            reason = os.strerror(exc.errno)
        else:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.set_blocking(fd, True)
                return fd
            os.close(fd)
            reason = "not a regular file"
        aside = path.with_name(f"{path.name}.suspect-{time.time_ns()}")
        logger.error("accounting: %s is not a file of ours (%s); moved aside as %s", path, reason, aside.name)
        os.rename(path, aside)
        fsync_dir(path.parent)
    raise OSError(errno.EEXIST, f"{path} keeps being replaced")
