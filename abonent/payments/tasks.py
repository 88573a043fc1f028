"""Periodic jobs of payments (autopay, receipts, gateway status checks) register here."""

import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic


@periodic("payments.sync_gateways", every=dt.timedelta(minutes=1))
@task()
def sync_gateways() -> dict:
    """Online payments whose outcome we have not heard of (a lost notice, a create call that timed out) and
    refunds a gateway has not finished: asked about again. Safe to run twice: crediting is once per payment."""
    from .actions import push_pending_refunds, sync_pending_checkouts

    result = sync_pending_checkouts()
    result["refunds"] = push_pending_refunds()
    return result


@periodic("payments.fiscal_receipts", every=dt.timedelta(minutes=1))
@task(queue_name="default")
def send_fiscal_receipts() -> dict:
    """Send queued fiscal receipts and poll sent ones (each at most once a run, by its backoff)."""
    from .actions.receipts import process_due_receipts

    return process_due_receipts()
