"""The console pages: the installer's day (only their jobs, tel: links, the close form), branch scope of the
dispatcher's list, receiving through the form, the nav entry."""

import pytest

from abonent.fieldwork import actions
from abonent.fieldwork.models import Job, StockDevice
from abonent.staff.permissions import Role
from abonent.subscribers.models import Subscriber

from .conftest import TODAY, slot


def test_the_installers_day_shows_only_their_jobs_in_slot_order(book, installer, other_installer, client_of):
    late = book("15:00", "16:00")
    early = book("09:00", "10:00")
    theirs = book("09:00", "10:00", who=other_installer)

    page = client_of(installer).get("/staff/fieldwork/my-day/").content.decode()

    assert page.index(f'id="job-{early.pk}"') < page.index(f'id="job-{late.pk}"')
    assert f'id="job-{theirs.pk}"' not in page
    assert 'href="tel:+79161234567"' in page
    assert "Тверь, ул. Ленина, h. 5, apt. 12" in page


def test_an_installer_cannot_open_anothers_job(book, other_installer, client_of):
    job = book()
    assert client_of(other_installer).get(f"/staff/fieldwork/jobs/{job.pk}/").status_code == 404
    response = client_of(other_installer).post(f"/staff/fieldwork/jobs/{job.pk}/close/", {"result": "x"})
    assert response.status_code == 404
    job.refresh_from_db()
    assert job.status == "scheduled"


def test_closing_from_the_phone_twice_installs_once(book, receive, storekeeper, installer, customer, client_of):
    job = book()
    (ont,) = receive("ZTEG0001")
    actions.do_issue_device(ont, installer=installer, acting_user=storekeeper, job=job)
    client = client_of(installer)
    form = {"serial": ["ZTEG0001"], "result": "ONT replaced"}

    first = client.post(f"/staff/fieldwork/jobs/{job.pk}/close/", form)
    second = client.post(f"/staff/fieldwork/jobs/{job.pk}/close/", form)

    assert first.status_code == second.status_code == 302
    assert first["Location"] == f"/staff/fieldwork/my-day/?day={TODAY.isoformat()}#job-{job.pk}"
    assert customer.equipment_assignments.count() == 1
    assert list(ont.moves.values_list("to_state", flat=True).order_by("id")) == ["received", "issued", "installed"]


def test_a_refused_close_shows_the_reason_on_the_day_page(book, installer, client_of):
    job = book()
    response = client_of(installer).post(f"/staff/fieldwork/jobs/{job.pk}/close/", {"serial": ["NOPE"]})
    assert response.status_code == 422
    assert "Not issued to the installer: NOPE." in response.content.decode()
    job.refresh_from_db()
    assert job.status == "scheduled"


def test_a_branch_limited_dispatcher_sees_only_their_branchs_jobs(
    book, make_staff, make_subscriber, other_branch, open_ticket, client_of, dispatcher
):
    tver_job = book()
    klin_installer = make_staff(Role.ENGINEER, username="klin-installer", branches=[other_branch])
    klin_customer = make_subscriber(last_name="Клинова", phone="+79160000001", branch_obj=other_branch)
    klin_job = actions.do_create_job(
        installer=klin_installer,
        slot=slot("10:00", "11:00"),
        ticket=open_ticket(subscriber=klin_customer),
        acting_user=dispatcher,
    )
    klin_dispatcher = client_of(make_staff(Role.OPERATOR, username="klin-dispatcher", branches=[other_branch]))

    page = klin_dispatcher.get(f"/staff/fieldwork/jobs/?day={TODAY.isoformat()}").content.decode()

    assert f'data-job="{klin_job.pk}"' in page
    assert f'data-job="{tver_job.pk}"' not in page
    assert klin_dispatcher.get(f"/staff/fieldwork/jobs/{tver_job.pk}/").status_code == 404
    assert klin_dispatcher.post(f"/staff/fieldwork/jobs/{tver_job.pk}/cancel/", {"reason": "x"}).status_code == 404
    tver_job.refresh_from_db()
    assert tver_job.status == "scheduled"


def test_a_branch_limited_dispatcher_cannot_book_on_another_branchs_request(
    book, make_staff, other_branch, open_ticket, installer, client_of
):
    ticket = open_ticket()
    klin_dispatcher = client_of(make_staff(Role.OPERATOR, username="klin-dispatcher", branches=[other_branch]))
    response = klin_dispatcher.post(
        "/staff/fieldwork/jobs/new/",
        {"ticket": ticket.number, "installer": installer.pk, "day": TODAY, "starts_at": "10:00", "ends_at": "11:00"},
    )
    assert response.status_code == 422
    assert "No request with this number." in response.content.decode()
    assert not Job.objects.exists()


