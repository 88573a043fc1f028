"""Attacks on the console pages: the first and last dates there are, paged from."""

import pytest


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_the_day_pages_at_the_ends_of_the_calendar_are_not_a_500(installer, dispatcher, client_of, day):
    for user, url in ((installer, "/staff/fieldwork/my-day/"), (dispatcher, "/staff/fieldwork/jobs/")):
        client = client_of(user)
        client.raise_request_exception = False
        response = client.get(f"{url}?day={day}")
        assert response.status_code == 200, url
        assert "2026-12-08" in response.content.decode()  # paged from today instead
