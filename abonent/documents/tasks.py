"""The documents' background work: a document's PDF after it is issued, a month-end run, and starting that run on
the configured day of the month (``ABONENT_DOCUMENTS_RUN_DAY``) for the month just closed."""

import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic


@task(queue_name="default")
def render_document(document_id: int) -> str:
    from .models import Document
    from .rendering import stored_file

    return stored_file(Document.objects.get(pk=document_id)).sha256


@task(queue_name="default")
def run_documents(run_id: int) -> dict:
    from .actions import carry_out_run

    run = carry_out_run(run_id)
    return {"run": run.pk, "done": run.done, "failed": run.failed, "issued": run.issued}


@periodic("documents.month_end", daily_at=dt.time(3, 0))
@task(queue_name="default")
def month_end_documents() -> int | None:
    """On the run day or any later day of the month, one run for the month before, unless it has one (an
    operator's or an earlier tick's): the scheduler enqueues only the latest missed slot, so a worker down on the
    run day catches up on the next tick instead of leaving the month unclosed."""
    from django.conf import settings

    from abonent.billing.calculations import add_months
    from abonent.core import clock

    from .actions import do_start_document_run
    from .models import DocumentRun

    today = clock.today()
    if not settings.ABONENT_DOCUMENTS_RUN_DAY or today.day < settings.ABONENT_DOCUMENTS_RUN_DAY:
        return None
    month = add_months(today.replace(day=1), -1)
    if DocumentRun.objects.filter(month=month).exists():
        return None
    return do_start_document_run(month, acting_user=None).pk
