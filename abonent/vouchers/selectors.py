"""Reads of the prepaid cards: series with their counts by status, a series' cards, the sheet's rows."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q

from abonent.core import secrets
from abonent.staff.permissions import allowed_branch_ids

from .codes import printed
from .models import Voucher, VoucherSeries, VoucherStatus


def series_list(user):
    """The series ``user`` may see (those of no branch and of the user's branches), newest first, with
    ``n_<status>`` counts."""
    counts = {f"n_{s}": Count("vouchers", filter=Q(vouchers__status=s)) for s in VoucherStatus.values}
    found = VoucherSeries.objects.select_related("dealer", "plan")
    ids = allowed_branch_ids(user)
    if ids is not None:
        found = found.filter(Q(branch__isnull=True) | Q(branch__in=ids))
    return found.annotate(**counts).order_by("-pk")


def counts_of(series: VoucherSeries) -> list[tuple[str, str, int]]:
    found = dict(series.vouchers.values_list("status").annotate(n=Count("pk")))
    return [(value, label, found.get(value, 0)) for value, label in VoucherStatus.choices]


def cards_of(series: VoucherSeries, user, *, limit: int = 500) -> list[Voucher]:
    """The series' first cards. ``subscriber_visible`` tells whether ``user`` may see who activated a card: a
    top-up series is the company's, its cards' subscribers are of any branch."""
    cards = list(series.vouchers.select_related("activated_by", "sale__dealer").order_by("serial")[:limit])
    ids = allowed_branch_ids(user)
    for card in cards:
        card.subscriber_visible = card.activated_by_id is not None and (
            ids is None or card.activated_by.branch_id in ids
        )
    return cards


@dataclass(frozen=True)
class SheetCard:
    serial: str
    code: str


def sheet_cards(series: VoucherSeries) -> list[SheetCard]:
    """The cards to print with their codes in clear: those not activated, void or expired."""
    cards = series.vouchers.filter(status__in=[VoucherStatus.NEW, VoucherStatus.SOLD]).order_by("serial")
    return [
        SheetCard(c.serial, printed(secrets.decrypt(c.code_encrypted))) for c in cards.only("serial", "code_encrypted")
    ]


def activations_of(subscriber_id: int, *, limit: int = 5):
    return (
        Voucher.objects.filter(activated_by_id=subscriber_id).select_related("series").order_by("-activated_at")[:limit]
    )
