"""Days of online-only daily plans charged late: the run skipped them because accounting had not yet recorded
the day before online (an interim after 00:05, a spool replayed after an outage); ``UnbilledDay`` keeps them for
``UNBILLED_LOOKBACK_DAYS``, and every run charges those that turn out to follow a day online."""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.utils.translation import gettext

from abonent.catalog.models import PlanPrice

from .ledger import post, revenue_account, subscriber_account
from .models import Charge, ChargeKind, Subscription, TransactionKind, UnbilledDay

# How long a skipped day of an online-only plan waits for a late online day before it is given up.
UNBILLED_LOOKBACK_DAYS = 7


def charge_late_online_days(as_of: dt.date, result, *, pg: bool) -> None:
    """Charge the skipped days of online-only plans whose day before has since been recorded online.

    Few rows (a subscriber offline on one day, online on the day before after all), each charged in a
    transaction of its own with the subscription locked, keyed by the day and cycle like a run's fee, and
    its ``UnbilledDay`` deleted with it; rows older than the lookback are given up.
    """
    from .engine import _as_date  # the engine calls this module: imported when it runs
    from .periods import amount_for

    oldest = as_of - dt.timedelta(days=UNBILLED_LOOKBACK_DAYS)
    UnbilledDay.objects.filter(day__lt=oldest).delete()
    day_before = "u.day - 1" if pg else "date(u.day, '-1 day')"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT u.id, u.subscription_id, u.day, u.price_id, u.cycle FROM billing_unbilledday u "
            "JOIN billing_subscription s ON s.id = u.subscription_id "
            f"JOIN billing_onlineday o ON o.subscriber_id = s.subscriber_id AND o.day = {day_before} "
            "WHERE u.day >= %s AND u.day <= %s ORDER BY u.subscription_id, u.day",
            [oldest, as_of],
        )
        late = [(pk, sid, _as_date(day), price_id, cycle) for pk, sid, day, price_id, cycle in cursor.fetchall()]
    for pk, subscription_id, day, price_id, cycle in late:
        with transaction.atomic():
            subscription = Subscription.objects.select_for_update().filter(pk=subscription_id).first()
            if subscription is None or not UnbilledDay.objects.filter(pk=pk).delete()[0]:
                continue  # charged by a concurrent run
            price = PlanPrice.objects.select_related("plan__service").get(pk=price_id)
            amount = amount_for(price.plan, price, day, day + dt.timedelta(days=1), day)[0]
            key = f"fee:late:{subscription_id}:{day.isoformat()}:{cycle}"
            account = subscriber_account(subscription.subscriber_id)
            tx, created = post(
                key=key,
                kind=TransactionKind.FEE,
                effective_date=day,
                legs=[(account.pk, -amount), (revenue_account(price.plan.service).pk, amount)],
                subscriber_id=subscription.subscriber_id,
                memo=gettext("Billing run of %(date)s") % {"date": as_of.isoformat()},
            )
            if not created:
                continue
            Charge.objects.create(
                subscription_id=subscription_id,
                kind=ChargeKind.FEE,
                period_start=day,
                period_end=day + dt.timedelta(days=1),
                amount=amount,
                price=price,
                cycle=cycle,
                transaction=tx,
            )
            result.charges += 1
            result.amount += amount
