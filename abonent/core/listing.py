"""Console lists: keyset pagination and CSV/XLSX export, the same for every list.

**Keyset pagination.** A page is "the next ``size`` rows after this one" in a fixed, unique order
(``("-received_at", "-id")``), not "rows 48,000–48,050": an ``OFFSET`` makes the database walk and throw
away every row before the page, so page 2,000 of the payments journal costs what the whole journal costs,
and rows written between two clicks shift what "page 3" means. The cursor carries the last row's values
of the order's fields; the next page is ``WHERE (a, b) < (va, vb)`` spelled out per direction, which
the list's own index answers. The order must end with a unique field (``id``) and its fields must be
non-null. A cursor is opaque to the operator (base64 of JSON) and untrusted: one that does not parse,
or whose fields do not match the order, starts the list over, never a 500.

**Export.** ``export_response`` writes any list as CSV (UTF-8 with a BOM and ``;``, which Excel opens in
Russian as columns, not one line) or XLSX (openpyxl's write-only workbook: constant memory per row). A
cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) is written as text
(CWE-1236): in CSV with a leading apostrophe, in XLSX as a string cell. Numbers and dates stay numbers and
dates in XLSX, so an accountant can sum a column. Exports stop at ``MAX_EXPORT_ROWS`` and say so in the
last row rather than time out.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# XLSX holds 1,048,576 rows a sheet; an export past 200,000 rows is a report, not a list (and a minute of work).
MAX_EXPORT_ROWS = 200_000
EXPORT_FORMATS = ("csv", "xlsx")


# --- keyset pagination ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeysetPage:
    """One page of a list: its rows, and cursors for the next and previous pages (``None`` at either end)."""

    rows: list
    next_cursor: str | None
    previous_cursor: str | None
    size: int

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def has_previous(self) -> bool:
        return self.previous_cursor is not None

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def _field_name(term: str) -> str:
    return term.lstrip("-")


def _encode_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"t": "dt", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {"t": "d", "v": value.isoformat()}
    if isinstance(value, Decimal):
        return {"t": "n", "v": str(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        kind, text = value.get("t"), value.get("v")
        if not isinstance(text, str):
            raise ValueError("cursor value")
        if kind == "dt":
            return dt.datetime.fromisoformat(text)
        if kind == "d":
            return dt.date.fromisoformat(text)
        if kind == "n":
            return Decimal(text)
        raise ValueError("cursor value kind")
    return value


def _value_of(row, field: str) -> Any:
    value = row
    for part in field.split("__"):
        value = value.get(part) if isinstance(value, dict) else getattr(value, part)
    return value


def encode_cursor(row, ordering: Sequence[str], *, backwards: bool = False) -> str:
    payload = {"o": list(ordering), "k": [_encode_value(_value_of(row, _field_name(t))) for t in ordering]}
    if backwards:
        payload["b"] = 1
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, ordering: Sequence[str]) -> tuple[list, bool] | None:
    """The key values and direction a cursor carries, or ``None`` for no cursor or one that is not ours for
    this order (a tampered, truncated or stale link starts the list over)."""
    if not cursor or len(cursor) > 2000:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        if not isinstance(payload, dict) or payload.get("o") != list(ordering):
            return None
        keys = payload.get("k")
        if not isinstance(keys, list) or len(keys) != len(ordering):
            return None
        return [_decode_value(v) for v in keys], bool(payload.get("b"))
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError):
        return None


def _after(ordering: Sequence[str], keys: list, *, backwards: bool) -> Q:
    """Rows strictly after ``keys`` in ``ordering`` (before, when going backwards): for (a desc, id desc),
    ``a < va OR (a = va AND id < vid)``."""
    condition = Q()
    for i, term in enumerate(ordering):
        field = _field_name(term)
        descending = term.startswith("-") != backwards
        step = Q(**{f"{field}__{'lt' if descending else 'gt'}": keys[i]})
        for j in range(i):
            step &= Q(**{_field_name(ordering[j]): keys[j]})
        condition |= step
    return condition


def _reversed(ordering: Sequence[str]) -> list[str]:
    return [t[1:] if t.startswith("-") else "-" + t for t in ordering]


# What a tampered key value raises when it is put into the query: Django's field conversion (ValidationError,
# ValueError, TypeError) or the database adapter's conversion of a datetime to UTC (OverflowError, SQLite).
BAD_KEY_ERRORS = (ValidationError, ValueError, TypeError, OverflowError)


def keyset_page(
    qs: QuerySet, *, ordering: Sequence[str], cursor: str | None = None, size: int = DEFAULT_PAGE_SIZE
) -> KeysetPage:
    """The page of ``qs`` in ``ordering`` after (or, for a "previous" cursor, before) ``cursor``.

    ``qs`` may carry ``select_related`` and annotations; the order's fields are read from each row, so an
    annotated field in the order works when the row has it as an attribute.
    """
    size = max(1, min(int(size), MAX_PAGE_SIZE))
    ordering = list(ordering)
    decoded = decode_cursor(cursor, ordering)
    backwards = False
    rows = None
    if decoded is not None:
        keys, backwards = decoded
        order = _reversed(ordering) if backwards else ordering
        try:
            rows = list(qs.filter(_after(ordering, keys, backwards=backwards)).order_by(*order)[: size + 1])
        except BAD_KEY_ERRORS:
            # A key value that does not fit its column (a date in an integer field, a datetime that overflows
            # when converted to UTC): start over.
            rows, decoded, backwards = None, None, False
    if rows is None:
        rows = list(qs.order_by(*ordering)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
        has_next, has_previous = bool(rows), more
    else:
        has_next, has_previous = more, decoded is not None and bool(rows)
    return KeysetPage(
        rows=rows,
        next_cursor=encode_cursor(rows[-1], ordering) if has_next and rows else None,
        previous_cursor=encode_cursor(rows[0], ordering, backwards=True) if has_previous and rows else None,
        size=size,
    )


@dataclass(frozen=True)
class Sorting:
    """The sorts a list offers: ``orders`` maps a column's key to its keyset order, ascending and ending in a unique
    field (``{"amount": ("amount", "id")}``); ``-key`` is that order reversed. The ``sort`` parameter is untrusted:
    any value not offered is the ``default`` (a key, with ``-`` for descending)."""

    orders: dict[str, tuple[str, ...]]
    default: str

    def choose(self, value: str | None) -> tuple[str, list[str]]:
        """The sort in force (``value`` if offered, else the default) and its keyset order."""
        value = (value or "").strip()
        if value.removeprefix("-") not in self.orders:
            value = self.default
        order = list(self.orders[value.removeprefix("-")])
        return value, _reversed(order) if value.startswith("-") else order


def query_without(params, *names: str) -> str:
    """``params`` (a QueryDict) url-encoded without ``names``: the filters a pager, a sort link or an export button
    carries on (never the cursor, which belongs to one order and one page)."""
    params = params.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()


# --- export -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of an export: its translated title and how a row gives its value (a Decimal, date, datetime,
    int or str; ``None`` is an empty cell)."""

    title: Any
    value: Callable[[Any], Any]
    # XLSX number format for the column ("#,##0.00" for money); CSV writes the value as Python prints it.
    number_format: str = ""


