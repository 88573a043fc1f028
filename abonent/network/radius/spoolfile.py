"""The accounting spool's file format: records framed so that a torn or damaged one is found and skipped.

A spool file is a 64-byte header followed by frames::

    header  "ABONENT-SPOOL/1\\n" (16 bytes: format and version), then two marker slots of 24 bytes each:
            sequence (u64), offset (u64), CRC-32 of the two (u32), 4 bytes of padding
    frame   magic A5 C3 9F E7 | payload length (u32) | CRC-32 of the length field and the payload (u32) | payload

All integers are big-endian. The payload is one record's JSON (``AcctRecord.to_json``), ASCII only, so the frame
magic, whose bytes are all above 0x7F, never occurs inside a payload: after a bad frame the reader looks for the
next magic whose frame verifies, and goes on from there (a false magic inside a damaged frame's header fails
its checksum, 1 in 2**32). A partial write (disk full, EIO, SIGKILL mid-append) therefore costs the one frame it
tore, never what comes before or after it.

The marker says where replay resumes: records before it are in the database. It is written in the slot not
holding the newest marker, and fsynced, after each replayed chunk; a torn write of one slot leaves the other,
one chunk older (its records are written again, which is harmless: accounting writes are idempotent).
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from ..accounting import AcctRecord

VERSION = b"ABONENT-SPOOL/1\n"
HEADER_SIZE = 64
_SLOT = struct.Struct(">QQI4x")
_SLOT_OFFSETS = (16, 40)
FRAME_MAGIC = b"\xa5\xc3\x9f\xe7"
_FRAME = struct.Struct(">4sII")
FRAME_HEADER = _FRAME.size
# A record is a few hundred bytes; a length beyond this is damage, not a record (and is not read).
MAX_PAYLOAD = 1 << 20
_BLOCK = 4 << 20


@dataclass(slots=True)
class Frame:
    """A frame that verifies: ``record`` is its record, or None if its payload is not one (``reason`` says why)."""

    start: int
    end: int
    record: AcctRecord | None
    reason: str = ""


@dataclass(slots=True)
class Damage:
    """Bytes ``[start, end)`` that are no verifying frame: a torn or corrupt record, to be quarantined."""

    start: int
    end: int
    reason: str


def _slot(seq: int, offset: int) -> bytes:
    body = struct.pack(">QQ", seq, offset)
    return _SLOT.pack(seq, offset, zlib.crc32(body))


def new_header() -> bytes:
    """A new file's header: replay starts right after it."""
    return (VERSION + _slot(1, HEADER_SIZE) + _slot(0, 0)).ljust(HEADER_SIZE, b"\0")


def encode(records: Iterable[AcctRecord]) -> bytes:
    parts = []
    for record in records:
        # ensure_ascii (the default) keeps every payload byte below 0x80: the frame magic cannot occur in it.
        payload = json.dumps(record.to_json(), separators=(",", ":")).encode("ascii")
        length = struct.pack(">I", len(payload))
        parts.append(FRAME_MAGIC + length + struct.pack(">I", zlib.crc32(payload, zlib.crc32(length))) + payload)
    return b"".join(parts)


def _read_slots(fd: int) -> tuple[bool, list[tuple[int, int]]]:
    head = os.pread(fd, HEADER_SIZE, 0)
    if not head.startswith(VERSION) or len(head) < HEADER_SIZE:
        return False, []
    valid = []
    for at in _SLOT_OFFSETS:
        seq, offset, crc = _SLOT.unpack_from(head, at)
        if seq and crc == zlib.crc32(head[at : at + 16]):
            valid.append((seq, offset))
    return True, valid


def read_marker(fd: int) -> int:
    """Where replay resumes. A file whose header is not ours (damaged, or another format) is read from its first
    byte: what is not a frame there is reported as damage, the frames after it are read."""
    known, slots = _read_slots(fd)
    if not known:
        return 0
    return max(slots)[1] if slots else HEADER_SIZE


