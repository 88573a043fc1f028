"""Reads of the prepaid cards: series with their counts by status, a series' cards, the sheet's rows."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q

from abonent.core import secrets

from .codes import printed
from .models import Voucher, VoucherSeries, VoucherStatus


def series_list():
    """Every series, newest first, with ``n_<status>`` counts."""
    counts = {f"n_{s}": Count("vouchers", filter=Q(vouchers__status=s)) for s in VoucherStatus.values}
    return VoucherSeries.objects.select_related("dealer", "plan").annotate(**counts).order_by("-pk")


def counts_of(series: VoucherSeries) -> list[tuple[str, str, int]]:
    found = dict(series.vouchers.values_list("status").annotate(n=Count("pk")))
    return [(value, label, found.get(value, 0)) for value, label in VoucherStatus.choices]


def cards_of(series: VoucherSeries, *, limit: int = 500):
    return series.vouchers.select_related("activated_by", "sale__dealer").order_by("serial")[:limit]


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
