"""Jobs: made from requests, booked without double-booking an installer, closed with devices installed at the
subscriber, a prospect's connection creating the subscriber exactly once."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from abonent.billing.models import Subscription
from abonent.core.models import AuditEvent
from abonent.fieldwork import actions
from abonent.fieldwork.models import DeviceState, Job, JobStatus, StockDevice
from abonent.helpdesk.models import TicketStatus
from abonent.staff.permissions import Role
from abonent.subscribers.models import ConnectionEvent, EquipmentStatus, Subscriber

from .conftest import TODAY, slot


@pytest.fixture
def checklists(dispatcher):
    actions.do_set_checklist_template("repair", text="Check the cable\nReboot the ONT\n", acting_user=dispatcher)
    actions.do_set_checklist_template(
        "connection", text="Run the cable\nSet up the router\nSpeed test", acting_user=dispatcher
    )


def prospect(branch, plan=None, **fields) -> actions.ProspectData:
    values = {
        "branch_id": branch.pk,
        "last_name": "Новикова",
        "first_name": "Ольга",
        "phone": "8 (916) 555-44-33",
        "city": "Тверь",
        "street": "ул. Садовая",
        "house": "7",
        "apartment": "3",
        "plan_id": plan.pk if plan else None,
    }
    return actions.ProspectData(**{**values, **fields})


def test_a_request_becomes_a_job_with_its_address_phone_and_checklist(book, customer, checklists):
    job = book("10:00", "11:30")

    assert (job.kind, job.status, job.subscriber, job.branch_id) == (
        "repair",
        "scheduled",
        customer,
        customer.branch_id,
    )
    assert job.address == "Тверь, ул. Ленина, h. 5, apt. 12"
    assert job.contact_phone == "+79161234567"
    assert list(job.checklist.values_list("position", "text", "done")) == [
        (1, "Check the cable", False),
        (2, "Reboot the ONT", False),
    ]


def test_a_connection_request_goes_to_its_own_address(book, open_ticket):
    job = book(ticket=open_ticket(category="connection_request", address="Тверь, ул. Новая, 1, кв. 2"))
    assert (job.kind, job.address) == ("connection", "Тверь, ул. Новая, 1, кв. 2")


def test_a_billing_question_needs_no_visit(book, open_ticket):
    with pytest.raises(ValidationError) as caught:
        book(ticket=open_ticket(category="billing"))
    assert caught.value.message_dict == {"ticket": ["This kind of request needs no visit."]}
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("start", "end"), [("10:30", "11:30"), ("09:00", "10:01"), ("10:15", "10:45"), ("09:00", "12:00")]
)
def test_an_overlapping_slot_of_the_same_installer_is_refused(book, start, end):
    first = book("10:00", "11:00")
    with pytest.raises(ValidationError) as caught:
        book(start, end)
    assert caught.value.message_dict == {"starts_at": [f"The installer is busy from 10:00 to 11:00 (job {first.pk})."]}
    assert Job.objects.count() == 1


def test_back_to_back_slots_and_another_installer_are_fine(book, other_installer):
    book("10:00", "11:00")
    book("11:00", "12:00")
    book("10:00", "11:00", who=other_installer)
    assert Job.objects.count() == 3


def test_a_cancelled_job_frees_its_slot(book, dispatcher):
    actions.do_cancel_job(book("10:00", "11:00"), reason="subscriber away", acting_user=dispatcher)
    assert book("10:00", "11:00").status == JobStatus.SCHEDULED


def test_a_slot_must_end_after_it_starts_and_not_be_in_the_past(book, dispatcher, installer, open_ticket):
    with pytest.raises(ValidationError) as caught:
        book("11:00", "10:00")
    assert caught.value.message_dict == {"ends_at": ["The slot must end after it starts."]}
    with pytest.raises(ValidationError) as caught:
        actions.do_create_job(
            installer=installer,
            slot=slot("10:00", "11:00", TODAY - dt.timedelta(days=1)),
            ticket=open_ticket(),
            acting_user=dispatcher,
        )
    assert caught.value.message_dict == {"day": ["The date is in the past."]}
    assert not Job.objects.exists()


def test_an_installer_of_another_branch_is_refused(book, make_staff, other_branch):
    klin = make_staff(Role.ENGINEER, username="klin", branches=[other_branch])
    with pytest.raises(ValidationError) as caught:
        book(who=klin)
    assert caught.value.message_dict == {"installer": ["This installer does not work in the job's branch."]}


def test_a_branch_limited_dispatcher_cannot_book_for_another_branch(make_staff, other_branch, installer, open_ticket):
    klin_dispatcher = make_staff(Role.OPERATOR, branches=[other_branch])
    with pytest.raises(PermissionDenied):
        actions.do_create_job(
            installer=installer, slot=slot("10:00", "11:00"), ticket=open_ticket(), acting_user=klin_dispatcher
        )
    assert not Job.objects.exists()


def test_closing_a_repair_installs_the_issued_device_at_the_subscriber(
    book, receive, storekeeper, installer, customer, checklists
):
    job = book()
    ont, spare = receive("ZTEG0001", "ZTEG0002")
    actions.do_issue_device(ont, installer=installer, acting_user=storekeeper, job=job)
    actions.do_issue_device(spare, installer=installer, acting_user=storekeeper, job=job)
    first_item = job.checklist.get(position=1)

    closed = actions.do_close_job(
        job, acting_user=installer, done_item_ids=[first_item.pk], result="Replaced the ONT", serials=["ZTEG0001"]
    )

    assert (closed.status, closed.result) == ("done", "Replaced the ONT")
    ont.refresh_from_db()
    assert (ont.state, ont.holder_id, ont.subscriber_id) == ("installed", None, customer.pk)
    (assignment,) = customer.equipment_assignments.select_related("equipment")
    assert assignment.equipment == ont.equipment
    assert (assignment.equipment.serial_number, assignment.equipment.vendor, assignment.equipment.model) == (
        "ZTEG0001",
        "ZTE",
        "F660",
    )
    assert (assignment.ownership, assignment.equipment.status) == ("rent", EquipmentStatus.INSTALLED)
    spare.refresh_from_db()
    assert (spare.state, spare.holder_id) == ("issued", installer.pk)
    assert list(job.checklist.values_list("done", flat=True)) == [True, False]
    assert closed.ticket.status == TicketStatus.RESOLVED
    assert ConnectionEvent.objects.get(subscriber=customer).kind == "visit"
    assert list(ont.moves.order_by("id").values_list("to_state", flat=True)) == ["received", "issued", "installed"]


def test_a_device_not_issued_to_the_installer_is_refused_and_the_job_stays_open(
    book, receive, storekeeper, installer, other_installer, customer
):
    job = book()
    (theirs,) = receive("ZTEG0001")
    actions.do_issue_device(theirs, installer=other_installer, acting_user=storekeeper)

    with pytest.raises(ValidationError) as caught:
        actions.do_close_job(job, acting_user=installer, serials=["ZTEG0001", "NOSUCH"])

    assert caught.value.message_dict == {"serials": ["Not issued to the installer: ZTEG0001, NOSUCH."]}
    job.refresh_from_db()
    assert (job.status, job.closed_at) == ("scheduled", None)
    assert not customer.equipment_assignments.exists()


def test_returning_an_installed_device_returns_it_on_the_card(book, receive, storekeeper, installer, customer):
    job = book()
    (ont,) = receive("ZTEG0001")
    actions.do_issue_device(ont, installer=installer, acting_user=storekeeper, job=job)
    actions.do_close_job(job, acting_user=installer, serials=["ZTEG0001"])

    actions.do_return_device(ont, acting_user=storekeeper, comment="contract ended")

    ont.refresh_from_db()
    assert (ont.state, ont.subscriber_id) == ("returned", None)
    (assignment,) = customer.equipment_assignments.all()
    assert assignment.returned_at is not None
    assert ont.equipment.status == EquipmentStatus.IN_STOCK
    assert ont.moves.order_by("-id").first().subscriber_id == customer.pk


def test_another_installer_cannot_close_the_job(book, other_installer):
    job = book()
    with pytest.raises(ValidationError, match="another installer's"):
        actions.do_close_job(job, acting_user=other_installer)
    job.refresh_from_db()
    assert job.status == "scheduled"


def test_closing_a_prospects_connection_creates_the_subscriber_on_the_plan_once(
    dispatcher, installer, branch, make_plan, receive, storekeeper
):
    plan = make_plan("home100", "650.00")
    job = actions.do_create_job(
        installer=installer, slot=slot("12:00", "14:00"), prospect=prospect(branch, plan), acting_user=dispatcher
    )
    assert (job.kind, job.subscriber, job.address, job.contact_phone) == (
        "connection",
        None,
        "Тверь, ул. Садовая, 7, apt. 3",
        "+79165554433",
    )
    (ont,) = receive("ZTEG0001")
    actions.do_issue_device(ont, installer=installer, acting_user=storekeeper, job=job)

    closed = actions.do_close_job(job, acting_user=installer, serials=["ZTEG0001"], result="Connected")
    again = actions.do_close_job(job, acting_user=installer, serials=["ZTEG0001"], result="Connected")

    subscriber = Subscriber.objects.get()
    assert closed.subscriber == again.subscriber == subscriber
    assert (subscriber.display_name, subscriber.branch_id) == ("Новикова Ольга", branch.pk)
    assert list(subscriber.contacts.values_list("value", flat=True)) == ["+79165554433"]
    assert [a.as_text() for a in subscriber.addresses.all()] == ["Тверь, ул. Садовая, h. 7, apt. 3"]
    (subscription,) = Subscription.objects.filter(subscriber=subscriber)
    assert subscription.plan == plan
    assert subscriber.equipment_assignments.get().equipment.serial_number == "ZTEG0001"
    assert AuditEvent.objects.filter(action="job.closed").count() == 1
    assert ConnectionEvent.objects.get(subscriber=subscriber).kind == "connected"


def test_an_invalid_prospect_is_refused_before_booking(dispatcher, installer, branch):
    with pytest.raises(ValidationError) as caught:
        actions.do_create_job(
            installer=installer,
            slot=slot("12:00", "14:00"),
            prospect=prospect(branch, last_name=" ", phone="12", house=""),
            acting_user=dispatcher,
        )
    assert set(caught.value.message_dict) == {"last_name", "phone", "house"}
    assert not Job.objects.exists()


def test_a_cancelled_job_cannot_be_closed(book, dispatcher, installer):
    job = book()
    actions.do_cancel_job(job, reason="no answer", acting_user=dispatcher)
    with pytest.raises(ValidationError, match="cancelled"):
        actions.do_close_job(job, acting_user=installer)


def test_a_request_has_one_open_job(book, open_ticket):
    ticket = open_ticket()
    book("10:00", "11:00", ticket=ticket)
    with pytest.raises(ValidationError, match="already has an open job"):
        book("12:00", "13:00", ticket=ticket)


def test_issued_devices_for_a_job_go_to_its_installer(book, receive, storekeeper, other_installer):
    job = book()
    (ont,) = receive("ZTEG0001")
    with pytest.raises(ValidationError, match="to its installer"):
        actions.do_issue_device(ont, installer=other_installer, acting_user=storekeeper, job=job)
    assert StockDevice.objects.get().state == DeviceState.RECEIVED


def test_a_repair_swaps_the_ont_the_old_one_back_to_stock(book, receive, storekeeper, installer, customer):
    first_visit = book("09:00", "10:00")
    old, new = receive("ZTEG0001", "ZTEG0002")
    actions.do_issue_device(old, installer=installer, acting_user=storekeeper, job=first_visit)
    actions.do_close_job(first_visit, acting_user=installer, serials=["ZTEG0001"])
    repair = book("11:00", "12:00")
    actions.do_issue_device(new, installer=installer, acting_user=storekeeper, job=repair)

    actions.do_close_job(repair, acting_user=installer, serials=["ZTEG0002"], removed_serials=["ZTEG0001"])

    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.state, old.subscriber_id) == ("returned", None)
    assert (new.state, new.subscriber_id) == ("installed", customer.pk)
    open_assignments = customer.equipment_assignments.filter(returned_at__isnull=True)
    assert [a.equipment.serial_number for a in open_assignments] == ["ZTEG0002"]
    assert old.moves.order_by("-id").first().job_id == repair.pk


def test_taking_away_a_device_of_another_subscriber_is_refused(
    book, receive, storekeeper, installer, make_subscriber, open_ticket, dispatcher
):
    neighbour = make_subscriber(last_name="Соседов", phone="+79160000002")
    theirs = actions.do_create_job(
        installer=installer,
        slot=slot("09:00", "10:00"),
        ticket=open_ticket(subscriber=neighbour),
        acting_user=dispatcher,
    )
    (ont,) = receive("ZTEG0001")
    actions.do_issue_device(ont, installer=installer, acting_user=storekeeper, job=theirs)
    actions.do_close_job(theirs, acting_user=installer, serials=["ZTEG0001"])
    repair = book("11:00", "12:00")

    with pytest.raises(ValidationError) as caught:
        actions.do_close_job(repair, acting_user=installer, removed_serials=["ZTEG0001"])

    assert caught.value.message_dict == {"removed": ["Not installed at this subscriber: ZTEG0001."]}
    ont.refresh_from_db()
    assert (ont.state, ont.subscriber_id) == ("installed", neighbour.pk)
    repair.refresh_from_db()
    assert repair.status == "scheduled"
