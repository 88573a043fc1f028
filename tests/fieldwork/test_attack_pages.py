"""Attacks on the console pages: the first and last dates there are, paged from."""

import pytest

from abonent.fieldwork.models import Job


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_the_day_pages_at_the_ends_of_the_calendar_are_not_a_500(installer, dispatcher, client_of, day):
    for user, url in ((installer, "/staff/fieldwork/my-day/"), (dispatcher, "/staff/fieldwork/jobs/")):
        client = client_of(user)
        client.raise_request_exception = False
        response = client.get(f"{url}?day={day}")
        assert response.status_code == 200, url
        assert "2026-12-08" in response.content.decode()  # paged from today instead


def test_a_prospect_with_every_address_part_at_its_longest_is_booked_not_a_500(
    dispatcher, installer, branch, client_of
):
    client = client_of(dispatcher)
    client.raise_request_exception = False
    parts = {"city": "Г" * 100, "street": "У" * 150, "house": "1" * 20, "apartment": "2" * 20}

    response = client.post(
        "/staff/fieldwork/jobs/new/",
        {
            "installer": installer.pk,
            "day": "2026-12-07",
            "starts_at": "10:00",
            "ends_at": "11:00",
            "branch": branch.pk,
            "last_name": "Новикова",
            "first_name": "Ольга",
            "phone": "+79165554433",
            **parts,
        },
    )

    assert response.status_code == 302, response.content.decode()[-3000:]
    job = Job.objects.get()
    assert [job.city, job.street, job.house, job.apartment] == list(parts.values())  # the subscriber's address
    assert job.address.startswith("Г" * 100) and len(job.address) <= 300


def test_a_dispatchers_refused_close_says_why_on_the_jobs_page(book, dispatcher, client_of):
    job = book()

    response = client_of(dispatcher).post(f"/staff/fieldwork/jobs/{job.pk}/close/", {"serial": "NOPE<b>"})

    assert response.status_code == 422
    page = response.content.decode()
    assert "Not issued to the installer: NOPE&lt;b&gt;." in page
    job.refresh_from_db()
    assert job.status == "scheduled"
