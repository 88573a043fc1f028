"""Periodic jobs of payments (autopay, receipts, gateway status checks) register here."""

import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic


@periodic("payments.forget_form_submissions", daily_at=dt.time(3, 30))
@task(queue_name="default")
def forget_form_submissions() -> int:
    """Drop console form tokens older than a month: a page that old is not resubmitted by a double click, and what
    the forms did stays idempotent without them (a cash payment by its id, a refund by its key, a cancel, an
    assignment, a return or a close by the payment's or the day's state)."""
    from .actions.cashdesk import do_forget_form_submissions

    return do_forget_form_submissions(older_than=dt.timedelta(days=30))
