"""The billing run's record and the ledger verification's (billing/runs): what a run did, what it parked and why,
a run that failed; each verification's result, the daily job and the console's request queued once."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django_tasks_db.models import DBTaskResult

from abonent.billing import actions, engine
from abonent.billing.models import BillingRunRecord, LedgerAccount, LedgerVerification, OnlineDay, ParkedSubscription
from abonent.billing.runs.verification import do_request_ledger_verification, verify_and_record
from abonent.billing.tasks import verify_ledger
from abonent.billing.testing import run_on
from abonent.core.models import AuditEvent
from abonent.staff.permissions import Role

D = Decimal
pytestmark = pytest.mark.django_db


def test_a_run_records_what_it_charged_parked_and_left_unbilled(make_plan, make_subscriber, admin, on):
    priced = make_plan("priced", "500.00")
    future = make_plan("future", "500.00", valid_from=dt.date(2027, 1, 1))
    hotspot = make_plan("hotspot", "310.00", charge_mode="daily", charge_only_if_online=True)
    a, b, c = (make_subscriber(phone=f"+7916000000{i}") for i in range(3))
    with on(dt.date(2027, 1, 1)):
        actions.do_activate_subscription(a, plan=priced, acting_user=admin)
        parked = actions.do_activate_subscription(b, plan=future, acting_user=admin)
    with on(dt.date(2027, 1, 31)):
        actions.do_activate_subscription(c, plan=hotspot, acting_user=admin)
    type(parked).objects.filter(pk=parked.pk).update(next_charge_on=dt.date(2026, 12, 1))
    OnlineDay.objects.create(subscriber=c, day=dt.date(2027, 1, 31))
    # Activations charge on their own (charge_subscriptions): no record of a run.
    assert not BillingRunRecord.objects.exists()

    result = run_on(dt.date(2027, 2, 2))

    [record] = BillingRunRecord.objects.all()
    assert (record.as_of, record.status, record.error) == (dt.date(2027, 2, 2), "finished", "")
    assert record.started_at <= record.finished_at and record.seconds >= 0
    # a's February fee; c's 1 February (the 31st was online); c's 2 February skipped (no day online on the 1st).
    assert (record.charges, record.amount) == (2, D("511.07"))  # 500.00 + 310.00 / 28 days
    assert (record.charges, record.amount) == (result.charges, result.amount)
    assert (record.subscriptions, record.parked, record.unbilled) == (3, 1, 1)
    [row] = ParkedSubscription.objects.filter(run=record)
    assert (row.subscription_id, row.reason) == (parked.pk, "no_price")
    assert "has no price on 2026-12-01" in row.detail


def test_a_failed_run_is_recorded_with_its_error_and_raises(make_plan, subscriber, admin, on, monkeypatch):
    with on(dt.date(2027, 1, 1)):
        actions.do_activate_subscription(subscriber, plan=make_plan("p", "100.00"), acting_user=admin)

    def broken(self, ids, bounds):
        raise RuntimeError("disk full")

    monkeypatch.setattr(engine.BillingRun, "_charge_locked", broken)
    with pytest.raises(RuntimeError):
        run_on(dt.date(2027, 2, 1))
    [record] = BillingRunRecord.objects.all()
    assert (record.status, record.error, record.charges) == ("failed", "RuntimeError: disk full", 0)
    assert record.finished_at is not None


def test_a_verification_records_ok_and_then_the_problems_it_finds(make_plan, subscriber, admin, on):
    with on(dt.date(2027, 1, 1)):
        actions.do_activate_subscription(subscriber, plan=make_plan("p", "100.00"), acting_user=admin)
    row, problems = verify_and_record(source="command")
    assert (row.status, row.problems, row.first_problems, problems) == ("ok", 0, [], [])
    assert row.seconds is not None and row.finished_at >= row.started_at

    # A cached balance that no longer equals its postings: what a careless superuser bypassing the triggers could do.
    account = LedgerAccount.objects.get(subscriber=subscriber)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = replica")
        else:  # rolled back with the test's transaction
            cursor.execute("DROP TRIGGER billing_account_balance_guard")
        cursor.execute("UPDATE billing_ledgeraccount SET balance = 5 WHERE id = %s", [account.pk])
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")
    row, problems = verify_and_record(source="scheduled")
    assert (row.status, row.problems, row.source) == ("problems", 1, "scheduled")
    assert row.first_problems == problems and "cached balance 5" in problems[0] and "sum to -100" in problems[0]


def test_verify_now_queues_one_job_for_the_worker_and_the_job_fills_the_request(
    admin, make_staff, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        row, created = do_request_ledger_verification(acting_user=admin)
        again, created_again = do_request_ledger_verification(acting_user=admin)
    assert created and not created_again and again.pk == row.pk and row.status == "queued"
    [job] = DBTaskResult.objects.filter(task_path__endswith="verify_ledger")
    assert job.args_kwargs["kwargs"] == {"verification_id": row.pk}
    assert AuditEvent.objects.filter(action="billing.ledger_verification_requested", object_id=str(row.pk)).count() == 1

    verify_ledger.call(verification_id=row.pk)
    row.refresh_from_db()
    assert (row.status, row.source, row.requested_by) == ("ok", "console", admin)
    # Done: the next request queues a new one; a repeated job for a finished request does nothing.
    verify_ledger.call(verification_id=row.pk)
    assert LedgerVerification.objects.count() == 1
    assert do_request_ledger_verification(acting_user=admin)[1] is True

    with pytest.raises(PermissionDenied):
        do_request_ledger_verification(acting_user=make_staff(Role.OPERATOR))


def test_the_daily_verification_is_a_scheduled_job():
    from abonent.core.scheduler import registered_jobs

    job = registered_jobs()["billing.verify_ledger"]
    assert job.daily_at == dt.time(4, 15) and job.task is verify_ledger
    verify_ledger.call()
    assert LedgerVerification.objects.get().source == "scheduled"
