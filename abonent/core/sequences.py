from __future__ import annotations

from django.db import transaction
from django.db.models import F

from .models import Sequence


def allocate(name: str, count: int = 1, *, start: int = 1) -> range:
    """Reserve ``count`` consecutive values of the named sequence; the first ever value is ``start``."""
    if count < 1:
        raise ValueError("count must be positive")
    with transaction.atomic():
        Sequence.objects.get_or_create(name=name, defaults={"last_value": start - 1})
        # UPDATE ... SET last_value = last_value + n takes the row lock for the rest of the transaction.
        Sequence.objects.filter(name=name).update(last_value=F("last_value") + count)
        last = Sequence.objects.values_list("last_value", flat=True).get(name=name)
    return range(last - count + 1, last + 1)


def ensure_at_least(name: str, value: int) -> None:
    """Move the counter past a value taken by hand (an imported account number), so it is never handed out."""
    with transaction.atomic():
        Sequence.objects.get_or_create(name=name, defaults={"last_value": value})
        Sequence.objects.filter(name=name, last_value__lt=value).update(last_value=value)


def hold(name: str, *, start: int = 1) -> None:
    """Take the named sequence's row lock for the rest of the caller's transaction without moving it: a writer of a
    value that must never meet one ``allocate`` hands out serialises with it (the subscribers' old account numbers,
    docs/adr/0019)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("hold() outside a transaction would release the lock at once")
    Sequence.objects.get_or_create(name=name, defaults={"last_value": start - 1})
    Sequence.objects.filter(name=name).update(last_value=F("last_value"))
