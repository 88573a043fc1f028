"""Bonuses' periodic jobs: tenure anniversaries, expiry (FIFO), and the sweep of payments no event brought."""

import datetime as dt
import logging

from django_tasks import task

from abonent.core.scheduler import periodic

logger = logging.getLogger(__name__)


@periodic("bonuses.daily", daily_at=dt.time(0, 40))
@task(queue_name="billing")
def daily_bonuses() -> dict:
    from .actions import do_accrue_tenure, do_expire_points

    return {"tenure": do_accrue_tenure(), "expired": do_expire_points()}


def _each(action, ids, what: str) -> int:
    """``action`` for each payment on its own: one that fails is logged and the rest go on (the next sweep retries
    it), so a bad payment cannot stall the others hour after hour."""
    done = 0
    for pk in ids:
        try:
            done += len(action(pk))
        except Exception:
            logger.exception("bonuses: %s failed for payment %s", what, pk)
    return done


@periodic("bonuses.accrue_missed", every=dt.timedelta(hours=1))
@task(queue_name="billing")
def accrue_missed() -> int:
    """Payments credited in the last two days without an accrual: the terminal fast path (a SQL function) emits no
    ``payment_received``. Only payments credited after the rules for payments last changed
    (``BonusRules.payments_after_tx``): today's rules are not applied to payments made under other ones. Then
    payments cancelled or refunded whose points were not all taken back (the after-commit handler failed or never
    ran), whenever that was. Each step is keyed, so a repeat writes nothing."""
    from django.db.models import Q
    from django.db.models.functions import Coalesce

    from abonent.core import clock
    from abonent.payments.models import Payment, PaymentStatus

    from .actions import do_accrue_for_payment, do_take_back_for_payment
    from .models import ACCRUALS, BonusEntry
    from .selectors import rules

    done = 0
    current = rules()
    if current.on_time_enabled or current.referral_enabled:
        since = clock.now() - dt.timedelta(days=2)
        ids = list(
            Payment.objects.filter(status=PaymentStatus.CREDITED, credited_at__gte=since)
            .alias(credit=Coalesce("assign_transaction_id", "transaction_id"))
            .filter(credit__gt=current.payments_after_tx)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        done += _each(do_accrue_for_payment, ids, "accrual")
    # Not all of an accrual kept: the payment left the account, or some of it was refunded.
    not_kept = Payment.objects.filter(~Q(status=PaymentStatus.CREDITED) | Q(refunded_amount__gt=0)).filter(
        pk__in=BonusEntry.objects.filter(kind__in=ACCRUALS, payment_id__isnull=False).values("payment_id")
    )
    ids = list(not_kept.order_by("pk").values_list("pk", flat=True).distinct())
    done += _each(do_take_back_for_payment, ids, "take-back")
    return done
