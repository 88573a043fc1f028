"""The daily autopay run: reminders before the debit day, the debits, their retries, and following up debits whose
outcome was not known.

Exactly once, however often it runs and on however many workers:

- a try is a row unique by ``(subscriber, due_on, number)``; whoever inserts it schedules it, the others get an
  ``IntegrityError`` and move on;
- a scheduled try is claimed under a row lock (``SKIP LOCKED``) by moving it to ``processing`` and committing
  before the gateway is called, so only one worker ever sends it; the balance is read right then, and a subscriber
  who has paid enough meanwhile is not debited;
- the gateway gets the try's own key (``autopay:<id>``): a try whose answer was lost (a timeout, a crash) is
  sent again with the same key, or looked up by the provider's payment id, and the provider answers with the same
  payment (YooKassa keeps a key 24 hours: past ``ABONENT_AUTOPAY_KEY_HOURS`` an unknown outcome is handed to staff,
  never sent with a new key);
- the money is credited through the intake (``do_receive_payment``), once per ``(gateway, payment id)``, so the
  gateway's own notice of the same payment credits nothing more;
- every notice has a dedup key derived from the try or the cycle.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from abonent.billing.calculations import add_months
from abonent.billing.selectors import get_balance
from abonent.core import audit, clock
from abonent.core.money import ZERO

from .. import calculations as calc
from .. import gateways
from ..models import (
    ATTEMPT_OPEN,
    AttemptStatus,
    AutopayAmount,
    AutopayAttempt,
    AutopayMode,
    AutopayPlan,
    NoticeKind,
    PaymentMethod,
)
from ..selectors.autopay import fees_between
from .autopay import default_max_amount, queue_notice, stop_autopay, stop_autopay_for_method
from .intake import do_receive_payment
from .methods import do_unlink_method

logger = logging.getLogger(__name__)

# A try sent this recently is still in its sender's hands (the gateway call has its own shorter deadline).
IN_FLIGHT = dt.timedelta(minutes=2)


def do_run_autopay(today: dt.date | None = None) -> dict:
    """The day's autopay: follow up tries in flight, remind, schedule the debits due, send the tries due. Returns
    counts by outcome. A plan that fails is logged and left for the next run; the others go on."""
    today = today or clock.today()
    counts: Counter = Counter()
    counts.update(do_sync_autopay())
    plans = AutopayPlan.objects.filter(enabled=True).filter(
        Q(mode=AutopayMode.LOW_BALANCE) | Q(mode=AutopayMode.DAY_OF_MONTH, debit_day__in=_days_in_play(today))
    )
    for plan_id in plans.order_by("pk").values_list("pk", flat=True).iterator():
        try:
            counts[_plan_day(plan_id, today)] += 1
        except Exception:
            logger.exception("autopay plan %s failed on %s", plan_id, today)
            counts["errors"] += 1
    due = AutopayAttempt.objects.filter(status=AttemptStatus.SCHEDULED, scheduled_for__lte=today).order_by("pk")
    for attempt_id in due.values_list("pk", flat=True):
        try:
            counts[_process(attempt_id, today)] += 1
        except Exception:
            logger.exception("autopay attempt %s failed", attempt_id)
            counts["errors"] += 1
    counts.pop("", None)
    return dict(counts)


def _days_in_play(today: dt.date) -> set[int]:
    """The debit days a day-of-month plan can have for today to matter: a reminder ahead, a debit today, a missed one
    caught up. A day past a month's end is that month's last day, so the last day brings the days after it."""
    days = set()
    for offset in range(-settings.ABONENT_AUTOPAY_CATCH_UP_DAYS, settings.ABONENT_AUTOPAY_REMINDER_DAYS + 1):
        day = today + dt.timedelta(days=offset)
        days.add(day.day)
        if (day + dt.timedelta(days=1)).day == 1:
            days.update(range(day.day + 1, 32))
    return days


def do_sync_autopay() -> dict:
    """Follow up tries sent whose outcome is not known: the provider's payment by id when we have it, else the same
    request with the same key. Runs every few minutes and at the start of the daily run."""
    counts: Counter = Counter()
    moment = clock.now()
    processing = AutopayAttempt.objects.filter(status=AttemptStatus.PROCESSING, sent_at__lt=moment - IN_FLIGHT)
    for attempt in processing.select_related("method").order_by("pk"):
        if attempt.checked_at and attempt.checked_at > moment - IN_FLIGHT:
            continue
        try:
            counts[_follow_up(attempt, moment)] += 1
        except Exception:
            logger.exception("autopay attempt %s follow-up failed", attempt.pk)
            counts["errors"] += 1
    return dict(counts)


# --- the plan's day: reminder, the debit scheduled ------------------------------------------------------------


def _plan_day(plan_id: int, today: dt.date) -> str:
    plan = AutopayPlan.objects.select_related("method", "subscriber").get(pk=plan_id)
    if not plan.method.active:
        with transaction.atomic():
            stop_autopay_for_method(plan.method, reason=_("the payment method was unlinked"))
        return "stopped"
    if plan.subscriber.is_closed:
        with transaction.atomic():
            locked = AutopayPlan.objects.select_for_update().get(pk=plan.pk)
            if locked.enabled:
                stop_autopay(locked, reason=_("the account was closed"))
        return "stopped"
    if AutopayAttempt.objects.filter(subscriber_id=plan.subscriber_id, status__in=ATTEMPT_OPEN).exists():
        return ""  # a cycle is under way: its tries run below
    if plan.mode == AutopayMode.DAY_OF_MONTH:
        return _day_of_month(plan, today)
    return _low_balance(plan, today)


def _day_of_month(plan: AutopayPlan, today: dt.date) -> str:
    due_on = calc.cycle_due_on(today, plan.debit_day)
    previous = add_months(due_on, -1, anchor_day=plan.debit_day)
    if (
        today < due_on
        and (today - previous).days <= settings.ABONENT_AUTOPAY_CATCH_UP_DAYS
        and timezone.localdate(plan.enabled_at) <= previous
        and not AutopayAttempt.objects.filter(subscriber_id=plan.subscriber_id, due_on=previous).exists()
    ):
        # Last month's debit day was missed and is still within the catch-up days: a debit day at a month's end
        # (the 31st) is caught up in the next month like any other.
        return "scheduled" if _schedule(plan, due_on=previous, number=1, on=today) else ""
    if today < due_on:
        return _remind(plan, due_on, today)
    following = calc.next_cycle_due_on(due_on, plan.debit_day)
    if (following - today).days <= settings.ABONENT_AUTOPAY_REMINDER_DAYS:
        return _remind(plan, following, today)
    late = (today - due_on).days
    if late > settings.ABONENT_AUTOPAY_CATCH_UP_DAYS or timezone.localdate(plan.enabled_at) > due_on:
        return ""  # missed for too long, or turned on after the debit day: the next month's is the first
    return "scheduled" if _schedule(plan, due_on=due_on, number=1, on=today) else ""


def _low_balance(plan: AutopayPlan, today: dt.date) -> str:
    horizon = today + dt.timedelta(days=settings.ABONENT_AUTOPAY_REMINDER_DAYS + settings.ABONENT_AUTOPAY_LEAD_DAYS + 1)
    debit_on = calc.low_balance_debit_day(
        get_balance(plan.subscriber).available,
        fees_between(plan.subscriber_id, today, horizon),
        today,
        lead_days=settings.ABONENT_AUTOPAY_LEAD_DAYS,
    )
    if debit_on is None:
        return ""
    if debit_on > today:
        return _remind(plan, debit_on, today)
    # After a cycle that failed, wait out its retries before starting another: a declined card is not asked daily.
    cooldown = today - dt.timedelta(days=max(settings.ABONENT_AUTOPAY_RETRY_DAYS or [0]) + 2)
    if AutopayAttempt.objects.filter(
        subscriber_id=plan.subscriber_id,
        due_on__gt=cooldown,
        status__in=[AttemptStatus.DECLINED, AttemptStatus.FAILED],
    ).exists():
        return ""
    # A hard decline (card blocked, fraud suspected...) is not retried: the next cycle is a month later, as for a
    # day-of-month plan, not after the soft-decline cooldown (asking the issuer weekly risks the shop's MID).
    if AutopayAttempt.objects.filter(
        subscriber_id=plan.subscriber_id,
        due_on__gt=add_months(today, -1),
        status=AttemptStatus.DECLINED,
        decline_soft=False,
    ).exists():
        return ""
    return "scheduled" if _schedule(plan, due_on=today, number=1, on=today) else ""


def _remind(plan: AutopayPlan, due_on: dt.date, today: dt.date) -> str:
    if (due_on - today).days > settings.ABONENT_AUTOPAY_REMINDER_DAYS:
        return ""
    amount = amount_for(plan, due_on=due_on, today=today)
    if amount <= 0:
        return ""  # nothing will be debited: no need to warn
    queue_notice(
        NoticeKind.AUTOPAY_REMINDER,
        plan.subscriber_id,
        f"autopay_reminder:{plan.subscriber_id}:{due_on.isoformat()}",
        amount=amount,
        due_on=due_on,
        method=str(plan.method),
    )
    return "reminded"


def window_end(plan: AutopayPlan, due_on: dt.date) -> dt.date:
    """The debit of the cycle due on ``due_on`` covers the fees up to the next cycle."""
    if plan.mode == AutopayMode.DAY_OF_MONTH:
        return calc.next_cycle_due_on(due_on, plan.debit_day)
    return add_months(due_on, 1)


def amount_for(plan: AutopayPlan, *, due_on: dt.date, today: dt.date) -> Decimal:
    """What the cycle due on ``due_on`` debits as of now: zero when the balance already covers the fees up to the
    next cycle."""
    fees = sum((amount for _day, amount in fees_between(plan.subscriber_id, today, window_end(plan, due_on))), ZERO)
    available = get_balance(plan.subscriber).available
    cap = plan.max_amount or default_max_amount()
    cover = calc.cover_amount(fees, available, minimum=plan.min_amount, maximum=cap)
    if plan.amount_mode == AutopayAmount.FIXED:
        return min(plan.fixed_amount, cap) if cover > 0 else ZERO
    return cover


def _schedule(plan: AutopayPlan, *, due_on: dt.date, number: int, on: dt.date) -> AutopayAttempt | None:
    """Insert try ``number`` of the cycle; None when it exists already (a rerun, another worker)."""
    try:
        with transaction.atomic():
            attempt = AutopayAttempt.objects.create(
                plan=plan,
                subscriber_id=plan.subscriber_id,
                method=plan.method,
                due_on=due_on,
                number=number,
                scheduled_for=on,
                provider=plan.method.provider,
                created_at=clock.now(),
            )
            attempt.key = gateways.our_key("autopay", attempt.pk)
            attempt.save(update_fields=["key"])
    except IntegrityError:
        return None
    return attempt


# --- a try: claimed, sent, its outcome applied ------------------------------------------------------------------


def _process(attempt_id: int, today: dt.date) -> str:
    with transaction.atomic():
        attempt = (
            AutopayAttempt.objects.select_for_update(skip_locked=True)
            .filter(pk=attempt_id, status=AttemptStatus.SCHEDULED, scheduled_for__lte=today)
            .first()
        )
        if attempt is None:
            return ""  # another worker has it
        plan = AutopayPlan.objects.select_related("method", "subscriber").get(pk=attempt.plan_id)
        now = clock.now()
        closed = plan.subscriber.is_closed
        if closed or not plan.enabled or not plan.method.active or plan.method_id != attempt.method_id:
            attempt.status, attempt.finished_at = AttemptStatus.CANCELLED, now
            attempt.save(update_fields=["status", "finished_at"])
            return "cancelled"
        amount = amount_for(plan, due_on=attempt.due_on, today=today)
        if amount <= 0:
            attempt.status, attempt.amount, attempt.finished_at = AttemptStatus.SKIPPED, None, now
            attempt.save(update_fields=["status", "amount", "finished_at"])
            return "skipped"
        attempt.status, attempt.amount, attempt.sent_at = AttemptStatus.PROCESSING, amount, now
        attempt.maybe_sent = False  # until a call may have reached the gateway (_apply)
        attempt.save(update_fields=["status", "amount", "sent_at", "maybe_sent"])
        audit.record(
            actor=None,
            action="payments.autopay_sent",
            obj=attempt,
            subscriber_id=attempt.subscriber_id,
            after={"amount": amount, "due_on": attempt.due_on, "try": attempt.number},
        )
    # Committed as processing before the call: a crash from here on leaves a try the follow-up sends again with
    # the same key, never one sent twice with two keys.
    return _send(attempt, plan.method, plan.subscriber.account_number, today)


def _send(attempt: AutopayAttempt, method, account_number: str, today: dt.date) -> str:
    try:
        gateway = gateways.get(attempt.provider)
        result = gateway.charge_saved_method(
            amount=attempt.amount,
            method_id=method.method_id,
            description=_("Autopay, account %(account)s") % {"account": account_number},
            key=attempt.key,
            metadata={"account": account_number, "autopay_attempt": attempt.pk},
        )
    except gateways.GatewayError as exc:
        return _apply(attempt.pk, today, error=exc)
    return _apply(attempt.pk, today, result=result)


def _follow_up(attempt: AutopayAttempt, moment: dt.datetime) -> str:
    today = timezone.localdate(moment)
    if attempt.provider_payment_id:
        try:
            result = gateways.get(attempt.provider).get_payment(attempt.provider_payment_id)
        except gateways.GatewayError as exc:
            return _apply(attempt.pk, today, error=exc)
        return _apply(attempt.pk, today, result=result)
    if attempt.sent_at < moment - dt.timedelta(hours=settings.ABONENT_AUTOPAY_KEY_HOURS):
        # The provider may have forgotten the key: sending again could charge twice. Staff check its cabinet.
        with transaction.atomic():
            locked = AutopayAttempt.objects.select_for_update().get(pk=attempt.pk)
            if locked.status != AttemptStatus.PROCESSING:
                return ""
            locked.status, locked.finished_at = AttemptStatus.FAILED, moment
            locked.error = _("No answer from the gateway; check the payment in its cabinet.")[:300]
            locked.save(update_fields=["status", "finished_at", "error"])
            audit.record(actor=None, action="payments.autopay_unknown", obj=locked, subscriber_id=locked.subscriber_id)
        return "failed"
    with transaction.atomic():
        locked = AutopayAttempt.objects.select_for_update().get(pk=attempt.pk)
        if locked.status != AttemptStatus.PROCESSING:
            return ""
        plan = AutopayPlan.objects.select_related("method", "subscriber").get(pk=locked.plan_id)
        reason = _still_wanted(plan, locked, today)
        if reason:
            return _drop_unanswered(locked, moment, reason)
    return _send(locked, plan.method, plan.subscriber.account_number, today)


def _still_wanted(plan: AutopayPlan, attempt: AutopayAttempt, today: dt.date) -> str:
    """Why a try that never got an answer must not be sent again ("" when it still should be): the method
    unlinked, autopay turned off, the account closed, or the balance no longer short."""
    if plan.subscriber.is_closed:
        return _("the account was closed")
    if not plan.enabled or plan.method_id != attempt.method_id:
        return _("autopay was turned off")
    if not plan.method.active:
        return _("the payment method was unlinked")
    # A try that may have reached the gateway is asked again with its key whatever the balance: the balance may
    # be covered by this very payment (its notice came first), and the same key cannot charge twice.
    if not attempt.maybe_sent and amount_for(plan, due_on=attempt.due_on, today=today) <= 0:
        return _("the balance no longer needs this debit")
    return ""


def _drop_unanswered(attempt: AutopayAttempt, moment: dt.datetime, reason: str) -> str:
    """A try that is no longer wanted: cancelled when the gateway never got it (every call failed to connect),
    else handed to staff (it may have been made; sending again could charge without consent, so it is not)."""
    attempt.finished_at = moment
    if not attempt.maybe_sent:
        # As when a try is claimed: nothing left to debit is "skipped", consent or the plan gone is "cancelled".
        nothing_due = reason == _("the balance no longer needs this debit")
        attempt.status = AttemptStatus.SKIPPED if nothing_due else AttemptStatus.CANCELLED
        attempt.error = reason[:300]
        action = "payments.autopay_cancelled"
    else:
        attempt.status = AttemptStatus.FAILED
        attempt.error = (
            _("Not sent again (%(reason)s); the first call may have reached the gateway: check its cabinet.")
            % {"reason": reason}
        )[:300]
        action = "payments.autopay_unknown"
    attempt.save(update_fields=["status", "finished_at", "error"])
    audit.record(actor=None, action=action, obj=attempt, subscriber_id=attempt.subscriber_id, reason=reason)
    return {AttemptStatus.SKIPPED: "skipped", AttemptStatus.CANCELLED: "cancelled"}.get(attempt.status, "failed")


def _apply(attempt_id: int, today: dt.date, *, result: gateways.GatewayPayment | None = None, error=None) -> str:
    """Record what the gateway answered, once: a second answer for the same try (a follow-up racing the sender)
    finds it no longer processing and changes nothing."""
    with transaction.atomic():
        attempt = AutopayAttempt.objects.select_for_update().get(pk=attempt_id)
        if attempt.status != AttemptStatus.PROCESSING:
            return ""
        attempt.checked_at = clock.now()
        if error is None or error.code != "unreachable":
            # Anything but a failure to connect means the gateway may have the request (a timeout after it acted).
            attempt.maybe_sent = True
            attempt.save(update_fields=["maybe_sent"])
        if isinstance(error, gateways.GatewayDeclined):
            return _declined(attempt, error.code or "declined", error.soft, today)
        if error is not None:
            attempt.error = str(error)[:300]
            if error.retryable:
                attempt.save(update_fields=["checked_at", "error"])
                return "unknown"
            attempt.status, attempt.finished_at = AttemptStatus.FAILED, attempt.checked_at
            attempt.save(update_fields=["checked_at", "error", "status", "finished_at"])
            audit.record(
                actor=None,
                action="payments.autopay_failed",
                obj=attempt,
                subscriber_id=attempt.subscriber_id,
                reason=attempt.error,
            )
            return "failed"
        if result.id:
            attempt.provider_payment_id = result.id[:100]
        if result.status == "succeeded" and result.currency and result.currency != settings.ABONENT_CURRENCY:
            # Money of another currency is never credited as ours: staff settle it with the gateway.
            attempt.status, attempt.finished_at = AttemptStatus.FAILED, attempt.checked_at
            attempt.error = (
                _("Paid in %(currency)s, not %(ours)s: not credited.")
                % {"currency": result.currency, "ours": settings.ABONENT_CURRENCY}
            )[:300]
            attempt.save(update_fields=["checked_at", "provider_payment_id", "status", "finished_at", "error"])
            audit.record(actor=None, action="payments.autopay_failed", obj=attempt, subscriber_id=attempt.subscriber_id)
            logger.error("autopay attempt %s: payment %s in %s not credited", attempt.pk, result.id, result.currency)
            return "failed"
        if result.status == "succeeded":
            return _succeeded(attempt, result)
        if result.status == "canceled":
            return _declined(attempt, result.decline_code or "canceled", result.decline_soft, today)
        attempt.save(update_fields=["checked_at", "provider_payment_id"])  # pending: the follow-up asks again
        return "pending"


def _succeeded(attempt: AutopayAttempt, result: gateways.GatewayPayment) -> str:
    intake = do_receive_payment(
        channel=attempt.provider,
        external_id=result.id,
        amount=result.amount,
        method=PaymentMethod.AUTOPAY,
        subscriber=attempt.subscriber,
        # Dated when the gateway took the money, not when we learnt it (the day's VAT, reports).
        received_at=_captured(result.captured_at),
        memo=_("Autopay %(due)s, try %(n)d") % {"due": attempt.due_on.strftime("%d.%m.%Y"), "n": attempt.number},
        details={"autopay_attempt": attempt.pk},
    )
    attempt.status, attempt.payment, attempt.finished_at = AttemptStatus.SUCCEEDED, intake.payment, clock.now()
    if intake.conflict is not None:
        attempt.error = _("The gateway reported this payment with another amount before.")[:300]
    attempt.save(update_fields=["checked_at", "provider_payment_id", "status", "payment", "finished_at", "error"])
    queue_notice(
        NoticeKind.AUTOPAY_SUCCEEDED,
        attempt.subscriber_id,
        f"autopay_succeeded:{attempt.pk}",
        amount=intake.payment.amount,
        due_on=attempt.due_on,
        method=str(attempt.method),
    )
    audit.record(
        actor=None,
        action="payments.autopay_succeeded",
        obj=attempt,
        subscriber_id=attempt.subscriber_id,
        after={"amount": intake.payment.amount, "payment": intake.payment.pk},
    )
    return "succeeded"


def _captured(text: str) -> dt.datetime | None:
    """The provider's capture moment; None (now) when missing, malformed, naive or in the future."""
    try:
        moment = parse_datetime(text) if text else None
    except ValueError:
        return None
    if moment is None or moment.tzinfo is None or moment > clock.now():
        return None
    return moment


