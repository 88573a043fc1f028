"""Reads of payments: what a staff user may see, pages of payments newest first, one payment, statements."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from abonent.staff.permissions import allowed_branch_ids

from ..models import BankStatement, Payment, StatementLine
from .dates import clamp_moment


def visible_payments(user) -> QuerySet[Payment]:
    """Payments of subscribers in the user's branches, and those of no subscriber yet (the suspense queue is
    the whole ISP's: whoever finds the payer assigns it, and the assignment checks the subscriber's branch)."""
    qs = Payment.objects.select_related("subscriber", "statement_line")
    ids = allowed_branch_ids(user)
    return qs if ids is None else qs.filter(Q(subscriber__branch_id__in=ids) | Q(subscriber__isnull=True))


def get_payment(user, pk: int) -> Payment:
    """The payment, or 404 when it does not exist or belongs to a branch the user does not see."""
    payment = visible_payments(user).select_related("subscriber__branch", "taken_by").filter(pk=pk).first()
    if payment is None:
        raise Http404
    return payment


@dataclass(frozen=True)
class PaymentFilters:
    subscriber_id: int | None = None
    channel: str = ""
    status: str = ""
    received_from: dt.datetime | None = None
    received_to: dt.datetime | None = None


@dataclass(frozen=True)
class PaymentPage:
    items: list[Payment]
    next_cursor: str | None


def encode_cursor(payment: Payment) -> str:
    return base64.urlsafe_b64encode(f"{payment.received_at.isoformat()}|{payment.pk}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    try:
        at, _sep, pk = base64.urlsafe_b64decode(cursor.encode("ascii")).decode().partition("|")
        moment = dt.datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError(cursor)
        pk = int(pk)
        if not 0 <= pk < 2**63:
            raise ValueError(cursor)
        return moment, pk
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise ValidationError(
            {"cursor": ValidationError(_("This cursor is not one a page of payments gave."), code="cursor_invalid")}
        ) from exc


def list_payments(user, filters: PaymentFilters, *, limit: int = 50, cursor: str = "") -> PaymentPage:
    """Payments newest first (by when the channel took the money), ``limit`` at a time; ``next_cursor`` goes
    on from the last one, stable however many payments arrive meanwhile."""
    qs = visible_payments(user).order_by("-received_at", "-id")
    if filters.subscriber_id is not None:
        qs = qs.filter(subscriber_id=filters.subscriber_id)
    if filters.channel:
        qs = qs.filter(channel=filters.channel)
    if filters.status:
        qs = qs.filter(status=filters.status)
    # Clamped (selectors.dates): SQLite cannot turn a moment at the edge of the calendar into UTC.
    if filters.received_from is not None:
        qs = qs.filter(received_at__gte=clamp_moment(filters.received_from))
    if filters.received_to is not None:
        qs = qs.filter(received_at__lt=clamp_moment(filters.received_to))
    if cursor:
        at, pk = decode_cursor(cursor)
        at = clamp_moment(at)
        qs = qs.filter(Q(received_at__lt=at) | Q(received_at=at, pk__lt=pk))
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    items = rows[:limit]
    return PaymentPage(items=items, next_cursor=encode_cursor(items[-1]) if more and items else None)


def list_statements(*, limit: int = 100) -> list[BankStatement]:
    return list(BankStatement.objects.select_related("uploaded_by")[:limit])


def statement_lines(statement: BankStatement) -> list[StatementLine]:
    return list(statement.lines.select_related("payment__subscriber").order_by("position"))
