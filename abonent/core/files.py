"""Files written whole and privately: readable by this user only from the moment they exist, and either the
old content or the new one after a crash, never half of each."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable: the entry lives in the directory, not the file."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private_directory(directory: Path) -> str:
    """Create ``directory`` (and its parents) mode 0700, or make an existing one so if it is ours. Returns what
    was wrong with an existing one, for the caller to log ("" when nothing was): ``mkdir``'s mode applies only
    to a directory it creates, so one made earlier by hand (or by an older version) keeps whatever it had."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = directory.stat()
    loose = stat.S_IMODE(st.st_mode) & 0o077
    if not loose:
        return ""
    found = f"{directory} is mode {stat.S_IMODE(st.st_mode):04o}: other users can list or change what is in it"
    if st.st_uid != os.geteuid():
        return f"{found}, and it belongs to uid {st.st_uid}, not to this user: left as it is; make it 0700"
    directory.chmod(0o700)
    return f"{found}; made 0700"


def write_private_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, mode 0600 whatever the umask.

    The temporary file is created with its mode (``mkstemp``: ``O_EXCL``, ``O_NOFOLLOW``, 0600), not chmodded
    after writing: in between, anyone could open it and keep reading. Its name is unique to this writer, in the
    same directory (so ``os.replace`` is a rename): two writers of one path at once never remove or overwrite
    each other's temporary file, and the last rename wins whole.
    """
    with private_file_writer(path) as fh:
        fh.write(data)


@contextlib.contextmanager
def private_file_writer(path: Path) -> Iterator[BinaryIO]:
    """``write_private_file`` for content written piece by piece (a ZIP of a million rows never held in memory):
    the ``with`` body writes to the open temporary file; ``path`` appears, whole, only when the body returns, and
    an exception leaves no trace of it."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w+b") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_directory(path.parent)
