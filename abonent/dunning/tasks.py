"""The dunning sweep: every subscriber's access state re-read from money, time and rules. Payments and other
balance changes move a state at once (``events``); the sweep moves what only time moves (the billing run's
fees, the days restricted before suspension, the run-out reminders, exemptions that expire)."""

import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic


@periodic("dunning.sweep", every=dt.timedelta(minutes=10))
@task(queue_name="dunning")
def sweep() -> dict:
    from .evaluation import sweep as run

    return run()


@periodic("dunning.date_reminders", daily_at=dt.time(10, 0))
@task(queue_name="dunning")
def date_reminders() -> dict:
    """Promised payments about to expire and freezes about to end (``reminders``): once a day, in the morning
    of the operator's time zone, outside anyone's quiet hours."""
    from .reminders import send_reminders

    return send_reminders()
