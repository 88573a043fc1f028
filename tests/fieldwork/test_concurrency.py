"""Two requests at once (PostgreSQL): two bookings of one installer's overlapping slots leave one job; two closes of
a prospect's connection job create one subscriber."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from abonent.fieldwork import actions
from abonent.fieldwork.models import Job
from abonent.subscribers.models import Subscriber

from .conftest import slot, together

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL")


def test_two_overlapping_bookings_at_once_leave_one(dispatcher, installer, open_ticket):
    first, second = open_ticket(), open_ticket()

    outcomes = together(
        lambda: actions.do_create_job(
            installer=installer, slot=slot("10:00", "11:00"), ticket=first, acting_user=dispatcher
        ),
        lambda: actions.do_create_job(
            installer=installer, slot=slot("10:30", "11:30"), ticket=second, acting_user=dispatcher
        ),
    )

    jobs = [o for o in outcomes if isinstance(o, Job)]
    refusals = [o for o in outcomes if isinstance(o, ValidationError)]
    assert len(jobs) == 1 and len(refusals) == 1, outcomes
    assert refusals[0].error_dict["starts_at"][0].code == "installer_busy"
    assert Job.objects.count() == 1


def test_two_closes_at_once_create_the_subscriber_once(dispatcher, installer, branch):
    job = actions.do_create_job(
        installer=installer,
        slot=slot("12:00", "14:00"),
        prospect=actions.ProspectData(
            branch_id=branch.pk, last_name="Новикова", first_name="Ольга", phone="+79165554433", city="Тверь", house="7"
        ),
        acting_user=dispatcher,
    )

    outcomes = together(
        lambda: actions.do_close_job(job, acting_user=installer, result="Connected"),
        lambda: actions.do_close_job(job, acting_user=installer, result="Connected"),
    )

    assert all(isinstance(o, Job) for o in outcomes), outcomes
    subscriber = Subscriber.objects.get(last_name="Новикова")
    assert [o.subscriber_id for o in outcomes] == [subscriber.pk, subscriber.pk]
    assert Job.objects.get().status == "done"
