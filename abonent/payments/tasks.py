"""Periodic jobs of payments (autopay, receipts, gateway status checks) register here."""

import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic


@periodic("payments.fiscal_receipts", every=dt.timedelta(minutes=1))
@task(queue_name="default")
def send_fiscal_receipts() -> dict:
    """Send queued fiscal receipts and poll sent ones (each at most once a run, by its backoff)."""
    from .actions.receipts import process_due_receipts

    return process_due_receipts()
