"""Billing's periodic jobs: the daily run, traffic rating, and promised payments, freezes and turbos that end by
date."""

import datetime as dt

from django_tasks import task

from abonent.core.scheduler import periodic


@periodic("billing.daily_run", daily_at=dt.time(0, 5))
@task(queue_name="billing")
def daily_billing_run() -> dict:
    from .actions import do_finish_due_freezes
    from .engine import run_billing

    do_finish_due_freezes()
    result = run_billing()
    return {
        "as_of": result.as_of.isoformat(),
        "charges": result.charges,
        "amount": str(result.amount),
        "parked": len(result.parked),
    }


# After accounting has settled the day (interims of sessions open at midnight land within minutes) and after
# the daily run (00:05): every usage period that ended by today, and late usage of the closed ones.
@periodic("billing.rate_usage", daily_at=dt.time(0, 20))
@task(queue_name="billing")
def rate_usage() -> dict:
    from .rating.traffic import rate_usage as run

    result = run()
    return {
        "as_of": result.as_of.isoformat(),
        "periods": result.periods,
        "charges": result.charges,
        "adjustments": result.adjustments,
        "amount": str(result.amount),
        "decreased": len(result.decreased),
        "parked": len(result.parked),
        "late_unrated": result.late_unrated,
    }


# Every night, after the run (00:05), rating (00:20) and the month-end documents (03:00): the result is on the
# ledger page, and a problem found is logged as an error (docs/operations.md).
@periodic("billing.verify_ledger", daily_at=dt.time(4, 15))
@task(queue_name="billing")
def verify_ledger(verification_id: int | None = None) -> dict:
    """Verify the whole ledger and record the result: the daily job, or a request from the console (its row)."""
    from .runs.models import VerificationSource
    from .runs.verification import verify_and_record

    row, problems = verify_and_record(source=VerificationSource.SCHEDULED, verification_id=verification_id)
    return {"verification": row.pk if row else None, "status": row.status if row else None, "problems": len(problems)}


@periodic("billing.expire_promised_payments", every=dt.timedelta(hours=1))
@task(queue_name="billing")
def expire_promised_payments() -> int:
    from .actions import do_expire_promised_payments

    return do_expire_promised_payments()


@periodic("billing.finish_turbos", every=dt.timedelta(minutes=1))
@task(queue_name="billing")
def finish_turbos() -> int:
    from .actions import do_finish_due_turbos

    return do_finish_due_turbos()


@periodic("billing.rate_time", every=dt.timedelta(minutes=5))
@task(queue_name="billing")
def rate_time() -> dict:
    from .rating.time import rate_time as run

    result = run()
    return {"parts": result.parts, "charges": result.charges, "amount": str(result.amount)}
