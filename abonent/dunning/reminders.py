"""Reminders by date, sent by a daily job: a promised payment about to expire, a freeze about to end.

Each is a set-based read (one query per kind over everything due in the window) and one ``notify_many``. The
notice's key carries the date it is about (``promised:<id>:<due_on>``, ``freeze:<id>:<ends_on>``), so the job is
idempotent: run again the same day, or on the next day of the window, it queues nothing new; a freeze extended to
a later date is a new reminder. The window is ``ABONENT_PROMISED_REMIND_DAYS`` (default 1: the day before and the
last day) and ``ABONENT_FREEZE_REMIND_DAYS`` (default 3).

A promised payment's ``amount_due`` is what keeps the subscriber online when it expires: its credit is withdrawn
then, so the balance plus credit limit must cover the promised amount.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db.models import F

from abonent.billing.models import Freeze, FreezeStatus, PromisedPayment, PromisedPaymentStatus
from abonent.core import clock
from abonent.notifications.models import Event
from abonent.notifications.queueing import Notice, notify_many

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


def _money(amount: Decimal) -> str:
    return f"{amount.quantize(CENT):.2f}".replace(".", ",")


def _day(day: dt.date) -> str:
    return day.strftime("%d.%m.%Y")


def promised_expiring(today: dt.date, days: int) -> list[Notice]:
    """Open promised payments whose last day is within ``days`` of ``today`` (today included)."""
    rows = (
        PromisedPayment.objects.filter(
            status=PromisedPaymentStatus.OPEN, due_on__gte=today, due_on__lte=today + dt.timedelta(days=days)
        )
        .annotate(
            balance=F("subscriber__ledger_account__balance"), credit=F("subscriber__ledger_account__credit_limit")
        )
        .order_by("id")
        .values_list("id", "subscriber_id", "amount", "due_on", "balance", "credit")
    )
    notices = []
    for promised_id, subscriber_id, amount, due_on, balance, credit in rows:
        available = (balance or ZERO) + (credit or ZERO)
        context = {
            "amount": _money(amount),
            "expires_on": _day(due_on),
            "amount_due": _money(max(amount - available, ZERO)),
        }
        key = f"promised:{promised_id}:{due_on.isoformat()}"
        notices.append(Notice(subscriber_id, Event.PROMISED_EXPIRING, key, context))
    return notices


def freezes_ending(today: dt.date, days: int) -> list[Notice]:
    """Freezes in effect whose end (the first day back in service) is within ``days`` of ``today``."""
    rows = (
        Freeze.objects.filter(
            status=FreezeStatus.ACTIVE, ends_on__gte=today, ends_on__lte=today + dt.timedelta(days=days)
        )
        .order_by("id")
        .values_list("id", "subscription__subscriber_id", "ends_on")
    )
    return [
        Notice(
            subscriber_id, Event.FREEZE_ENDING, f"freeze:{freeze_id}:{ends_on.isoformat()}", {"ends_on": _day(ends_on)}
        )
        for freeze_id, subscriber_id, ends_on in rows
    ]


def send_reminders(today: dt.date | None = None) -> dict[str, int]:
    """Queue today's date reminders; returns the notices found and the message rows newly queued per kind."""
    today = today or clock.today()
    promised = promised_expiring(today, settings.ABONENT_PROMISED_REMIND_DAYS)
    freezes = freezes_ending(today, settings.ABONENT_FREEZE_REMIND_DAYS)
    return {
        "promised": len(promised),
        "promised_queued": notify_many(promised),
        "freezes": len(freezes),
        "freezes_queued": notify_many(freezes),
    }
