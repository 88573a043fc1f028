"""The imports app's background work: a dry run or the real run of a job, in the worker."""

from django_tasks import task


@task(queue_name="default")
def run_import(job_id: int, dry_run: bool, user_id: int | None = None) -> dict:
    from django.contrib.auth import get_user_model

    from .engine import run
    from .models import ImportJob

    job = ImportJob.objects.get(pk=job_id)
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    job = run(job, dry_run=dry_run, acting_user=user)
    return {"job": job_id, "status": job.status, "dry_run": dry_run}
