"""A subscriber with a phone and its tickets; staff of each role; the clock on a weekday morning."""

import datetime as dt

import pytest
from django.test import Client

from abonent.core import clock
from abonent.helpdesk import actions
from abonent.helpdesk.models import TicketSource
from abonent.staff.permissions import Role

T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_quiet_hours(settings):
    # Messages due at once whatever the hour; quiet hours are the notifications app's tests.
    settings.ABONENT_QUIET_HOURS = ""


@pytest.fixture
def now():
    with clock.travel_to(T0):
        yield T0


@pytest.fixture
def customer(make_subscriber):
    return make_subscriber()


@pytest.fixture
def open_ticket(customer, now):
    """The customer's "no connection" request, opened in the portal."""

    def make(subject="Нет интернета", text="Со вчерашнего вечера не работает.", **fields):
        data = actions.TicketData(
            category=fields.pop("category", "no_connection"), subject=subject, text=text, **fields
        )
        return actions.do_open_ticket(customer, data, source=TicketSource.PORTAL, acting_user=None)

    return make


@pytest.fixture
def support(make_staff):
    return make_staff(Role.SUPPORT, username="support")


@pytest.fixture
def cashier(make_staff):
    return make_staff(Role.CASHIER, username="cashier")


@pytest.fixture
def client_of():
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture(autouse=True)
def _attachments_dir(settings, tmp_path):
    # Each test its own private directory, so that "nothing was stored" can be seen on disk.
    settings.ABONENT_HELPDESK_ATTACHMENTS_DIR = tmp_path / "attachments"
    return settings.ABONENT_HELPDESK_ATTACHMENTS_DIR
