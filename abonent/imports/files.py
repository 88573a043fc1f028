"""Reading the old system's files: CSV (``;``, ``,`` or tab; UTF-8 with or without BOM, or windows-1251) and XLSX
(openpyxl, read-only). The type is decided by the content, never the name; anything else, a file too large, a zip
that would unpack to far more than it weighs, a formula or a merged cell is refused with a message naming the
place. Values come out as trimmed strings (XLSX numbers and dates turned into text here, so the cleaning rules
are one set for both formats), each row with its number as a spreadsheet shows it (the header is row 1).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .models import FileFormat

DELIMITERS = (";", ",", "\t")
# An XLSX is a zip: refuse one whose parts would unpack to more than this many times the upload limit, or any
# part packed more tightly than a spreadsheet ever is (a zip bomb).
MAX_UNPACKED_FACTOR = 10
MAX_COMPRESSION_RATIO = 200
# With or without a namespace prefix (the .NET Open XML SDK writes ``<x:mergeCell>``), ``ref`` anywhere in the tag.
_MERGE_RE = re.compile(rb'<(?:[\w.-]+:)?mergeCell\b[^>]*?\sref="([A-Z]+[0-9]+)')
# What a real windows-1251 text holds: Cyrillic, ASCII and the usual typographic signs. Bytes that decode to
# anything else (Ђ, ѓ, ‰, control characters) mean the file is in some other encoding.
_CP1251_TEXT_RE = re.compile(r"^[\t\x20-\x7eА-яЁё«»—–№…“”„‘’ \u00a0°·•±×]*$")


@dataclass
class FileInfo:
    """How a file is to be read."""

    format: str
    encoding: str = ""
    delimiter: str = ""
    sheets: list[str] = field(default_factory=list)


@dataclass
class Table:
    headers: list[str]
    rows: Iterator[tuple[int, list[str]]]


def _error(message: str, code: str) -> ValidationError:
    return ValidationError({"file": ValidationError(message, code=code)})


def sniff(content: bytes) -> FileInfo:
    """What the file is, by its bytes; a ``ValidationError`` on ``file`` when it is nothing we read."""
    limit = settings.ABONENT_IMPORT_MAX_BYTES
    if len(content) > limit:
        raise _error(
            _("The file is larger than %(limit)s MB.") % {"limit": round(limit / 1024 / 1024, 1)}, "file_too_large"
        )
    if not content.strip():
        raise _error(_("The file is empty."), "file_empty")
    if content.startswith(b"PK\x03\x04"):
        return FileInfo(FileFormat.XLSX, sheets=_xlsx_sheets(content))
    if (
        content.startswith((b"%PDF", b"\xd0\xcf\x11\xe0", b"\x1f\x8b", b"Rar!", b"7z\xbc\xaf"))
        or b"\x00" in content[:65536]
    ):
        raise _error(_("This is not a CSV or XLSX file."), "file_type")
    encoding = _csv_encoding(content)
    text = content.decode(encoding)
    return FileInfo(FileFormat.CSV, encoding=encoding, delimiter=_delimiter(text))


def _csv_encoding(content: bytes) -> str:
    """``utf-8-sig`` or ``cp1251``; a file that is neither, or UTF-8 in some lines and something else in others,
    is refused naming the first line that does not fit."""
    if content.startswith(codecs.BOM_UTF8):
        content = content[len(codecs.BOM_UTF8) :]
    try:
        content.decode("utf-8")
        return "utf-8-sig"
    except UnicodeDecodeError:
        pass
    lines = content.split(b"\n")
    utf8_lines = []
    for number, line in enumerate(lines, start=1):
        try:
            decoded = line.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if not decoded.isascii():
            utf8_lines.append(number)
    for number, line in enumerate(lines, start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            if utf8_lines:
                raise _error(
                    _("The file mixes encodings: line %(line)s is not UTF-8 while line %(other)s is.")
                    % {"line": number, "other": utf8_lines[0]},
                    "encoding_mixed",
                ) from None
            break
    for number, line in enumerate(lines, start=1):
        try:
            decoded = line.decode("cp1251").rstrip("\r")
        except UnicodeDecodeError:
            decoded = None
        if decoded is None or not _CP1251_TEXT_RE.match(decoded):
            raise _error(
                _("The file is neither UTF-8 nor windows-1251: line %(line)s cannot be read.") % {"line": number},
                "encoding_unknown",
            )
    return "cp1251"


def _delimiter(text: str) -> str:
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    counts = {d: first.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ";"


def _xlsx_sheets(content: bytes) -> list[str]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        raise _error(_("This is not a CSV or XLSX file."), "file_type") from None
    names = set(archive.namelist())
    if "xl/workbook.xml" not in names or "[Content_Types].xml" not in names:
        raise _error(_("This is not a CSV or XLSX file."), "file_type")
    unpacked = 0
    for info in archive.infolist():
        unpacked += info.file_size
        if (
            info.compress_size
            and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO
            and info.file_size > 1_000_000
        ):
            raise _error(_("The XLSX file unpacks to far more than it weighs: refused."), "file_bomb")
    if unpacked > settings.ABONENT_IMPORT_MAX_BYTES * MAX_UNPACKED_FACTOR:
        raise _error(_("The XLSX file unpacks to far more than it weighs: refused."), "file_bomb")
    workbook = _open_workbook(content)
    try:
        return list(workbook.sheetnames)
    finally:
        workbook.close()


def _open_workbook(content: bytes):
    from openpyxl import load_workbook

    try:
        return load_workbook(io.BytesIO(content), read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many kinds on a damaged file
        raise _error(_("The XLSX file cannot be read: %(error)s") % {"error": exc}, "file_unreadable") from exc


def read_table(content: bytes, info: FileInfo, *, sheet: str = "") -> Table:
    """The header and the data rows (empty rows left out). Raises on ``file`` for a formula, a merged cell, too many
    rows or a file without a header; the rows are checked as they are read, so a caller that reads them all before
    writing anything (the import does) never writes from a refused file."""
    if info.format == FileFormat.XLSX:
        return _read_xlsx(content, sheet)
    text = content.decode(info.encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=info.delimiter)
    header = next(reader, None)
    if not header or not any(h.strip() for h in header):
        raise _error(_("The file has no header row."), "file_no_header")
    headers = [h.strip().lstrip("\ufeff") for h in header]
    return Table(headers, _limited((reader.line_num, [v.strip() for v in row]) for row in reader))


def _limited(rows: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    limit = settings.ABONENT_IMPORT_MAX_ROWS
    count = 0
    number = 1
    while True:
        try:
            number, values = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:  # a field over the reader's limit (an unclosed quote swallowing the file, too)
            raise _error(
                _("Line %(line)s cannot be read: %(error)s") % {"line": number + 1, "error": exc}, "file_unreadable"
            ) from None
        if any("\x00" in v for v in values):
            # Sniffing looks at the head only; a NUL would reach the database, which refuses it mid-run.
            raise _error(_("Line %(line)s holds a NUL character.") % {"line": number}, "file_nul")
        if not any(values):
            continue
        count += 1
        if count > limit:
            raise _error(_("The file has more than %(limit)s rows.") % {"limit": limit}, "file_too_many_rows")
        yield number, values


def _read_xlsx(content: bytes, sheet: str) -> Table:
    workbook = _open_workbook(content)
    names = list(workbook.sheetnames)
    title = sheet or names[0]
    if title not in names:
        workbook.close()
        raise _error(_("The workbook has no sheet “%(sheet)s”.") % {"sheet": sheet}, "sheet_missing")
    worksheet = workbook[title]
    merged = _first_merged_cell(content, worksheet._worksheet_path)
    if merged:
        workbook.close()
        raise _error(
            _("Sheet “%(sheet)s” has merged cells (at %(cell)s): unmerge them and save the file again.")
            % {"sheet": title, "cell": merged},
            "xlsx_merged_cells",
        )
    rows = worksheet.iter_rows()
    header_row = next(rows, None)
    if header_row is None:
        workbook.close()
        raise _error(_("The file has no header row."), "file_no_header")
    headers = [_cell_text(c, title) for c in header_row]
    while headers and not headers[-1]:
        headers.pop()
    if not any(headers):
        workbook.close()
        raise _error(_("The file has no header row."), "file_no_header")

    def data() -> Iterator[tuple[int, list[str]]]:
        try:
            for row in rows:
                cells = [c for c in row if getattr(c, "row", None)]
                if not cells:
                    continue
                yield cells[0].row, [_cell_text(c, title) for c in row][: len(headers)]
        finally:
            workbook.close()

    return Table(headers, _limited(data()))


def _first_merged_cell(content: bytes, path: str) -> str:
    with zipfile.ZipFile(io.BytesIO(content)) as archive, archive.open(path.lstrip("/")) as part:
        tail = b""
        while chunk := part.read(1 << 20):
            found = _MERGE_RE.search(tail + chunk)
            if found:
                return found.group(1).decode()
            tail = chunk[-200:]
    return ""


def _cell_text(cell, sheet: str) -> str:
    value = cell.value
    if value is None:
        return ""
    if cell.data_type == "f" or (isinstance(value, str) and value.startswith("=")):
        raise _error(
            _("Sheet “%(sheet)s” has a formula at %(cell)s: save the values instead (paste as values).")
            % {"sheet": sheet, "cell": cell.coordinate},
            "xlsx_formula",
        )
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # The shortest text that reads back as the same float: 1234.56, never 1234.5599999. Amounts are
        # parsed from this text into Decimal; a float never reaches money.
        number = Decimal(repr(value))
        return str(number.to_integral_value()) if number == number.to_integral_value() else str(number)
    return str(value).strip()
