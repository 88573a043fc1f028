import pytest
from django.test import Client

from abonent.staff.permissions import Role
from abonent.subscribers.models import ContactKind, ContactPoint


@pytest.fixture(autouse=True)
def _no_quiet_hours(settings):
    # Messages due at once whatever the hour the tests run; quiet hours have their own tests (test_queueing).
    settings.ABONENT_QUIET_HOURS = ""


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


@pytest.fixture
def admin_client(admin, client_of):
    return client_of(admin)


@pytest.fixture
def with_email():
    def add(subscriber, email="ivanov@example.ru"):
        ContactPoint.objects.create(subscriber=subscriber, kind=ContactKind.EMAIL, value=email)
        return subscriber

    return add