def _declined(attempt: AutopayAttempt, code: str, soft: bool, today: dt.date) -> str:
    attempt.status, attempt.finished_at = AttemptStatus.DECLINED, clock.now()
    attempt.decline_code, attempt.decline_soft = code[:60], bool(soft)
    attempt.save(
        update_fields=["checked_at", "provider_payment_id", "status", "finished_at", "decline_code", "decline_soft"]
    )
    audit.record(
        actor=None,
        action="payments.autopay_declined",
        obj=attempt,
        subscriber_id=attempt.subscriber_id,
        after={"code": attempt.decline_code, "soft": attempt.decline_soft, "try": attempt.number},
    )
    payload = {"amount": attempt.amount, "due_on": attempt.due_on, "method": str(attempt.method), "reason": code}
    next_on = calc.retry_on(attempt.due_on, attempt.number, settings.ABONENT_AUTOPAY_RETRY_DAYS) if soft else None
    if next_on is not None:
        # Learned late (a pending payment cancelled days after): retried now, not in the past.
        next_on = max(next_on, today)
        plan = AutopayPlan.objects.select_related("method").get(pk=attempt.plan_id)
        _schedule(plan, due_on=attempt.due_on, number=attempt.number + 1, on=next_on)
        queue_notice(
            NoticeKind.AUTOPAY_RETRY_SCHEDULED,
            attempt.subscriber_id,
            f"autopay_retry:{attempt.pk}",
            next_try_on=next_on,
            **payload,
        )
        return "declined"
    queue_notice(NoticeKind.AUTOPAY_DECLINED, attempt.subscriber_id, f"autopay_declined:{attempt.pk}", **payload)
    if not soft and code in settings.ABONENT_AUTOPAY_UNLINK_CODES:
        reason = _("The gateway declined the payment method: %(code)s") % {"code": code}
        method = do_unlink_method(attempt.method, acting_user=None, reason=reason)
        stop_autopay_for_method(method, reason=reason)
    return "declined"
