"""Prepaid cards' periodic jobs: cards past their series' last day expire (a sold card's liability becomes breakage
revenue), and old activation attempts are pruned."""

import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic


@periodic("vouchers.expire", daily_at=dt.time(0, 20))
@task(queue_name="billing")
def expire_vouchers() -> int:
    from .actions import do_expire_vouchers

    return do_expire_vouchers()


@periodic("vouchers.prune_attempts", every=dt.timedelta(hours=6))
@task()
def prune_attempts() -> int:
    from .throttle import prune

    return prune(dt.timedelta(days=2))
