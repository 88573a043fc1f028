"""Attacks at once (PostgreSQL): a close and a cancel of the same job, two jobs of one installer closed at once with
the same device. Defences that hold: one wins whole, the other is refused and writes nothing."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from abonent.fieldwork import actions
from abonent.fieldwork.models import Job, StockDevice, StockMove
from abonent.subscribers.models import EquipmentAssignment

from .conftest import together

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL")


def test_a_close_and_a_cancel_at_once_leave_one_outcome(book, receive, storekeeper, installer, dispatcher):
    job = book()
    (ont,) = receive("ZTEG0001")
    actions.do_issue_device(ont, installer=installer, acting_user=storekeeper, job=job)

    outcomes = together(
        lambda: actions.do_close_job(job, acting_user=installer, serials=["ZTEG0001"]),
        lambda: actions.do_cancel_job(job, reason="Customer away", acting_user=dispatcher),
    )

    job.refresh_from_db()
    ont.refresh_from_db()
    refusals = [o for o in outcomes if isinstance(o, ValidationError)]
    assert len(refusals) == 1, outcomes
    if job.status == "done":
        assert refusals[0].code == "job_finished"
        assert ont.state == "installed"
    else:
        assert (job.status, refusals[0].code, ont.state) == ("cancelled", "job_cancelled", "issued")
        assert not EquipmentAssignment.objects.exists()


def test_one_device_closed_into_two_jobs_at_once_is_installed_once(book, receive, storekeeper, installer):
    first, second = book("09:00", "10:00"), book("10:00", "11:00")
    (ont,) = receive("ZTEG0001")
    actions.do_issue_device(ont, installer=installer, acting_user=storekeeper, job=first)

    outcomes = together(
        lambda: actions.do_close_job(first, acting_user=installer, serials=["ZTEG0001"]),
        lambda: actions.do_close_job(second, acting_user=installer, serials=["ZTEG0001"]),
    )

    assert len([o for o in outcomes if isinstance(o, Job)]) == 1, outcomes
    assert len([o for o in outcomes if isinstance(o, ValidationError)]) == 1, outcomes
    assert EquipmentAssignment.objects.filter(returned_at__isnull=True).count() == 1
    assert StockMove.objects.filter(to_state="installed").count() == 1
    assert StockDevice.objects.get().state == "installed"
    assert sorted(Job.objects.values_list("status", flat=True)) == ["done", "scheduled"]
