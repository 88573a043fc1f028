"""Autopay settings: turned on with a saved method (the subscriber's consent is the method's), changed, turned off;
and the outbox of notices autopay queues for the notifications app.

Every action here is atomic, checks access (staff need the subscription permission; ``acting_user`` None is
the subscriber in the portal or the system), validates everything before writing, writes an audit row, and
queues its notices in the same transaction, so a notice exists exactly when what it tells happened.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from abonent.core import audit, clock, events
from abonent.core.money import AMOUNT_LIMIT, MoneyError, quantize
from abonent.staff.permissions import Perm

from ..models import (
    ATTEMPT_OPEN,
    AttemptStatus,
    AutopayAmount,
    AutopayAttempt,
    AutopayMode,
    AutopayPlan,
    NoticeKind,
    PaymentNotice,
    SavedMethod,
)
from .common import check
from .methods import do_unlink_method


def queue_notice(kind: str, subscriber_id: int, dedup_key: str, **payload) -> None:
    """Put a notice in the outbox unless one with ``dedup_key`` is there already (a rerun, a second worker)."""
    clean = {
        k: (str(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, dt.date) else v)
        for k, v in payload.items()
    }
    PaymentNotice.objects.bulk_create(
        [
            PaymentNotice(
                kind=kind, subscriber_id=subscriber_id, payload=clean, dedup_key=dedup_key[:120], created_at=clock.now()
            )
        ],
        ignore_conflicts=True,
    )


def do_mark_notices_delivered(notice_ids, *, at=None) -> int:
    """The notifications app took these notices over (sent them, or queued them in its own outbox with retries).
    Marks each once; returns how many were still undelivered. A notice marked twice keeps its first moment."""
    return PaymentNotice.objects.filter(pk__in=list(notice_ids), delivered_at__isnull=True).update(
        delivered_at=at or clock.now()
    )


def default_min_amount() -> Decimal:
    return quantize(settings.ABONENT_AUTOPAY_MIN_AMOUNT)


def default_max_amount() -> Decimal:
    return quantize(settings.ABONENT_AUTOPAY_MAX_AMOUNT)


def _amount(value, field: str, *, required: bool) -> Decimal | None:
    if value in (None, ""):
        if required:
            raise ValidationError({field: ValidationError(_("Give an amount."), code="required")})
        return None
    try:
        amount = quantize(value)
    except (MoneyError, ValueError, ArithmeticError):
        raise ValidationError({field: ValidationError(_("Give an amount."), code="invalid")}) from None
    if amount <= 0 or amount > AMOUNT_LIMIT:
        raise ValidationError({field: ValidationError(_("The amount must be positive."), code="amount_not_positive")})
    return amount


@transaction.atomic
def do_enable_autopay(
    subscriber,
    *,
    method: SavedMethod,
    acting_user,
    mode: str = AutopayMode.DAY_OF_MONTH,
    debit_day: int | None = None,
    amount_mode: str = AutopayAmount.COVER,
    fixed_amount=None,
    min_amount=None,
    max_amount=None,
) -> AutopayPlan:
    """Turn autopay on (or change it) for ``subscriber`` with ``method``, one of their own active saved methods.

    ``debit_day`` (1–31, a day past a month's end is its last day) is needed on a day of the month; the amount is
    what covers the next month's fees (at least ``min_amount``) or ``fixed_amount``; never more than
    ``max_amount`` at once (the setting ``ABONENT_AUTOPAY_MAX_AMOUNT`` when not given).
    """
    check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscriber)
    errors = {}
    method = SavedMethod.objects.select_for_update().filter(pk=getattr(method, "pk", method)).first()
    if method is None or method.subscriber_id != subscriber.pk:
        errors["method"] = ValidationError(_("Choose one of the subscriber's payment methods."), code="method_foreign")
    elif not method.active:
        errors["method"] = ValidationError(_("This payment method was unlinked."), code="method_unlinked")
    if mode not in AutopayMode.values:
        errors["mode"] = ValidationError(_("Choose when to debit."), code="invalid_choice")
    if amount_mode not in AutopayAmount.values:
        errors["amount_mode"] = ValidationError(_("Choose the amount."), code="invalid_choice")
    if mode == AutopayMode.DAY_OF_MONTH and not (isinstance(debit_day, int) and 1 <= debit_day <= 31):
        errors["debit_day"] = ValidationError(_("Give a day of the month from 1 to 31."), code="debit_day_invalid")
    amounts = {}
    for field, value, required in (
        ("fixed_amount", fixed_amount, amount_mode == AutopayAmount.FIXED),
        ("min_amount", min_amount, False),
        ("max_amount", max_amount, False),
    ):
        try:
            amounts[field] = _amount(value, field, required=required)
        except ValidationError as exc:
            errors.update(exc.error_dict)
    if not errors:
        cap = amounts["max_amount"] or default_max_amount()
        if amount_mode == AutopayAmount.FIXED and amounts["fixed_amount"] > cap:
            errors["fixed_amount"] = ValidationError(
                _("The fixed amount is more than the most autopay may debit at once."), code="amount_over_cap"
            )
        if (amounts["min_amount"] or Decimal(0)) > cap:
            errors["min_amount"] = ValidationError(
                _("The least amount is more than the most autopay may debit at once."), code="amount_over_cap"
            )
    if errors:
        raise ValidationError(errors)
    now = clock.now()
    values = {
        "method": method,
        "enabled": True,
        "mode": mode,
        "debit_day": debit_day if mode == AutopayMode.DAY_OF_MONTH else 1,
        "amount_mode": amount_mode,
        "fixed_amount": amounts["fixed_amount"] if amount_mode == AutopayAmount.FIXED else None,
        "min_amount": amounts["min_amount"] if amounts["min_amount"] is not None else default_min_amount(),
        "max_amount": amounts["max_amount"],
        "updated_by": acting_user if getattr(acting_user, "pk", None) else None,
        "updated_at": now,
    }
    plan = AutopayPlan.objects.select_for_update().filter(subscriber_id=subscriber.pk).first()
    before = None
    if plan is None:
        plan = AutopayPlan.objects.create(subscriber=subscriber, enabled_at=now, **values)
    else:
        before = audit.snapshot(plan, ["method", "enabled", "mode", "debit_day", "amount_mode", "fixed_amount"])
        if not plan.enabled:
            plan.enabled_at, plan.disabled_at, plan.stop_reason = now, None, ""
        elif plan.method_id != method.pk:
            # Tries already scheduled with the old method are not charged with it: the next run starts anew.
            _cancel_open(plan, reason="method changed")
        for name, value in values.items():
            setattr(plan, name, value)
        plan.save()
    audit.record(
        actor=acting_user,
        action="payments.autopay_enabled",
        obj=plan,
        subscriber_id=subscriber.pk,
        before=before,
        after={
            "method": method.title or method.method_id,
            "mode": mode,
            "debit_day": plan.debit_day,
            "amount_mode": amount_mode,
            "fixed_amount": plan.fixed_amount,
            "max_amount": plan.max_amount,
        },
    )
    events.emit("payments.autopay_enabled", plan_id=plan.pk, subscriber_id=subscriber.pk)
    return plan


@transaction.atomic
def do_disable_autopay(subscriber, *, acting_user, reason: str = "") -> AutopayPlan | None:
    """Turn autopay off; tries not yet sent to the gateway are cancelled (one already sent is still followed to
    its outcome: the money may have been taken). The subscriber is told."""
    check(acting_user, Perm.SUBSCRIPTION_MANAGE, subscriber)
    plan = AutopayPlan.objects.select_for_update().filter(subscriber_id=subscriber.pk).first()
    if plan is None or not plan.enabled:
        return plan
    stop_autopay(plan, reason=(reason or "").strip()[:200] or _("turned off"), acting_user=acting_user)
    return plan


def stop_autopay(plan: AutopayPlan, *, reason: str, acting_user=None) -> None:
    """Turn off ``plan`` (locked by the caller), cancel its scheduled tries, tell the subscriber."""
    now = clock.now()
    plan.enabled, plan.disabled_at, plan.stop_reason = False, now, reason[:200]
    plan.updated_by = acting_user if getattr(acting_user, "pk", None) else None
    plan.updated_at = now
    plan.save(update_fields=["enabled", "disabled_at", "stop_reason", "updated_by", "updated_at"])
    _cancel_open(plan, reason=reason)
    queue_notice(
        NoticeKind.AUTOPAY_STOPPED,
        plan.subscriber_id,
        f"autopay_stopped:{plan.pk}:{now.isoformat()}",
        reason=reason,
        method=str(plan.method),
    )
    audit.record(
        actor=acting_user, action="payments.autopay_disabled", obj=plan, subscriber_id=plan.subscriber_id, reason=reason
    )
    events.emit("payments.autopay_disabled", plan_id=plan.pk, subscriber_id=plan.subscriber_id)


def _cancel_open(plan: AutopayPlan, *, reason: str) -> None:
    AutopayAttempt.objects.filter(plan=plan, status=AttemptStatus.SCHEDULED).update(
        status=AttemptStatus.CANCELLED, error=reason[:300], finished_at=clock.now()
    )


def stop_autopay_for_method(method: SavedMethod, *, reason: str, acting_user=None) -> None:
    """After ``method`` was unlinked: tell the subscriber, and turn off autopay that used it. Safe to repeat."""
    method = SavedMethod.objects.get(pk=method.pk)
    if method.active:
        return
    queue_notice(
        NoticeKind.METHOD_UNLINKED,
        method.subscriber_id,
        f"method_unlinked:{method.pk}:{method.unlinked_at.isoformat()}",
        method=str(method),
        reason=method.unlink_reason,
    )
    plan = AutopayPlan.objects.select_for_update().filter(method=method, enabled=True).first()
    if plan is not None:
        stop_autopay(
            plan, reason=reason or method.unlink_reason or _("the payment method was unlinked"), acting_user=acting_user
        )


@transaction.atomic
def do_unlink_method_and_stop_autopay(method: SavedMethod, *, acting_user, reason: str = "") -> SavedMethod:
    """Unlink a saved method (``do_unlink_method``) and, in the same transaction, turn off the autopay that used it
    and queue the notices."""
    method = do_unlink_method(method, acting_user=acting_user, reason=reason)
    stop_autopay_for_method(method, reason=reason, acting_user=acting_user)
    return method


def open_attempts(plan: AutopayPlan):
    return AutopayAttempt.objects.filter(plan=plan, status__in=ATTEMPT_OPEN)