MONEY_FORMAT = "#,##0.00"


def _spreadsheet_safe(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).strftime("%d.%m.%Y %H:%M:%S") if timezone.is_aware(value) else str(value)
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, (int, Decimal)):
        # A decimal comma: Excel in a Russian locale reads "650,00" as a number and "650.00" as text.
        return str(value).replace(".", ",")
    return _spreadsheet_safe(str(value))


class _Echo:
    def write(self, value):
        return value


def _limited(rows: Iterable) -> Iterator[tuple[bool, Any]]:
    for count, row in enumerate(rows):
        if count >= MAX_EXPORT_ROWS:
            yield True, None
            return
        yield False, row


def _truncated_note() -> str:
    return _("The export stops at %(limit)s rows: narrow the filters to get the rest.") % {
        "limit": f"{MAX_EXPORT_ROWS:,}".replace(",", " ")
    }


def csv_response(filename: str, columns: Sequence[Column], rows: Iterable) -> StreamingHttpResponse:
    writer = csv.writer(_Echo(), delimiter=";")

    def lines():
        # Titles may come from an uploaded file (the import's quarantine uses the file's headers): made safe too.
        yield "\ufeff" + writer.writerow([_spreadsheet_safe(str(c.title)) for c in columns])
        for truncated, row in _limited(rows):
            if truncated:
                yield writer.writerow([_truncated_note()])
                return
            yield writer.writerow([_csv_cell(c.value(row)) for c in columns])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def _xlsx_cell(sheet, value: Any, number_format: str):
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, dt.datetime) and timezone.is_aware(value):
        value = timezone.localtime(value).replace(tzinfo=None)  # Excel has no time zones: the operator's local time
    if isinstance(value, bool):
        value = _("yes") if value else _("no")
    if isinstance(value, str):
        # Control characters are legal in CSV or a text field but not in XLSX (openpyxl raises): marked, not lost.
        value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        # openpyxl takes a string starting with "=" for a formula: say it is text, whatever it starts with.
        cell.data_type = "s"
    elif isinstance(value, dt.datetime):
        cell.number_format = "DD.MM.YYYY HH:MM:SS"
    elif isinstance(value, dt.date):
        cell.number_format = "DD.MM.YYYY"
    elif number_format:
        cell.number_format = number_format
    return cell


def xlsx_response(filename: str, columns: Sequence[Column], rows: Iterable, *, sheet_title: str = "") -> FileResponse:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=(sheet_title or filename)[:31])
    sheet.append([_xlsx_cell(sheet, str(c.title), "") for c in columns])
    for truncated, row in _limited(rows):
        if truncated:
            sheet.append([_xlsx_cell(sheet, _truncated_note(), "")])
            break
        sheet.append([_xlsx_cell(sheet, c.value(row), c.number_format) for c in columns])
    # Spooled: a small export stays in memory, a large one goes to a temporary file, never the whole in RAM twice.
    buffer = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - FileResponse closes it
    workbook.save(buffer)
    buffer.seek(0)
    return FileResponse(
        buffer,
        as_attachment=True,
        filename=f"{filename}.xlsx",
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


def export_response(fmt: str, filename: str, columns: Sequence[Column], rows: Iterable) -> HttpResponse:
    """The list as a download in ``fmt`` ("csv" or "xlsx"); any other format is a 400 with the reason."""
    if fmt == "xlsx":
        return xlsx_response(filename, columns, rows)
    if fmt == "csv":
        return csv_response(filename, columns, rows)
    return HttpResponse(
        _("Unknown export format: choose CSV or XLSX."), status=400, content_type="text/plain; charset=utf-8"
    )


EXPORT_FORMAT_LABELS = {"csv": gettext_lazy("CSV"), "xlsx": gettext_lazy("Excel (XLSX)")}
