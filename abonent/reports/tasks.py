"""The reports' background work: heavy reports computed for the page that asked."""

from django_tasks import task


@task(queue_name="default")
def compute_report(slug: str, params: dict) -> dict:
    """Compute one heavy report for one set of filters and keep it (``results.do_compute_report``)."""
    from .results import do_compute_report

    result = do_compute_report(slug, params)
    return {"slug": slug, "computed_at": result.computed_at.isoformat(), "duration_ms": result.duration_ms}
