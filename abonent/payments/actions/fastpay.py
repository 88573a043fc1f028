"""A payment agent's ``pay`` in one database round trip (PostgreSQL): the ``payments_terminal_pay`` function of
migrations 0008 and 0010 does what ``intake.do_receive_payment`` does for a terminal payment, writing the same rows.

``receive_terminal_payment`` returns None when the fast path does not apply, and the caller goes through the intake
as before: SQLite, ``ABONENT_AGENT_FAST_PATH`` off, a channel whose payments need our own fiscal receipt
(``ABONENT_FISCAL_OWN_AGENT_CHANNELS``: the receipt is queued by the intake's event), and whatever the function
leaves to the intake (an open promised payment on the account, whose repayment is billing's; the channel's cash or
the suspense ledger account not created yet).

Events: the intake emits ``payments.payment_received``, whose one consumer is the income receipt queue; for a
terminal payment of an agent that fiscalizes itself that consumer only records a ``not_required`` receipt, and the
function writes that very row in the same transaction, so the fast path does not emit it (a new consumer of the
event must be added here, or better, be a row the function writes). The subscriber's "payment received" message is
such a row: the function puts the ``payment_received`` notice into the payments outbox (``PaymentNotice``, migration
0010) as the intake's ``queue_received_notice`` does, and the notifications app drains it every minute, off the
request. ``billing.balance_changed`` is emitted as the intake does (it costs nothing without a consumer).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from abonent.core import clock, events
from abonent.core.middleware import current_request_meta
from abonent.core.money import BALANCE_LIMIT

from .. import fiscal
from ..channels import is_gateway
from ..fiscal.policy import receipt_needed
from ..models import Payment, PaymentMethod

__all__ = ["FastPay", "fast_path_enabled", "receive_terminal_payment"]

SQL = "SELECT r.*{probes} FROM payments_terminal_pay(" + ", ".join(["%s"] * 19) + ") r"

# Columns other apps add to the fast path's one statement (``register_probe``): what a listener of the payment's
# events needs to know of the subscriber, read in the same round trip instead of one query of its own per payment
# (dunning's "is this subscriber anything but active?" cost the terminal benchmark a fifth of its rate).
_probes: dict[str, str] = {}


def register_probe(name: str, expression: str) -> None:
    """``expression``: SQL over ``r.payment_subscriber_id``, the paying subscriber (NULL for suspense). Its value
    reaches the ``billing.balance_changed`` listeners as ``probes[name]``."""
    _probes[name] = expression


def _sql() -> str:
    return SQL.format(probes="".join(f", ({expression})" for expression in _probes.values()))


@dataclass(frozen=True)
class FastPay:
    """``outcome``: ``created``, ``repeat``, ``conflict`` (a repeat with another sum or account, recorded), or
    ``no_account`` / ``closed`` (refused, nothing written). The payment's fields are set for the first three."""

    outcome: str
    payment_id: int | None = None
    amount: Decimal | None = None
    created_at: dt.datetime | None = None
    status: str = ""


class Fallback(Exception):
    """The function left the payment to the intake (within ``first_try``)."""


# "auto": a fallback returns None (the caller goes on to the intake in its transaction); "first": it raises
# Fallback (the agents' view called the function in autocommit, and retries in a transaction); "intake": the
# function is not called (that retry).
_mode: contextvars.ContextVar[str] = contextvars.ContextVar("abonent_fastpay_mode", default="auto")


@contextlib.contextmanager
def _in_mode(mode: str):
    token = _mode.set(mode)
    try:
        yield
    finally:
        _mode.reset(token)


def first_try():
    return _in_mode("first")


def intake_only():
    return _in_mode("intake")


def fast_path_enabled(channel: str) -> bool:
    """Whether a ``pay`` of ``channel`` goes the fast path (module doc)."""
    return connection.vendor == "postgresql" and settings.ABONENT_AGENT_FAST_PATH and _receipt(channel) is not None


def agent_timeout() -> str:
    return str(max(1, int(settings.ABONENT_AGENT_DB_TIMEOUT * 1000)))


class DeadlinePassed(DatabaseError):
    """The agent's deadline was spent before the intake could start (answered 1, as a timeout is)."""


