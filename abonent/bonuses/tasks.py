"""Bonuses' periodic jobs: tenure anniversaries, expiry (FIFO), and the sweep of payments no event brought."""

import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic


@periodic("bonuses.daily", daily_at=dt.time(0, 40))
@task(queue_name="billing")
def daily_bonuses() -> dict:
    from .actions import do_accrue_tenure, do_expire_points

    return {"tenure": do_accrue_tenure(), "expired": do_expire_points()}


@periodic("bonuses.accrue_missed", every=dt.timedelta(hours=1))
@task(queue_name="billing")
def accrue_missed() -> int:
    """Payments credited in the last two days without an accrual: the terminal fast path (a SQL function) emits no
    ``payment_received``. Cheap when the rules are off; each accrual is keyed, so a repeat writes nothing."""
    from abonent.core import clock
    from abonent.payments.models import Payment, PaymentStatus

    from .actions import do_accrue_for_payment
    from .selectors import rules

    current = rules()
    if not (current.on_time_enabled or current.referral_enabled):
        return 0
    since = clock.now() - dt.timedelta(days=2)
    ids = Payment.objects.filter(status=PaymentStatus.CREDITED, credited_at__gte=since).values_list("pk", flat=True)
    return sum(len(do_accrue_for_payment(pk)) for pk in ids)
