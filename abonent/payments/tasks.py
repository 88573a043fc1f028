"""Periodic jobs of payments (autopay, receipts, gateway status checks) register here."""

import datetime as dt

from django.conf import settings
from django_tasks import task

from abonent.core.scheduler import periodic


@periodic("payments.autopay", daily_at=settings.ABONENT_AUTOPAY_RUN_AT)
@task(queue_name="payments")
def run_autopay() -> dict:
    """Once a day: autopay reminders, debits and retries (``do_run_autopay``); safe to run twice."""
    from .actions import do_run_autopay

    return do_run_autopay()


@periodic("payments.autopay_follow_up", every=dt.timedelta(minutes=15))
@task(queue_name="payments")
def follow_up_autopay() -> dict:
    """Debits whose outcome is not known yet (a timeout, the provider's ``pending``), asked again."""
    from .actions import do_sync_autopay

    return do_sync_autopay()