def agent_deadline(*, spent: float = 0.0) -> None:
    """Session timeouts for this transaction only (SET LOCAL): a stuck statement or lock wait is cancelled by the
    server and raises, which the agents' view answers 1. ``spent``: seconds of the request's budget already used
    (by the fast path's try before a fallback), so the whole request stays within ``ABONENT_AGENT_DB_TIMEOUT``.
    The marker ``abonent.deadline`` keeps the intake's own deadline (``payments.actions.common.deadline``) from
    replacing this one. SQLite waits at most its connection's busy timeout."""
    left = settings.ABONENT_AGENT_DB_TIMEOUT - spent
    if left < 0.05:
        raise DeadlinePassed("the agent's deadline was spent before the intake")
    if connection.vendor == "postgresql":
        ms = str(max(1, int(left * 1000)))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true), "
                "set_config('abonent.deadline', 'on', true)",
                [ms, ms],
            )


def _receipt(channel: str) -> tuple[str, str] | None:
    """(reason, error) of the ``not_required`` receipt the event handler would record; None when a receipt is due
    (or its provider cannot say): then the intake and its event do it. Remembered per channel, settings and
    language (twice a request on the hot path)."""
    key = (
        channel,
        tuple(settings.ABONENT_FISCAL_SKIP_CHANNELS),
        tuple(settings.ABONENT_FISCAL_OWN_AGENT_CHANNELS),
        settings.ABONENT_FISCAL_PROVIDER,
        get_language(),
    )
    try:
        return _receipts[key]
    except KeyError:
        pass
    found = _receipt_of(channel)
    if len(_receipts) > 1000:
        _receipts.clear()
    _receipts[key] = found
    return found


_receipts: dict[tuple, tuple[str, str] | None] = {}


def _receipt_of(channel: str) -> tuple[str, str] | None:
    needed, why = receipt_needed(Payment(channel=channel, method=PaymentMethod.TERMINAL))
    if needed:
        return None
    try:
        issuing = fiscal.provider().issues_receipts
    except fiscal.FiscalError:
        return None
    if not issuing:
        why = _("No cash register is configured.")
    return str(why), ""


def receive_terminal_payment(
    *, channel: str, external_id: str, amount: Decimal, account: str, received_at, closed_to_suspense: bool
) -> FastPay | None:
    """Take an agent's ``pay`` in (parameters already checked by ``protocols.osmp``); None: use the intake. The
    agent's deadline is in force when it returns: the view set it when ``fast_path_enabled`` is false, the function
    sets it otherwise, also when it leaves the payment to the intake."""
    if connection.vendor != "postgresql" or not settings.ABONENT_AGENT_FAST_PATH or _mode.get() == "intake":
        return None
    receipt = _receipt(channel)
    if receipt is None:
        return None
    now = clock.now()
    received_at = received_at or now
    meta = current_request_meta()
    source = f"clearing:{channel}" if is_gateway(channel) else f"cash:{channel}"
    with connection.cursor() as cursor:
        cursor.execute(
            _sql(),
            [
                channel,
                external_id,
                amount,
                account,
                closed_to_suspense,
                received_at,
                now,
                timezone.localdate(received_at),
                source,
                _("Payment %(id)s") % {"id": external_id},
                (_("Suspense: %(ref)s") % {"ref": account})[:500],
                BALANCE_LIMIT,
                (settings.ABONENT_FISCAL_PROVIDER or "none").strip().lower(),
                receipt[0],
                receipt[1],
                (settings.ABONENT_FISCAL_ID_PREFIX or "")[:32],
                meta.get("ip"),
                meta.get("request_id", ""),
                agent_timeout(),
            ],
        )
        outcome, payment_id, paid, created_at, status, subscriber_id, *probed = cursor.fetchone()
    if outcome == "fallback":
        if _mode.get() == "first":
            raise Fallback
        return None  # the function set the deadline
    if outcome == "created" and status == "credited":
        # What do_post_payment announces; payments.payment_received is answered by the function (module doc).
        events.emit(
            "billing.balance_changed",
            subscriber_id=subscriber_id,
            credit=True,
            probes=dict(zip(_probes, probed, strict=True)),
        )
    return FastPay(outcome, payment_id, paid, created_at, status or "")
