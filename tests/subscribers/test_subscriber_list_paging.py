"""The console's subscriber list refuses a page number past the API's limit instead of asking the database for it:
an OFFSET beyond 64 bits was an OverflowError on SQLite and a DataError on PostgreSQL, a 500 (issue 11 review)."""

from django.test import Client


def _list(user, page: str):
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client.get("/staff/subscribers/", {"page": page})


def test_a_page_number_past_64_bits_shows_the_first_page(operator, make_subscriber):
    make_subscriber(last_name="Семёнов")

    response = _list(operator, "99999999999999999999")

    assert response.status_code == 200
    assert "Семёнов" in response.content.decode()


def test_a_page_number_past_the_limit_shows_the_first_page(operator, make_subscriber):
    make_subscriber(last_name="Семёнов")

    response = _list(operator, "10001")

    assert response.status_code == 200
    assert "Семёнов" in response.content.decode()


def test_the_last_page_number_allowed_is_an_empty_page(operator, make_subscriber):
    make_subscriber(last_name="Семёнов")

    response = _list(operator, "10000")

    assert response.status_code == 200
    assert "Семёнов" not in response.content.decode()
