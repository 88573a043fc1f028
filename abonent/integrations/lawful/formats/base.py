"""The one interface every lawful-export format implements, the registry of formats, and the ZIP they write into.

A format is a class with a ``name`` (the registry key, stored on the request), a ``title`` for people, a
``version`` (the manifest's) and ``write(selection, package)``, which adds its files to the ``Package`` row by row.
The package streams each file into the ZIP, counts its rows and hashes it; the manifest is the package's, the same
for every format. Яхонт and Фенікс would each be one more module beside ``vas_experts.py``
(docs/lawful-export.md, "Formats").
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import json
import time
import zipfile
from collections.abc import Iterable, Sequence
from typing import BinaryIO, ClassVar, Protocol

from django.utils.translation import gettext_lazy as _

from ..selection import Selection


class ExportTooSlow(Exception):
    """The generation ran past ``ABONENT_LAWFUL_DEADLINE_SECONDS``."""


class Exporter(Protocol):
    name: ClassVar[str]
    title: ClassVar[str]
    version: ClassVar[str]

    def write(self, selection: Selection, package: Package) -> None: ...


_REGISTRY: dict[str, type[Exporter]] = {}

# Formats asked about that are not built: named so the form and the docs can say so, never offered.
NOT_BUILT = {
    "yakhont": _("Яхонт (SORM-3 «Яхонт» import files)"),
    "fenix": _("Фенікс"),
}


def register_exporter(cls: type[Exporter]) -> type[Exporter]:
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"lawful export format {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def get_exporter(name: str) -> Exporter:
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise LookupError(f"no lawful export format {name!r}") from None


def format_choices() -> list[tuple[str, str]]:
    return [(name, str(cls.title)) for name, cls in sorted(_REGISTRY.items())]


# Characters a spreadsheet starts a formula with (OWASP "CSV injection"); a free-text value starting with one is
# written after an apostrophe, which the mediation device strips (docs/lawful-export.md, "Text values").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text(value) -> str:
    """A free-text value (a name, an address, a payer) as written: line breaks become spaces (one record a line,
    whatever the reader), and a leading formula character is neutralised with an apostrophe."""
    if value is None:
        return ""
    clean = str(value).replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    return "'" + clean if clean[:1] in FORMULA_STARTS else clean


class _HashingWriter(io.RawIOBase):
    """Passes bytes on to the ZIP entry and hashes them: the manifest's SHA-256 of each file as stored."""

    def __init__(self, target: BinaryIO):
        self.target = target
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.target.write(data)


class Package:
    """The ZIP being written: ``rows(path, header, rows)`` adds one ``;``-separated UTF-8 file; ``manifest`` is
    written last. ``check_deadline`` is called every few thousand rows."""

    DEADLINE_EVERY = 1000

    def __init__(self, fh: BinaryIO, *, deadline: float, generated_at: dt.datetime):
        self.zip = zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
        self.deadline = deadline
        self.generated_at = generated_at
        self.files: list[dict] = []

    def check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise ExportTooSlow

    @property
    def stamp(self) -> str:
        return self.generated_at.strftime("%d%m%Y%H%M%S")

    def rows(self, path: str, header: Sequence[str], rows: Iterable[Sequence]) -> int:
        info = zipfile.ZipInfo(path, date_time=self.generated_at.timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o600 << 16
        self.check_deadline()
        count = 0
        with self.zip.open(info, "w", force_zip64=True) as entry:
            hashing = _HashingWriter(entry)
            out = io.TextIOWrapper(io.BufferedWriter(hashing, 1 << 16), encoding="utf-8", newline="")
            writer = csv.writer(out, delimiter=";", quotechar='"', quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
            writer.writerow(header)
            for row in rows:
                writer.writerow(row)
                count += 1
                if count % self.DEADLINE_EVERY == 0:
                    self.check_deadline()
            out.flush()
            out.detach().flush()
        self.files.append({"path": path, "rows": count, "bytes": hashing.size, "sha256": hashing.sha256.hexdigest()})
        return count

    def close(self, manifest: dict) -> None:
        data = json.dumps({**manifest, "files": self.files}, ensure_ascii=False, indent=2).encode()
        info = zipfile.ZipInfo("manifest.json", date_time=self.generated_at.timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o600 << 16
        self.zip.writestr(info, data)
        self.zip.close()

    def abandon(self) -> None:
        """Close the ZIP after a failure (its temporary file is deleted by the caller), so that nothing writes to it
        later when it is collected."""
        with contextlib.suppress(Exception):
            self.zip.close()

    @property
    def row_counts(self) -> dict[str, int]:
        return {f["path"]: f["rows"] for f in self.files}
