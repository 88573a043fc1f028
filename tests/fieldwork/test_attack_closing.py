"""Attacks on closing a job: a stale job handed to another installer, a second close asking for more, a plan
archived between booking and closing, a plan that does not exist, checklist ids a form may send."""

import pytest
from django.core.exceptions import ValidationError

from abonent.billing.models import Subscription
from abonent.catalog.models import Plan
from abonent.fieldwork import actions
from abonent.fieldwork.models import Job, StockDevice
from abonent.subscribers.models import Subscriber

from .conftest import slot


def _prospect(branch, plan=None):
    return actions.ProspectData(
        branch_id=branch.pk,
        last_name="Новикова",
        first_name="Ольга",
        phone="+79165554433",
        city="Тверь",
        house="7",
        plan_id=plan.pk if plan else None,
    )


def test_a_stale_job_handed_to_another_installer_is_not_closed_by_the_first(
    book, installer, other_installer, dispatcher
):
    job = book()
    seen_by_first = Job.objects.get(pk=job.pk)  # the first installer's page, read before the reschedule
    actions.do_reschedule_job(job, installer=other_installer, slot=slot("10:00", "11:00"), acting_user=dispatcher)

    with pytest.raises(ValidationError) as caught:
        actions.do_close_job(seen_by_first, acting_user=installer, result="done")

    assert caught.value.code == "job_not_yours"
    job.refresh_from_db()
    assert (job.status, job.installer_id, job.result) == ("scheduled", other_installer.pk, "")


def test_a_second_close_asking_for_a_device_the_first_did_not_install_is_refused(
    book, receive, storekeeper, installer, customer
):
    job = book()
    (ont,) = receive("ZTEG0001")
    actions.do_issue_device(ont, installer=installer, acting_user=storekeeper, job=job)
    actions.do_close_job(job, acting_user=installer, result="Cable fixed")

    with pytest.raises(ValidationError) as caught:
        actions.do_close_job(job, acting_user=installer, serials=["ZTEG0001"])

    assert caught.value.code == "job_done"
    ont.refresh_from_db()
    assert (ont.state, ont.holder_id) == ("issued", installer.pk)
    assert not customer.equipment_assignments.exists()


def test_a_repeated_close_of_the_same_form_is_still_answered_done(book, receive, storekeeper, installer, customer):
    job = book()
    (ont,) = receive("ZTEG0001")
    actions.do_issue_device(ont, installer=installer, acting_user=storekeeper, job=job)
    first = actions.do_close_job(job, acting_user=installer, serials=["ZTEG0001"])
    again = actions.do_close_job(job, acting_user=installer, serials=["ZTEG0001"])
    assert first.status == again.status == "done"
    assert customer.equipment_assignments.count() == 1


def test_a_plan_archived_between_booking_and_closing_is_still_activated(dispatcher, installer, branch, make_plan):
    plan = make_plan("home100", "650.00")
    job = actions.do_create_job(
        installer=installer, slot=slot("12:00", "14:00"), prospect=_prospect(branch, plan), acting_user=dispatcher
    )
    Plan.objects.filter(pk=plan.pk).update(is_archived=True)

    closed = actions.do_close_job(job, acting_user=installer, result="Connected")

    subscriber = Subscriber.objects.get(last_name="Новикова")
    assert closed.subscriber_id == subscriber.pk
    assert list(Subscription.objects.filter(subscriber=subscriber).values_list("plan_id", flat=True)) == [plan.pk]


@pytest.mark.parametrize("archived", [True, None])
def test_a_prospect_on_an_archived_or_missing_plan_is_refused_at_booking(
    dispatcher, installer, branch, make_plan, archived
):
    plan = make_plan("old", "300.00")
    if archived:
        Plan.objects.filter(pk=plan.pk).update(is_archived=True)
    else:
        plan = Plan(pk=plan.pk + 1000)

    with pytest.raises(ValidationError) as caught:
        actions.do_create_job(
            installer=installer, slot=slot("12:00", "14:00"), prospect=_prospect(branch, plan), acting_user=dispatcher
        )

    assert caught.value.error_dict["plan_id"][0].code == "plan_invalid"
    assert not Job.objects.exists()


def test_checklist_ids_int_cannot_read_are_ignored_not_a_500(book, installer, client_of, dispatcher):
    actions.do_set_checklist_template("repair", text="Check the cable\nReboot the ONT", acting_user=dispatcher)
    job = book()
    second = job.checklist.last()
    client = client_of(installer)
    client.raise_request_exception = False

    response = client.post(f"/staff/fieldwork/jobs/{job.pk}/close/", {"item": ["²", "٣", "9" * 5000, f" {second.pk} "]})

    assert response.status_code == 302
    assert list(job.checklist.values_list("done", flat=True)) == [False, True]
    assert not StockDevice.objects.exists()


def test_a_prospects_part_longer_than_its_column_is_a_field_error_not_a_data_error(dispatcher, installer, branch):
    prospect = _prospect(branch)
    prospect.apartment = "<script>alert(1)</script>"

    with pytest.raises(ValidationError) as caught:
        actions.do_create_job(
            installer=installer, slot=slot("12:00", "14:00"), prospect=prospect, acting_user=dispatcher
        )

    assert caught.value.error_dict["apartment"][0].code == "too_long"
    assert not Job.objects.exists()