def write_marker(fd: int, offset: int) -> None:
    """Record that everything before ``offset`` is in the database (fsynced: a chunk is trimmed once)."""
    known, slots = _read_slots(fd)
    if not known:
        return  # not our header: nothing to keep the marker in; the damage before the frames is quarantined again
    seq = max(slots)[0] if slots else 0
    os.pwrite(fd, _slot(seq + 1, offset), _SLOT_OFFSETS[(seq + 1) % 2])
    os.fdatasync(fd)


class _Reader:
    """Reads ``[0, end)`` of a file through a buffer of a few megabytes."""

    def __init__(self, fd: int, end: int) -> None:
        self.fd, self.end = fd, end
        self.base, self.buf = 0, b""

    def get(self, offset: int, size: int) -> bytes:
        stop = min(offset + size, self.end)
        if offset < self.base or stop > self.base + len(self.buf):
            self.base = offset
            self.buf = pread_all(self.fd, min(max(stop - offset, _BLOCK), self.end - offset), offset)
        return self.buf[offset - self.base : stop - self.base]

    def find_magic(self, offset: int) -> int | None:
        while offset < self.end:
            block = self.get(offset, _BLOCK)
            found = block.find(FRAME_MAGIC)
            if found >= 0:
                return offset + found
            if offset + len(block) >= self.end:
                return None
            offset += len(block) - len(FRAME_MAGIC) + 1
        return None

    def frame_at(self, pos: int) -> tuple[bytes | None, str]:
        """The payload of a verifying frame at ``pos``, or None and why not."""
        head = self.get(pos, FRAME_HEADER)
        if len(head) < FRAME_HEADER:
            return None, "torn frame header at the end of the file"
        magic, length, crc = _FRAME.unpack(head)
        if magic != FRAME_MAGIC:
            return None, "no frame marker"
        if length > MAX_PAYLOAD:
            return None, "frame length out of range"
        if pos + FRAME_HEADER + length > self.end:
            return None, "frame runs past the end of the file (torn write)"
        payload = self.get(pos + FRAME_HEADER, length)
        if zlib.crc32(payload, zlib.crc32(head[4:8])) != crc:
            return None, "checksum mismatch"
        return payload, ""


def pread_all(fd: int, size: int, offset: int) -> bytes:
    parts, got = [], 0
    while got < size:
        part = os.pread(fd, size - got, offset + got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def read(fd: int, start: int, end: int, limit: int) -> tuple[list[Frame | Damage], int]:
    """Up to ``limit`` records from ``[start, end)`` of the file, with the damage found among them, and the
    offset after the last item returned."""
    reader = _Reader(fd, end)
    items: list[Frame | Damage] = []
    records = 0
    pos = start
    while pos < end and records < limit:
        payload, reason = reader.frame_at(pos)
        if payload is None:
            # Resynchronise: the next magic whose frame verifies. Damage is one region, however long.
            candidate = reader.find_magic(pos + 1)
            while candidate is not None and reader.frame_at(candidate)[0] is None:
                candidate = reader.find_magic(candidate + 1)
            stop = end if candidate is None else candidate
            items.append(Damage(pos, stop, reason))
            pos = stop
            continue
        stop = pos + FRAME_HEADER + len(payload)
        try:
            items.append(Frame(pos, stop, AcctRecord.from_json(json.loads(payload))))
            records += 1
        # Verified, yet not a record (from_json is strict about each field's type): written by another version,
        # or deliberately. RecursionError: JSON nested deeper than the parser goes.
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            items.append(Frame(pos, stop, None, f"not a record: {exc}"))
        pos = stop
    return items, pos


def read_records(path: os.PathLike | str) -> list[AcctRecord]:
    """Every record of a spool file not yet replayed (for tests and inspection)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        end = os.fstat(fd).st_size
        items, _ = read(fd, read_marker(fd), end, end)
    finally:
        os.close(fd)
    return [item.record for item in items if isinstance(item, Frame) and item.record is not None]
