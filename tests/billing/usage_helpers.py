"""What the traffic rating tests share: plans with traffic terms, usage days, the ledger's view of a period."""

import datetime as dt
from decimal import Decimal

from abonent.billing.models import Charge, ChargeKind, LedgerAccount, UsageRating
from abonent.billing.rating.traffic import rate_usage
from abonent.core import clock
from abonent.network.models import UsageDay

GB = 1000**3
NOV, DEC, JAN = dt.date(2026, 11, 1), dt.date(2026, 12, 1), dt.date(2027, 1, 1)


def overage_plan(make_plan, code="traffic-500", *, included_gb=500, price="2.00", **fields):
    fields.setdefault("traffic_policy", "overage")
    return make_plan(
        code,
        "500.00",
        included_bytes=included_gb * GB if included_gb is not None else None,
        overage_price_per_gb=Decimal(price),
        **fields,
    )


def add_usage(subscriber, day: dt.date, *, download: int = 0, upload: int = 0) -> None:
    """Add to a day's counters, as accounting does (input = upload, output = download)."""
    row, _created = UsageDay.objects.get_or_create(subscriber=subscriber, day=day)
    # Marked late as accounting marks a day written to once it is over: the rating then re-checks its period.
    UsageDay.objects.filter(pk=row.pk).update(
        input_octets=row.input_octets + upload, output_octets=row.output_octets + download, late=True
    )


def spread(subscriber, start: dt.date, days: int, total_download: int) -> None:
    """``total_download`` bytes spread over ``days`` days from ``start`` (the remainder on the last)."""
    each = total_download // days
    for n in range(days):
        extra = total_download - each * days if n == days - 1 else 0
        add_usage(subscriber, start + dt.timedelta(days=n), download=each + extra)


def rate_on(day: dt.date):
    with clock.travel_to(day):
        return rate_usage(day)


def usage_charges(subscription) -> list[tuple[str, dt.date, Decimal, int, int]]:
    return list(
        Charge.objects.filter(subscription=subscription, kind__in=[ChargeKind.USAGE, ChargeKind.USAGE_ADJUSTMENT])
        .order_by("period_start", "cycle")
        .values_list("kind", "period_start", "amount", "quantity", "cycle")
    )


def usage_revenue() -> Decimal:
    account = LedgerAccount.objects.filter(code__startswith="revenue:usage:").first()
    if account is None:
        return Decimal("0.00")
    return sum(account.postings.values_list("amount", flat=True), Decimal("0.00"))


def rating(subscription, start: dt.date) -> UsageRating:
    return UsageRating.objects.get(subscription=subscription, period_start=start)
