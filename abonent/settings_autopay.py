"""Autopay's settings (docs/payments.md, "Autopay"): when saved methods are debited, how declines are retried, the
amount bounds. Every value comes from the environment; ``settings.py`` imports them all."""

import datetime as dt
import os
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ImproperlyConfigured

from abonent.settings_env import at_least_one as _at_least_one
from abonent.settings_env import env_list as _list


# Autopay (docs/payments.md, "Autopay"). A soft decline (insufficient funds, a limit) is retried this many days
# after the debit day, each a separate try with its own notice; a hard one is not retried.
def _autopay_retry_days() -> list[int]:
    raw = os.environ.get("ABONENT_AUTOPAY_RETRY_DAYS", "1,3,5")
    try:
        days = [int(item) for item in raw.split(",") if item.strip()]
    except ValueError:
        days = [0]
    if any(d < 1 or d > 27 for d in days) or days != sorted(set(days)):
        raise ImproperlyConfigured(
            f"ABONENT_AUTOPAY_RETRY_DAYS must be increasing whole days from 1 to 27, comma-separated, not {raw!r}"
        )
    return days


ABONENT_AUTOPAY_RETRY_DAYS = _autopay_retry_days()
ABONENT_AUTOPAY_REMINDER_DAYS = _at_least_one("ABONENT_AUTOPAY_REMINDER_DAYS", 3)


# The local time the daily autopay run starts (banks decline fewer debits by day than at midnight).
def _time_of_day(name: str, default: str) -> dt.time:
    raw = os.environ.get(name, default)
    try:
        return dt.time.fromisoformat(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a time of day such as 10:00, not {raw!r}") from None


ABONENT_AUTOPAY_RUN_AT = _time_of_day("ABONENT_AUTOPAY_RUN_AT", "10:00")


# Amount bounds when a subscriber's plan names none: the least worth debiting, and the most ever debited at once.
def _autopay_amount(name: str, default: str) -> str:
    raw = os.environ.get(name, default).strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0 or value > 1_000_000 or value != value.quantize(Decimal("0.01")):
        raise ImproperlyConfigured(f"{name} must be an amount such as 100.00, from 0 to 1000000, not {raw!r}")
    return raw


ABONENT_AUTOPAY_MIN_AMOUNT = _autopay_amount("ABONENT_AUTOPAY_MIN_AMOUNT", "100.00")
ABONENT_AUTOPAY_MAX_AMOUNT = _autopay_amount("ABONENT_AUTOPAY_MAX_AMOUNT", "15000.00")
if Decimal(ABONENT_AUTOPAY_MAX_AMOUNT) < max(Decimal(ABONENT_AUTOPAY_MIN_AMOUNT), Decimal("1.00")):
    raise ImproperlyConfigured("ABONENT_AUTOPAY_MAX_AMOUNT must be at least 1.00 and ABONENT_AUTOPAY_MIN_AMOUNT")


# "When the balance runs short": the debit comes this many days before the charge the balance will not cover.
def _autopay_days(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 10:
        raise ImproperlyConfigured(f"{name} must be a whole number of days from 0 to 10, not {raw!r}")
    return value


ABONENT_AUTOPAY_LEAD_DAYS = _autopay_days("ABONENT_AUTOPAY_LEAD_DAYS", 1)
# A debit day the worker missed (it was down) is still debited this many days late; later, the cycle is skipped.
ABONENT_AUTOPAY_CATCH_UP_DAYS = _autopay_days("ABONENT_AUTOPAY_CATCH_UP_DAYS", 2)
# Hours a debit whose outcome is unknown (a timeout) may be re-sent with its key; YooKassa keeps a key 24 hours.
# Past it the try is marked failed for staff to check at the provider, never sent with a new key.
ABONENT_AUTOPAY_KEY_HOURS = _at_least_one("ABONENT_AUTOPAY_KEY_HOURS", 23)
# Decline codes that mean the method is gone for good: it is unlinked and autopay turned off (YooKassa's
# cancellation_details.reason values).
ABONENT_AUTOPAY_UNLINK_CODES = _list(
    "ABONENT_AUTOPAY_UNLINK_CODES", "permission_revoked,card_expired,payment_method_restricted"
)
