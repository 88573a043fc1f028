"""Helpers for tests that walk subscribers through time (used by tests/billing)."""

import datetime as dt
from decimal import Decimal

from abonent.core import clock

from .engine import RunResult, run_billing
from .models import LedgerAccount


def balance(subscriber) -> Decimal:
    return LedgerAccount.objects.get(subscriber=subscriber).balance


def run_on(day: dt.date) -> RunResult:
    """The daily billing run as the worker would do it on ``day``."""
    from .actions import do_finish_due_freezes

    with clock.travel_to(day):
        do_finish_due_freezes()
        return run_billing(day)
