"""Periodic jobs of payments (autopay, receipts, gateway status checks) register here."""

import datetime as dt

from django.conf import settings
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


@periodic("payments.forget_form_submissions", daily_at=dt.time(3, 30))
@task(queue_name="default")
def forget_form_submissions() -> int:
    """Drop console form tokens older than a month: a page that old is not resubmitted by a double click, and what
    the forms did stays idempotent without them (a cash payment by its id, a refund by its key, a cancel, an
    assignment, a return or a close by the payment's or the day's state)."""
    from .actions.cashdesk import do_forget_form_submissions

    return do_forget_form_submissions(older_than=dt.timedelta(days=30))


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
