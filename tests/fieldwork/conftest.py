"""A warehouse with one ONT model, installers of each branch, a dispatcher, a subscriber with a repair request,
and the clock on a Monday morning."""

import datetime as dt

import pytest
from django.test import Client

from abonent.core import clock
from abonent.fieldwork import actions
from abonent.helpdesk import actions as helpdesk
from abonent.helpdesk.models import TicketSource
from abonent.staff.permissions import Role
from tests.concurrency import together as run_together

T0 = dt.datetime(2026, 12, 7, 7, 0, tzinfo=dt.UTC)
TODAY = T0.date()


@pytest.fixture(autouse=True)
def _no_quiet_hours(settings):
    settings.ABONENT_QUIET_HOURS = ""


@pytest.fixture(autouse=True)
def now(db):
    with clock.travel_to(T0):
        yield T0


@pytest.fixture
def storekeeper(make_staff):
    return make_staff(Role.ENGINEER, username="store")


@pytest.fixture
def installer(make_staff, branch):
    return make_staff(Role.ENGINEER, username="petrov", branches=[branch])


@pytest.fixture
def other_installer(make_staff, branch):
    return make_staff(Role.ENGINEER, username="sidorov", branches=[branch])


@pytest.fixture
def dispatcher(make_staff):
    return make_staff(Role.OPERATOR, username="dispatcher")


@pytest.fixture
def ont(storekeeper):
    return actions.do_create_device_model(vendor="ZTE", name="F660", kind="ont", acting_user=storekeeper)


@pytest.fixture
def receive(ont, storekeeper):
    def make(*serials, model=None):
        return actions.do_receive_devices(model or ont, text="\n".join(serials), acting_user=storekeeper)

    return make


@pytest.fixture
def customer(make_subscriber):
    return make_subscriber()


@pytest.fixture
def open_ticket(customer):
    # Each a different text: the same request again within minutes is the helpdesk's double submit, not a new one.
    counter = iter(range(1, 1000))

    def make(category="no_connection", subscriber=None, **fields):
        n = next(counter)
        data = helpdesk.TicketData(
            category=category, subject=f"Нет интернета {n}", text=f"Не работает ({n}).", **fields
        )
        return helpdesk.do_open_ticket(subscriber or customer, data, source=TicketSource.PORTAL, acting_user=None)

    return make


def slot(start: str, end: str, day: dt.date = TODAY) -> actions.Slot:
    return actions.Slot(day=day, starts_at=dt.time.fromisoformat(start), ends_at=dt.time.fromisoformat(end))


@pytest.fixture
def book(dispatcher, installer, open_ticket):
    """``book(start, end)``: a repair job for a fresh request of the customer on the installer's day."""

    def make(start="10:00", end="11:00", *, who=None, ticket=None, acting_user=None):
        return actions.do_create_job(
            installer=who or installer,
            slot=slot(start, end),
            ticket=ticket or open_ticket(),
            acting_user=acting_user or dispatcher,
        )

    return make


@pytest.fixture
def client_of():
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


def together(*calls):
    """``tests.concurrency.together`` with each call at ``T0``, the moment the fixtures' jobs are booked for."""

    def at_t0(call):
        def run():
            with clock.travel_to(T0):
                return call()

        return run

    return run_together(*(at_t0(call) for call in calls))
