"""What the payments actions check on what a channel or a person sent: amounts in whole kopecks, ids, keys,
channels, moments, free text. Each refusal is a ValidationError on its field, raised before anything is written."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from abonent.billing.actions.common import _positive_amount
from abonent.core.money import KOPECK, to_decimal

# ``cash``, ``bank``, ``manual``, ``yookassa``, ``agent:<code>``: no ``|``, which separates the channel from the
# payment's id in its ledger key, and one ``:`` at most.
_CHANNEL = re.compile(r"[a-z0-9_.-]{1,30}(:[a-z0-9_.-]{1,30})?")
MAX_EXTERNAL_ID = 100
MAX_KEY = 200


def _field_error(field: str, message: str, code: str) -> ValidationError:
    return ValidationError({field: ValidationError(message, code=code)})


def payment_amount(value, field: str = "amount") -> Decimal:
    """A positive amount in whole kopecks. A fraction of a kopeck is refused, not rounded: no channel pays half a
    kopeck, and rounding would credit money that never arrived (or drop some that did)."""
    try:
        exact = to_decimal(value)
        fractional = exact.is_finite() and exact != exact.quantize(KOPECK)
    except (ValueError, ArithmeticError):
        fractional = False  # _positive_amount below says what is wrong with it
    if fractional:
        raise _field_error(field, _("An amount is in whole kopecks (two decimal places)."), "amount_fraction")
    return _positive_amount(value, field)


def channel_of(channel: str) -> str:
    if not isinstance(channel, str) or not _CHANNEL.fullmatch(channel):
        raise _field_error("channel", _("Unknown payment channel."), "channel_invalid")
    return channel


def external_id_of(value) -> str:
    text = str(value if value is not None else "").strip()
    if not text:
        raise _field_error("external_id", _("The payment has no id."), "required")
    if len(text) > MAX_EXTERNAL_ID or not text.isprintable():
        raise _field_error(
            "external_id",
            _("A payment id is at most %(n)d printable characters.") % {"n": MAX_EXTERNAL_ID},
            "external_id_invalid",
        )
    return text


def key_of(value, field: str = "key") -> str:
    text = str(value if value is not None else "").strip()
    if not text or len(text) > MAX_KEY - 10 or not text.isprintable():
        raise _field_error(
            field,
            _("An idempotency key is 1 to %(n)d printable characters.") % {"n": MAX_KEY - 10},
            "key_invalid",
        )
    return text


def moment_of(value: dt.datetime | None, field: str = "received_at") -> dt.datetime | None:
    if value is not None and (not isinstance(value, dt.datetime) or timezone.is_naive(value)):
        raise _field_error(field, _("A moment needs its time zone."), "datetime_naive")
    return value


def text_of(value, length: int) -> str:
    """Free text as received, cut to the column. Control characters (a NUL, which PostgreSQL's text refuses)
    become U+FFFD rather than vanish: "10\\x000" must not turn into the account number "100"."""
    text = "".join(c if c.isprintable() or c in " " else "\ufffd" for c in str(value or ""))
    return text.strip()[:length]


def json_of(value):
    """``details`` as received, with strings cleaned as ``text_of`` does (and keys too)."""
    if isinstance(value, dict):
        return {text_of(k, 200): json_of(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_of(v) for v in value]
    if isinstance(value, str):
        return text_of(value, 2000)
    return value
