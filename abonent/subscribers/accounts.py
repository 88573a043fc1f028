"""The one way a typed account number becomes a subscriber: ours first, then the old system's (docs/adr/0019).

Every place where a person or a machine types an account number (staff search, the terminal protocol, bank-statement
matching, the portal login, the payment page, API filters) goes through ``subscriber_by_account``, so all of them
accept both numbers and none of them second-guesses the rules. The two numbers never coincide (the actions see to
it), so the order only saves a query: ours are most of what is typed.
"""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Subscriber
from .validators import LEGACY_ACCOUNT_MAX


def as_account_number(text: str | None) -> str | None:
    """``text`` as it could be either kind of account number: ASCII digits, at most 20, spaces around dropped; None
    otherwise. Nothing else is normalised: "007315" and "7315" are two numbers."""
    number = (text or "").strip()
    if not number or len(number) > LEGACY_ACCOUNT_MAX or not number.isascii() or not number.isdigit():
        return None
    return number


def subscriber_by_account(
    number: str | None, *, queryset: QuerySet[Subscriber] | None = None, lock: bool = False
) -> Subscriber | None:
    """The subscriber whose account number, or else whose old account number, is exactly ``number``; None when
    nobody's is or ``number`` cannot be one. ``queryset`` narrows it (a staff user's branches, ``select_related``);
    ``lock`` takes the subscriber's row lock (what closing the account takes too)."""
    number = as_account_number(number)
    if number is None:
        return None
    rows = Subscriber.objects.all() if queryset is None else queryset
    if lock:
        rows = rows.select_for_update(of=("self",))
    # Each number is unique: no ORDER BY to compile or run (``first()`` would add one), on the terminals' hot path.
    for field in ("account_number", "legacy_account"):
        found = next(iter(rows.filter(**{field: number}).order_by()[:1]), None)
        if found is not None:
            return found
    return None