def test_booking_a_prospect_from_the_form_and_a_double_booking_refused(dispatcher, installer, branch, client_of, book):
    book("10:00", "11:00")
    client = client_of(dispatcher)
    form = {
        "installer": installer.pk,
        "day": TODAY.isoformat(),
        "starts_at": "10:30",
        "ends_at": "12:00",
        "branch": branch.pk,
        "last_name": "Новикова",
        "first_name": "Ольга",
        "phone": "+79165554433",
        "city": "Тверь",
        "house": "7",
    }
    refused = client.post("/staff/fieldwork/jobs/new/", form)
    assert refused.status_code == 422
    assert "The installer is busy from 10:00 to 11:00" in refused.content.decode()

    booked = client.post("/staff/fieldwork/jobs/new/", {**form, "starts_at": "11:00"})
    assert booked.status_code == 302
    job = Job.objects.get(last_name="Новикова")
    assert (job.kind, job.subscriber, job.starts_at.isoformat()) == ("connection", None, "11:00:00")
    assert not Subscriber.objects.filter(last_name="Новикова").exists()


def test_receiving_through_the_form_reports_every_bad_line(storekeeper, ont, client_of):
    client = client_of(storekeeper)
    response = client.post("/staff/fieldwork/stock/receive/", {"device_model": ont.pk, "serials": "S1\nS2\nS1\n"})
    assert response.status_code == 422
    assert "Line 3: serial S1 is already on line 1." in response.content.decode()
    assert not StockDevice.objects.exists()

    ok = client.post("/staff/fieldwork/stock/receive/", {"device_model": ont.pk, "serials": "S1\nS2\n"})
    assert ok.status_code == 302
    page = client.get("/staff/fieldwork/stock/").content.decode()
    assert 'data-serial="S1"' in page and 'data-serial="S2"' in page


@pytest.mark.parametrize(
    ("role", "stock", "jobs", "my_day"),
    [
        (Role.CASHIER, 403, 403, 403),
        (Role.OPERATOR, 403, 200, 403),
        (Role.ENGINEER, 200, 403, 200),
        (Role.ADMIN, 200, 200, 200),
    ],
)
def test_who_may_open_which_page(make_staff, client_of, role, stock, jobs, my_day):
    client = client_of(make_staff(role))
    assert client.get("/staff/fieldwork/stock/").status_code == stock
    assert client.get("/staff/fieldwork/jobs/").status_code == jobs
    assert client.get("/staff/fieldwork/my-day/").status_code == my_day


def test_the_nav_links_field_work_for_installers(installer, client_of):
    page = client_of(installer).get("/staff/fieldwork/my-day/").content.decode()
    assert 'id="nav-fieldwork" href="/staff/fieldwork/my-day/"' in page


def test_device_and_job_pages_render(book, receive, storekeeper, installer, client_of, dispatcher):
    job = book()
    (ont,) = receive("ZTEG0001")
    issued = client_of(dispatcher).post(f"/staff/fieldwork/jobs/{job.pk}/issue/", {"serial": "ZTEG0001"})
    assert issued.status_code == 302
    ont.refresh_from_db()
    assert (ont.state, ont.holder_id, ont.job_id) == ("issued", installer.pk, job.pk)
    assert "ZTEG0001" in client_of(dispatcher).get(f"/staff/fieldwork/jobs/{job.pk}/").content.decode()
    assert (
        "Issued to an installer"
        in client_of(storekeeper).get(f"/staff/fieldwork/stock/devices/{ont.pk}/").content.decode()
    )
    wrong = client_of(storekeeper).post(
        f"/staff/fieldwork/stock/devices/{ont.pk}/write_off/", {"reason": "x"}, follow=True
    )
    assert "A device that is “Issued to an installer” cannot become “Written off”." in wrong.content.decode()
    ont.refresh_from_db()
    assert ont.state == "issued"


def test_the_installed_device_and_the_visit_show_on_the_subscribers_card(
    book, receive, storekeeper, installer, customer, admin, client_of
):
    job = book()
    (ont,) = receive("ZTEG0001")
    actions.do_issue_device(ont, installer=installer, acting_user=storekeeper, job=job)
    actions.do_close_job(job, acting_user=installer, serials=["ZTEG0001"], result="ONT replaced")

    card = client_of(admin).get(f"/staff/subscribers/{customer.pk}/").content.decode()

    assert "ZTEG0001" in card
    assert f'data-job="{job.pk}"' in card


def test_garbage_in_the_close_form_is_ignored_or_refused_never_a_500(book, installer, client_of, dispatcher):
    actions.do_set_checklist_template("repair", text="Check the cable\nReboot the ONT", acting_user=dispatcher)
    job = book()
    item = job.checklist.first()
    response = client_of(installer).post(
        f"/staff/fieldwork/jobs/{job.pk}/close/",
        {"item": ["abc", "-1", "99999999999999999999", str(item.pk)], "result": "x" * 5000},
    )
    assert response.status_code == 422
    assert "The note is too long." in response.content.decode()
    job.refresh_from_db()
    assert job.status == "scheduled"

    closed = client_of(installer).post(
        f"/staff/fieldwork/jobs/{job.pk}/close/", {"item": ["abc", "-1", "99999999999999999999", str(item.pk)]}
    )
    assert closed.status_code == 302
    assert list(job.checklist.values_list("done", flat=True)) == [True, False]


