"""What the payments actions share: access checks, reasons, locking a payment."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from abonent.core.deadlines import db_deadline
from abonent.staff.permissions import Perm, check_branch, check_perm

from ..models import Payment


def check(acting_user, perm: Perm, subscriber=None, *, payment=None) -> None:
    """``perm``, and the branch of ``subscriber`` and of ``payment``'s subscriber. A payment of nobody (suspense
    for an unknown account) belongs to no branch: the suspense queue is the whole ISP's, whoever finds the payer
    assigns it (to a subscriber of their branch, which is checked)."""
    if acting_user is None:
        return  # the system (a channel's notice, the worker)
    check_perm(acting_user, perm)
    if subscriber is not None:
        check_branch(acting_user, subscriber.branch_id)
    if payment is not None and payment.subscriber_id is not None:
        check_branch(acting_user, payment.subscriber.branch_id)


def deadline() -> None:
    """The payment's database waits end after their deadlines (settings), inside the current transaction, unless
    the caller set one already (a terminal's view: the agent's deadline, ``ABONENT_AGENT_DB_TIMEOUT``)."""
    db_deadline(
        lock=settings.ABONENT_PAYMENTS_LOCK_TIMEOUT,
        statement=settings.ABONENT_PAYMENTS_STATEMENT_TIMEOUT,
        unless_set=True,
    )


def reason_of(reason: str, field: str = "reason") -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({field: ValidationError(_("Give a reason."), code="required")})
    return reason[:500]


def lock(payment: Payment) -> Payment:
    # The subscriber is read after the lock, not joined in it: FOR UPDATE cannot take the nullable side of a join.
    locked = Payment.objects.select_for_update().get(pk=payment.pk)
    locked.subscriber  # noqa: B018 - loaded now, for the access checks
    return locked
