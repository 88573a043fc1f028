"""Keyset pages and exports shared by every console list (abonent/core/listing.py)."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.utils import timezone

from abonent.core.listing import Column, csv_response, decode_cursor, keyset_page, xlsx_response
from abonent.core.models import AuditEvent

pytestmark = pytest.mark.django_db


def _events(n: int, *, same_time: bool = False) -> list[AuditEvent]:
    base = timezone.now().replace(microsecond=0)
    return AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                created_at=base if same_time else base - dt.timedelta(minutes=i % 7),
                actor_label="t",
                action=f"a{i}",
                object_type="x",
                object_id=str(i),
            )
            for i in range(n)
        ]
    )


def _walk(ordering, size, direction="next"):
    seen, cursor = [], None
    while True:
        page = keyset_page(AuditEvent.objects.all(), ordering=ordering, cursor=cursor, size=size)
        seen.extend(e.pk for e in page)
        if not page.has_next:
            return seen, page
        cursor = page.next_cursor


@pytest.mark.parametrize("same_time", [False, True])
def test_pages_visit_every_row_once_in_order_even_with_ties(same_time):
    _events(23, same_time=same_time)
    ordering = ("-created_at", "-id")
    seen, _last = _walk(ordering, 5)
    expected = list(AuditEvent.objects.order_by(*ordering).values_list("pk", flat=True))
    assert seen == expected


def test_previous_cursor_returns_the_page_before():
    _events(12)
    ordering = ("-created_at", "-id")
    first = keyset_page(AuditEvent.objects.all(), ordering=ordering, size=5)
    second = keyset_page(AuditEvent.objects.all(), ordering=ordering, cursor=first.next_cursor, size=5)
    back = keyset_page(AuditEvent.objects.all(), ordering=ordering, cursor=second.previous_cursor, size=5)
    assert [e.pk for e in back] == [e.pk for e in first]
    assert not back.has_previous and back.has_next
    assert not first.has_previous


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "eyJvIjpbIi1pZCJdLCJrIjpbMV19",
        "e30",
        "x" * 5000,
        "eyJvIjpbIi1jcmVhdGVkX2F0IiwiLWlkIl0sImsiOlsiYSIsImIiXX0",
    ],
)
def test_a_cursor_that_is_not_ours_starts_over(cursor):
    _events(3)
    page = keyset_page(AuditEvent.objects.all(), ordering=("-created_at", "-id"), cursor=cursor, size=10)
    assert len(page) == 3
    assert decode_cursor("garbage", ("-id",)) is None


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_csv_is_excel_friendly_and_formula_safe():
    rows = [{"name": "=HYPERLINK(1)", "amount": Decimal("650.00"), "day": dt.date(2026, 12, 1)}]
    columns = [
        Column("Имя", lambda r: r["name"]),
        Column("Сумма", lambda r: r["amount"]),
        Column("День", lambda r: r["day"]),
    ]
    text = _body(csv_response("x", columns, rows)).decode("utf-8")
    assert text.startswith("\ufeffИмя;Сумма;День")
    assert "'=HYPERLINK(1);650,00;01.12.2026" in text


def test_xlsx_keeps_numbers_and_dates_and_refuses_formulas():
    from openpyxl import load_workbook

    rows = [{"name": "=1+1", "amount": Decimal("650.00"), "day": dt.date(2026, 12, 1)}]
    columns = [
        Column("Имя", lambda r: r["name"]),
        Column("Сумма", lambda r: r["amount"], number_format="#,##0.00"),
        Column("День", lambda r: r["day"]),
    ]
    response = xlsx_response("x", columns, rows)
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    assert [c.value for c in sheet[1]] == ["Имя", "Сумма", "День"]
    name, amount, day = sheet[2]
    assert name.value == "=1+1" and name.data_type == "s"
    assert amount.value == 650 and amount.data_type == "n"
    assert day.value.date() == dt.date(2026, 12, 1)