def test_absurd_numbers_in_the_dispatchers_forms_are_a_4xx(dispatcher, installer, client_of):
    client = client_of(dispatcher)
    huge = "9" * 25
    assert client.get(f"/staff/fieldwork/jobs/?installer={huge}").status_code == 200
    assert client.get(f"/staff/fieldwork/jobs/new/?ticket={huge}").status_code == 200
    response = client.post(
        "/staff/fieldwork/jobs/new/",
        {"ticket": huge, "installer": installer.pk, "day": "2026-12-07", "starts_at": "10:00", "ends_at": "11:00"},
    )
    assert response.status_code == 422
    assert not Job.objects.exists()


def test_rescheduling_onto_a_busy_slot_is_refused_and_a_free_one_taken(book, other_installer, dispatcher, client_of):
    job = book("10:00", "11:00")
    book("12:00", "13:00")
    client = client_of(dispatcher)
    form = {"installer": job.installer_id, "day": TODAY.isoformat(), "starts_at": "12:30", "ends_at": "13:30"}

    busy = client.post(f"/staff/fieldwork/jobs/{job.pk}/reschedule/", form)
    moved = client.post(f"/staff/fieldwork/jobs/{job.pk}/reschedule/", {**form, "installer": other_installer.pk})

    assert busy.status_code == 422
    assert "The installer is busy from 12:00 to 13:00" in busy.content.decode()
    assert moved.status_code == 302
    job.refresh_from_db()
    assert (job.installer, job.starts_at.isoformat()) == (other_installer, "12:30:00")


def test_the_shared_stock_does_not_show_another_branchs_subscriber(
    book, receive, storekeeper, installer, customer, make_staff, other_branch, client_of
):
    job = book()
    (ont,) = receive("ZTEG0001")
    actions.do_issue_device(ont, installer=installer, acting_user=storekeeper, job=job)
    actions.do_close_job(job, acting_user=installer, serials=["ZTEG0001"])
    klin_storekeeper = client_of(make_staff(Role.ENGINEER, username="klin-store", branches=[other_branch]))

    listing = klin_storekeeper.get("/staff/fieldwork/stock/").content.decode()
    device_page = klin_storekeeper.get(f"/staff/fieldwork/stock/devices/{ont.pk}/").content.decode()
    own = client_of(storekeeper).get(f"/staff/fieldwork/stock/devices/{ont.pk}/").content.decode()

    assert 'data-serial="ZTEG0001"' in listing
    assert customer.account_number not in listing
    assert customer.account_number not in device_page
    assert customer.account_number in own


def test_the_day_page_costs_the_same_for_one_job_or_five(book, installer, client_of, dispatcher):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    actions.do_set_checklist_template("repair", text="Check the cable\nReboot the ONT", acting_user=dispatcher)
    client = client_of(installer)
    book("08:00", "09:00")
    client.get("/staff/fieldwork/my-day/")  # the session and caches warmed
    with CaptureQueriesContext(connection) as one:
        client.get("/staff/fieldwork/my-day/")
    for hour in range(9, 13):
        book(f"{hour:02d}:00", f"{hour:02d}:30")
    with CaptureQueriesContext(connection) as five:
        page = client.get("/staff/fieldwork/my-day/").content.decode()

    assert page.count('class="card mb-3 job-card') == 5
    assert len(five) == len(one)


def test_a_swap_from_the_phone_form(book, receive, storekeeper, installer, customer, client_of):
    first_visit = book("09:00", "10:00")
    old, new = receive("ZTEG0001", "ZTEG0002")
    actions.do_issue_device(old, installer=installer, acting_user=storekeeper, job=first_visit)
    actions.do_close_job(first_visit, acting_user=installer, serials=["ZTEG0001"])
    repair = book("11:00", "12:00")
    actions.do_issue_device(new, installer=installer, acting_user=storekeeper, job=repair)
    client = client_of(installer)

    page = client.get("/staff/fieldwork/my-day/").content.decode()
    assert f'id="removed-{repair.pk}-{old.pk}"' in page
    response = client.post(
        f"/staff/fieldwork/jobs/{repair.pk}/close/", {"serial": ["ZTEG0002"], "removed": ["ZTEG0001"]}
    )

    assert response.status_code == 302
    assert list(StockDevice.objects.order_by("serial_number").values_list("state", flat=True)) == [
        "returned",
        "installed",
    ]
