"""The reports' background work: the summary tables kept up to date, heavy reports computed for the page that asked."""

import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic


@task(queue_name="default")
def compute_report(slug: str, params: dict) -> dict:
    """Compute one heavy report for one set of filters and keep it (``results.do_compute_report``)."""
    from .results import do_compute_report

    result = do_compute_report(slug, params)
    return {"slug": slug, "computed_at": result.computed_at.isoformat(), "duration_ms": result.duration_ms}


@periodic("reports.facts", every=dt.timedelta(minutes=1))
@task(queue_name="default")
def roll_up_facts() -> dict:
    """Add what was charged and paid since the last run to the summary tables (``facts.do_roll_up_facts``)."""
    from .facts import do_roll_up_facts

    result = do_roll_up_facts()
    return {"charges": result.charges, "transactions": result.transactions, "moved": result.moved}


@periodic("reports.prune_results", daily_at=dt.time(3, 45))
@task(queue_name="default")
def prune_results() -> dict:
    """Delete the heavy reports' results nobody asked for lately (``results.do_prune_report_results``)."""
    from .results import do_prune_report_results

    return {"deleted": do_prune_report_results()}
